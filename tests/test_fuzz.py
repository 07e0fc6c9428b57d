"""Property tests: whatever bytes a server sends, the core ends in messages or one clean failure.

Any byte string fed to the client core, with and without permessage-deflate, cut into
arbitrary chunks, gives messages (TEXT, BINARY, PING, PONG, CLOSE) or exactly one ERROR with
the close code of a protocol violation, never an unexpected exception, and never holds more
than the limits allow. The streams mix well-formed frames (from a wsproto server, compressed
or not), hand-built frames with every kind of mistake, and raw noise.

The example count comes from the Hypothesis profile: the default one keeps this file to a few
seconds; ``HYPOTHESIS_PROFILE=fuzz`` (``nox -s fuzz``) runs many thousands per test.
"""

from __future__ import annotations

import struct
import zlib
from itertools import pairwise

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from trio_ws import WSMessage, WSMsgType, WSProtocolError
from trio_ws._deflate import ClientDeflate
from trio_ws._framing import is_valid_close_code
from trio_ws._protocol import ClientProtocol

# The example count scales with the loaded profile: 5 x 100 by default (a few seconds for the
# file); 5 x 10,000 with the "fuzz" profile of tests/conftest.py.
FUZZ = settings(
    max_examples=5 * settings().max_examples,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MAX_MSG_SIZE = 2000
MAX_FRAGMENTS = 6
VIOLATION_CODES = {1002, 1007, 1009}
# The most the parser may hold between two reads besides the message being reassembled: an
# incomplete header (at most 13 bytes) or a control frame's payload (at most 125 bytes; data
# payloads are streamed into the message as they arrive).
MAX_PARSER_BUFFER = 125


# ---------------------------------------------------------------------------------------------
# strategies


def _frame(opcode: int, payload: bytes, fin: bool, rsv: int, *, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    first = bytes([fin << 7 | rsv << 4 | opcode])
    if n < 126:
        return first + bytes([n]) + payload
    if n < 1 << 16:
        return first + bytes([126]) + struct.pack("!H", n) + payload
    return first + bytes([127]) + struct.pack("!Q", n) + payload


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


payloads = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    st.binary(max_size=50).map(lambda b: b * 50),  # compressible, bigger than MAX_MSG_SIZE
    st.builds(
        lambda code, reason: struct.pack("!H", code) + reason,
        st.integers(0, 0xFFFF) | st.sampled_from([1000, 1005, 1014, 3000, 4999]),
        st.binary(max_size=20) | st.text(max_size=20).map(str.encode),
    ),
)


@st.composite
def hand_built_frame(draw: st.DrawFn) -> bytes:
    """A frame as a careless or hostile server might build it."""
    opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10]) | st.integers(0, 15))
    payload = draw(payloads)
    if draw(st.booleans()):
        payload = _deflate(payload)
    rsv = draw(st.sampled_from([0, 0, 0, 4]) | st.integers(0, 7))
    fin = draw(st.integers(0, 3)) > 0
    length = None
    if draw(st.integers(0, 9)) == 0:  # a header that lies about the length
        length = draw(st.integers(0, 1 << 20) | st.just(1 << 63) | st.just((1 << 64) - 1))
    return _frame(opcode, payload, fin, rsv, length=length)


@st.composite
def server_frames(draw: st.DrawFn, *, deflate: bool) -> bytes:
    """Well-formed traffic from a wsproto server (compressed when ``deflate``)."""
    extensions: list[Extension] = []
    if deflate:
        ext = PerMessageDeflate()
        ext.finalize(ext.name)
        extensions.append(ext)
    server = Connection(ConnectionType.SERVER, extensions=extensions)
    out = b""
    open_kind: str | None = None  # the kind of an unfinished message
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["text", "bytes", "ping", "close"]))
        finished = draw(st.booleans())
        if kind in ("text", "bytes"):
            kind = open_kind or kind
            open_kind = None if finished else kind
        if kind == "text":
            out += server.send(TextMessage(draw(st.text(max_size=400)), message_finished=finished))
        elif kind == "bytes":
            data = draw(st.binary(max_size=400) | st.binary(max_size=20).map(lambda b: b * 200))
            out += server.send(BytesMessage(data, message_finished=finished))
        elif kind == "ping":
            out += server.send(Ping(draw(st.binary(max_size=125))))
        else:
            out += server.send(CloseConnection(code=draw(st.sampled_from([1000, 1001, 4000]))))
            break
    return out


@st.composite
def fragmented_message(draw: st.DrawFn) -> bytes:
    """One message in 1 to 10 fragments (max_fragments is 6), compressed or not, maybe with
    control frames between the fragments."""
    opcode = draw(st.sampled_from([1, 2]))
    data = draw(
        st.text(max_size=300).map(str.encode) | st.binary(max_size=8).map(lambda b: b * 400)
    )
    compressed = draw(st.booleans())
    if compressed:
        data = _deflate(data)
    n = draw(st.integers(1, 10))
    parts = [data[i * len(data) // n : (i + 1) * len(data) // n] for i in range(n)]
    out = b""
    for i, part in enumerate(parts):
        out += _frame(
            0 if i else opcode, part, i == len(parts) - 1, 4 if compressed and not i else 0
        )
        if draw(st.integers(0, 4)) == 0:
            out += _frame(draw(st.sampled_from([9, 10])), draw(st.binary(max_size=10)), True, 0)
    return out


def streams(*, deflate: bool) -> st.SearchStrategy[bytes]:
    piece = st.one_of(
        server_frames(deflate=deflate),
        fragmented_message(),
        server_frames(deflate=deflate),
        hand_built_frame(),
        st.binary(min_size=1, max_size=40),
    )
    return st.lists(piece, max_size=8).map(b"".join)


# ---------------------------------------------------------------------------------------------
# the property


def make_client(deflate: bool) -> ClientProtocol:
    return ClientProtocol(
        deflate=ClientDeflate() if deflate else None,
        max_msg_size=MAX_MSG_SIZE,
        max_fragments=MAX_FRAGMENTS,
        autoping=True,
    )


def held(client: ClientProtocol) -> tuple[int, int]:
    """What the core holds between two reads: its reassembly buffer and the parser's input
    buffers (private attributes: these are the numbers the memory bound is about)."""
    asm = client._assembler
    text = asm._text.getvalue().encode() if asm._text else b""
    partial = len(asm._bytes or b"") + sum(map(len, asm._parts or ())) + len(text)
    assert len(client._head) <= 13
    return partial, max(len(client._head), len(client._control_payload))


def summary(msg: WSMessage) -> tuple[object, ...]:
    if msg.type is WSMsgType.ERROR:
        assert isinstance(msg.data, WSProtocolError)
        return (msg.type, msg.data.code)
    return (msg.type, msg.data, msg.extra)


def feed(client: ClientProtocol, wire: bytes, bounds: list[int]) -> list[WSMessage]:
    """Feed ``wire`` cut at ``bounds``, checking the invariants after every read."""
    got: list[WSMessage] = []
    for start, end in pairwise(bounds):
        chunk = wire[start:end]
        msgs = client.receive_data(chunk)
        got += msgs
        # Pongs and at most one close frame: never more than a few times what came in.
        assert client.outbox.size <= 3 * len(chunk) + 131
        client.data_to_send()
        if not client.input_done:
            partial, buffered = held(client)
            assert partial <= MAX_MSG_SIZE
            assert buffered <= MAX_PARSER_BUFFER
    return got


def check(client: ClientProtocol, got: list[WSMessage]) -> None:
    """Messages, then at most one terminal CLOSE or ERROR, with a consistent close code."""
    for i, msg in enumerate(got):
        terminal = msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR)
        assert not terminal or i == len(got) - 1, "nothing may follow CLOSE or ERROR"
        if msg.type is WSMsgType.TEXT:
            assert isinstance(msg.data, str)
            assert len(msg.data.encode()) <= MAX_MSG_SIZE
        elif msg.type is WSMsgType.BINARY:
            assert isinstance(msg.data, bytes)
            assert len(msg.data) <= MAX_MSG_SIZE
        elif msg.type is WSMsgType.CLOSE:
            assert is_valid_close_code(msg.data) or msg.data == 1005
            assert isinstance(msg.extra, str)
            assert (client.close_code, client.close_reason) == (msg.data, msg.extra)
        elif msg.type is WSMsgType.ERROR:
            assert msg.data is client.failure
            assert client.failure.code in VIOLATION_CODES
            assert client.close_code == client.failure.code
            assert not client.can_send
        else:
            raise AssertionError(f"{msg.type} delivered despite autoping")
    if client.failure is not None:
        assert got
        assert got[-1].type is WSMsgType.ERROR
    # Shown by --hypothesis-show-statistics: how the streams ended.
    last = got[-1] if got else None
    if last is not None and last.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
        event(f"{last.type.name} {client.close_code}: {str(client.failure)[44:90]}")
    else:
        event(f"open after {len(got)} messages")


@FUZZ
@given(deflate=st.booleans(), data=st.data())
def test_any_stream_cut_anywhere_ends_in_messages_or_one_error(
    deflate: bool, data: st.DataObject
) -> None:
    """Any bytes, cut anywhere: messages or one ERROR, bounded memory, and the same outcome
    as when the same bytes arrive in one piece."""
    wire = data.draw(streams(deflate=deflate), label="wire")
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12), label="cuts")
    client = make_client(deflate)
    got = feed(client, wire, [0, *sorted(cuts), len(wire)])
    check(client, got)
    whole = make_client(deflate)
    in_one_piece = [summary(m) for m in feed(whole, wire, [0, len(wire)])]
    in_pieces = [summary(m) for m in got]
    if in_one_piece[-1:] == [(WSMsgType.ERROR, 1009)] and in_pieces[-1:] == [
        (WSMsgType.ERROR, 1007)
    ]:
        # A compressed TEXT message that is both too big and not UTF-8: in pieces, the bad
        # UTF-8 may be inflated (and seen) before the rest inflates past max_msg_size.
        in_pieces[-1] = in_one_piece[-1]
    assert in_one_piece == in_pieces


@FUZZ
@given(deflate=st.booleans(), wire=st.binary(max_size=2000))
def test_random_bytes_never_raise(deflate: bool, wire: bytes) -> None:
    """Pure noise, one byte at a time: never an exception, at most one ERROR."""
    client = make_client(deflate)
    got = feed(client, wire, list(range(len(wire) + 1)))
    check(client, got)


@FUZZ
@given(
    max_msg_size=st.integers(1, 5000),
    size=st.integers(0, 6000),
    fragments=st.integers(1, 8),
    compressible=st.booleans(),
)
def test_compressed_messages_respect_max_msg_size_exactly(
    max_msg_size: int, size: int, fragments: int, compressible: bool
) -> None:
    """A compressed message (in fragments) is delivered iff it fits max_msg_size once inflated."""
    ext = PerMessageDeflate()
    ext.finalize(ext.name)
    server = Connection(ConnectionType.SERVER, extensions=[ext])
    payload = (b"abc" * size)[:size] if compressible else bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    step = max(1, -(-size // fragments))
    pieces = [payload[i : i + step] for i in range(0, size, step)] or [b""]
    wire = b"".join(
        server.send(BytesMessage(piece, message_finished=i == len(pieces) - 1))
        for i, piece in enumerate(pieces)
    )
    client = ClientProtocol(deflate=ClientDeflate(), max_msg_size=max_msg_size)
    got = client.receive_data(wire)
    if size <= max_msg_size:
        assert got == [WSMessage(WSMsgType.BINARY, payload, None)]
    else:
        assert [summary(m) for m in got] == [(WSMsgType.ERROR, 1009)]
