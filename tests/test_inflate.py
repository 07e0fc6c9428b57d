"""The two inflaters of permessage-deflate behave the same.

``trio_ws._inflate.Inflater`` (zlib itself, in C) and ``PyInflater`` (the zlib module) are fed
the same generated sessions: compressed messages made every way a server may make them
(sync-flushed, ending their DEFLATE stream, several streams in one message, with and
without context takeover, a window larger than allowed, junk), delivered whole or in pieces
cut anywhere, under limits. Every step must give the same bytes, or the same violation (close
code and reason), and leave the same count of inflated bytes.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ws import WSMessage, _deflate, _framing
from trio_ws._deflate import ClientDeflate, Inflater, PyInflater
from trio_ws._framing import INVALID_DATA, MESSAGE_TOO_BIG, ProtocolViolation

try:
    from trio_ws._inflate import Inflater as CInflater
except ImportError:  # pragma: no cover - the extension was not built
    CInflater = None  # type: ignore[assignment,misc]

pytestmark = pytest.mark.skipif(CInflater is None, reason="the C inflater was not built")
#: For the tests of how it is used: it is built but TRIO_WS_NO_EXTENSIONS may turn it off.
in_use = pytest.mark.skipif(
    _deflate._load_inflater() is None or _framing.scan_messages is None,
    reason="the C extensions are not in use",
)

TAIL = b"\x00\x00\xff\xff"


def make(
    cls: Callable[..., Inflater], wbits: int = 15, takeover: bool = True, limit: int = 0
) -> Inflater:
    return cls(wbits, not takeover, limit, ProtocolViolation, INVALID_DATA, MESSAGE_TOO_BIG)


def outcome(call: Callable[[], bytes]) -> tuple[str, Any]:
    try:
        return "ok", call()
    except ProtocolViolation as exc:
        return "violation", (exc.code, exc.reason)


@st.composite
def payloads(draw: st.DrawFn, compressor: Any, wbits: int) -> bytes:
    """One message's compressed payload, as a server (or a broken one) may send it."""
    text = draw(
        st.one_of(
            st.binary(max_size=300),
            st.builds(lambda w, n: w * n, st.binary(min_size=1, max_size=12), st.integers(1, 400)),
        )
    )
    style = draw(
        st.sampled_from(
            ["sync"] * 6 + ["final", "final+sync", "final+final", "junk", "cut", "far", "empty"]
        )
    )

    def fresh(bits: int = wbits) -> Any:
        return zlib.compressobj(wbits=-bits)

    if style == "sync":
        c = compressor if compressor is not None else fresh()
        return (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]  # type: ignore[no-any-return]
    if style == "final":
        c = fresh()
        return c.compress(text) + c.flush(zlib.Z_FINISH)  # type: ignore[no-any-return]
    if style == "final+sync":
        a, b = fresh(), fresh()
        first = a.compress(text[:5]) + a.flush(zlib.Z_FINISH)
        return first + (b.compress(text[5:]) + b.flush(zlib.Z_SYNC_FLUSH))[:-4]  # type: ignore[no-any-return]
    if style == "final+final":
        a, b = fresh(), fresh()
        first = a.compress(text[:5]) + a.flush(zlib.Z_FINISH)
        return first + b.compress(text[5:]) + b.flush(zlib.Z_FINISH)  # type: ignore[no-any-return]
    if style == "junk":
        return draw(st.binary(min_size=1, max_size=40))
    if style == "cut":
        c = fresh()
        whole = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
        return whole[: draw(st.integers(0, len(whole)))]  # type: ignore[no-any-return]
    if style == "far":  # a window bigger than the negotiated one
        c = fresh(15)
        data = bytes(range(256)) * 8 + text + bytes(range(256))
        return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]  # type: ignore[no-any-return]
    return b""


@st.composite
def sessions(draw: st.DrawFn) -> tuple[int, bool, int, list[tuple[str, Any]]]:
    wbits = draw(st.sampled_from([9, 12, 15]))
    takeover = draw(st.booleans())
    limit = draw(st.sampled_from([0, 0, 50, 700, 5000]))
    compressor = zlib.compressobj(wbits=-wbits) if takeover else None
    steps: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 8))):
        payload = draw(payloads(compressor, wbits))
        how = draw(st.sampled_from(["whole", "whole", "pieces", "abandon", "limit"]))
        if how == "limit":
            steps.append(("limit", draw(st.sampled_from([0, 10, 1000]))))
            how = "whole"
        if how == "whole":
            steps.append(("whole", payload))
            continue
        cuts = sorted(draw(st.sets(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        steps.append(("pieces", (pieces, how == "abandon")))
    return wbits, takeover, limit, steps


def replay(cls: Callable[..., Inflater], session: tuple[int, bool, int, list[Any]]) -> list[Any]:
    wbits, takeover, limit, steps = session
    inflater = make(cls, wbits, takeover, limit)
    seen: list[Any] = []
    for kind, arg in steps:
        if kind == "limit":
            inflater.max_msg_size = arg
            seen.append(("limit", inflater.max_msg_size))
            continue
        if kind == "whole":
            result = outcome(lambda arg=arg: inflater.inflate_message(arg))  # type: ignore[misc]
            seen.append(result)
        else:
            pieces, abandon = arg
            for piece in pieces:
                result = outcome(lambda piece=piece: inflater.inflate(piece))  # type: ignore[misc]
                seen.append((result, inflater.inflated))
                if result[0] != "ok":
                    break
            else:
                if abandon:
                    inflater.reset_message()
                    result = ("ok", b"")
                else:
                    result = outcome(inflater.end_message)
                seen.append(result)
        seen.append(inflater.inflated)
        if result[0] != "ok":
            break  # the connection fails: nothing more is inflated on it
    return seen


@settings(max_examples=500, deadline=None)
@given(session=sessions())
def test_the_c_and_python_inflaters_agree(session: tuple[int, bool, int, list[Any]]) -> None:
    assert replay(CInflater, session) == replay(PyInflater, session)


@pytest.mark.parametrize("cls", [CInflater, PyInflater], ids=["c", "python"])
def test_big_messages_grow_the_buffer_and_keep_the_limit(cls: Callable[..., Inflater]) -> None:
    """A message much bigger than the first output buffer inflates whole; a bomb stops one
    byte past the limit."""
    data = bytes(range(256)) * 4096 + b"\0" * 3_000_000  # 4 MiB, part of it compressible
    c = zlib.compressobj(wbits=-15)
    payload = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert make(cls).inflate_message(payload) == data
    limited = make(cls, limit=len(data) - 1)
    with pytest.raises(ProtocolViolation, match=f"max_msg_size={len(data) - 1}") as info:
        limited.inflate_message(payload)
    assert info.value.code == MESSAGE_TOO_BIG
    assert limited.inflated == 0  # the message is forgotten either way
    exact = make(cls, limit=len(data))
    assert exact.inflate(payload) + exact.end_message() == data


@pytest.mark.parametrize("cls", [CInflater, PyInflater], ids=["c", "python"])
def test_arguments_are_checked(cls: Callable[..., Inflater]) -> None:
    with pytest.raises(ValueError, match="window bits must be from 9 to 15, not 8"):
        make(cls, wbits=8)
    with pytest.raises(ValueError, match="max_msg_size must be 0"):
        make(cls, limit=-1)
    inflater = make(cls)
    assert inflater(b"") == b""  # calling it is inflate_message()
    assert inflater.inflate(bytearray(b"")) == b""
    assert inflater.inflate(memoryview(b""), with_tail=True) == b""


def test_the_c_inflater_refuses_bad_arguments() -> None:
    """What Python's type checks do not cover: a negative limit set later, a deleted one."""
    inflater = make(CInflater)
    with pytest.raises(ValueError, match="max_msg_size must be 0"):
        inflater.max_msg_size = -5
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del inflater.max_msg_size
    with pytest.raises(TypeError):
        inflater(b"", b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        inflater(payload=b"")  # type: ignore[call-arg]


@in_use
def test_the_parser_inflates_through_the_c_entry() -> None:
    """The parser's C loop calls the C inflater directly (not through Python); with the
    Python inflater it calls it as a Python callable. Both give the message."""
    c = zlib.compressobj(wbits=-15)
    payload = (c.compress(b'{"a": 1}') + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    wire = bytes([0xC1, len(payload)]) + payload
    assert _framing.scan_messages is not None
    from trio_ws import _speedups

    assert _speedups.inflate_linked
    for cls in (CInflater, PyInflater):
        out: list[Any] = []
        result = _framing.scan_messages(wire, 0, out, make(cls), 0, WSMessage, "T", "B")
        assert result == (len(wire), 1, None)
        assert [tuple(m) for m in out] == [("T", '{"a": 1}', None)]


@in_use
def test_client_deflate_uses_the_c_inflater_where_built() -> None:
    assert isinstance(_deflate.inflater_class(15, False, 0, ProtocolViolation, 1, 2), CInflater)
    assert isinstance(ClientDeflate().inflater, CInflater)
    assert _deflate._load_inflater() is CInflater


def test_the_loader_falls_back_when_asked_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIO_WS_NO_EXTENSIONS", "1")
    assert _deflate._load_inflater() is None
    monkeypatch.delenv("TRIO_WS_NO_EXTENSIONS")
    monkeypatch.setitem(sys.modules, "trio_ws._inflate", None)
    assert _deflate._load_inflater() is None
