"""The fast path for the usual 101 head gives what h11 gives, and declines everything else.

The differential test feeds generated heads, in generated pieces, to two handshakes: one as
the client runs it (fast path first), one with the fast path switched off (h11 reads all).
Both must end the same way: the same result or the same error, the same status, reason,
headers and trailing bytes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.utilities import generate_accept_token

from trio_ws import WSServerHandshakeError
from trio_ws._fasthead import might_switch, switching_head
from trio_ws._handshake import ClientHandshake
from trio_ws._url import parse_url

KEY_PLACEHOLDER = "{accept}"


def new_handshake(*, fast: bool) -> ClientHandshake:
    hs = ClientHandshake(
        parse_url("ws://example.com/chat"), protocols=["chat", "superchat"], compress=15,
        user_agent=None,
    )
    if not fast:
        hs._fast = None  # h11 reads everything, as before the fast path existed
    return hs


def outcome(hs: ClientHandshake, data: bytes, cuts: list[int]) -> tuple[Any, ...]:
    """Feed ``data`` cut at ``cuts``, then EOF if still undecided; what came of it."""
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for piece in pieces:
        hs.receive_data(piece)
        if hs.done:
            break
    if not hs.done:
        hs.receive_eof()
    try:
        result = hs.result()
    except WSServerHandshakeError as exc:
        return ("error", str(exc), exc.status, hs.response_head())
    deflate = repr(result.deflate)  # (ClientDeflate compares by identity)
    return ("ok", result.subprotocol, deflate, result.headers, result.trailing_data,
            hs.response_head())


# The pieces of a head: mostly what servers send, plus every kind of byte h11 must judge.
STATUS_LINES = [
    "HTTP/1.1 101 Switching Protocols",
    "HTTP/1.1 101",
    "HTTP/1.1 101 ",
    "HTTP/1.1 101 Web\tSocket Protocol Handshake",
    "HTTP/1.1 101 Sw\x80itching",
    "HTTP/1.0 101 Switching Protocols",
    "HTTP/1.1 1010 Switching",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols",
    "HTTP/1.1 200 OK",
    "HTTP/1.1 302 Found\r\nLocation: /elsewhere",
    "HTTP/1.1  101 Double space",
    "http/1.1 101 lower case",
]
HEADER_LINES = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Accept: {accept}",
    "Sec-WebSocket-Protocol: chat",
    "Sec-WebSocket-Protocol: other",
    "Sec-WebSocket-Extensions: permessage-deflate",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12",
    "Server: nginx/1.25",
    "X-Empty:",
    "X-Spaces:   padded\t ",
    "X-Inner: a  b\tc",
    "X-Obs: caf\xe9",
    "X-Ctl: a\x01b",
    "Content-Length: 0",
    "content-length: abc",
    "Transfer-Encoding: chunked",
    " folded continuation",
    "Bad Name: value",
    "NoColon",
    ": no name",
    "X-Colon: a:b:c",
]
LINE_ENDS = ["\r\n"] * 8 + ["\n", "\r", "\r\r\n"]


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from(STATUS_LINES[:4] * 4 + STATUS_LINES))
    base = HEADER_LINES[:3]
    extra = draw(st.lists(st.sampled_from(HEADER_LINES), max_size=6))
    lines = base + extra
    order = draw(st.permutations(lines))
    text = status
    for line in order:
        text += draw(st.sampled_from(LINE_ENDS)) + line
    text += draw(st.sampled_from(["\r\n\r\n"] * 6 + ["\n\n", "\r\n\n", "\r\n"]))
    text += draw(st.sampled_from(["", "", "\x81\x02hi", "trailing bytes\r\n\r\n"]))
    return text.encode("latin-1")


@settings(max_examples=600, deadline=None)
@given(head=heads(), data=st.data())
def test_the_fast_path_and_h11_agree(head: bytes, data: st.DataObject) -> None:
    fast, slow = new_handshake(fast=True), new_handshake(fast=False)
    slow.key = fast.key  # one accept token for both
    accept = generate_accept_token(fast.key).decode()
    raw = head.replace(KEY_PLACEHOLDER.encode(), accept.encode())
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=4)))
    assert outcome(fast, raw, cuts) == outcome(slow, raw, cuts)


def test_the_usual_head_is_read_without_h11() -> None:
    hs = new_handshake(fast=True)
    accept = generate_accept_token(hs.key).decode()
    hs.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
    hs.receive_data(f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode())
    assert hs.done
    assert hs._h11 is None
    assert hs.result().headers[0] == ("Upgrade", "websocket")


def test_switching_head_reads_only_the_plain_kind() -> None:
    head = b"HTTP/1.1 101 OK\r\nA: 1\r\nB:\t x y \r\nC:\r\n\r\n"
    assert switching_head(head) == (b"OK", [(b"A", b"1"), (b"B", b"x y"), (b"C", b"")])
    assert switching_head(b"HTTP/1.1 101\r\n\r\n") == (b"", [])
    assert switching_head(b"HTTP/1.1 200 OK\r\n\r\n") is None
    assert switching_head(b"HTTP/1.1 101 OK\r\nA: \x80\r\n\r\n") is None
    assert switching_head(b"HTTP/1.1 101 OK\r\nContent-Length: 0\r\n\r\n") is None
    # Not a head that ends in CRLF CRLF (the caller cuts there): declined, not misread.
    assert switching_head(b"HTTP/1.1 101 OK\r\nA: 1\r\n") is None
    assert switching_head(b"HTTP/1.1 101 OK\r\nA: 1\r\nxx") is None


def test_might_switch_tells_early_what_h11_must_read() -> None:
    assert might_switch(b"HTTP/1.")
    assert might_switch(b"HTTP/1.1 101 Switching\r\nUpgr")
    assert not might_switch(b"HTTP/1.1 200")
    assert not might_switch(b"\x15\x03\x01\x00\x02")  # a TLS alert
    assert not might_switch(b"HTTP/1.1 101 Switching\nUpgrade: websocket")  # a bare LF


def test_a_long_head_goes_to_h11_with_its_limits() -> None:
    """A head still unfinished after 4 KiB is h11's, which bounds it as before."""
    fast, slow = new_handshake(fast=True), new_handshake(fast=False)
    filler = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 60) for i in range(80))
    head = b"HTTP/1.1 101 Switching Protocols\r\n" + filler + b"\r\n"
    cuts = list(range(100, len(head), 100))
    assert outcome(fast, head, cuts) == outcome(slow, head, cuts)
    assert fast._h11 is not None
