"""ClientDeflate on its own, both ways, against zlib streams made here.

The behaviour through the protocol core (limits, bombs, close codes, RFC 7692 examples, a
wsproto server on the other end) is tested in ``test_protocol.py``.
"""

from __future__ import annotations

import zlib

import pytest

from trio_ws import _deflate
from trio_ws._deflate import ClientDeflate, InflaterClass, PyInflater
from trio_ws._framing import ProtocolViolation

try:
    from trio_ws._inflate import Inflater as CInflater
except ImportError:  # pragma: no cover - the extension was not built
    CInflater = None  # type: ignore[assignment,misc]

INFLATERS = [pytest.param(PyInflater, id="py-inflater")]
if CInflater is not None:  # pragma: no branch
    INFLATERS.append(pytest.param(CInflater, id="c-inflater"))


@pytest.fixture(autouse=True, params=INFLATERS)
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> InflaterClass:
    """Every test here runs with each inflater (the C one where it was built)."""
    cls: InflaterClass = request.param
    monkeypatch.setattr(_deflate, "inflater_class", cls)
    return cls


def deflate_message(data: bytes, compressor: zlib._Compress | None = None) -> bytes:
    """``data`` as a permessage-deflate payload (RFC 7692 §7.2.1), as a server sends it."""
    compressor = compressor or zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def inflate_messages(payloads: list[bytes], wbits: int = 15) -> list[bytes]:
    """Decode our compressed payloads the way a server with context takeover does."""
    decompressor = zlib.decompressobj(wbits=-wbits)
    return [decompressor.decompress(p + b"\x00\x00\xff\xff") for p in payloads]


def test_client_deflate_describes_its_parameters() -> None:
    """offer() and repr() show the negotiated parameters."""
    ext = ClientDeflate(
        client_no_context_takeover=True,
        client_max_window_bits=10,
        server_no_context_takeover=True,
        server_max_window_bits=9,
    )
    assert ext.name == "permessage-deflate"
    params = (
        "client_max_window_bits=10; server_max_window_bits=9; "
        "client_no_context_takeover; server_no_context_takeover"
    )
    assert ext.offer() == params
    assert repr(ext) == f"<ClientDeflate {params}>"
    assert ClientDeflate().offer() == "client_max_window_bits=15; server_max_window_bits=15"


@pytest.mark.parametrize("bits", [{"client_max_window_bits": 8}, {"server_max_window_bits": 16}])
def test_client_deflate_refuses_window_bits_out_of_range(bits: dict[str, int]) -> None:
    """Window bits outside 9..15 raise ValueError (zlib cannot do 8)."""
    with pytest.raises(ValueError, match="window bits must be from 9 to 15"):
        ClientDeflate(**bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("takeover", [True, False])
def test_compressed_messages_decode_with_the_servers_window(takeover: bool) -> None:
    """With context takeover, later messages refer back to earlier ones (and get smaller);
    without it, each message stands alone."""
    ext = ClientDeflate(client_no_context_takeover=not takeover, client_max_window_bits=10)
    payloads = [ext.compress(b"the same words again " * 20) for _ in range(3)]
    if takeover:
        assert len(payloads[1]) < len(payloads[0])
        assert inflate_messages(payloads, wbits=10) == [b"the same words again " * 20] * 3
    else:
        assert payloads[0] == payloads[1] == payloads[2]
        for p in payloads:
            assert inflate_messages([p], wbits=10) == [b"the same words again " * 20]


def test_inflate_takes_a_message_in_any_pieces() -> None:
    """Pieces of any size make the same message; end_message() completes it."""
    payload = deflate_message(b"hello permessage-deflate " * 40)
    for cut in (1, 3, 7, len(payload) - 1):
        ext = ClientDeflate()
        out = (
            ext.inflater.inflate(payload[:cut])
            + ext.inflater.inflate(payload[cut:])
            + ext.inflater.end_message()
        )
        assert out == b"hello permessage-deflate " * 40


def test_inflate_is_bounded_by_max_msg_size() -> None:
    """Exactly max_msg_size inflates; one byte more is a 1009 violation, and zlib is never
    asked for more than the budget plus one byte."""
    payload = deflate_message(b"\0" * 1000)
    exact = ClientDeflate(max_msg_size=1000)
    assert exact.inflater.inflate(payload) + exact.inflater.end_message() == b"\0" * 1000
    over = ClientDeflate(max_msg_size=999)
    with pytest.raises(ProtocolViolation, match="inflates past max_msg_size=999") as info:
        over.inflater.inflate(payload + b"\x00\x00\xff\xff")
    assert info.value.code == 1009


def test_the_budget_restarts_with_each_message() -> None:
    """end_message() and reset_message() start the count of inflated bytes afresh."""
    ext = ClientDeflate(max_msg_size=600, server_no_context_takeover=True)
    for _ in range(3):
        assert (
            ext.inflater.inflate(deflate_message(b"a" * 600)) + ext.inflater.end_message()
            == b"a" * 600
        )
    ext.inflater.inflate(deflate_message(b"b" * 500)[:5])
    ext.inflater.reset_message()
    ext = ClientDeflate(max_msg_size=600)
    assert (
        ext.inflater.inflate(deflate_message(b"c" * 600)) + ext.inflater.end_message() == b"c" * 600
    )


def test_invalid_compressed_data_is_a_1007_violation() -> None:
    """Data zlib refuses is invalid frame payload data (1007)."""
    with pytest.raises(ProtocolViolation, match="invalid compressed data") as info:
        ClientDeflate().inflater.inflate(b"\xff\xff\xff\xff")
    assert info.value.code == 1007


def test_a_stream_ended_with_bfinal_needs_no_tail() -> None:
    """RFC 7692 §7.2.3.4: a message may end its DEFLATE stream (BFINAL); the next message
    starts a new stream."""
    ext = ClientDeflate()
    for word in (b"first", b"second"):
        compressor = zlib.compressobj(wbits=-15)
        whole = compressor.compress(word) + compressor.flush(zlib.Z_FINISH)
        assert ext.inflater.inflate(whole) + ext.inflater.end_message() == word


def sync_flushed(data: bytes) -> bytes:
    """A message's payload as RFC 7692 §7.2.1 makes it: sync flush, tail removed."""
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def finished(data: bytes) -> bytes:
    """A whole DEFLATE stream (its last block has BFINAL set)."""
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(sync_flushed(b"one call"), id="sync-flushed"),
        pytest.param(finished(b"one call"), id="bfinal"),
        pytest.param(finished(b"one ") + sync_flushed(b"call"), id="a-stream-then-another"),
        pytest.param(finished(b"one ") + finished(b"call"), id="two-whole-streams"),
    ],
)
def test_inflate_message_is_inflate_then_end_message(payload: bytes) -> None:
    """A whole message in one call gives what inflate() plus end_message() give, and leaves
    the next message as they would."""
    one, two = ClientDeflate(), ClientDeflate()
    for _ in range(2):
        assert (
            one.inflater.inflate_message(payload)
            == two.inflater.inflate(payload) + two.inflater.end_message()
        )
        assert one.inflater.inflate_message(sync_flushed(b"next")) == b"next"
        assert two.inflater.inflate(sync_flushed(b"next")) + two.inflater.end_message() == b"next"


@pytest.mark.parametrize("takeover", [True, False])
def test_inflate_message_after_the_first_message(takeover: bool) -> None:
    """Later whole messages (the flat path): with and without context takeover, a payload
    that ends the stream and starts another, and the limits."""
    compressor = zlib.compressobj(wbits=-15)
    ext = ClientDeflate(max_msg_size=100, server_no_context_takeover=not takeover)
    for word in (b"first", b"second", b"third"):
        payload = deflate_message(word, compressor if takeover else None)
        assert ext.inflater.inflate_message(payload) == word
    # The payload ends its stream (BFINAL), then a new stream follows in the same message.
    assert ext.inflater.inflate_message(finished(b"one ") + sync_flushed(b"call")) == b"one call"
    assert ext.inflater.inflate_message(sync_flushed(b"next")) == b"next"
    with pytest.raises(ProtocolViolation, match="past max_msg_size=100") as info:
        ext.inflater.inflate_message(sync_flushed(b"x" * 101))
    assert info.value.code == 1009
    ext = ClientDeflate()
    assert ext.inflater.inflate_message(sync_flushed(b"first")) == b"first"
    with pytest.raises(ProtocolViolation, match="invalid compressed data") as info:
        ext.inflater.inflate_message(b"\xff\xff\xff\xff")
    assert info.value.code == 1007


def test_without_context_takeover_no_message_sees_the_one_before() -> None:
    """A fresh stream for each message, even after a message in pieces ended its stream and
    an empty piece followed (the zlib-module inflater used to keep that stream for the next
    whole messages, so an unfinished stored block in one was completed by the next)."""
    ext = ClientDeflate(server_no_context_takeover=True, max_msg_size=50)
    assert (
        ext.inflater.inflate(b"\x03\x00") + ext.inflater.inflate(b"") + ext.inflater.end_message()
        == b""
    )
    assert ext.inflater.inflate_message(b"") == b""  # an unfinished stored block: nothing yet
    assert ext.inflater.inflate_message(b"\x00") == b""  # an empty stored block, in a new stream
