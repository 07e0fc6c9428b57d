"""The C loop of the parser's common case gives what the Python parser gives.

``scan_messages`` (``trio_ws/_speedups.c``) reads whole, simple data frames straight into
messages and leaves everything else to the Python parser. The differential test feeds
generated frame streams, cut in generated places, to two cores: one with the C loop, one
with it switched off; both must deliver the same messages, in the same state, and fail the
same way on the same byte.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ws import WSMessage, WSMsgType, _deflate, _framing
from trio_ws import _protocol as protocol_module
from trio_ws._deflate import ClientDeflate, PyInflater
from trio_ws._protocol import ClientProtocol

pytestmark = pytest.mark.skipif(
    _framing.scan_messages is None, reason="the C speed-up was not built"
)


def header(first: int, n: int, *, masked: bool = False, wide: int = 0) -> bytes:
    """A frame header; ``wide`` forces a 2- or 8-byte length (possibly non-minimal)."""
    mask_bit = 0x80 if masked else 0
    if wide == 8 or (not wide and n >= 1 << 16):
        return bytes([first, mask_bit | 127]) + struct.pack("!Q", n)
    if wide == 2 or n >= 126:
        return bytes([first, mask_bit | 126]) + struct.pack("!H", n)
    return bytes([first, mask_bit | n])


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Server frames: mostly whole text/binary messages (some compressed), with fragments,
    control frames, and now and then a frame the rules reject."""
    deflate = draw(st.booleans())
    compressor = zlib.compressobj(wbits=-15)
    out = b""
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(
            st.sampled_from(
                ["text"] * 4 + ["binary"] * 3 + ["fragments", "ping", "bad-utf8", "rule", "wide"]
            )
        )
        size = draw(st.sampled_from([0, 1, 125, 126, 300, 65535, 65536, 70000]))
        payload = draw(st.binary(min_size=min(size, 8), max_size=min(size, 8))) * (
            size // 8 if size >= 8 else 1
        )
        if kind in ("text", "fragments"):
            payload = ("é" * (size // 2)).encode()
        if kind == "bad-utf8":
            payload = b"ok\xff"
        compress = deflate and kind in ("text", "binary", "bad-utf8") and draw(st.booleans())
        if compress:
            payload = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]
        rsv1 = 0x40 if compress else 0
        if kind == "text" or kind == "bad-utf8":
            data = payload
            out += header(0x81 | rsv1, len(data)) + data
        elif kind == "binary":
            out += header(0x82 | rsv1, len(payload)) + payload
        elif kind == "fragments":
            half = len(payload) // 2
            out += header(0x01, half) + payload[:half] + header(0x80, len(payload) - half)
            out += payload[half:]
        elif kind == "ping":
            out += header(0x89, 3) + b"hey"
        elif kind == "wide":
            out += header(0x82, 5, wide=draw(st.sampled_from([2, 8]))) + b"12345"
        else:  # a frame the rules reject
            out += draw(
                st.sampled_from(
                    [
                        header(0x82, 3, masked=True) + b"\x00" * 7,
                        header(0xA2, 3) + b"abc",  # RSV2
                        header(0x83, 3) + b"abc",  # reserved opcode
                        header(0x82 | 0x40, 2) + b"no",  # RSV1 without deflate (or junk)
                    ]
                )
            )
    return out, deflate


def new_core(*, deflate: bool, max_msg_size: int) -> ClientProtocol:
    inflater = ClientDeflate(max_msg_size=max_msg_size) if deflate else None
    return ClientProtocol(deflate=inflater, max_msg_size=max_msg_size)


def run(
    wire: bytes, cuts: list[int], *, c_loop: bool, deflate: bool, size: int, c_inflate: bool
) -> Any:
    # The parser reads the module's name each parse: switched off by replacing it; the
    # inflater class likewise.
    saved = getattr(protocol_module, "scan_messages")  # noqa: B009
    saved_inflater = _deflate.inflater_class
    if not c_loop:
        setattr(protocol_module, "scan_messages", None)  # noqa: B010
    if not c_inflate:
        _deflate.inflater_class = PyInflater
    try:
        core = new_core(deflate=deflate, max_msg_size=size)
        got: list[WSMessage] = []
        for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            got += core.receive_data(wire[a:b])
        shown = [
            (m.type, type(m.data), str(m.data)) if m.type is WSMsgType.ERROR else m for m in got
        ]  # (exceptions compare by identity)
        return shown, core.state, core.close_code, core.frames_in, core.data_to_send()[:2]
    finally:
        setattr(protocol_module, "scan_messages", saved)  # noqa: B010
        _deflate.inflater_class = saved_inflater


@settings(max_examples=400, deadline=None)
@given(
    stream=streams(),
    data=st.data(),
    size=st.sampled_from([0, 100, 1 << 20]),
)
def test_the_c_loop_and_the_python_parser_agree(
    stream: tuple[bytes, bool], data: st.DataObject, size: int
) -> None:
    wire, deflate = stream
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(wire) - 1)), max_size=3)))
    # The C loop with the C inflater (called without Python) or the Python one (called as
    # a Python callable), against the Python parser with the Python inflater.
    c_inflate = data.draw(st.booleans())
    assert run(wire, cuts, c_loop=True, deflate=deflate, size=size, c_inflate=c_inflate) == run(
        wire, cuts, c_loop=False, deflate=deflate, size=size, c_inflate=False
    )


def test_the_c_loop_reads_a_run_of_messages_in_one_call() -> None:
    """Whole simple frames become messages without the Python loop; a ping stops it."""
    out: list[WSMessage] = []
    wire = header(0x81, 2) + b"hi" + header(0x82, 3) + b"\x00\x01\x02" + header(0x89, 0)
    pos, frames, bad = _framing.scan_messages(  # type: ignore[misc]
        wire, 0, out, None, 0, WSMessage, WSMsgType.TEXT, WSMsgType.BINARY
    )
    assert (pos, frames, bad) == (len(wire) - 2, 2, None)
    assert out == [
        WSMessage(WSMsgType.TEXT, "hi", None),
        WSMessage(WSMsgType.BINARY, b"\0\1\2", None),
    ]
    assert type(out[0]) is WSMessage


def test_the_c_loop_checks_its_arguments() -> None:
    scan = _framing.scan_messages
    assert scan is not None
    kinds = (WSMsgType.TEXT, WSMsgType.BINARY)
    with pytest.raises(TypeError):
        scan(b"", 0, [], None, 0, WSMessage)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        scan(b"", 0, (), None, 0, WSMessage, *kinds)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan(b"", 0, [], None, 0, dict, *kinds)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pos out of range"):
        scan(b"ab", 3, [], None, 0, WSMessage, *kinds)
    with pytest.raises(TypeError, match="inflate must return bytes"):
        scan(header(0xC2, 1) + b"x", 0, [], lambda b: "str", 0, WSMessage, *kinds)  # type: ignore[arg-type,return-value]
