"""The outbox alone: how our frames are queued and how the queue is handed over.

The mask key is all zeros (an injected ``mask_source``), so a frame reads as its header, four
zero bytes and the payload as it is. What may be sent when is the core's business
(tests/test_protocol.py); here every frame is accepted.
"""

from __future__ import annotations

import zlib

from trio_ws._deflate import ClientDeflate
from trio_ws._framing import BINARY, NO_STATUS, PING, PONG, TEXT
from trio_ws._outbox import JOIN_LIMIT, Outbox

ZERO_MASK = b"\0\0\0\0"


def zero_mask(n: int) -> bytes:
    return b"\0" * n


def test_frames_queue_in_call_order_and_are_taken_at_once() -> None:
    """Messages and control frames wait in call order; take() empties the outbox."""
    box = Outbox(zero_mask)
    box.message(TEXT, b"hi")
    box.control(PING, b"p")
    box.message(BINARY, b"\x01\x02", compress=False)
    box.control(PONG, b"")
    expected = (
        b"\x81\x82" + ZERO_MASK + b"hi"
        + b"\x89\x81" + ZERO_MASK + b"p"
        + b"\x82\x82" + ZERO_MASK + b"\x01\x02"
        + b"\x8a\x80" + ZERO_MASK
    )  # fmt: skip
    assert box.size == len(expected)
    assert box.take() == expected
    assert (box.pieces, box.size, box.take()) == ([], 0, b"")


def test_one_frame_without_payload_is_taken_without_a_join() -> None:
    """A lone piece is handed over as it is."""
    box = Outbox(zero_mask)
    box.control(PING, b"")
    (piece,) = box.pieces
    assert box.take() is piece


def test_close_frames_carry_code_and_reason_or_nothing_for_no_status() -> None:
    """A close frame is the code in 2 bytes and the UTF-8 reason; 1005 gives an empty one."""
    box = Outbox(zero_mask)
    box.close(1000, "bye")
    box.close(NO_STATUS)
    assert box.take() == (b"\x88\x85" + ZERO_MASK + b"\x03\xe8bye" + b"\x88\x80" + ZERO_MASK)


def test_each_frame_gets_its_own_mask_key() -> None:
    """mask_source(4) is asked once per frame and its key is used for that frame."""
    keys = iter([b"\x01\x02\x03\x04", b"\xff\xff\xff\xff"])
    box = Outbox(lambda n: next(keys))
    box.message(BINARY, b"\0\0")
    box.control(PONG, b"\0")
    assert box.take() == b"\x82\x82\x01\x02\x03\x04\x01\x02" + b"\x8a\x81\xff\xff\xff\xff\xff"


def test_compression_only_with_deflate_and_when_asked() -> None:
    """compress=True with permessage-deflate sets RSV1 and deflates; otherwise plain."""
    plain = Outbox(zero_mask)
    plain.message(TEXT, b"aaaa", compress=True)
    assert plain.take() == b"\x81\x84" + ZERO_MASK + b"aaaa"

    box = Outbox(zero_mask, ClientDeflate())
    box.message(TEXT, b"aaaa", compress=False)
    assert box.take() == b"\x81\x84" + ZERO_MASK + b"aaaa"
    box.message(TEXT, b"aaaa" * 100)
    data = box.take()
    assert data[0] == 0xC1  # FIN, RSV1, TEXT
    body = data[2 + 4 :]
    assert data[1] == 0x80 | len(body)
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(body + b"\x00\x00\xff\xff") == b"aaaa" * 100


def test_small_pieces_are_joined_into_one_buffer() -> None:
    """Below the join limit, take_pieces() hands over one buffer (or nothing)."""
    box = Outbox(zero_mask)
    assert box.take_pieces() == []
    box.message(BINARY, b"a")
    box.message(BINARY, b"b")
    assert box.take_pieces() == [b"\x82\x81" + ZERO_MASK + b"a" + b"\x82\x81" + ZERO_MASK + b"b"]
    assert box.size == 0


def test_big_payloads_stay_on_their_own_between_joined_runs() -> None:
    """A payload of 64 KiB or more is its own piece; the headers around it are joined."""
    big = b"B" * JOIN_LIMIT
    box = Outbox(zero_mask)
    box.message(BINARY, b"a")
    box.message(BINARY, big)
    box.message(BINARY, big)
    box.control(PING, b"")
    size = box.size
    pieces = box.take_pieces()
    assert pieces == [
        b"\x82\x81" + ZERO_MASK + b"a" + b"\x82\xff" + JOIN_LIMIT.to_bytes(8, "big") + ZERO_MASK,
        big,
        b"\x82\xff" + JOIN_LIMIT.to_bytes(8, "big") + ZERO_MASK,
        big,
        b"\x89\x80" + ZERO_MASK,
    ]
    assert sum(map(len, pieces)) == size
    assert (box.pieces, box.size) == ([], 0)


def test_a_big_payload_last_leaves_no_empty_run() -> None:
    """When the outbox ends with a big payload, no empty piece follows it."""
    big = b"B" * JOIN_LIMIT
    box = Outbox(zero_mask)
    box.message(BINARY, big)
    assert box.take_pieces() == [b"\x82\xff" + JOIN_LIMIT.to_bytes(8, "big") + ZERO_MASK, big]


def test_fragments_and_their_trace() -> None:
    """A message in pieces: TEXT/BINARY then CONTINUATION, FIN on the last, RSV1 on the first
    when compressed as one message; each frame traced while tracing is on."""
    outbox = Outbox(lambda n: ZERO_MASK, ClientDeflate())
    outbox.trace = []
    outbox.fragment(TEXT, b"ab", True, first=True, last=False)
    outbox.fragment(TEXT, b"cd", True, first=False, last=True)
    data = outbox.take()
    assert [t[:4] for t in outbox.trace] == [(">", TEXT, False, True), (">", 0, True, False)]
    assert (data[0], outbox.messages, outbox.other_frames) == (0x40 | TEXT, 1, 1)
    second = 2 + 4 + outbox.trace[0][4]
    assert data[second] == 0x80  # FIN, CONTINUATION, no RSV1
    decompressor = zlib.decompressobj(wbits=-15)
    payloads = [data[6:second], data[second + 6 :]]
    assert decompressor.decompress(b"".join(payloads) + b"\x00\x00\xff\xff") == b"abcd"
    plain = Outbox(lambda n: ZERO_MASK)
    plain.fragment(BINARY, b"x", True, first=True, last=False)
    assert plain.take()[:2] == bytes([BINARY, 0x80 | 1])
