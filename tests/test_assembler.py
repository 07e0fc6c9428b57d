"""The message being reassembled, on its own: synchronous traces of headers and payload pieces.

Each test plays what the parser of ``ClientProtocol`` does: ``start()`` for a message's first
frame header, ``next_fragment()`` for a CONTINUATION header, ``feed()`` for each piece of
payload (``end`` on the last piece of the last frame), and reads back the message or the
violation. The same behaviour through the parser, against a wsproto server, is in
``test_protocol.py``.
"""

from __future__ import annotations

import zlib

import pytest

from trio_ws import WSMessage, WSMsgType
from trio_ws._assembler import DEFAULT_MAX_FRAGMENTS, SINK_MIN, Assembler
from trio_ws._deflate import ClientDeflate
from trio_ws._framing import BINARY, TEXT, ProtocolViolation
from trio_ws._protocol import DEFAULT_MAX_FRAGMENTS as REEXPORTED_MAX_FRAGMENTS
from trio_ws._types import CHUNK_LAST, CHUNK_MORE


def deflated(data: bytes) -> bytes:
    """``data`` as one permessage-deflate payload (RFC 7692 §7.2.1), as a server sends it."""
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def text(data: str | bytes) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, data, None)


def binary(data: bytes) -> WSMessage:
    return WSMessage(WSMsgType.BINARY, data, None)


def violation(code: int, match: str) -> pytest.RaisesExc[ProtocolViolation]:
    """Expect a ProtocolViolation with close code ``code``; check it after the block."""
    return pytest.raises(ProtocolViolation, match=match, check=lambda e: e.code == code)


# ---------------------------------------------------------------------------------------------
# whole messages


@pytest.mark.parametrize(("decode_text", "data"), [(True, "héllo"), (False, "héllo".encode())])
def test_whole_text_is_checked_and_decoded_as_asked(decode_text: bool, data: str | bytes) -> None:
    """A whole TEXT payload becomes str, or stays UTF-8 bytes with decode_text=False."""
    asm = Assembler(decode_text=decode_text)
    assert asm.whole_text("héllo".encode()) == text(data)


@pytest.mark.parametrize("decode_text", [True, False])
def test_whole_text_that_is_not_utf8_fails_with_1007(decode_text: bool) -> None:
    """RFC 6455 §8.1: invalid UTF-8 fails the connection with 1007, whatever decode_text."""
    with violation(1007, "a TEXT message that is not UTF-8"):
        Assembler(decode_text=decode_text).whole_text(b"ok \xc3\x28")


def test_too_big_names_the_size_and_the_limit() -> None:
    """The 1009 violation says how big the message is at least, and the limit."""
    exc = Assembler(max_msg_size=10).too_big(11)
    assert (exc.code, exc.reason) == (
        1009,
        "a message of at least 11 bytes exceeds max_msg_size=10",
    )


# ---------------------------------------------------------------------------------------------
# messages in pieces


def test_text_in_pieces_comes_out_once_at_the_end() -> None:
    """Pieces of a fragmented TEXT message give nothing until the last; a character split
    across pieces (and frames) is put back together."""
    asm = Assembler()
    data = "aé€😀".encode()
    asm.start(TEXT, False, 3)
    assert asm.opcode == TEXT
    assert asm.feed(data[:2], False) is None  # "a" and half of "é"
    assert asm.feed(data[2:3], False) is None
    asm.next_fragment(len(data) - 3)
    assert asm.feed(data[3:], True) == text("aé€😀")
    assert asm.opcode == 0


def test_text_as_bytes_is_still_validated() -> None:
    """decode_text=False delivers bytes, checked as UTF-8 on the way."""
    asm = Assembler(decode_text=False)
    asm.start(TEXT, False, 4)
    assert asm.feed(b"ab", False) is None
    assert asm.feed("é".encode(), True) == text("abé".encode())
    asm.start(TEXT, False, 1)
    with violation(1007, "not UTF-8"):
        asm.feed(b"\x80", False)


def test_invalid_utf8_fails_as_soon_as_it_arrives() -> None:
    """An invalid byte fails the first piece it is in, long before the message ends."""
    asm = Assembler()
    asm.start(TEXT, False, 1_000_000)
    assert asm.feed(b"fine so far", False) is None
    with violation(1007, "a TEXT message that is not UTF-8"):
        asm.feed(b"\xed\xa0\x80", False)  # a UTF-16 surrogate, never valid in UTF-8


def test_a_truncated_character_fails_at_the_end() -> None:
    """A message that ends inside a multi-byte character is not UTF-8 either."""
    asm = Assembler()
    asm.start(TEXT, False, 3)
    assert asm.feed(b"a\xe2\x82", False) is None  # could still become "€"
    with violation(1007, "not UTF-8"):
        asm.feed(b"", True)


def test_binary_in_big_pieces_is_joined_once() -> None:
    """Big BINARY pieces are kept as they are and joined at the end."""
    asm = Assembler(max_msg_size=0)
    pieces = [bytes([i]) * 5000 for i in range(20)]
    asm.start(BINARY, False, 100_000)
    for piece in pieces[:-1]:
        assert asm.feed(piece, False) is None
    assert asm._parts is not None
    assert len(asm._parts) == 19
    assert asm.feed(pieces[-1], True) == binary(b"".join(pieces))


def test_binary_in_many_small_pieces_goes_into_one_buffer() -> None:
    """Past 16 small pieces, the pieces are copied into one buffer (no per-piece overhead)."""
    asm = Assembler()
    asm.start(BINARY, False, 40)
    for i in range(39):
        assert asm.feed(bytes([i]), False) is None
    assert asm._parts is None
    assert asm._bytes is not None
    assert len(asm._bytes) == 39
    assert asm.feed(b"\xff", True) == binary(bytes(range(39)) + b"\xff")


def test_empty_message() -> None:
    """An empty final frame completes an empty message of either kind."""
    asm = Assembler()
    asm.start(TEXT, False, 0)
    assert asm.feed(b"", True) == text("")
    asm.start(BINARY, False, 0)
    assert asm.feed(b"", True) == binary(b"")


def test_compressed_message_in_fragments_is_inflated_piece_by_piece() -> None:
    """RSV1 on the first frame: every piece is inflated, the tail completes it at the end."""
    asm = Assembler(deflate=ClientDeflate())
    payload = deflated(b"compressible " * 100)
    asm.start(TEXT, True, 5)
    assert asm.feed(payload[:5], False) is None
    asm.next_fragment(len(payload) - 5)
    assert asm.feed(payload[5:], True) == text("compressible " * 100)


# ---------------------------------------------------------------------------------------------
# structure


@pytest.mark.parametrize(("opcode", "name"), [(TEXT, "TEXT"), (BINARY, "BINARY")])
def test_a_new_message_inside_one_fails_with_1002(opcode: int, name: str) -> None:
    """RFC 6455 §5.4: no TEXT or BINARY frame while a fragmented message is open."""
    asm = Assembler()
    asm.start(BINARY, False, 1)
    with violation(1002, f"a {name} frame inside a fragmented message"):
        asm.start(opcode, False, 1)


def test_continuation_outside_a_message_fails_with_1002() -> None:
    """A CONTINUATION frame needs an open message."""
    with violation(1002, "a CONTINUATION frame outside a message"):
        Assembler().next_fragment(0)


def test_rsv1_without_deflate_fails_with_1002() -> None:
    """RSV1 means compressed only when permessage-deflate was negotiated."""
    with violation(1002, "RSV1 set without permessage-deflate"):
        Assembler().start(TEXT, True, 1)


def test_reset_forgets_the_open_message() -> None:
    """After reset() (EOF, close, failure) no message is open and a new one can start."""
    deflate = ClientDeflate()
    asm = Assembler(deflate=deflate)
    asm.start(BINARY, True, 3)
    assert asm.feed(deflated(b"abc")[:2], False) is None
    asm.reset()
    assert (asm.opcode, asm._parts, deflate.inflater.inflated) == (0, None, 0)
    with violation(1002, "outside a message"):
        asm.next_fragment(0)
    Assembler().reset()  # nothing open, no deflate: nothing to do


# ---------------------------------------------------------------------------------------------
# limits


def test_max_msg_size_counts_announced_lengths_across_fragments() -> None:
    """Exactly max_msg_size is fine; a header that would pass it fails before its payload."""
    asm = Assembler(max_msg_size=10)
    asm.start(BINARY, False, 6)
    asm.next_fragment(4)  # 10: at the limit
    with violation(1009, "at least 11 bytes exceeds max_msg_size=10"):
        asm.next_fragment(1)
    asm.reset()
    with violation(1009, "at least 11 bytes"):
        asm.start(TEXT, False, 11)


def test_max_msg_size_zero_means_no_limit() -> None:
    """max_msg_size=0 accepts any announced length."""
    asm = Assembler(max_msg_size=0)
    asm.start(BINARY, False, 1 << 62)
    asm.next_fragment(1 << 62)


def test_compressed_size_is_judged_after_inflating() -> None:
    """A compressed message's announced length does not count; what it inflates to does
    (the deflate object is given max_msg_size)."""
    deflate = ClientDeflate()
    asm = Assembler(deflate=deflate, max_msg_size=100)
    assert deflate.inflater.max_msg_size == 100
    asm.start(BINARY, True, 1000)  # a compressed frame may be bigger than what it inflates to
    with violation(1009, "inflates past max_msg_size=100"):
        asm.feed(deflated(b"\x00" * 101), True)


def test_max_fragments_counts_the_first_frame_too() -> None:
    """max_fragments=3: a first frame and two continuations, not a third."""
    asm = Assembler(max_fragments=3)
    asm.start(TEXT, False, 0)
    asm.next_fragment(0)
    asm.next_fragment(0)
    with violation(1009, "more than 3 fragments"):
        asm.next_fragment(0)


def test_max_fragments_zero_means_no_limit() -> None:
    """max_fragments=0 accepts any number of continuations."""
    asm = Assembler(max_fragments=0)
    asm.start(BINARY, False, 0)
    for _ in range(DEFAULT_MAX_FRAGMENTS + 1):
        asm.next_fragment(0)


def test_default_max_fragments_is_shared_with_the_protocol() -> None:
    """DEFAULT_MAX_FRAGMENTS is still importable from trio_ws._protocol, the same value."""
    assert REEXPORTED_MAX_FRAGMENTS == DEFAULT_MAX_FRAGMENTS == 100_000


# ---------------------------------------------------------------------------------------------
# streaming (receive_stream)


def chunk(kind: WSMsgType, data: str | bytes, last: bool = False) -> WSMessage:
    return WSMessage(kind, data, CHUNK_LAST if last else CHUNK_MORE)


@pytest.mark.parametrize("decode_text", [True, False])
def test_a_streamed_message_comes_out_piece_by_piece(decode_text: bool) -> None:
    """stream_open() without an open message streams the next one: each fed piece comes out
    at once (empty ones skipped but the last), text decoded without splitting a character."""
    asm = Assembler(decode_text=decode_text)
    assert asm.stream_open() is None
    assert asm.stream_next
    euro = "€".encode()
    asm.start(TEXT, False, 3)
    assert not asm.stream_next
    assert asm.feed(b"a" + euro[:1], False) == chunk(
        WSMsgType.TEXT, "a" if decode_text else b"a" + euro[:1]
    )
    assert asm.feed(b"", False) is None
    assert asm.feed(euro[1:], False) == chunk(WSMsgType.TEXT, "€" if decode_text else euro[1:])
    assert asm.feed(b"", True) == chunk(WSMsgType.TEXT, "" if decode_text else b"", last=True)
    assert asm.opcode == 0
    # The next message is whole again.
    asm.start(BINARY, False, 1)
    assert asm.feed(b"x", True) == binary(b"x")


def test_a_streamed_text_that_is_not_utf8_fails_as_it_arrives() -> None:
    asm = Assembler()
    asm.stream_open()
    asm.start(TEXT, False, 1)
    with violation(1007, "not UTF-8"):
        asm.feed(b"\xff", False)


def test_a_streamed_compressed_message_is_inflated_piece_by_piece() -> None:
    asm = Assembler(deflate=ClientDeflate())
    asm.stream_open()
    body = deflated(b"hello " * 1000)
    asm.start(BINARY, True, len(body))
    out = [asm.feed(body[:50], False), asm.feed(body[50:], True)]
    assert out[0] is not None
    assert out[0].extra is CHUNK_MORE
    assert out[1] is not None
    assert out[1].extra is CHUNK_LAST
    assert out[0].data + out[1].data == b"hello " * 1000


@pytest.mark.parametrize("decode_text", [True, False])
def test_stream_open_hands_over_an_open_text(decode_text: bool) -> None:
    asm = Assembler(decode_text=decode_text)
    asm.start(TEXT, False, 0)
    asm.feed(b"ab", False)
    assert asm.stream_open() == chunk(WSMsgType.TEXT, "ab" if decode_text else b"ab")
    assert not asm.stream_next
    assert asm.feed(b"c", True) == chunk(WSMsgType.TEXT, "c" if decode_text else b"c", True)


def test_stream_open_hands_over_an_open_binary_in_parts_or_one_buffer() -> None:
    asm = Assembler()
    asm.start(BINARY, False, 0)
    for _ in range(20):  # small pieces: they go into one buffer
        asm.feed(b"x", False)
    assert asm.stream_open() == chunk(WSMsgType.BINARY, b"x" * 20)
    assert asm.feed(b"y", True) == chunk(WSMsgType.BINARY, b"y", True)
    asm.start(BINARY, False, 0)
    assert asm.stream_open() is None  # nothing yet: the first piece comes from feed()
    assert asm.feed(b"z", True) == chunk(WSMsgType.BINARY, b"z", True)


def test_stream_open_during_a_stream_left_early_streams_the_next_one() -> None:
    asm = Assembler()
    asm.stream_open()
    asm.start(BINARY, False, 0)
    assert asm.stream_open() is None  # the open message is streamed already
    assert asm.stream_next
    asm.feed(b"rest", True)
    asm.start(TEXT, False, 0)
    assert asm.feed(b"next", True) == chunk(WSMsgType.TEXT, "next", True)


def test_stream_open_keeps_an_open_sink_and_streams_what_fills_it() -> None:
    """A big frame already going into its sink: what it holds comes first, then each fill."""
    asm = Assembler()
    asm.start(BINARY, False, SINK_MIN * 2)
    asm.feed(b"ab", False)  # an earlier frame of the message
    asm.next_fragment(SINK_MIN)
    assert asm.open_sink(SINK_MIN)
    assert asm.fill(b"c" * 10, False) is None
    assert asm.stream_open() == chunk(WSMsgType.BINARY, b"ab" + b"c" * 10)
    assert asm.sinking
    assert asm.fill(b"d" * 5, False) == chunk(WSMsgType.BINARY, b"d" * 5)
    view = asm.sink_view()
    assert view is not None
    view[:] = b"e" * len(view)
    assert asm.filled(len(view), False) == chunk(WSMsgType.BINARY, b"e" * (SINK_MIN - 15))
    assert not asm.sinking  # the frame is done, the message goes on in pieces
    assert not asm.open_sink(SINK_MIN)  # a streamed message gets no sink
    assert asm.feed(b"f", True) == chunk(WSMsgType.BINARY, b"f", True)
