"""The frame codec: client frames and their masks, header rules, close-code rules.

A wsproto server decodes what the core sends, so a wrong header, length or mask shows up as
a parse failure or a wrong message there. Masks are injected (``mask_source``), so every
test sees the keys it chose, including the ones a random key hits only now and then (a first
byte of 0, all zeros).
"""

from __future__ import annotations

import inspect
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, TextMessage

from trio_ws import InvalidArgument, WSMessageTypeError, _framing
from trio_ws._deflate import ClientDeflate
from trio_ws._framing import (
    ProtocolViolation,
    _apply_mask_python,
    apply_mask,
    build_frame,
    check_close_code,
    check_header,
    close_reason,
    compress_flag,
    control_payload,
    is_valid_close_code,
)
from trio_ws._protocol import ClientProtocol

#: Keys a random source gives only now and then: a first byte of 0 (the masked first byte
#: equals the payload's), all zeros (the masked payload is the payload), all ones.
MASKS = [b"\x00\x9c\x5a\x01", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x37\xfa\x21\x3d"]
MASK_IDS = ["first-byte-0", "zeros", "ones", "mixed"]


def reference_mask(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def fixed_masks(*masks: bytes) -> Callable[[int], bytes]:
    """A mask source that hands out ``masks`` in turn, and checks it is asked for 4 bytes."""
    keys: Iterator[bytes] = iter(masks)

    def source(n: int) -> bytes:
        assert n == 4
        return next(keys)

    return source


def payload_of(size: int) -> bytes:
    """``size`` arbitrary but fixed bytes (a seeded generator, so every run sends the same)."""
    return random.Random(size).randbytes(size)


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_both_masks_match_the_rfc(data: bytes, mask: bytes) -> None:
    """RFC 6455 §5.3: octet i of the payload XOR octet i mod 4 of the key."""
    expected = reference_mask(data, mask)
    assert _apply_mask_python(data, mask) == expected
    assert apply_mask(data, mask) == expected
    assert apply_mask(bytearray(data), mask) == expected
    assert apply_mask(memoryview(data), mask) == expected


@given(st.binary(max_size=14), st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_mask_frame_is_head_key_and_masked_payload(head: bytes, data: bytes, mask: bytes) -> None:
    """mask_frame (C or Python) writes the frame as one buffer: head, key, masked payload."""
    expected = head + mask + reference_mask(data, mask)
    assert _framing._mask_frame_python(head, data, mask) == expected
    assert _framing.mask_frame(head, data, mask) == expected
    assert _framing.mask_frame(head, memoryview(bytearray(data)), mask) == expected


@pytest.mark.parametrize("mask", MASKS, ids=MASK_IDS)
def test_masks_agree_on_a_big_payload(mask: bytes) -> None:
    """The C loop's 8-byte steps and its tail agree with the Python fallback."""
    data = payload_of(1_000_003)
    assert apply_mask(data, mask) == _apply_mask_python(data, mask)
    assert _framing.mask_frame(b"head", data, mask) == b"head" + mask + apply_mask(data, mask)


@pytest.mark.skipif(not _framing.has_speedups, reason="the C speed-up was not built")
@pytest.mark.parametrize("mask", [b"abc", b"abcde", b""])
def test_c_mask_refuses_a_key_that_is_not_4_bytes(mask: bytes) -> None:
    """The C loop checks the key's length instead of reading past it."""
    with pytest.raises(ValueError, match="the mask must be 4 bytes"):
        apply_mask(b"data", mask)
    with pytest.raises(ValueError, match="the mask must be 4 bytes"):
        _framing.mask_frame(b"\x82\x84", b"data", mask)


def test_pure_python_fallback_is_used_when_asked() -> None:
    """TRIO_WS_NO_EXTENSIONS=1 selects the fallback, and sending still works."""
    code = (
        "from trio_ws import _framing; from trio_ws._protocol import ClientProtocol\n"
        "c = ClientProtocol(); c.send_bytes(b'x' * 70000)\n"
        "assert len(c.data_to_send()) == 70000 + 14\n"
        "print(_framing.has_speedups, _framing.apply_mask is _framing._apply_mask_python)"
    )
    env = {**os.environ, "TRIO_WS_NO_EXTENSIONS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True"]


def test_speedups_are_skipped_when_asked_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader returns None when TRIO_WS_NO_EXTENSIONS is set or the C module is absent."""
    loaded = _framing._load_speedups()
    assert (loaded is not None) is _framing.has_speedups
    if loaded is not None:
        assert loaded == (apply_mask, _framing.mask_frame, _framing.scan_messages)
    monkeypatch.setenv("TRIO_WS_NO_EXTENSIONS", "1")
    assert _framing._load_speedups() is None
    monkeypatch.delenv("TRIO_WS_NO_EXTENSIONS")
    # A None entry in sys.modules makes the import raise ImportError, as a missing build does.
    monkeypatch.setitem(sys.modules, "trio_ws._speedups", None)
    assert _framing._load_speedups() is None


@pytest.mark.parametrize("mask", MASKS, ids=MASK_IDS)
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_every_length_encoding_reaches_the_server(size: int, mask: bytes) -> None:
    """7-bit, 16-bit and 64-bit lengths at their boundaries, masked, decoded by wsproto."""
    client = ClientProtocol(mask_source=fixed_masks(mask, mask[::-1]))
    server = Connection(ConnectionType.SERVER)
    payload = payload_of(size)
    client.send_bytes(payload)
    client.send_text("é" * size)
    wire = client.data_to_send()
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert wire[1] & 0x80  # masked
    assert wire[header : header + 4] == mask
    assert wire[header + 4 : header + 4 + size] == reference_mask(payload, mask)
    server.receive_data(wire)
    events = list(server.events())
    assert b"".join(e.data for e in events if isinstance(e, BytesMessage)) == payload
    assert "".join(e.data for e in events if isinstance(e, TextMessage)) == "é" * size


def test_every_frame_asks_for_a_fresh_mask() -> None:
    """RFC 6455 §5.3: one key per frame, from the mask source, carried in the header."""
    masks = [i.to_bytes(4, "big") for i in range(50)]
    out: list[bytes] = []
    source = fixed_masks(*masks)
    for _ in range(50):
        build_frame(out, 0x2, b"same", False, source)
    assert [frame[2:6] for frame in out] == masks
    assert [frame[6:] for frame in out] == [reference_mask(b"same", m) for m in masks]


def test_control_and_close_frames_use_the_mask_source_too() -> None:
    """Pings, pongs, close frames and compressed messages all take their key from the source."""
    client = ClientProtocol(deflate=ClientDeflate(), mask_source=fixed_masks(*MASKS))
    client.send_ping(b"p")
    client.send_pong(b"q")
    client.send_text("compressed " * 5)
    client.send_close(1000, "bye")
    wire = client.data_to_send()
    keys = []
    pos = 0
    while pos < len(wire):
        length = wire[pos + 1] & 0x7F  # all these frames are short
        keys.append(wire[pos + 2 : pos + 6])
        pos += 6 + length
    assert keys == MASKS


def test_masks_come_from_a_csprng_by_default() -> None:
    """Without an injected source, keys come from os.urandom (RFC 6455 §10.3)."""
    assert inspect.signature(build_frame).parameters["mask_source"].default is os.urandom
    assert inspect.signature(ClientProtocol).parameters["mask_source"].default is os.urandom


def test_build_frame_counts_what_it_appends() -> None:
    """The returned size is the header, the key and the payload; FIN, RSV1 and lengths set."""
    out: list[bytes] = []
    assert build_frame(out, 0x1, b"") == 6
    assert out[0][:2] == b"\x81\x80"
    assert build_frame(out, 0x2, b"x" * 300, rsv1=True) == 4 + 4 + 300
    assert out[1][:4] == b"\xc2\xfe\x01\x2c"
    assert [len(frame) for frame in out] == [6, 308]  # one piece a frame


def test_take_outbox_keeps_big_payloads_apart_and_the_bytes_in_order() -> None:
    """Big payloads are written as they are, small frames joined, all in call order."""
    a = ClientProtocol()
    a.send_ping(b"p")
    a.send_bytes(b"x" * 100_000)
    a.send_text("small")
    a.send_text("also small")
    size = a.outbox.size
    pieces = a.outbox.take_pieces()
    assert [len(p) >= 65536 for p in pieces] == [False, True, False]
    assert sum(map(len, pieces)) == size
    server = Connection(ConnectionType.SERVER)
    server.receive_data(b"".join(pieces))
    assert list(server.events()) == [
        Ping(payload=b"p"),
        BytesMessage(data=b"x" * 100_000),
        TextMessage(data="small"),
        TextMessage(data="also small"),
    ]
    assert a.outbox.take_pieces() == []
    assert a.outbox.size == 0
    a.send_text("one")
    assert len(a.outbox.take_pieces()) == 1


def test_take_outbox_ends_with_a_big_frame() -> None:
    """A ping, then a big message: the ping alone, then the big frame, one piece."""
    client = ClientProtocol(mask_source=fixed_masks(MASKS[0], MASKS[1]))
    client.send_ping(b"p")
    client.send_bytes(b"x" * 70_000)
    pieces = client.outbox.take_pieces()
    assert [len(p) for p in pieces] == [7, 14 + 70_000]
    assert pieces[1][10:14] == MASKS[1]
    assert pieces[1][14:] == reference_mask(b"x" * 70_000, MASKS[1])


@pytest.mark.parametrize(
    "sizes",
    [
        [100_000, 5000, 70_000],  # big pieces: kept and joined once
        [3, 70_000, 1, 1, 50_000],  # a few small ones among them
        [1] * 40 + [10_000, 2] * 5,  # many small ones: copied into one buffer
    ],
)
def test_binary_message_from_pieces_of_any_size(sizes: list[int]) -> None:
    """However the payload of a big frame is cut across reads, one message comes out whole,
    and the pieces the core holds stay few or big."""
    client = ClientProtocol(max_msg_size=0)
    payload = payload_of(sum(sizes))
    n = len(payload)
    head = bytes([0x82, 127]) + n.to_bytes(8, "big") if n > 0xFFFF else b"\x82\x7e" + n.to_bytes(2)
    wire = head + payload
    got = client.receive_data(head)
    pos = len(head)
    for size in sizes:
        got += client.receive_data(wire[pos : pos + size])
        pos += size
        parts = client._assembler._parts or []
        assert len(parts) <= 16 or min(map(len, parts)) >= 4096
    assert [m.data for m in got] == [payload]


# ---------------------------------------------------------------------------------------------
# header rules and close codes


@pytest.mark.parametrize(
    ("b0", "length", "reason"),
    [
        (0x91, 0, "RSV2 or RSV3 set"),
        (0xA1, 0, "RSV2 or RSV3 set"),
        (0x83, 0, "reserved opcode 0x3"),
        (0x87, 0, "reserved opcode 0x7"),
        (0x8B, 0, "reserved opcode 0xb"),
        (0x8F, 0, "reserved opcode 0xf"),
        (0xC9, 0, "RSV1 set on a control frame"),
        (0x09, 0, "a fragmented control frame"),
        (0x88, 126, "a control frame with a 126-byte payload"),
        (0x40, 0, "RSV1 set on a CONTINUATION frame"),
    ],
)
def test_header_rules_refuse_with_1002(b0: int, length: int, reason: str) -> None:
    """Each stateless header rule of RFC 6455 §5.2, §5.5 and RFC 7692 §6 fails with 1002."""
    with pytest.raises(ProtocolViolation, match=reason) as info:
        check_header(b0, b0 & 0x0F, length)
    assert (info.value.code, info.value.reason) == (1002, str(info.value))


@pytest.mark.parametrize(
    ("b0", "length"),
    [(0x00, 10), (0x80, 0), (0x01, 1 << 20), (0xC1, 5), (0x42, 0), (0x89, 125), (0x8A, 0)],
)
def test_header_rules_accept_valid_headers(b0: int, length: int) -> None:
    """Data frames of any length and flags, and control frames up to 125 bytes, pass."""
    check_header(b0, b0 & 0x0F, length)


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        *[(999, False), (1000, True), (1003, True), (1004, False), (1006, False)],
        *[(1007, True), (1014, True), (1015, False), (2999, False), (3000, True)],
        *[(4999, True), (5000, False)],
    ],
)
def test_valid_close_codes(code: int, valid: bool) -> None:
    """The codes of RFC 6455 §7.4 and the IANA registry, at every boundary."""
    assert is_valid_close_code(code) is valid


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1005, "close code 1005 may not be sent"),
        (2000, "close code 2000 may not be sent"),
        (True, "must be an int, not bool"),
        ("1000", "must be an int, not str"),
    ],
)
def test_check_close_code_refuses_what_may_not_be_sent(code: object, message: str) -> None:
    """A caller's close code that may not be sent, or is no int, is InvalidArgument."""
    with pytest.raises(InvalidArgument, match=message):
        check_close_code(code)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# argument rules of the send API


@pytest.mark.parametrize(
    ("message", "reason"),
    [("bye", "bye"), (b"bye", "bye"), (bytearray(b"\xc3\xa9"), "é"), (memoryview(b"x"), "x")],
)
def test_close_reason_takes_text_or_bytes_like(message: object, reason: str) -> None:
    """A close reason may be str or any bytes-like UTF-8."""
    assert close_reason(message) == reason  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "error", "words"),
    [
        (b"\xff", InvalidArgument, "must be UTF-8"),
        ("\udcff", InvalidArgument, "cannot be encoded"),
        ("é" * 62, InvalidArgument, "at most 123 bytes"),
        (b"x" * 124, InvalidArgument, "at most 123 bytes"),
        (1000, WSMessageTypeError, "str or bytes, not int"),
    ],
)
def test_close_reason_refuses_what_cannot_be_sent(
    message: object, error: type[Exception], words: str
) -> None:
    """Bad close reasons raise our typed errors (never UnicodeError or AttributeError)."""
    with pytest.raises(error, match=words):
        close_reason(message)  # type: ignore[arg-type]


def test_control_payload_encodes_text_and_refuses_other_types() -> None:
    """Ping/pong payloads: str is UTF-8 encoded, bytes-like copied, anything else refused."""
    assert control_payload("ping", "hé") == "hé".encode()
    assert control_payload("ping", memoryview(b"ab")) == b"ab"
    with pytest.raises(InvalidArgument, match="ping that cannot be encoded"):
        control_payload("ping", "\udcff")
    with pytest.raises(WSMessageTypeError, match="bytes or str, not list"):
        control_payload("pong", [])  # type: ignore[arg-type]


def test_compress_flag() -> None:
    """compress=None follows the negotiation, 0 sends uncompressed, anything else is refused."""
    assert (compress_flag(None), compress_flag(0)) == (True, False)
    with pytest.raises(InvalidArgument, match="not 9"):
        compress_flag(9)
