"""The opening handshake without I/O: the request bytes and the strict response parser."""

from __future__ import annotations

import base64
import sys
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import generate_accept_token

import trio_ws
from trio_ws import BasicAuth, InvalidArgument, WSServerHandshakeError
from trio_ws._deflate import ClientDeflate
from trio_ws._handshake import (
    MAX_BODY_SIZE,
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    USER_AGENT,
    ClientHandshake,
    accept_token,
    generate_key,
)
from trio_ws._protocol import ClientProtocol
from trio_ws._url import parse_url

# ---------------------------------------------------------------------------------------------
# helpers


def handshake(url: str = "ws://example.com/chat", **options: Any) -> ClientHandshake:
    """A handshake; without the default User-Agent unless ``user_agent`` is given."""
    options.setdefault("user_agent", None)
    return ClientHandshake(parse_url(url), **options)


def request_lines(hs: ClientHandshake) -> list[str]:
    """The request as lines, with the random key replaced by ``KEY``."""
    data = hs.request_bytes()
    assert data.endswith(b"\r\n\r\n")
    return data[:-4].decode().replace(hs.key.decode(), "KEY").split("\r\n")


def accept(hs: ClientHandshake) -> str:
    return generate_accept_token(hs.key).decode()


def upgrade(hs: ClientHandshake, *headers: str, status: str = "101 Switching Protocols") -> bytes:
    """A correct 101 response for ``hs`` with ``headers`` appended."""
    lines = [
        f"HTTP/1.1 {status}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept(hs)}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response(*lines: str) -> bytes:
    """A response head from its lines (status line first)."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def feed(hs: ClientHandshake, data: bytes, chunk: int = 1 << 20) -> bytes:
    """Feed ``data`` ``chunk`` bytes at a time until ``hs`` is done, as the I/O layer does.

    Returns what was not fed (the I/O layer hands that to the protocol core).
    """
    for i in range(0, len(data), chunk):
        hs.receive_data(data[i : i + chunk])
        if hs.done:
            return data[i + chunk :]
    return b""


def rejection(hs: ClientHandshake) -> WSServerHandshakeError:
    assert hs.done
    with pytest.raises(WSServerHandshakeError) as info:
        hs.result()
    return info.value


CHUNKS = [1, 2, 3, 7, 64, 1 << 20]
FRAME = b"\x81\x02hi\x89\x00"  # the server's first frames, right behind the response head


# ---------------------------------------------------------------------------------------------
# the request


def test_request_bytes() -> None:
    """The request has the RFC 6455 §4.1 headers in a fixed order, CRLF-terminated."""
    hs = handshake("ws://example.com/chat?room=1")
    assert request_lines(hs) == [
        "GET /chat?room=1 HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: KEY",
        "Sec-WebSocket-Version: 13",
    ]
    assert len(base64.b64decode(hs.key)) == 16


def test_accept_token_matches_the_rfc_example() -> None:
    """RFC 6455 §1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" is answered with
    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; wsproto, the independent peer, agrees on fresh keys."""
    assert accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    key = generate_key()
    assert accept_token(key) == generate_accept_token(key).decode()


def test_each_handshake_has_a_fresh_key() -> None:
    """Two handshakes never share a Sec-WebSocket-Key."""
    assert handshake().key != handshake().key


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("ws://example.com/", "example.com"),
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:443/", "example.com:443"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:8443/", "example.com:8443"),
        ("ws://127.0.0.1:9000/", "127.0.0.1:9000"),
        ("ws://[::1]/", "[::1]"),
        ("wss://[2001:db8::1]:8443/", "[2001:db8::1]:8443"),
        ("ws://bücher.example/", "xn--bcher-kva.example"),
    ],
)
def test_host_header(url: str, host: str) -> None:
    """Host carries the port only when it is not the scheme's default; IPv6 in brackets."""
    assert request_lines(handshake(url))[1] == f"Host: {host}"


def test_optional_headers_follow_in_order() -> None:
    """Subprotocols, the deflate offer, Origin, Authorization, then the caller's headers."""
    hs = handshake(
        protocols=["chat", "superchat"],
        compress=15,
        origin="https://example.com",
        auth=BasicAuth("user", "pass"),
        headers={"X-One": "1", "x-two": "a, b"},
    )
    assert request_lines(hs)[6:] == [
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        "Origin: https://example.com",
        "Authorization: Basic dXNlcjpwYXNz",
        "X-One: 1",
        "x-two: a, b",
    ]


def test_headers_as_pairs_keep_duplicates() -> None:
    """Headers given as pairs are sent in order, repeated names included."""
    hs = handshake(headers=[("X-A", "1"), ("X-A", "2")])
    assert request_lines(hs)[6:] == ["X-A: 1", "X-A: 2"]


def test_single_subprotocol_string() -> None:
    """protocols="chat" offers one subprotocol, not four letters."""
    assert request_lines(handshake(protocols="chat"))[6:] == ["Sec-WebSocket-Protocol: chat"]


@pytest.mark.parametrize(
    ("compress", "notakeover", "offer"),
    [
        (15, False, "permessage-deflate; client_max_window_bits"),
        (12, False, "permessage-deflate; client_max_window_bits=12"),
        (9, False, "permessage-deflate; client_max_window_bits=9"),
        (15, True, "permessage-deflate; client_max_window_bits; client_no_context_takeover"),
        (10, True, "permessage-deflate; client_max_window_bits=10; client_no_context_takeover"),
    ],
)
def test_deflate_offer(compress: int, notakeover: bool, offer: str) -> None:
    """compress=15 offers an unvalued client_max_window_bits; below 15 the value is promised."""
    hs = handshake(compress=compress, client_notakeover=notakeover)
    assert request_lines(hs)[6:] == [f"Sec-WebSocket-Extensions: {offer}"]


def test_no_offer_without_compress() -> None:
    """compress=0 offers no extension, even with client_notakeover."""
    assert request_lines(handshake(compress=0, client_notakeover=True))[6:] == []


@pytest.mark.parametrize(
    ("url", "auth", "header"),
    [
        ("ws://user:pass@h/", None, "Basic dXNlcjpwYXNz"),
        ("ws://us%40er:p%3Ass@h/", None, "Basic " + base64.b64encode(b"us@er:p:ss").decode()),
        ("ws://user:pass@h/", ("other", "pw"), "Basic b3RoZXI6cHc="),
        ("ws://h/", BasicAuth("ü", "é", encoding="utf-8"), "Basic w7w6w6k="),
        ("ws://h/", BasicAuth("ü", "é"), "Basic /Drp"),
    ],
)
def test_authorization_from_auth_or_url(url: str, auth: Any, header: str) -> None:
    """auth= wins over credentials in the URL; both become a Basic Authorization header."""
    hs = handshake(url, auth=auth)
    assert request_lines(hs)[6:] == [f"Authorization: {header}"]
    assert "user" not in request_lines(hs)[0]


def test_callers_host_origin_and_authorization_replace_ours() -> None:
    """A Host, Origin or Authorization header from the caller is sent instead of ours."""
    hs = handshake(
        "ws://user:pw@example.com/",
        origin="https://ours",
        headers={"host": "virtual.example", "Origin": "https://theirs", "Authorization": "X"},
    )
    lines = request_lines(hs)
    assert [line for line in lines if line.split(":")[0].lower() in ("host", "origin")] == [
        "host: virtual.example",
        "Origin: https://theirs",
    ]
    assert [line for line in lines if line.startswith("Authorization")] == ["Authorization: X"]


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "upgrade",
        "Sec-WebSocket-Key",
        "SEC-WEBSOCKET-VERSION",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Accept",
        "Content-Length",
        "Transfer-Encoding",
    ],
)
def test_reserved_headers_are_refused(name: str) -> None:
    """Headers the handshake owns cannot be set by the caller."""
    with pytest.raises(InvalidArgument, match="set by the opening handshake"):
        handshake(headers={name: "x"})


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "a\r\nX-Injected: 1"}, "CR, LF, NUL or another control character"),
        ({"X-A": "a\nb"}, "CR, LF, NUL or another control character"),
        ({"X-A": "a\rb"}, "CR, LF, NUL or another control character"),
        ({"X-A": "a\x00b"}, "CR, LF, NUL or another control character"),
        ({"X A": "a"}, "invalid header name"),
        ({"X-A:": "a"}, "invalid header name"),
        ({"": "a"}, "invalid header name"),
        ({"X-Ä": "a"}, "invalid header name"),
        ([(b"X-A", "a")], "must be str"),
        ([("X-A", 1)], "must be str"),
    ],
)
def test_bad_header_names_and_values_are_refused(headers: Any, message: str) -> None:
    """Header names must be tokens and values free of CR, LF and NUL, before anything is sent."""
    with pytest.raises(InvalidArgument, match=message):
        handshake(headers=headers)


@pytest.mark.parametrize("origin", ["https://a\r\nX: 1", "https://a\n", "x\x00"])
def test_bad_origin_is_refused(origin: str) -> None:
    """The Origin value is checked like any header value."""
    with pytest.raises(InvalidArgument, match="CR, LF, NUL or another control character"):
        handshake(origin=origin)


@pytest.mark.parametrize("protocol", ["", "a b", "a,b", "chat\r\n", "ä", 1, None])
def test_bad_subprotocol_names_are_refused(protocol: Any) -> None:
    """Subprotocol names must be HTTP tokens."""
    with pytest.raises(InvalidArgument, match="invalid subprotocol name"):
        handshake(protocols=["ok", protocol])


@pytest.mark.parametrize("compress", [1, 8, 16, -1, True, False])
def test_compress_out_of_range_is_refused(compress: Any) -> None:
    """compress is 0 or 9..15; bools are refused."""
    with pytest.raises(InvalidArgument, match="compress must be 0"):
        handshake(compress=compress)


def test_login_with_colon_is_refused() -> None:
    """auth=(login, password) goes through BasicAuth's checks."""
    with pytest.raises(InvalidArgument, match="must not contain"):
        handshake(auth=("a:b", "c"))


# ---------------------------------------------------------------------------------------------
# a successful response


@pytest.mark.parametrize("chunk", CHUNKS)
def test_valid_upgrade_in_any_chunks(chunk: int) -> None:
    """A 101 response is accepted however it is chunked; the frames behind it are kept."""
    hs = handshake()
    rest = feed(hs, upgrade(hs, "Server: test") + FRAME, chunk)
    result = hs.result()
    assert result.trailing_data + rest == FRAME
    assert (result.subprotocol, result.deflate) == (None, None)
    assert result.headers == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept(hs)),
        ("Server", "test"),
    ]


@settings(database=None, deadline=None, max_examples=100)
@given(cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_valid_upgrade_split_anywhere(cuts: list[int]) -> None:
    """Arbitrary cut points: the head is parsed once and no frame byte is lost."""
    hs = handshake()
    data = upgrade(hs) + FRAME
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    rest = b""
    for start, end in pairwise(bounds):
        if hs.done:
            rest += data[start:end]
        else:
            hs.receive_data(data[start:end])
    assert hs.result().trailing_data + rest == FRAME


def test_bytes_after_done_are_ignored() -> None:
    """Once done, receive_data() and receive_eof() change nothing."""
    hs = handshake()
    hs.receive_data(upgrade(hs) + b"\x81")
    hs.receive_data(b"\x00")
    hs.receive_eof()
    hs.finish_body()
    assert hs.result().trailing_data == b"\x81"


def test_not_done_until_the_blank_line() -> None:
    """The head is complete only at CRLF CRLF."""
    hs = handshake()
    data = upgrade(hs)
    hs.receive_data(data[:-1])
    assert (hs.done, hs.in_body) == (False, False)
    hs.receive_data(data[-1:])
    assert hs.done


@pytest.mark.parametrize(
    "headers",
    [
        ["upgrade: WebSocket", "connection: keep-alive, Upgrade"],
        ["UPGRADE: websocket", "CONNECTION: upgrade"],
        ["Upgrade:websocket", "Connection:\tUpgrade  "],
    ],
)
def test_upgrade_and_connection_are_case_insensitive(headers: list[str]) -> None:
    """Header names and the upgrade tokens match case-insensitively; OWS is stripped."""
    hs = handshake()
    hs.receive_data(response("HTTP/1.1 101", *headers, f"Sec-WebSocket-Accept: {accept(hs)}"))
    assert hs.result().subprotocol is None


def test_http_10_status_line_without_reason() -> None:
    """HTTP/1.0 and a status line without a reason phrase are accepted."""
    hs = handshake()
    hs.receive_data(upgrade(hs, status="101"))
    hs.result()


@pytest.mark.parametrize(("chosen", "protocol"), [("superchat", "superchat"), (" chat ", "chat")])
def test_subprotocol_from_our_offer(chosen: str, protocol: str) -> None:
    """The server may choose one of the offered subprotocols."""
    hs = handshake(protocols=["chat", "superchat"])
    hs.receive_data(upgrade(hs, f"Sec-WebSocket-Protocol: {chosen}"))
    assert hs.result().subprotocol == protocol


def test_head_of_exactly_max_head_size_is_accepted() -> None:
    """A head of exactly MAX_HEAD_SIZE bytes (blank line included) is accepted."""
    hs = handshake()
    short = upgrade(hs, "X-Pad: ")
    hs.receive_data(upgrade(hs, "X-Pad: " + "a" * (MAX_HEAD_SIZE - len(short))))
    hs.result()


def test_max_headers_is_accepted() -> None:
    """MAX_HEADERS header lines are accepted."""
    hs = handshake()
    hs.receive_data(upgrade(hs, *[f"X-{i}: v" for i in range(MAX_HEADERS - 3)]))
    assert len(hs.result().headers) == MAX_HEADERS


# ---------------------------------------------------------------------------------------------
# a response that is not an upgrade


def test_rejection_with_content_length_body() -> None:
    """403 with Content-Length: done when the body is in, which becomes the error's body."""
    hs = handshake()
    data = response("HTTP/1.1 403 Forbidden", "Content-Length: 7", "Server: x") + b"go away"
    feed(hs, data[:-1], 1)
    assert (hs.done, hs.in_body) == (False, True)
    hs.receive_data(data[-1:] + b"extra")
    exc = rejection(hs)
    assert (exc.status, exc.body) == (403, b"go away")
    assert exc.headers == [("Content-Length", "7"), ("Server", "x")]
    assert str(exc) == (
        "WebSocket handshake with ws://example.com/chat failed: "
        "the server answered 403 Forbidden, not 101: go away"
    )


@pytest.mark.parametrize("chunk", CHUNKS)
def test_rejection_with_chunked_body(chunk: int) -> None:
    """A chunked body is collected up to the last chunk and decoded."""
    hs = handshake()
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    data = response("HTTP/1.1 400 Bad Request", "Transfer-Encoding: chunked") + body
    feed(hs, data, chunk)
    exc = rejection(hs)
    assert (exc.status, exc.body) == (400, b"hello world")


def test_rejection_with_empty_chunked_body() -> None:
    """A chunked body that starts with the last chunk is empty."""
    hs = handshake()
    hs.receive_data(response("HTTP/1.1 500 Oops", "Transfer-Encoding: chunked") + b"0\r\n\r\n")
    assert rejection(hs).body == b""


@pytest.mark.parametrize(
    ("body", "decoded"),
    [
        (b"zz\r\nabc", b""),
        (b"3\r\nabc\r\n", b"abc"),
        (b"3\r\nabc\r\n4", b"abc"),
        (b"3\r\nabc\r\nlast", b"abc"),
    ],
)
def test_malformed_chunked_body_is_decoded_as_far_as_possible(body: bytes, decoded: bytes) -> None:
    """A chunked body cut by EOF or malformed is shown as far as it decodes."""
    hs = handshake()
    hs.receive_data(response("HTTP/1.1 502 Bad Gateway", "Transfer-Encoding: chunked") + body)
    assert hs.in_body or hs.done  # a malformed chunk ends it at once
    hs.receive_eof()
    assert rejection(hs).body == decoded


def test_rejection_body_until_eof() -> None:
    """Without Content-Length or chunking, the body runs until EOF."""
    hs = handshake()
    hs.receive_data(response("HTTP/1.0 404 Not Found") + b"no ")
    hs.receive_data(b"such page")
    assert hs.in_body
    hs.receive_eof()
    exc = rejection(hs)
    assert (exc.status, exc.body) == (404, b"no such page")


def test_finish_body_ends_a_slow_rejection() -> None:
    """finish_body() (the I/O layer's grace time) ends the wait with what has arrived."""
    hs = handshake()
    hs.receive_data(response("HTTP/1.1 503 Service Unavailable") + b"partial")
    hs.finish_body()
    exc = rejection(hs)
    assert (exc.status, exc.body) == (503, b"partial")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(["Content-Length: 999999999"], id="huge-content-length"),
        pytest.param([], id="until-eof"),
    ],
)
def test_rejection_body_is_capped(headers: list[str]) -> None:
    """At most MAX_BODY_SIZE bytes of body are kept; the rejection ends there."""
    hs = handshake()
    feed(hs, response("HTTP/1.1 401 Unauthorized", *headers) + b"x" * (MAX_BODY_SIZE + 10), 4096)
    exc = rejection(hs)
    assert (exc.status, exc.body) == (401, b"x" * MAX_BODY_SIZE)


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("204 No Content", []),
        ("304 Not Modified", []),
        ("200 OK", ["Content-Length: 0"]),
    ],
)
def test_rejection_without_body_is_done_at_once(status: str, headers: list[str]) -> None:
    """Statuses without a body, Content-Length 0 or an unparsable length: done after the head."""
    hs = handshake()
    hs.receive_data(response(f"HTTP/1.1 {status}", *headers) + b"ignored")
    exc = rejection(hs)
    assert (exc.status, exc.body) == (int(status[:3]), b"")


# ---------------------------------------------------------------------------------------------
# a 101 that breaks RFC 6455 §4.1


def test_wrong_accept_is_refused() -> None:
    """A Sec-WebSocket-Accept that does not match our key is refused."""
    hs = handshake()
    data = upgrade(hs).replace(accept(hs).encode(), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    hs.receive_data(data)
    exc = rejection(hs)
    assert exc.status == 101
    assert "wrong Sec-WebSocket-Accept ['AAAAAAAAAAAAAAAAAAAAAAAAAAA=']" in str(exc)
    assert f"expected {accept(hs)!r}" in str(exc)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            ["Upgrade: websocket", "Connection: Upgrade"],
            "wrong Sec-WebSocket-Accept []",
            id="no-accept",
        ),
        pytest.param(
            [
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: {a}",
                "Sec-WebSocket-Accept: {a}",
            ],
            "wrong Sec-WebSocket-Accept",
            id="two-accepts",
        ),
        pytest.param(
            ["Connection: Upgrade", "Sec-WebSocket-Accept: {a}"],
            "expected 'Upgrade: websocket', got []",
            id="no-upgrade",
        ),
        pytest.param(
            ["Upgrade: h2c", "Connection: Upgrade", "Sec-WebSocket-Accept: {a}"],
            "expected 'Upgrade: websocket', got ['h2c']",
            id="other-upgrade",
        ),
        pytest.param(
            ["Upgrade: websocket", "Upgrade: websocket", "Connection: Upgrade"],
            "expected 'Upgrade: websocket'",
            id="two-upgrades",
        ),
        pytest.param(
            ["Upgrade: websocket", "Sec-WebSocket-Accept: {a}"],
            "expected 'Connection: upgrade', got []",
            id="no-connection",
        ),
        pytest.param(
            ["Upgrade: websocket", "Connection: keep-alive", "Sec-WebSocket-Accept: {a}"],
            "expected 'Connection: upgrade', got ['keep-alive']",
            id="connection-keep-alive",
        ),
    ],
)
def test_incomplete_upgrade_is_refused(lines: list[str], message: str) -> None:
    """Upgrade, Connection and exactly one correct Sec-WebSocket-Accept are all required."""
    hs = handshake()
    hs.receive_data(
        response("HTTP/1.1 101 Switching Protocols", *lines).replace(b"{a}", accept(hs).encode())
    )
    exc = rejection(hs)
    assert exc.status == 101
    assert message in str(exc)
    assert str(exc).startswith("WebSocket handshake with ws://example.com/chat failed: ")


@pytest.mark.parametrize(
    ("offered", "headers", "message"),
    [
        pytest.param([], ["Sec-WebSocket-Protocol: chat"], "['chat']", id="none-offered"),
        pytest.param(["chat"], ["Sec-WebSocket-Protocol: other"], "['other']", id="not-offered"),
        pytest.param(["a", "b"], ["Sec-WebSocket-Protocol: a, b"], "['a', 'b']", id="two"),
        pytest.param(
            ["a", "b"],
            ["Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"],
            "['a', 'b']",
            id="two-headers",
        ),
        pytest.param(["a"], ["Sec-WebSocket-Protocol: "], "['']", id="empty"),
    ],
)
def test_subprotocol_not_from_our_offer_is_refused(
    offered: list[str], headers: list[str], message: str
) -> None:
    """RFC 6455 §4.1: a subprotocol we did not offer, or more than one, fails the handshake."""
    hs = handshake(protocols=offered)
    hs.receive_data(upgrade(hs, *headers))
    exc = rejection(hs)
    assert exc.status == 101
    assert f"the server chose subprotocol {message}; we offered {offered!r}" in str(exc)


# ---------------------------------------------------------------------------------------------
# malformed or oversized heads


@pytest.mark.parametrize("chunk", [1000, 1 << 20])
def test_head_over_max_head_size_is_refused(chunk: int) -> None:
    """A head over 64 KiB is refused, whether or not its end has arrived."""
    hs = handshake()
    big = upgrade(hs, "X-Pad: " + "a" * (MAX_HEAD_SIZE + 2000))
    feed(hs, big, chunk)
    exc = rejection(hs)
    assert f"the response head exceeds {MAX_HEAD_SIZE} bytes" in str(exc)
    assert exc.status == 0


def test_head_one_byte_over_the_limit_is_refused() -> None:
    """One byte more than MAX_HEAD_SIZE, blank line included, is refused."""
    hs = handshake()
    short = upgrade(hs, "X-Pad: ")
    hs.receive_data(upgrade(hs, "X-Pad: " + "a" * (MAX_HEAD_SIZE - len(short) + 1)))
    assert "exceeds" in str(rejection(hs))


def test_more_than_max_headers_is_refused() -> None:
    """MAX_HEADERS + 1 header lines are refused."""
    hs = handshake()
    hs.receive_data(upgrade(hs, *[f"X-{i}: v" for i in range(MAX_HEADERS - 2)]))
    exc = rejection(hs)
    assert f"more than {MAX_HEADERS} headers" in str(exc)
    assert exc.status == 101


@pytest.mark.parametrize(
    "status_line",
    [
        "HTTP/1.1 1010 Too Long",
        "HTTP/2 101 Switching Protocols",
        "HTTP/1.1 abc Nope",
        "HTTP/1.1  101",
        "http/1.1 101 Switching Protocols",
        "SSH-2.0-OpenSSH_9.6",
        "",
    ],
)
def test_bad_status_line_is_refused(status_line: str) -> None:
    """Anything but HTTP/1.x and a three-digit status is refused with status 0."""
    hs = handshake()
    hs.receive_data(response(status_line, "Upgrade: websocket"))
    exc = rejection(hs)
    assert "invalid HTTP" in str(exc)
    assert exc.status == 0


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("No-Colon", id="no-colon"),
        pytest.param("Bad Name: x", id="space-in-name"),
        pytest.param("Name : x", id="space-before-colon"),
        pytest.param(": x", id="empty-name"),
    ],
)
def test_bad_header_line_is_refused(line: str) -> None:
    """Obsolete line folding and lines that are not `token: value` are refused."""
    hs = handshake()
    hs.receive_data(upgrade(hs, "X-A: b", line))
    exc = rejection(hs)
    assert f"invalid header line {line!r}" in str(exc)
    assert exc.status == 0  # the head did not parse


def test_latin1_header_values_are_accepted() -> None:
    """RFC 9112 obs-text: a Latin-1 header value does not fail an otherwise valid upgrade."""
    hs = handshake()
    hs.receive_data(upgrade(hs, "Server: caf\xe9").replace(b"\xc3\xa9", b"\xe9"))
    assert ("Server", "caf\xe9") in hs.result().headers


def test_non_ascii_rejection_keeps_its_status() -> None:
    """A 403 with a Latin-1 header value still reports status 403."""
    hs = handshake()
    hs.receive_data(b"HTTP/1.1 403 Forbidden\r\nServer: caf\xe9\r\nContent-Length: 0\r\n\r\n")
    assert rejection(hs).status == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "after no response to the upgrade request"),
        (b"HTTP/1.1 101 Switching", "after an incomplete response to the upgrade request"),
    ],
)
def test_eof_before_the_head_ends(data: bytes, message: str) -> None:
    """EOF before the blank line fails the handshake and says how much had arrived."""
    hs = handshake()
    hs.receive_data(data)
    hs.receive_eof()
    exc = rejection(hs)
    assert f"the server closed the connection {message}" in str(exc)
    assert exc.status == 0


# ---------------------------------------------------------------------------------------------
# permessage-deflate in the response (RFC 7692)


def negotiate(response_ext: str, **options: Any) -> ClientDeflate:
    options.setdefault("compress", 15)
    hs = handshake(**options)
    hs.receive_data(upgrade(hs, f"Sec-WebSocket-Extensions: {response_ext}"))
    ext = hs.result().deflate
    assert isinstance(ext, ClientDeflate)
    return ext


def params(ext: ClientDeflate) -> tuple[int, bool, int, bool]:
    return (
        ext.client_max_window_bits,
        ext.client_no_context_takeover,
        ext.server_max_window_bits,
        ext.server_no_context_takeover,
    )


@pytest.mark.parametrize(
    ("options", "response_ext", "expected"),
    [
        ({}, "permessage-deflate", (15, False, 15, False)),
        ({}, "permessage-deflate;", (15, False, 15, False)),
        ({}, "PerMessage-Deflate; Server_No_Context_Takeover", (15, False, 15, True)),
        ({}, "permessage-deflate; client_no_context_takeover", (15, True, 15, False)),
        ({}, "permessage-deflate; server_max_window_bits=10", (15, False, 10, False)),
        ({}, 'permessage-deflate; server_max_window_bits="9"', (15, False, 9, False)),
        # RFC 7692 allows 8; we inflate with 9, which reads it.
        ({}, "permessage-deflate; server_max_window_bits=8", (15, False, 9, False)),
        ({}, "permessage-deflate; client_max_window_bits=12", (12, False, 15, False)),
        ({"compress": 12}, "permessage-deflate", (12, False, 15, False)),
        ({"compress": 12}, "permessage-deflate; client_max_window_bits=9", (9, False, 15, False)),
        ({"client_notakeover": True}, "permessage-deflate", (15, True, 15, False)),
        (
            {"compress": 10},
            "permessage-deflate; client_max_window_bits = 10 ; server_max_window_bits=11;"
            " server_no_context_takeover; client_no_context_takeover",
            (10, True, 11, True),
        ),
    ],
)
def test_valid_deflate_parameters(
    options: dict[str, Any], response_ext: str, expected: tuple[int, bool, int, bool]
) -> None:
    """Valid RFC 7692 parameters configure a ClientDeflate; ours fill the gaps."""
    assert params(negotiate(response_ext, **options)) == expected


@pytest.mark.parametrize(
    ("compress", "response_ext", "message"),
    [
        (15, "permessage-deflate; x_param=1", "unknown parameter 'x_param'"),
        (
            15,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "duplicate parameter server_no_context_takeover",
        ),
        (
            15,
            "permessage-deflate; server_max_window_bits=9; Server_Max_Window_Bits=9",
            "duplicate parameter server_max_window_bits",
        ),
        (15, "permessage-deflate; server_max_window_bits=16", "=16 is out of range"),
        (15, "permessage-deflate; client_max_window_bits=8", "=8 is out of range"),
        (15, "permessage-deflate; server_max_window_bits=08", "needs a value from 9 to 15"),
        (15, "permessage-deflate; server_max_window_bits=100", "needs a value from 9 to 15"),
        (15, "permessage-deflate; server_max_window_bits=x", "needs a value from 9 to 15"),
        (15, "permessage-deflate; server_max_window_bits", "needs a value from 9 to 15"),
        (15, "permessage-deflate; client_max_window_bits", "needs a value from 9 to 15"),
        (12, "permessage-deflate; client_max_window_bits=13", "exceeds our offer"),
        (15, "permessage-deflate; server_no_context_takeover=1", "takes no value"),
        (15, "permessage-deflate; client_no_context_takeover=", "takes no value"),
        (15, "permessage-deflate; ; server_no_context_takeover", "empty parameter"),
    ],
)
def test_invalid_deflate_parameters_are_refused(
    compress: int, response_ext: str, message: str
) -> None:
    """Unknown, duplicated, out-of-range or malformed parameters fail the handshake."""
    hs = handshake(compress=compress)
    hs.receive_data(upgrade(hs, f"Sec-WebSocket-Extensions: {response_ext}"))
    exc = rejection(hs)
    assert exc.status == 101
    assert f"invalid permessage-deflate response {response_ext.split(',')[0]!r}" in str(exc)
    assert message in str(exc)


@pytest.mark.parametrize(
    ("compress", "headers", "message"),
    [
        (0, ["Sec-WebSocket-Extensions: permessage-deflate"], "extensions we did not offer"),
        (15, ["Sec-WebSocket-Extensions: x-webkit-deflate-frame"], "an extension we did not offer"),
        (
            15,
            ["Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate"],
            "more than one extension",
        ),
        (
            15,
            ["Sec-WebSocket-Extensions: permessage-deflate", "Sec-WebSocket-Extensions: foo"],
            "more than one extension",
        ),
    ],
)
def test_extensions_not_from_our_offer_are_refused(
    compress: int, headers: list[str], message: str
) -> None:
    """Extensions we did not offer, or more than one, fail the handshake."""
    hs = handshake(compress=compress)
    hs.receive_data(upgrade(hs, *headers))
    exc = rejection(hs)
    assert exc.status == 101
    assert message in str(exc)


def test_empty_extensions_header_means_none() -> None:
    """An empty Sec-WebSocket-Extensions header negotiates nothing."""
    hs = handshake(compress=15)
    hs.receive_data(upgrade(hs, "Sec-WebSocket-Extensions: ", "Sec-WebSocket-Extensions: ,"))
    assert hs.result().deflate is None


def test_negotiated_deflate_interoperates_with_a_wsproto_server() -> None:
    """The extension the handshake builds decompresses what a wsproto server compresses."""
    hs = handshake(compress=12, client_notakeover=True)
    offer = request_lines(hs)[-1].split(": ", 1)[1]
    server_ext = PerMessageDeflate()
    accepted = server_ext.accept(offer)
    assert isinstance(accepted, str)
    hs.receive_data(upgrade(hs, f"Sec-WebSocket-Extensions: permessage-deflate; {accepted}"))
    client = ClientProtocol(deflate=hs.result().deflate)
    server = Connection(ConnectionType.SERVER, extensions=[server_ext])
    wire = server.send(TextMessage("deflated " * 50))
    assert wire[0] & 0x40
    [msg] = client.receive_data(wire)
    assert msg.data == "deflated " * 50
    client.send_text("back " * 50)
    server.receive_data(client.data_to_send())
    assert list(server.events()) == [TextMessage("back " * 50)]


# ---------------------------------------------------------------------------------------------
# HTTP line rules (h11), informational answers, excerpts, redirects, User-Agent


def test_bare_lf_line_ends_are_accepted() -> None:
    """A response whose lines end in a bare LF (RFC 9112 §2.2 allows reading them) completes
    the handshake instead of waiting for a CRLF CRLF that never comes."""
    hs = handshake()
    data = upgrade(hs, "Server: lf").replace(b"\r\n", b"\n")
    assert feed(hs, data + FRAME) == b""
    assert hs.result().trailing_data == FRAME
    assert ("Server", "lf") in hs.result().headers


def test_a_bare_lf_cannot_hide_a_header_in_a_value() -> None:
    """A bare LF ends the line: what follows is a header of its own, checked and shown as
    one, never part of a value (values never contain CR or LF)."""
    hs = handshake()
    hs.receive_data(upgrade(hs, "X-A: one\nX-Injected: two"))
    headers = hs.result().headers
    assert ("X-A", "one") in headers
    assert ("X-Injected", "two") in headers
    assert not any("\r" in v or "\n" in v for _, v in headers)


def test_a_smuggled_second_accept_fails_the_handshake() -> None:
    """An accept hidden after a bare LF counts as a second Sec-WebSocket-Accept."""
    hs = handshake()
    hs.receive_data(upgrade(hs, f"X-A: one\nSec-WebSocket-Accept: {accept(hs)}"))
    assert "wrong Sec-WebSocket-Accept" in str(rejection(hs))


def test_obsolete_line_folding_is_unfolded() -> None:
    """RFC 9112 §5.2: a client replaces obs-fold with a space."""
    hs = handshake()
    hs.receive_data(upgrade(hs, "X-A: b", " folded", "\tagain"))
    assert ("X-A", "b folded again") in hs.result().headers


@pytest.mark.parametrize("interim", ["100 Continue", "103 Early Hints"])
def test_informational_answers_before_the_real_one_are_skipped(interim: str) -> None:
    hs = handshake()
    hs.receive_data(response(f"HTTP/1.1 {interim}", "Link: </a>; rel=preload"))
    assert not hs.done
    hs.receive_data(upgrade(hs))
    assert hs.result().subprotocol is None


def test_tls_answer_to_a_ws_url_says_so() -> None:
    """A TLS server on the other end of ws:// answers with a TLS alert record."""
    hs = handshake()
    hs.receive_data(b"\x15\x03\x01\x00\x02\x02\x46")
    exc = rejection(hs)
    assert "the server answered with TLS, not HTTP: use a wss:// URL" in str(exc)


def test_rejection_message_quotes_a_sanitised_excerpt_of_the_body() -> None:
    hs = handshake()
    body = b"missing\r\n\tsubprotocol\x1b[31m " + b"x" * 500
    hs.receive_data(response("HTTP/1.1 400 Bad Request", f"Content-Length: {len(body)}") + body)
    exc = rejection(hs)
    assert exc.body == body
    message = str(exc).split("not 101: ", 1)[1]
    assert message.startswith("missing subprotocol [31m xxx")
    assert len(message) == 200
    assert message.endswith("…")
    assert not any(c < " " for c in message)


def test_a_redirect_ends_at_its_head_when_followed() -> None:
    """With follow_redirects the Location is known at the head; the body is not awaited."""
    hs = handshake(follow_redirects=True)
    hs.receive_data(response("HTTP/1.1 302 Found", "Location: /elsewhere", "Content-Length: 99"))
    assert hs.done
    assert hs.redirect == "/elsewhere"
    assert rejection(hs).status == 302
    hs = handshake()
    hs.receive_data(response("HTTP/1.1 302 Found", "Location: /elsewhere", "Content-Length: 9"))
    assert (hs.in_body, hs.redirect) == (True, None)
    hs = handshake(follow_redirects=True)
    hs.receive_data(response("HTTP/1.1 302 Found", "Content-Length: 0"))  # no Location
    assert (hs.done, hs.redirect) == (True, None)


def test_user_agent_default_replaced_or_removed() -> None:
    ours = f"trio_ws/{trio_ws.__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"
    assert ours == USER_AGENT
    assert f"User-Agent: {ours}" in request_lines(handshake(user_agent=USER_AGENT))
    assert "User-Agent: me/1" in request_lines(handshake(user_agent="me/1"))
    lines = request_lines(handshake(user_agent=USER_AGENT, headers={"user-agent": "mine"}))
    assert [line for line in lines if line.lower().startswith("user-agent")] == [
        "user-agent: mine"
    ]
    assert not [line for line in request_lines(handshake()) if line.startswith("User-Agent")]


@pytest.mark.parametrize("value", ["café", "日本", "\u2028"])
def test_non_ascii_header_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument, match="non-ASCII value"):
        handshake(headers={"X-Name": value})
    with pytest.raises(InvalidArgument, match="non-ASCII value"):
        handshake(user_agent=value)


def test_a_rejection_in_one_read_longer_than_the_head_limit() -> None:
    """The head limit counts the head only: its body may come in the same read."""
    hs = handshake()
    body = b"b" * MAX_HEAD_SIZE
    hs.receive_data(response("HTTP/1.1 403 Forbidden", f"Content-Length: {len(body)}") + body)
    exc = rejection(hs)
    assert (exc.status, exc.body) == (403, body)


def test_a_rejection_with_too_many_headers() -> None:
    hs = handshake()
    hs.receive_data(response("HTTP/1.1 403 Forbidden", *[f"X-{i}: v" for i in range(129)]))
    exc = rejection(hs)
    assert f"more than {MAX_HEADERS} headers" in str(exc)
    assert exc.status == 403
