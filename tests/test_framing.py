"""Client frames and the payload mask: both mask implementations, every length encoding.

A wsproto server decodes what the core sends, so a wrong header, length or mask shows up as
a parse failure or a wrong message there.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, TextMessage

from trio_ws import _framing
from trio_ws._framing import _apply_mask_python, apply_mask, build_frame
from trio_ws._protocol import ClientProtocol


def reference_mask(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_both_masks_match_the_rfc(data: bytes, mask: bytes) -> None:
    """RFC 6455 §5.3: octet i of the payload XOR octet i mod 4 of the key."""
    expected = reference_mask(data, mask)
    assert _apply_mask_python(data, mask) == expected
    assert apply_mask(data, mask) == expected
    assert apply_mask(bytearray(data), mask) == expected
    assert apply_mask(memoryview(data), mask) == expected


def test_masks_agree_on_a_big_payload() -> None:
    """The C loop's 8-byte steps and its tail agree with the Python fallback."""
    data = os.urandom(1_000_003)
    mask = os.urandom(4)
    assert apply_mask(data, mask) == _apply_mask_python(data, mask)


@pytest.mark.skipif(not _framing.has_speedups, reason="the C speed-up was not built")
@pytest.mark.parametrize("mask", [b"abc", b"abcde", b""])
def test_c_mask_refuses_a_key_that_is_not_4_bytes(mask: bytes) -> None:
    with pytest.raises(ValueError, match="the mask must be 4 bytes"):
        apply_mask(b"data", mask)


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


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_every_length_encoding_reaches_the_server(size: int) -> None:
    """7-bit, 16-bit and 64-bit lengths at their boundaries, masked, decoded by wsproto."""
    client, server = ClientProtocol(), Connection(ConnectionType.SERVER)
    payload = os.urandom(size)
    client.send_bytes(payload)
    client.send_text("é" * size)
    wire = client.data_to_send()
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert wire[1] & 0x80  # masked
    assert wire[header + 4 : header + 4 + size] != payload or size == 0
    server.receive_data(wire)
    events = list(server.events())
    assert b"".join(e.data for e in events if isinstance(e, BytesMessage)) == payload
    assert "".join(e.data for e in events if isinstance(e, TextMessage)) == "é" * size


def test_every_frame_gets_a_fresh_mask() -> None:
    """RFC 6455 §5.3: a new, unpredictable key per frame."""
    out: list[bytes] = []
    for _ in range(50):
        build_frame(out, 0x2, b"same")
    keys = {head[2:6] for head in out[::2]}
    assert len(keys) == 50


def test_build_frame_counts_what_it_appends() -> None:
    out: list[bytes] = []
    assert build_frame(out, 0x1, b"") == 6
    assert out[0][:2] == b"\x81\x80"
    assert build_frame(out, 0x2, b"x" * 300, rsv1=True) == 4 + 4 + 300
    assert out[1][:4] == b"\xc2\xfe\x01\x2c"


def test_take_outbox_keeps_big_payloads_apart_and_the_bytes_in_order() -> None:
    """Big payloads are written as they are, small frames joined, all in call order."""
    a = ClientProtocol()
    a.send_ping(b"p")
    a.send_bytes(b"x" * 100_000)
    a.send_text("small")
    a.send_text("also small")
    size = a.outbox_size
    pieces = a.take_outbox()
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
    assert a.take_outbox() == []
    assert a.outbox_size == 0
    a.send_text("one")
    assert len(a.take_outbox()) == 1


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
    payload = os.urandom(sum(sizes))
    n = len(payload)
    head = bytes([0x82, 127]) + n.to_bytes(8, "big") if n > 0xFFFF else b"\x82\x7e" + n.to_bytes(2)
    wire = head + payload
    got = client.receive_data(head)
    pos = len(head)
    for size in sizes:
        got += client.receive_data(wire[pos : pos + size])
        pos += size
        parts = client._parts or []
        assert len(parts) <= 16 or min(map(len, parts)) >= 4096
    assert [m.data for m in got] == [payload]
