"""The sans-I/O core against a raw wsproto server peer: bytes in, messages and bytes out.

The server is a bare :class:`wsproto.connection.Connection` in server mode, already past the
opening handshake. What the client queues is fed to it with :func:`server_gets`; what it sends
is fed to the client with ``client.receive_data(server.send(...))``. Frames a correct server
would never send are built by hand with :func:`frame`.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
import zlib
from itertools import pairwise
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from trio_ws import InvalidArgument, WSClosedError, WSMessage, WSMsgType, WSProtocolError
from trio_ws._deflate import ClientDeflate
from trio_ws._framing import check_close_code
from trio_ws._protocol import DEFAULT_MAX_FRAGMENTS, ClientProtocol, WSState
from trio_ws._types import CHUNK_LAST, CHUNK_MORE

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# ---------------------------------------------------------------------------------------------
# helpers


def pair(**options: Any) -> tuple[ClientProtocol, Connection]:
    """A client core and a raw wsproto server, both past the opening handshake."""
    return ClientProtocol(**options), Connection(ConnectionType.SERVER)


def server_gets(client: ClientProtocol, server: Connection) -> list[Event]:
    """Deliver the client's outbox to the server; return the events it produced."""
    server.receive_data(client.data_to_send())
    return list(server.events())


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    masked: bool = False,
) -> bytes:
    """One frame as a server would put it on the wire (unmasked unless ``masked``)."""
    first = fin << 7 | rsv1 << 6 | rsv2 << 5 | rsv3 << 4 | opcode
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head = bytes([first, mask_bit | n])
    elif n < 1 << 16:
        head = bytes([first, mask_bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, mask_bit | 127]) + struct.pack("!Q", n)
    if masked:
        key = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def client_frame(data: bytes) -> tuple[int, bytes]:
    """Opcode and unmasked payload of one short frame from the client (FIN set, masked)."""
    assert data[0] & 0xF0 == 0x80
    assert data[1] & 0x80
    n = data[1] & 0x7F
    assert n < 126
    assert len(data) == 6 + n
    key = data[2:6]
    return data[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(data[6:]))


class Error:
    """Compares equal to an ERROR message whose WSProtocolError carries ``code``."""

    def __init__(self, code: int) -> None:
        self.code = code

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, WSMessage)
            and other.type is WSMsgType.ERROR
            and isinstance(other.data, WSProtocolError)
            and other.data.code == self.code
            and other.extra is None
        )

    def __repr__(self) -> str:
        return f"Error({self.code})"


def text(data: str | bytes) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, data, None)


def binary(data: bytes) -> WSMessage:
    return WSMessage(WSMsgType.BINARY, data, None)


def close_msg(code: int, reason: str = "") -> WSMessage:
    return WSMessage(WSMsgType.CLOSE, code, reason)


def closed_by_server(client: ClientProtocol) -> None:
    """Put ``client`` in CLOSE_RECEIVED (autoclose off, so nothing is echoed)."""
    assert client.receive_data(frame(CLOSE, close_payload(1000))) == [close_msg(1000)]


def failed(client: ClientProtocol) -> None:
    """Put ``client`` in the failed state."""
    assert client.receive_data(frame(0x3)) == [Error(1002)]


# A fragmented text message (multi-byte characters across the fragment boundaries) with a
# ping in the middle, then a binary message: the stream the split tests cut into pieces.
FRAGMENTED_WIRE = (
    frame(TEXT, "hé".encode()[:2], fin=False)
    + frame(CONT, "hé".encode()[2:] + b"llo ", fin=False)
    + frame(PING, b"mid")
    + frame(CONT, "wörld ☃".encode(), fin=True)
    + frame(BINARY, b"\x00\x01", fin=False)
    + frame(CONT, b"", fin=False)
    + frame(CONT, b"\x02", fin=True)
)
FRAGMENTED_MESSAGES = [text("héllo wörld ☃"), binary(b"\x00\x01\x02")]


# ---------------------------------------------------------------------------------------------
# data messages


def test_text_and_binary_messages_are_delivered() -> None:
    """Whole TEXT and BINARY messages from the server arrive as TEXT (str) and BINARY (bytes)."""
    client, server = pair()
    data = server.send(TextMessage("héllo")) + server.send(BytesMessage(b"\x00\xff"))
    assert client.receive_data(data) == [text("héllo"), binary(b"\x00\xff")]
    assert client.data_to_send() == b""


def test_decode_text_false_delivers_utf8_bytes() -> None:
    """With decode_text=False, TEXT data (also when fragmented) is delivered as UTF-8 bytes."""
    client, server = pair(decode_text=False)
    data = (
        server.send(TextMessage("☃"))
        + server.send(TextMessage("a", message_finished=False))
        + server.send(TextMessage("é"))
    )
    assert client.receive_data(data) == [text("☃".encode()), text("aé".encode())]


def test_empty_messages_are_delivered() -> None:
    """Empty TEXT and BINARY messages are messages too."""
    client, server = pair()
    data = server.send(TextMessage("")) + server.send(BytesMessage(b""))
    assert client.receive_data(data) == [text(""), binary(b"")]


def test_empty_input_returns_nothing() -> None:
    """receive_data(b"") is a no-op."""
    client, _ = pair()
    assert client.receive_data(b"") == []
    assert client.state is WSState.OPEN


def test_fragmented_message_is_reassembled() -> None:
    """Fragments are joined into one message; an interleaved ping is answered meanwhile."""
    client, server = pair()
    assert client.receive_data(FRAGMENTED_WIRE) == FRAGMENTED_MESSAGES
    assert server_gets(client, server) == [Pong(payload=b"mid")]


@pytest.mark.parametrize("cut", range(len(FRAGMENTED_WIRE) + 1))
def test_fragmented_stream_split_at_any_byte(cut: int) -> None:
    """The same messages come out wherever the stream is cut in two."""
    client, server = pair()
    got = client.receive_data(FRAGMENTED_WIRE[:cut]) + client.receive_data(FRAGMENTED_WIRE[cut:])
    assert got == FRAGMENTED_MESSAGES
    assert server_gets(client, server) == [Pong(payload=b"mid")]


@settings(database=None, deadline=None, max_examples=200)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(FRAGMENTED_WIRE)), max_size=30))
def test_fragmented_stream_split_anywhere(cuts: list[int]) -> None:
    """The same messages come out however the stream is chunked."""
    client, server = pair()
    bounds = [0, *sorted(cuts), len(FRAGMENTED_WIRE)]
    got: list[WSMessage] = []
    for start, end in pairwise(bounds):
        got += client.receive_data(FRAGMENTED_WIRE[start:end])
    assert got == FRAGMENTED_MESSAGES
    assert server_gets(client, server) == [Pong(payload=b"mid")]


def test_big_frame_delivered_in_pieces_is_one_message() -> None:
    """A 64-bit-length frame that arrives a few bytes at a time is delivered once, whole."""
    client, server = pair()
    wire = server.send(BytesMessage(bytes(range(256)) * 300))
    got: list[WSMessage] = []
    for i in range(0, len(wire), 1000):
        got += client.receive_data(wire[i : i + 1000])
    assert got == [binary(bytes(range(256)) * 300)]


def read_into(client: ClientProtocol, wire: bytes, size: int) -> list[WSMessage]:
    """Feed ``wire`` as the reader does: into :meth:`receive_buffer` when the core offers
    one (at most ``size`` bytes a read), else through :meth:`receive_data`."""
    got: list[WSMessage] = []
    pos = 0
    while pos < len(wire):
        view = client.receive_buffer()
        if view is None:
            got += client.receive_data(wire[pos : pos + size])
            pos += size
        else:
            n = min(len(view), size, len(wire) - pos)
            view[:n] = wire[pos : pos + n]
            got += client.received_into(n)
            pos += n
    return got


BIG = bytes(range(256)) * 1024  # 256 KiB, at least SINK_MIN


@pytest.mark.parametrize("size", [1000, 65536, 128 * 1024, 300_000])
def test_a_big_frame_is_read_into_one_sink(size: int) -> None:
    """A big BINARY frame that spans reads is read into one buffer of its length, whether
    the I/O layer reads into it or hands over reads; the messages around it are intact."""
    client, _ = pair()
    wire = frame(BINARY, b"before") + frame(BINARY, BIG) + frame(TEXT, b"after")
    assert read_into(client, wire, size) == [binary(b"before"), binary(BIG), text("after")]
    assert client.receive_buffer() is None
    client2, _ = pair()
    got: list[WSMessage] = []
    for i in range(0, len(wire), size):
        got += client2.receive_data(wire[i : i + size])
    assert got == [binary(b"before"), binary(BIG), text("after")]


def test_the_sink_is_offered_only_while_the_frame_lasts() -> None:
    client, _ = pair()
    wire = frame(BINARY, BIG)
    assert client.receive_data(wire[:1000]) == []
    view = client.receive_buffer()
    assert view is not None
    assert len(view) == len(BIG) - (1000 - 10)  # the rest of the payload, no more
    view[:] = wire[1000:]
    assert client.received_into(len(view)) == [binary(BIG)]
    assert client.receive_buffer() is None


def test_a_fragmented_big_message_uses_a_sink_per_big_frame() -> None:
    client, _ = pair()
    wire = frame(BINARY, BIG, fin=False) + frame(PING, b"p") + frame(CONT, BIG)
    assert read_into(client, wire, 100_000) == [binary(BIG + BIG)]


@pytest.mark.parametrize(
    ("first", "payload"),
    [(TEXT, ("é" * (len(BIG) // 2)).encode()), (BINARY, zlib.compress(BIG)[2:-4])],
)
def test_text_and_compressed_frames_get_no_sink(first: int, payload: bytes) -> None:
    """TEXT is checked piece by piece (UTF-8 fails fast), compressed frames are inflated
    piece by piece: neither is offered a sink."""
    deflate = ClientDeflate() if first == BINARY else None
    client, _ = pair(deflate=deflate)
    wire = frame(first, payload, rsv1=deflate is not None)
    assert client.receive_data(wire[:1000]) == []
    assert client.receive_buffer() is None


def test_eof_in_the_middle_of_a_sink_drops_it() -> None:
    client, _ = pair()
    assert client.receive_data(frame(BINARY, BIG)[:1000]) == []
    assert client.receive_buffer() is not None
    client.receive_eof()
    assert client.receive_buffer() is None
    assert client.close_code == 1006


def test_a_whole_compressed_message_is_inflated_in_one_piece() -> None:
    """A compressed message in one frame is inflated; TEXT is then checked like any other."""

    def deflated(data: bytes) -> bytes:
        compressor = zlib.compressobj(wbits=-15)
        return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]

    client, _ = pair(deflate=ClientDeflate())
    wire = frame(BINARY, deflated(b"\x00" * 1000), rsv1=True)
    wire += frame(TEXT, deflated("é".encode() * 10), rsv1=True)
    assert client.receive_data(wire) == [binary(b"\x00" * 1000), text("é" * 10)]
    client, _ = pair(deflate=ClientDeflate())
    assert client.receive_data(frame(TEXT, deflated(b"\xff\xfe"), rsv1=True)) == [Error(1007)]


# ---------------------------------------------------------------------------------------------
# max_msg_size


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        (TextMessage("x" * 100), 99),
        (TextMessage("é" * 50), 99),  # 50 characters, 100 bytes of UTF-8
        (BytesMessage(b"x" * 100), 99),
    ],
)
def test_message_over_max_msg_size_fails_with_1009(message: Event, limit: int) -> None:
    """One byte (of UTF-8 for TEXT) over max_msg_size: ERROR 1009, close 1009, input dropped."""
    client, server = pair(max_msg_size=limit)
    assert client.receive_data(server.send(message)) == [Error(1009)]
    assert client.failure is not None
    assert client.failure.code == client.close_code == 1009
    assert "max_msg_size=99" in str(client.failure)
    assert server_gets(client, server) == [CloseConnection(code=1009, reason="")]
    assert client.receive_data(frame(TEXT, b"late")) == []
    assert client.receive_data(frame(CLOSE, close_payload(1000))) == []
    assert client.close_code == 1009


@pytest.mark.parametrize(
    "message", [TextMessage("x" * 100), TextMessage("é" * 50), BytesMessage(b"x" * 100)]
)
def test_message_of_exactly_max_msg_size_is_delivered(message: Event) -> None:
    """A message of exactly max_msg_size bytes (UTF-8 for TEXT) is accepted."""
    client, server = pair(max_msg_size=100)
    [msg] = client.receive_data(server.send(message))
    assert msg.type in (WSMsgType.TEXT, WSMsgType.BINARY)
    assert client.state is WSState.OPEN


def test_fragments_adding_up_over_max_msg_size_fail_with_1009() -> None:
    """Fragments each under the limit, together over it: ERROR 1009 at the fragment that tips."""
    client, server = pair(max_msg_size=10)
    first = server.send(BytesMessage(b"x" * 6, message_finished=False))
    assert client.receive_data(first) == []
    second = server.send(BytesMessage(b"x" * 5, message_finished=False))
    third = server.send(BytesMessage(b"x"))
    assert client.receive_data(second + third) == [Error(1009)]
    assert server_gets(client, server) == [CloseConnection(code=1009, reason="")]


def test_size_count_restarts_with_each_message() -> None:
    """max_msg_size bounds each message, not the sum of consecutive messages."""
    client, server = pair(max_msg_size=10)
    data = b"".join(server.send(BytesMessage(b"x" * 10)) for _ in range(3))
    assert client.receive_data(data) == [binary(b"x" * 10)] * 3


def test_max_msg_size_zero_is_unlimited() -> None:
    """max_msg_size=0 accepts a message far over the 4 MiB default."""
    client, server = pair(max_msg_size=0)
    big = b"x" * (5 * 1024 * 1024)
    assert client.receive_data(server.send(BytesMessage(big))) == [binary(big)]


def test_default_max_msg_size_is_4_mib() -> None:
    """The default limit is 4 MiB: one byte more fails with 1009."""
    client, server = pair()
    ok = server.send(BytesMessage(b"x" * (4 * 1024 * 1024)))
    too_big = server.send(BytesMessage(b"x" * (4 * 1024 * 1024 + 1)))
    assert client.receive_data(ok) == [binary(b"x" * (4 * 1024 * 1024))]
    assert client.receive_data(too_big) == [Error(1009)]


def test_frame_header_announcing_too_much_is_refused_at_once() -> None:
    """A frame header that announces more than max_msg_size fails with 1009 before the payload."""
    client, _ = pair(max_msg_size=1024)
    header = frame(BINARY, b"x" * 2000)[:4]  # opcode, 126, 16-bit length 2000; no payload
    assert client.receive_data(header) == [Error(1009)]


def test_message_of_too_many_fragments_is_refused() -> None:
    """A message of 100 000 empty fragments is refused instead of being reassembled."""
    client, _ = pair()
    wire = frame(BINARY, fin=False) + frame(CONT, fin=False) * 100_000 + frame(CONT)
    [msg] = client.receive_data(wire)
    assert msg.type is WSMsgType.ERROR


def test_header_is_refused_before_any_payload_byte_is_read() -> None:
    """A 64-bit length far over the limit fails with 1009 on its 10-byte header alone."""
    client, server = pair(max_msg_size=1024)
    header = bytes([0x82, 127]) + struct.pack("!Q", 1 << 40)
    assert client.receive_data(header) == [Error(1009)]
    assert "a message of at least 1099511627776 bytes exceeds max_msg_size=1024" in str(
        client.failure
    )
    assert server_gets(client, server) == [CloseConnection(code=1009, reason="")]


def test_continuation_header_that_tips_the_message_over_is_refused_at_once() -> None:
    """The size already received plus a continuation's announced length: refused on the header."""
    client, _ = pair(max_msg_size=10)
    assert client.receive_data(frame(TEXT, b"x" * 6, fin=False)) == []
    assert client.receive_data(frame(CONT, b"x" * 4, fin=False)) == []  # exactly 10: fine
    assert client.receive_data(frame(CONT, b"x")[:2]) == [Error(1009)]


def test_header_of_exactly_max_msg_size_waits_for_its_payload() -> None:
    """A header announcing exactly max_msg_size is accepted; the message arrives whole."""
    client, _ = pair(max_msg_size=300)
    wire = frame(BINARY, b"y" * 300)
    assert client.receive_data(wire[:4]) == []
    assert client.receive_data(wire[4:]) == [binary(b"y" * 300)]


def fragments(n: int, *, between: bytes = b"", opcode: int = BINARY) -> bytes:
    """One message of ``n`` one-byte frames, with ``between`` after each non-final one."""
    wire = frame(opcode, b"a", fin=n == 1)
    for i in range(1, n):
        wire += between + frame(CONT, b"a", fin=i == n - 1)
    return wire


def test_message_of_exactly_max_fragments_is_delivered() -> None:
    """max_fragments frames in one message are fine; one more fails with 1009 at its header."""
    client, _ = pair(max_fragments=3)
    assert client.receive_data(fragments(3)) == [binary(b"aaa")]
    too_many = fragments(4)
    assert client.receive_data(too_many[:-3]) == []
    assert client.receive_data(too_many[-3:-1]) == [Error(1009)]  # the 4th header alone
    assert "a message of more than 3 fragments (max_fragments=3)" in str(client.failure)


def test_control_frames_between_fragments_are_not_counted() -> None:
    """Pings and pongs between fragments do not count towards max_fragments."""
    client, server = pair(max_fragments=3)
    wire = fragments(3, between=frame(PING, b"p") + frame(PONG))
    assert client.receive_data(wire) == [binary(b"aaa")]
    assert server_gets(client, server) == [Pong(payload=b"p"), Pong(payload=b"p")]


def test_fragment_count_restarts_with_each_message() -> None:
    """max_fragments bounds each message, not the connection."""
    client, _ = pair(max_fragments=3)
    wire = fragments(3, opcode=TEXT) * 5 + frame(BINARY, b"whole")
    assert client.receive_data(wire) == [text("aaa")] * 5 + [binary(b"whole")]


def test_max_fragments_zero_is_unlimited() -> None:
    """max_fragments=0 lets any number of fragments through, more than the default too."""
    client, _ = pair(max_fragments=0)
    wire = frame(BINARY, fin=False) + frame(CONT, fin=False) * DEFAULT_MAX_FRAGMENTS + frame(CONT)
    assert client.receive_data(wire) == [binary(b"")]


def test_default_max_fragments_lets_autobahn_9_3_1_through() -> None:
    """The default (100,000) admits Autobahn case 9.3.1: a 4 MiB message in 64-byte fragments
    and an empty final one, 65,537 frames."""
    assert DEFAULT_MAX_FRAGMENTS == 100_000
    client, _ = pair()
    chunk = b"*" * 64
    wire = frame(TEXT, chunk, fin=False) + frame(CONT, chunk, fin=False) * 65_535 + frame(CONT)
    assert client.receive_data(wire) == [text("*" * 4 * 1024 * 1024)]


@pytest.mark.parametrize(("opcode", "payload"), [(TEXT, b"t" * 4096), (BINARY, b"\x00" * 4096)])
def test_reassembly_memory_stays_near_the_message_size(opcode: int, payload: bytes) -> None:
    """A message trickled in one byte at a time costs about its size, not an object a byte."""
    client, _ = pair()
    wire = frame(opcode, payload[:100], fin=False) + frame(CONT, payload[100:])
    got: list[WSMessage] = []
    tracemalloc.start()
    try:
        for i in range(len(wire)):
            got += client.receive_data(wire[i : i + 1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [m.data for m in got] == [payload.decode() if opcode == TEXT else payload]
    assert peak < 64 * 1024  # a list of 4096 one-byte pieces alone would be ~200 KB


# ---------------------------------------------------------------------------------------------
# ping and pong


def test_ping_is_answered_from_the_outbox() -> None:
    """With autoping, an incoming ping is answered with a pong carrying the same payload."""
    client, server = pair()
    assert client.receive_data(server.send(Ping(b"hb"))) == []
    assert client.outbox.size > 0
    assert server_gets(client, server) == [Pong(payload=b"hb")]


def test_pong_is_swallowed_with_autoping() -> None:
    """With autoping, a pong is not delivered and not answered."""
    client, server = pair()
    assert client.receive_data(server.send(Pong(b"hb"))) == []
    assert client.data_to_send() == b""


def test_ping_and_pong_are_delivered_without_autoping() -> None:
    """Without autoping, PING and PONG are delivered and nothing is answered."""
    client, server = pair(autoping=False)
    data = server.send(Ping(b"a")) + server.send(Pong(b"b"))
    assert client.receive_data(data) == [
        WSMessage(WSMsgType.PING, b"a", None),
        WSMessage(WSMsgType.PONG, b"b", None),
    ]
    assert client.data_to_send() == b""


def test_no_pong_after_local_close() -> None:
    """A ping that arrives after our close frame is not answered (nothing follows a close)."""
    client, server = pair()
    assert client.send_close()
    closing = client.data_to_send()
    assert client.receive_data(server.send(Ping(b"late"))) == []
    assert client.data_to_send() == b""
    server.receive_data(closing)
    assert list(server.events()) == [CloseConnection(code=1000, reason="")]


def test_outbox_keeps_call_order_with_pings_and_pongs_first() -> None:
    """Messages leave in the order they were sent; pings and pongs (ours and the automatic
    answers) in theirs, ahead of the messages still queued."""
    client, server = pair()
    client.send_text("one")
    client.receive_data(server.send(Ping(b"p")))
    client.send_bytes(bytearray(b"two"))
    client.send_ping(b"q")
    assert server_gets(client, server) == [
        Pong(payload=b"p"),
        Ping(payload=b"q"),
        TextMessage("one"),
        BytesMessage(b"two"),
    ]


def test_a_big_message_in_frames_with_a_pong_between() -> None:
    """max_frame_size splits a message; wsproto reassembles it, and a pong queued while the
    writer is between its frames (take_urgent) lands between them."""
    client, server = pair(max_frame_size=65536)
    client.send_bytes(b"x" * 150_000)
    first, second, third = client.outbox.take_pieces()  # big frames stay apart
    assert len(first) == len(second) == 65536 + 14
    client.receive_data(server.send(Ping(b"p")))
    wire = first + client.outbox.take_urgent() + second + third
    server.receive_data(wire)
    events = list(server.events())
    names = [type(e).__name__ for e in events]  # wsproto: an event per frame
    assert names == ["BytesMessage", "Pong", "BytesMessage", "BytesMessage"]
    assert b"".join(e.data for e in events if isinstance(e, BytesMessage)) == b"x" * 150_000


def test_data_to_send_drains_the_outbox() -> None:
    """data_to_send() returns the outbox once, joined, and outbox.size follows it."""
    client, server = pair()
    assert (client.data_to_send(), client.outbox.size) == (b"", 0)
    client.send_bytes(b"a")
    one = client.outbox.size
    client.send_bytes(memoryview(b"b"))
    assert client.outbox.size == 2 * one
    data = client.data_to_send()
    assert (len(data), client.outbox.size, client.data_to_send()) == (2 * one, 0, b"")
    server.receive_data(data)
    assert list(server.events()) == [BytesMessage(b"a"), BytesMessage(b"b")]


# ---------------------------------------------------------------------------------------------
# the server's close frame


def test_server_close_is_echoed_with_autoclose() -> None:
    """With autoclose, the server's close is delivered as CLOSE and echoed with its code."""
    client, server = pair()
    data = server.send(CloseConnection(code=1001, reason="bye ☃"))
    assert client.receive_data(data) == [close_msg(1001, "bye ☃")]
    assert (client.close_code, client.close_reason) == (1001, "bye ☃")
    assert (client.state, client.closed, client.input_done) == (WSState.CLOSED, True, True)
    assert server_gets(client, server) == [CloseConnection(code=1001, reason="")]


@pytest.mark.parametrize("code", [1000, 1003, 1007, 1011, 1013, 3000, 4999])
def test_server_close_code_is_echoed(code: int) -> None:
    """Any valid code the server sends is echoed back as it is."""
    client, server = pair()
    assert client.receive_data(server.send(CloseConnection(code=code))) == [close_msg(code)]
    assert server_gets(client, server) == [CloseConnection(code=code, reason="")]


def test_server_close_1014_is_delivered() -> None:
    """1014 is a registered close code: the server may send it like 1011."""
    client, _ = pair()
    assert client.receive_data(frame(CLOSE, close_payload(1014))) == [close_msg(1014)]


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]
)
def test_every_valid_close_code_is_delivered_with_its_reason(code: int) -> None:
    """All codes RFC 6455 §7.4 and the IANA registry allow arrive with their UTF-8 reason,
    and are echoed."""
    client, _ = pair()
    assert client.receive_data(frame(CLOSE, close_payload(code, "bye ☃".encode()))) == [
        close_msg(code, "bye ☃")
    ]
    assert (client.close_code, client.close_reason) == (code, "bye ☃")
    assert client_frame(client.data_to_send()) == (CLOSE, close_payload(code))


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_code_fails_with_1002(code: int) -> None:
    """Reserved, local-only and unassigned codes in a server close frame fail with 1002."""
    client, server = pair()
    assert client.receive_data(frame(CLOSE, close_payload(code, b"x"))) == [Error(1002)]
    assert f"close code {code} may not be sent" in str(client.failure)
    assert server_gets(client, server) == [CloseConnection(code=1002, reason="")]


def test_close_frame_split_across_reads_is_checked_whole() -> None:
    """A close frame that arrives a byte at a time is validated once it is complete."""
    client, _ = pair()
    wire = frame(CLOSE, close_payload(1014, b"gateway"))
    got: list[WSMessage] = []
    for i in range(len(wire)):
        got += client.receive_data(wire[i : i + 1])
    assert got == [close_msg(1014, "gateway")]


def test_empty_server_close_is_echoed_empty() -> None:
    """A close frame without a code is delivered as 1005 and echoed with an empty payload."""
    client, server = pair()
    assert client.receive_data(frame(CLOSE)) == [close_msg(1005)]
    assert client.close_code == 1005
    assert server_gets(client, server) == [CloseConnection(code=1005, reason="")]


def test_empty_server_close_is_delivered_as_1005() -> None:
    """A close frame without a code is delivered as CLOSE 1005 with an empty reason."""
    client, _ = pair()
    [msg] = client.receive_data(frame(CLOSE))
    assert msg == close_msg(1005)
    assert type(msg.data) is int
    assert (client.close_code, client.close_reason) == (1005, "")


def test_server_close_is_not_echoed_without_autoclose() -> None:
    """Without autoclose, CLOSE is delivered and the application answers with send_close()."""
    client, server = pair(autoclose=False)
    assert client.receive_data(server.send(CloseConnection(code=1001))) == [close_msg(1001)]
    assert client.data_to_send() == b""
    assert (client.state, client.can_send, client.closed) == (WSState.CLOSE_RECEIVED, False, False)
    with pytest.raises(WSClosedError):
        client.send_text("too late")
    assert client.send_close(3001, "ok") is True
    assert client.state is WSState.CLOSED
    assert server_gets(client, server) == [CloseConnection(code=3001, reason="ok")]
    assert client.close_code == 1001


def test_server_reply_to_our_close_completes_the_handshake() -> None:
    """Our close, then the server's: the close code is the server's and nothing is echoed."""
    client, server = pair()
    assert client.send_close(1000, "done")
    assert (client.state, client.can_send, client.input_done) == (WSState.CLOSING, False, False)
    assert server_gets(client, server) == [CloseConnection(code=1000, reason="done")]
    assert client.receive_data(server.send(CloseConnection(code=1001, reason="ack"))) == [
        close_msg(1001, "ack")
    ]
    assert (client.close_code, client.close_reason, client.state) == (1001, "ack", WSState.CLOSED)
    assert client.data_to_send() == b""


def test_bytes_after_close_frame_are_dropped() -> None:
    """Nothing after the server's close frame is parsed, in the same chunk or later."""
    client, _ = pair(autoping=False)
    data = frame(CLOSE, close_payload(1000)) + frame(TEXT, b"after") + frame(PING, b"x")
    assert client.receive_data(data) == [close_msg(1000)]
    assert client.receive_data(frame(TEXT, b"later")) == []


def test_close_during_fragmented_message_drops_the_fragments() -> None:
    """A close frame in the middle of a fragmented message: CLOSE only, the fragment is lost."""
    client, _ = pair()
    data = frame(TEXT, b"part", fin=False) + frame(CLOSE, close_payload(1001))
    assert client.receive_data(data) == [close_msg(1001)]


# ---------------------------------------------------------------------------------------------
# end of file


def test_eof_without_close_frame_is_1006() -> None:
    """EOF without a close frame: close code 1006, no message, nothing parsed afterwards."""
    client, server = pair()
    assert client.receive_data(frame(TEXT, b"par", fin=False)) == []
    assert client.receive_eof() == []
    assert (client.state, client.close_code, client.close_reason) == (WSState.CLOSED, 1006, "")
    assert (client.can_send, client.input_done) == (False, True)
    assert client.receive_data(server.send(TextMessage("after"))) == []
    assert client.receive_eof() == []
    assert client.close_code == 1006


def test_eof_after_close_frame_keeps_the_servers_code() -> None:
    """EOF after the server's close frame keeps the server's code."""
    client, server = pair()
    client.receive_data(server.send(CloseConnection(code=1001, reason="bye")))
    assert client.receive_eof() == []
    assert (client.close_code, client.close_reason) == (1001, "bye")


def test_eof_after_failure_keeps_the_failure_code() -> None:
    """EOF after a protocol violation keeps the violation's code."""
    client, _ = pair()
    failed(client)
    client.receive_eof()
    assert client.close_code == 1002


def test_eof_after_our_close_is_1006() -> None:
    """Our close frame sent, EOF before the server's: 1006."""
    client, _ = pair()
    client.send_close()
    client.receive_eof()
    assert client.close_code == 1006


# ---------------------------------------------------------------------------------------------
# protocol violations by the server


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        pytest.param(frame(0x3, b"x"), 1002, id="reserved-data-opcode"),
        pytest.param(frame(0xB), 1002, id="reserved-control-opcode"),
        pytest.param(frame(TEXT, b"x", rsv1=True), 1002, id="rsv1-without-extension"),
        pytest.param(frame(TEXT, b"x", rsv2=True), 1002, id="rsv2"),
        pytest.param(frame(BINARY, b"x", rsv3=True), 1002, id="rsv3"),
        pytest.param(frame(TEXT, b"masked", masked=True), 1002, id="masked-frame"),
        pytest.param(frame(TEXT, b"\xff"), 1007, id="invalid-utf8"),
        pytest.param(frame(TEXT, b"\xc3", fin=False) + frame(CONT, b"("), 1007, id="utf8-split"),
        pytest.param(frame(TEXT, b"\xe2\x98", fin=True), 1007, id="truncated-utf8"),
        pytest.param(frame(PING, b"x", fin=False), 1002, id="fragmented-ping"),
        pytest.param(frame(CLOSE, close_payload(1000), fin=False), 1002, id="fragmented-close"),
        pytest.param(bytes([0x89, 126, 0, 126]) + b"x" * 126, 1002, id="ping-over-125"),
        pytest.param(frame(CONT, b"x"), 1002, id="continuation-without-start"),
        pytest.param(frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002, id="text-in-text"),
        pytest.param(bytes([0x82, 126, 0, 5]) + b"12345", 1002, id="non-minimal-length"),
        pytest.param(bytes([0x82, 127]) + struct.pack("!Q", 1 << 63), 1002, id="length-msb"),
        pytest.param(
            bytes([0x82, 127]) + struct.pack("!Q", 300) + b"x" * 300, 1002, id="non-minimal-64"
        ),
        pytest.param(frame(CLOSE, b"\x03"), 1002, id="close-one-byte"),
        pytest.param(frame(CLOSE, close_payload(999)), 1002, id="close-999"),
        pytest.param(frame(CLOSE, close_payload(1004)), 1002, id="close-1004"),
        pytest.param(frame(CLOSE, close_payload(1005)), 1002, id="close-1005"),
        pytest.param(frame(CLOSE, close_payload(1006)), 1002, id="close-1006"),
        pytest.param(frame(CLOSE, close_payload(1015)), 1002, id="close-1015"),
        pytest.param(frame(CLOSE, close_payload(2999)), 1002, id="close-2999"),
        pytest.param(frame(CLOSE, close_payload(5000)), 1002, id="close-5000"),
        pytest.param(frame(CLOSE, close_payload(1000, b"\xff")), 1007, id="close-reason-utf8"),
    ],
)
def test_protocol_violation_fails_with_the_right_code(wire: bytes, code: int) -> None:
    """A violation: ERROR with the code, our close frame with it queued, later input dropped."""
    client, server = pair()
    msgs = client.receive_data(wire)
    assert msgs == [Error(code)]
    assert msgs[0].data is client.failure
    assert str(client.failure).startswith("the server violated the WebSocket protocol: ")
    assert (client.close_code, client.close_reason, client.state) == (code, "", WSState.CLOSED)
    assert server_gets(client, server) == [CloseConnection(code=code, reason="")]
    assert client.receive_data(frame(TEXT, b"after")) == []
    assert client.data_to_send() == b""


def test_messages_before_a_violation_are_delivered() -> None:
    """Messages complete before the violating frame are returned ahead of the ERROR."""
    client, _ = pair()
    wire = frame(TEXT, b"ok") + frame(0x3) + frame(TEXT, b"dropped")
    assert client.receive_data(wire) == [text("ok"), Error(1002)]


def test_violation_after_our_close_sends_no_second_close() -> None:
    """A violation after our close frame: ERROR and its code, but no second close frame."""
    client, server = pair()
    client.send_close(1000)
    assert server_gets(client, server) == [CloseConnection(code=1000, reason="")]
    assert client.receive_data(frame(TEXT, b"\xff")) == [Error(1007)]
    assert client.close_code == 1007
    assert client.data_to_send() == b""


# ---------------------------------------------------------------------------------------------
# sending


@pytest.mark.parametrize(
    ("opcode", "payload", "event"),
    [
        (WSMsgType.TEXT, "☃".encode(), TextMessage("☃")),
        (1, b"plain", TextMessage("plain")),
        (WSMsgType.BINARY, b"\xff\x00", BytesMessage(b"\xff\x00")),
        (WSMsgType.PING, b"p", Ping(payload=b"p")),
        (WSMsgType.PONG, b"q", Pong(payload=b"q")),
        (0xA, b"x" * 125, Pong(payload=b"x" * 125)),
    ],
)
def test_send_frame_sends_one_frame_of_each_data_and_control_opcode(
    opcode: int, payload: bytes, event: Event
) -> None:
    """send_frame() sends TEXT, BINARY, PING and PONG frames with the payload as given."""
    client, server = pair()
    client.send_frame(payload, opcode)
    assert server_gets(client, server) == [event]


@pytest.mark.parametrize("opcode", [0, 3, 7, 8, 0xB, 0xF, -1, 0x100, WSMsgType.CLOSE])
def test_send_frame_refuses_other_opcodes(opcode: int) -> None:
    """send_frame() refuses CONTINUATION, CLOSE, reserved and non-wire opcodes."""
    client, _ = pair()
    with pytest.raises(InvalidArgument, match="cannot send opcode"):
        client.send_frame(b"", opcode)
    assert client.data_to_send() == b""


def test_send_frame_refuses_text_that_is_not_utf8() -> None:
    """A TEXT frame whose payload is not UTF-8 is refused before anything is queued."""
    client, _ = pair()
    with pytest.raises(InvalidArgument, match="UTF-8") as info:
        client.send_frame(b"\xff", WSMsgType.TEXT)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_ping(b"x" * 126),
        lambda c: c.send_pong(b"x" * 126),
        lambda c: c.send_frame(b"x" * 126, WSMsgType.PING),
        lambda c: c.send_frame(b"x" * 126, WSMsgType.PONG),
    ],
)
def test_control_payload_over_125_bytes_is_refused(send: Any) -> None:
    """PING and PONG payloads over 125 bytes raise InvalidArgument."""
    client, _ = pair()
    with pytest.raises(InvalidArgument, match="125 bytes"):
        send(client)
    assert client.data_to_send() == b""


def test_ping_and_pong_with_empty_payload() -> None:
    """send_ping() and send_pong() default to an empty payload."""
    client, server = pair()
    client.send_ping()
    client.send_pong()
    assert server_gets(client, server) == [Ping(payload=b""), Pong(payload=b"")]


SENDS = [
    pytest.param(lambda c: c.send_text("x"), id="send_text"),
    pytest.param(lambda c: c.send_bytes(b"x"), id="send_bytes"),
    pytest.param(lambda c: c.send_frame(b"x", WSMsgType.TEXT), id="send_frame-text"),
    pytest.param(lambda c: c.send_frame(b"x", WSMsgType.BINARY), id="send_frame-binary"),
    pytest.param(lambda c: c.send_frame(b"x", WSMsgType.PING), id="send_frame-ping"),
    pytest.param(lambda c: c.send_ping(b"x"), id="send_ping"),
    pytest.param(lambda c: c.send_pong(b"x"), id="send_pong"),
]
STATES = [
    pytest.param(lambda c: c.send_close(), id="local-close"),
    pytest.param(closed_by_server, id="remote-close"),
    pytest.param(failed, id="failed"),
    pytest.param(lambda c: c.receive_eof(), id="eof"),
]


@pytest.mark.parametrize("close", STATES)
@pytest.mark.parametrize("send", SENDS)
def test_sends_after_close_raise_closed_error(send: Any, close: Any) -> None:
    """After our close, the server's close, a violation or EOF, every send raises WSClosedError."""
    client, _ = pair(autoclose=False)
    close(client)
    client.data_to_send()
    assert not client.can_send
    with pytest.raises(WSClosedError, match=r"is clos(ing|ed)"):
        send(client)
    assert client.data_to_send() == b""


# ---------------------------------------------------------------------------------------------
# our close frame


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1010, 1014, 3000, 3999, 4000, 4999])
def test_send_close_sends_a_valid_code(code: int) -> None:
    """Codes RFC 6455 allows an endpoint to send are sent as given, with the reason."""
    client, _ = pair()
    assert client.send_close(code, "why") is True
    assert client_frame(client.data_to_send()) == (CLOSE, close_payload(code, b"why"))


@pytest.mark.parametrize(
    "code", [999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 0, -1, True, False]
)
def test_send_close_refuses_codes_that_may_not_be_sent(code: int) -> None:
    """Reserved, local-only and out-of-range codes (and bools) raise InvalidArgument."""
    client, _ = pair()
    with pytest.raises(InvalidArgument):
        client.send_close(code)
    assert (client.state, client.data_to_send()) == (WSState.OPEN, b"")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1000.0, "must be an int, not float"),
        ("1000", "must be an int, not str"),
        (True, "must be an int, not bool"),
        (1005, "close code 1005 may not be sent"),
    ],
)
def test_check_close_code_says_what_is_wrong(code: Any, message: str) -> None:
    """check_close_code() names the type or the code it refuses."""
    with pytest.raises(InvalidArgument, match=message):
        check_close_code(code)


def test_close_reason_is_at_most_123_bytes_of_utf8() -> None:
    """A reason of 123 UTF-8 bytes is sent; 124 bytes (fewer characters) raise InvalidArgument."""
    client, server = pair()
    with pytest.raises(InvalidArgument, match="123 bytes"):
        client.send_close(1000, "é" * 62)
    assert client.state is WSState.OPEN
    reason = "é" * 61 + "a"
    assert client.send_close(1000, reason)
    assert server_gets(client, server) == [CloseConnection(code=1000, reason=reason)]


def test_send_close_without_reason_sends_only_the_code() -> None:
    """The default close frame carries 1000 and no reason."""
    client, _ = pair()
    assert client.send_close()
    assert client_frame(client.data_to_send()) == (CLOSE, close_payload(1000))


def test_send_close_returns_false_the_second_time() -> None:
    """send_close() queues one close frame; a second call returns False and queues nothing."""
    client, server = pair()
    assert client.send_close(1000) is True
    assert client.send_close(1001) is False
    assert server_gets(client, server) == [CloseConnection(code=1000, reason="")]


def test_send_close_still_validates_the_second_time() -> None:
    """An invalid code raises even when a close frame was already sent."""
    client, _ = pair()
    client.send_close()
    with pytest.raises(InvalidArgument):
        client.send_close(1006)


@pytest.mark.parametrize(
    ("setup", "returns"),
    [
        pytest.param(lambda c: c.receive_data(frame(CLOSE)), False, id="echoed"),
        pytest.param(failed, False, id="failed"),
        pytest.param(lambda c: c.receive_eof(), False, id="eof"),
    ],
)
def test_send_close_in_other_states_queues_nothing(setup: Any, returns: bool) -> None:
    """After autoclose or a violation our close was already queued; after EOF nobody listens."""
    client, _ = pair()
    setup(client)
    client.data_to_send()
    assert client.send_close() is returns
    assert client.state is WSState.CLOSED
    assert client.data_to_send() == b""
    assert client.send_close() is False


# ---------------------------------------------------------------------------------------------
# permessage-deflate


# RFC 7692 §7.2.3: "Hello" compressed, and the examples built on it.
HELLO: Final = bytes.fromhex("f248cdc9c90700")
HELLO_BFINAL: Final = bytes.fromhex("f348cdc9c90700")  # §7.2.3.4: one block, BFINAL set


def deflate_pair(max_msg_size: int = 100_000, **params: Any) -> tuple[ClientProtocol, Connection]:
    """Both sides with permessage-deflate on the same parameters: the client with our
    ClientDeflate (as _handshake builds it), the server with wsproto's PerMessageDeflate."""
    server_ext = PerMessageDeflate(**params)
    server_ext.finalize(server_ext.name)
    return (
        ClientProtocol(deflate=ClientDeflate(**params), max_msg_size=max_msg_size),
        Connection(ConnectionType.SERVER, extensions=[server_ext]),
    )


DEFLATE_PARAMS = [
    {},
    {"client_no_context_takeover": True, "server_no_context_takeover": True},
    {"client_max_window_bits": 9, "server_max_window_bits": 10},
]


@pytest.mark.parametrize("params", DEFLATE_PARAMS)
def test_permessage_deflate_round_trip(params: dict[str, Any]) -> None:
    """Compressed messages flow both ways, across several messages and fragments."""
    client, server = deflate_pair(**params)
    words = "compress me " * 200
    for _ in range(3):
        wire = server.send(TextMessage(words)) + server.send(BytesMessage(words.encode()))
        assert wire[0] & 0x40  # RSV1: the frame really is compressed
        assert len(wire) < len(words)
        assert client.receive_data(wire) == [text(words), binary(words.encode())]
        client.send_text(words)
        client.send_bytes(words.encode())
        out = client.data_to_send()
        assert out[0] & 0x40
        server.receive_data(out)
        assert list(server.events()) == [TextMessage(words), BytesMessage(words.encode())]
    fragments = server.send(TextMessage("a" * 500, message_finished=False)) + server.send(
        TextMessage("b" * 500)
    )
    assert client.receive_data(fragments) == [text("a" * 500 + "b" * 500)]


def test_max_msg_size_counts_decompressed_bytes() -> None:
    """A small compressed frame that inflates past max_msg_size fails with 1009."""
    client, server = deflate_pair()
    wire = server.send(BytesMessage(b"\x00" * 100_001))
    assert len(wire) < 1000
    assert client.receive_data(wire) == [Error(1009)]


def test_compression_bomb_is_not_inflated_past_the_limit() -> None:
    """A 20 KB frame that would inflate to 20 MB never costs much more than max_msg_size."""
    client, server = deflate_pair()
    wire = server.send(BytesMessage(b"\x00" * 20_000_000))
    tracemalloc.start()
    try:
        assert client.receive_data(wire) == [Error(1009)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        pytest.param(frame(PING, b"x", rsv1=True), 1002, id="rsv1-on-control-frame"),
        pytest.param(frame(PONG, rsv1=True), 1002, id="rsv1-on-pong"),
        pytest.param(frame(CLOSE, close_payload(1000), rsv1=True), 1002, id="rsv1-on-close"),
        pytest.param(
            frame(TEXT, HELLO[:3], rsv1=True, fin=False) + frame(CONT, HELLO[3:], rsv1=True),
            1002,
            id="rsv1-on-continuation",
        ),
        pytest.param(
            frame(BINARY, b"a", fin=False) + frame(CONT, b"b", rsv1=True),
            1002,
            id="rsv1-on-continuation-of-uncompressed",
        ),
        pytest.param(frame(TEXT, b"x", rsv2=True), 1002, id="rsv2"),
        pytest.param(frame(BINARY, b"\xff\xff\xff", rsv1=True), 1007, id="not-deflate-data"),
        pytest.param(
            frame(BINARY, HELLO_BFINAL + b"\xff", rsv1=True), 1007, id="junk-after-bfinal"
        ),
        pytest.param(frame(TEXT, b"\x00\x01\x00\xfe\xff\xff", rsv1=True), 1007, id="bad-utf8"),
    ],
)
def test_permessage_deflate_violations(wire: bytes, code: int) -> None:
    """RSV1 where RFC 7692 forbids it, undecodable compressed data and bad UTF-8 fail."""
    client, server = deflate_pair()
    assert client.receive_data(wire) == [Error(code)]
    assert server_gets(client, server) == [CloseConnection(code=code, reason="")]


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(["c107f248cdc9c90700"], id="7.2.3.1-one-block"),
        pytest.param(["4103f248cd", "8004c9c90700"], id="7.2.3.1-fragmented"),
        pytest.param(["c10b000500faff48656c6c6f00"], id="7.2.3.3-stored-block"),
        pytest.param(["c108f348cdc9c9070000"], id="7.2.3.4-bfinal"),
        pytest.param(["c10df24805000000ffffcac9c90700"], id="7.2.3.5-two-blocks"),
        pytest.param(["c107f348cdc9c90700"], id="bfinal-without-the-empty-block"),
        pytest.param(["4107f348cdc9c90700", "8000"], id="bfinal-ends-first-fragment"),
        pytest.param(["4103f348cd", "0004c9c90700", "8000"], id="bfinal-then-empty-fragment"),
    ],
)
def test_rfc7692_examples_are_decoded(wire: list[str]) -> None:
    """The compressed payloads of RFC 7692 §7.2.3 all decode to "Hello", twice in a row."""
    client, _ = deflate_pair()
    data = b"".join(bytes.fromhex(part) for part in wire)
    assert client.receive_data(data + data) == [text("Hello"), text("Hello")]


def test_rfc7692_shared_window_example_is_decoded() -> None:
    """RFC 7692 §7.2.3.2: the second "Hello" refers back into the first message."""
    client, _ = deflate_pair()
    wire = bytes.fromhex("c107f248cdc9c90700") + bytes.fromhex("c105f20011 0000".replace(" ", ""))
    assert client.receive_data(wire) == [text("Hello"), text("Hello")]


def test_empty_compressed_message_is_decoded() -> None:
    """RFC 7692 §7.2.3.6: a single 0x00 byte is an empty message; ours is the same."""
    client, server = deflate_pair()
    assert client.receive_data(frame(BINARY, b"\x00", rsv1=True)) == [binary(b"")]
    client.send_bytes(b"")
    out = client.data_to_send()
    assert out[0] == 0xC2
    server.receive_data(out)
    assert list(server.events()) == [BytesMessage(b"")]


@pytest.mark.parametrize("params", DEFLATE_PARAMS)
def test_ping_between_compressed_fragments_leaves_the_message_intact(
    params: dict[str, Any],
) -> None:
    """A ping (or pong) between two fragments of a compressed message does not change its
    compressed state (wsproto 1.3.2 resets it and passes the rest through undecompressed)."""
    client, server = deflate_pair(**params)
    for i in range(3):
        wire = (
            server.send(TextMessage(f"first half {i} " * 20, message_finished=False))
            + frame(PING, b"mid")
            + frame(PONG)
            + server.send(TextMessage(f"second half {i} " * 20, message_finished=False))
            + frame(PING, b"mid")
            + server.send(TextMessage("end"))
        )
        expected = f"first half {i} " * 20 + f"second half {i} " * 20 + "end"
        assert client.receive_data(wire) == [text(expected)]
        assert server_gets(client, server) == [Pong(payload=b"mid")] * 2


def test_uncompressed_message_between_compressed_ones() -> None:
    """A message without RSV1 is taken as it is; the compressed ones around it still decode."""
    client, server = deflate_pair()
    words = "compress me " * 50
    wire = (
        server.send(TextMessage(words))
        + frame(TEXT, b"plain", fin=False)
        + frame(CONT, b" text")
        + server.send(TextMessage(words))
    )
    assert client.receive_data(wire) == [text(words), text("plain text"), text(words)]


def test_inflated_message_of_exactly_max_msg_size_is_delivered() -> None:
    """max_msg_size counts inflated bytes: exactly the limit passes, one more fails."""
    client, server = deflate_pair(max_msg_size=1000)
    assert client.receive_data(server.send(BytesMessage(b"z" * 1000))) == [binary(b"z" * 1000)]
    assert client.receive_data(server.send(BytesMessage(b"z" * 1001))) == [Error(1009)]
    assert "a compressed message inflates past max_msg_size=1000" in str(client.failure)


def test_inflate_budget_spans_the_fragments_of_a_message() -> None:
    """Compressed fragments each under the limit, together over it, fail with 1009."""
    client, server = deflate_pair(max_msg_size=1000)
    wire = server.send(BytesMessage(b"z" * 600, message_finished=False)) + server.send(
        BytesMessage(b"z" * 401)
    )
    assert client.receive_data(wire) == [Error(1009)]


def test_compressed_frame_longer_than_the_limit_is_judged_by_its_inflated_size() -> None:
    """The announced length of a compressed frame is not the message size: incompressible
    data of exactly max_msg_size grows a little when deflated, and is still delivered."""
    client, server = deflate_pair(max_msg_size=1000)
    noise = random.Random(7).randbytes(1000)
    wire = server.send(BytesMessage(noise))
    assert len(wire) > 1000 + 4
    assert client.receive_data(wire) == [binary(noise)]


def test_unlimited_max_msg_size_inflates_everything() -> None:
    """max_msg_size=0: a compressed message of any size is inflated."""
    client, server = deflate_pair(max_msg_size=0)
    big = b"\x00" * (5 * 1024 * 1024)
    assert client.receive_data(server.send(BytesMessage(big))) == [binary(big)]


def deflate_bomb(mib: int) -> bytes:
    """A raw DEFLATE stream (tail removed, as on the wire) of ``mib`` MiB of zeros; built from
    one repeated sync-flushed block, so a 1 GiB bomb costs milliseconds to make."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\x00" * (1 << 20)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return (first + again * (mib - 1))[:-4]


def test_one_gib_bomb_fails_with_1009_at_near_the_limit_in_memory() -> None:
    """A 1 MB frame that inflates to 1 GiB, read 256 KiB at a time as the reader does, fails
    with 1009 while peak memory stays under twice max_msg_size plus a couple of MiB."""
    limit = 1 << 20
    client, _ = deflate_pair(max_msg_size=limit)
    wire = frame(BINARY, deflate_bomb(1024), rsv1=True)
    assert len(wire) < 1_100_000
    got: list[WSMessage] = []
    tracemalloc.start()
    try:
        for i in range(0, len(wire), 256 * 1024):
            got += client.receive_data(wire[i : i + 256 * 1024])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == [Error(1009)]
    assert peak < 2 * limit + 2 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_server_no_context_takeover_starts_each_message_afresh() -> None:
    """With server_no_context_takeover, a message that refers back into the previous one is
    invalid (1007): the decompressor really starts afresh."""
    client, _ = deflate_pair(server_no_context_takeover=True)
    # RFC 7692 §7.2.3.2: the second "Hello" is a back-reference into the first.
    wire = bytes.fromhex("c107f248cdc9c90700") + bytes.fromhex("c105f200110000")
    assert client.receive_data(wire) == [text("Hello"), Error(1007)]


@pytest.mark.parametrize("takeover", [True, False])
def test_client_context_takeover_across_messages(takeover: bool) -> None:
    """Our compressor keeps its window across messages unless client_no_context_takeover:
    then the same message compresses to the same bytes every time."""
    client, server = deflate_pair(
        client_no_context_takeover=not takeover, server_no_context_takeover=not takeover
    )
    words = "the same message " * 30
    sizes = []
    for _ in range(4):
        client.send_text(words)
        out = client.data_to_send()
        sizes.append(len(out))
        server.receive_data(out)
        assert list(server.events()) == [TextMessage(words)]
        assert client.receive_data(server.send(TextMessage(words))) == [text(words)]
    if takeover:
        assert max(sizes[1:]) < sizes[0] / 2
    else:
        assert sizes == [sizes[0]] * 4


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda c, d: c.send_text(d.decode(), compress=False), id="send_text"),
        pytest.param(lambda c, d: c.send_bytes(d, compress=False), id="send_bytes"),
        pytest.param(lambda c, d: c.send_frame(d, WSMsgType.BINARY, False), id="send_frame"),
    ],
)
@pytest.mark.parametrize("params", DEFLATE_PARAMS)
def test_message_sent_with_compress_false_goes_uncompressed(
    send: Any, params: dict[str, Any]
) -> None:
    """compress=False sends one message with RSV1 clear; the server decodes it, and the
    compressed messages before and after it too."""
    client, server = deflate_pair(**params)
    data = b"squeeze " * 40
    for compress in (True, False, True, False, False, True):
        if compress:
            client.send_bytes(data)
        else:
            send(client, data)
        out = client.data_to_send()
        assert bool(out[0] & 0x40) is compress
        assert (len(out) < len(data)) is compress
        server.receive_data(out)
        [event] = server.events()
        assert isinstance(event, Message)
        assert event.data in (data, data.decode())


def test_compress_false_without_deflate_is_accepted() -> None:
    """compress=False on a connection without permessage-deflate changes nothing."""
    client, server = pair()
    client.send_text("plain", compress=False)
    client.send_bytes(b"plain", compress=False)
    assert server_gets(client, server) == [TextMessage("plain"), BytesMessage(b"plain")]


def test_wsprotos_own_deflate_is_refused() -> None:
    """The core needs ClientDeflate (bounded inflate), not wsproto's PerMessageDeflate."""
    ext = PerMessageDeflate()
    ext.finalize(ext.name)
    with pytest.raises(TypeError, match="a trio_ws ClientDeflate, not PerMessageDeflate"):
        ClientProtocol(deflate=ext)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# state


def test_fresh_core_is_open() -> None:
    """A new core is open, with no close code, failure or pending output."""
    client, _ = pair()
    assert (client.state, client.can_send, client.close_code, client.failure) == (
        WSState.OPEN,
        True,
        None,
        None,
    )
    assert (client.input_done, client.closed, client.close_reason, client.outbox.size) == (
        False,
        False,
        None,
        0,
    )


def test_deferred_failure_close_waits_for_commit() -> None:
    """defer_failure_close: sends stay open after a violation until commit_failure()."""
    client, server = pair(defer_failure_close=True)
    assert client.receive_data(frame(TEXT, b"hi") + b"\x83\x00") == [text("hi"), Error(1002)]
    assert client.data_to_send() == b""
    assert (client.state, client.can_send, client.closed) == (WSState.FAILING, True, True)
    client.send_text("hi")
    assert client.commit_failure() is True
    assert client.commit_failure() is False
    assert (client.state, client.can_send) == (WSState.CLOSED, False)
    assert server_gets(client, server) == [
        TextMessage(data="hi"),
        CloseConnection(code=1002, reason=""),
    ]


def test_deferred_failure_after_eof_sends_nothing() -> None:
    """A deferred violation committed after EOF queues no close frame."""
    client, _ = pair(defer_failure_close=True)
    client.receive_data(b"\x83\x00")
    client.receive_eof()
    assert client.commit_failure() is False
    assert client.data_to_send() == b""
    assert client.close_code == 1002


def test_fail_records_the_first_failure_and_closes() -> None:
    """fail() while OPEN: CLOSED, the failure and code 1006 recorded; a second one is ignored."""
    client, _ = pair()
    first, second = OSError("reset"), OSError("later")
    assert client.fail(first) is True
    assert (client.state, client.failure, client.close_code, client.close_reason) == (
        WSState.CLOSED,
        first,
        1006,
        "",
    )
    assert client.fail(second) is False
    assert client.failure is first
    assert client.receive_data(frame(TEXT, b"late")) == []


def test_fail_while_closing_records_a_timeout() -> None:
    """Our close frame is out and the server never answers: fail() records it with 1006."""
    client, _ = pair()
    client.send_close()
    timeout = TimeoutError("no close frame")
    assert client.fail(timeout) is True
    assert (client.state, client.failure, client.close_code) == (WSState.CLOSED, timeout, 1006)


def test_fail_after_the_servers_close_frame_is_not_a_failure() -> None:
    """Once the server's close frame arrived the session is over: a broken transport is noise."""
    client, _ = pair(autoclose=False)
    closed_by_server(client)
    assert client.fail(OSError("reset")) is False
    assert (client.state, client.failure, client.close_code) == (WSState.CLOSED, None, 1000)


def test_fail_during_a_deferred_violation_keeps_the_violation() -> None:
    """A broken transport after a deferred violation: the violation stays the failure, and no
    close frame can be committed any more."""
    client, _ = pair(defer_failure_close=True)
    [error] = client.receive_data(b"\x83\x00")
    assert client.fail(OSError("reset")) is False
    assert (client.state, client.failure, client.close_code) == (WSState.CLOSED, error.data, 1002)
    assert client.commit_failure() is False
    assert client.data_to_send() == b""


def test_send_close_while_failing_sends_the_violations_close_frame() -> None:
    """close() during a deferred violation sends the violation's own code, not the caller's."""
    client, server = pair(defer_failure_close=True)
    client.receive_data(b"\x83\x00")
    assert client.send_close(1000, "bye") is True
    assert client.state is WSState.CLOSED
    assert server_gets(client, server) == [CloseConnection(code=1002, reason="")]


def test_violation_after_our_close_frame_closes_at_once() -> None:
    """A violation while CLOSING needs no close frame of its own: ours is out already."""
    client, _ = pair(defer_failure_close=True)
    client.send_close(1000)
    client.data_to_send()
    assert client.receive_data(b"\x83\x00") == [Error(1002)]
    assert (client.state, client.close_code) == (WSState.CLOSED, 1002)
    assert client.commit_failure() is False
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    ("setup", "words", "code", "reason"),
    [
        pytest.param(lambda c: c.send_close(), "closing", None, None, id="closing"),
        pytest.param(
            lambda c: c.receive_data(frame(CLOSE, close_payload(4001, b"bye"))),
            "closed (code 4001, reason 'bye')",
            4001,
            "bye",
            id="server-closed",
        ),
        pytest.param(lambda c: c.receive_eof(), "closed (code 1006)", 1006, "", id="eof"),
    ],
)
def test_closed_error_names_the_code_and_reason(
    setup: Any, words: str, code: int | None, reason: str | None
) -> None:
    """A send that may not happen raises WSClosedError naming the close code and reason."""
    client, _ = pair()
    setup(client)
    with pytest.raises(WSClosedError) as info:
        client.send_bytes(b"x")
    assert words in str(info.value)
    assert (info.value.code, info.value.reason) == (code, reason)


def test_closed_error_chains_the_failure() -> None:
    """After a failure, WSClosedError has it as its cause."""
    client, _ = pair()
    cause = OSError("reset")
    client.fail(cause)
    with pytest.raises(WSClosedError) as info:
        client.send_text("x")
    assert info.value.__cause__ is cause


def test_text_that_cannot_be_encoded_is_an_invalid_argument() -> None:
    """A lone surrogate in send_text() or a close reason raises InvalidArgument, queues nothing."""
    client, _ = pair()
    with pytest.raises(InvalidArgument, match="UTF-8"):
        client.send_text("\udcff")
    with pytest.raises(InvalidArgument, match="UTF-8"):
        client.send_close(1000, "\udcff")
    assert (client.state, client.outbox.size) == (WSState.OPEN, 0)


@pytest.mark.parametrize("cut", [1, 3, 5, 9])
def test_a_long_header_split_across_reads(cut: int) -> None:
    """A 64-bit length header (10 bytes) cut anywhere waits for the rest."""
    client, _ = pair()
    wire = frame(BINARY, b"z" * 70_000)
    assert client.receive_data(wire[:cut]) == []
    assert client.receive_data(wire[cut:]) == [binary(b"z" * 70_000)]


def test_stream_message_streams_the_next_message_only() -> None:
    """stream_message(): the next fragmented message comes in pieces; a message whole in one
    read is the next one too (delivered whole) and uses the request up; unstream_message()
    takes a request back."""
    client, server = pair()
    assert client.stream_message() is None
    assert client.receive_data(server.send(TextMessage("whole"))) == [
        WSMessage(WSMsgType.TEXT, "whole", None)
    ]
    assert client.receive_data(
        server.send(TextMessage("a", message_finished=False))
        + server.send(TextMessage("b", message_finished=True))
    ) == [WSMessage(WSMsgType.TEXT, "ab", None)]
    client.stream_message()
    pieces = client.receive_data(
        server.send(TextMessage("a", message_finished=False))
        + server.send(TextMessage("b", message_finished=True))
    )
    assert pieces == [
        WSMessage(WSMsgType.TEXT, "a", CHUNK_MORE),
        WSMessage(WSMsgType.TEXT, "b", CHUNK_LAST),
    ]
    client.stream_message()
    client.unstream_message()
    assert client.receive_data(
        server.send(BytesMessage(b"1", message_finished=False))
        + server.send(BytesMessage(b"2", message_finished=True))
    ) == [WSMessage(WSMsgType.BINARY, b"12", None)]
