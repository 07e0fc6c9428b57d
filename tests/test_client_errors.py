"""Every bad input, bad server and broken connection gives a clear, typed error, and never hangs.

Real sockets on the loopback interface only; the servers are scripted byte by byte
(``tests.servers.RawPeer``) so they can break the protocol in ways no real server would.
``trio.fail_after`` guards every wait; the only real timeouts are the ones under test.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

import trio_ws
from trio_ws import (
    ClientWSTimeout,
    ConnectTimeoutError,
    InvalidArgument,
    InvalidURL,
    WSClosedError,
    WSConnectionError,
    WSMessage,
    WSMsgType,
    WSProtocolError,
    WSServerHandshakeError,
    WSTimeoutError,
)

from .servers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Frame,
    Handler,
    RawPeer,
    close_payload,
    frame,
    open_raw_server,
    open_websockets_server,
    refused_port,
)

#: Guard against hangs: far above what any test here needs.
GUARD = 5.0


def url(port: int, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port}{path}"


async def open_and_leave(url: str, **options: Any) -> None:
    """Connect with ``open_ws`` and leave the block at once."""
    async with trio_ws.open_ws(url, **options):
        pass


async def receive_all(ws: trio_ws.ClientWebSocket) -> list[WSMessage]:
    """Receive until CLOSED (at most 10 messages)."""
    msgs: list[WSMessage] = []
    while len(msgs) < 10:
        msgs.append(await ws.receive())
        if msgs[-1].type is WSMsgType.CLOSED:
            break
    return msgs


def answering(response: bytes) -> Handler:
    """A server handler that reads the upgrade request, sends ``response`` and waits for EOF."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.send(response)
        await peer.wait_eof()

    return handler


async def handshake_error(
    handler: Handler, **options: Any
) -> WSServerHandshakeError:
    """Connect to a server running ``handler``; return the handshake error raised."""
    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
            await open_and_leave(url(port), **options)
    return info.value


# --------------------------------------------------------------------------------------------
# before any I/O


@pytest.mark.parametrize(
    "bad_url",
    [
        "",
        "not a url",
        "127.0.0.1:80",
        "ftp://127.0.0.1/",
        "ws://",
        "ws:///path",
        "ws://127.0.0.1/#fragment",
        "ws://127.0.0.1/#",
        "ws://127.0.0.1:99999/",
        "ws://127.0.0.1:-1/",
        "ws://127.0.0.1:abc/",
        "ws://127.0.0.1:0/",
        "ws://[::1/",
        "ws://bad host/",
    ],
)
async def test_malformed_url_raises_invalid_url(bad_url: str) -> None:
    """A malformed URL, bad scheme, fragment or bad port raises InvalidURL (also ValueError)."""
    with trio.fail_after(GUARD), pytest.raises(InvalidURL) as info:
        await open_and_leave(bad_url)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InvalidArgument)


async def test_non_string_url_raises_invalid_url() -> None:
    """A URL that is not a str raises InvalidURL."""
    with pytest.raises(InvalidURL):
        await open_and_leave(b"ws://127.0.0.1/")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"headers": {"X-Evil": "a\r\nInjected: 1"}}, id="crlf-in-value"),
        pytest.param({"headers": [("X-Evil", "a\nb")]}, id="lf-in-value"),
        pytest.param({"headers": {"X-Evil": "a\x00b"}}, id="nul-in-value"),
        pytest.param({"headers": {"Bad Name": "v"}}, id="space-in-name"),
        pytest.param({"headers": {"X-Evil\r\nInjected": "v"}}, id="crlf-in-name"),
        pytest.param({"headers": {"Sec-WebSocket-Key": "x"}}, id="reserved-header"),
        pytest.param({"origin": "http://a\r\nX: y"}, id="crlf-in-origin"),
        pytest.param({"protocols": ["chat room"]}, id="bad-subprotocol"),
        pytest.param({"compress": 8}, id="compress-8"),
        pytest.param({"compress": 16}, id="compress-16"),
        pytest.param({"connect_timeout": -1}, id="negative-connect-timeout"),
        pytest.param({"connect_timeout": 0}, id="zero-connect-timeout"),
        pytest.param({"heartbeat": float("nan")}, id="nan-heartbeat"),
        pytest.param({"max_msg_size": -1}, id="negative-max-msg-size"),
        pytest.param({"timeout": 10}, id="timeout-not-ClientWSTimeout"),
    ],
)
async def test_bad_option_raises_invalid_argument_before_connecting(
    options: dict[str, Any],
) -> None:
    """An unusable option (CR/LF in a header...) raises InvalidArgument before connecting."""
    # Nothing listens on the port: connecting first would raise WSConnectionError instead.
    with trio.fail_after(GUARD), pytest.raises(InvalidArgument) as info:
        await open_and_leave(url(refused_port()), **options)
    assert isinstance(info.value, ValueError)


async def test_bad_ssl_option_raises_invalid_argument_before_connecting() -> None:
    """ssl= that is neither a bool nor an SSLContext raises InvalidArgument before connecting."""
    with trio.fail_after(GUARD), pytest.raises(InvalidArgument):
        await open_and_leave(f"wss://127.0.0.1:{refused_port()}/", ssl="yes")


# --------------------------------------------------------------------------------------------
# connecting


async def test_unknown_host_raises_connection_error() -> None:
    """A host that never resolves (.invalid) raises WSConnectionError caused by the resolver."""
    with trio.fail_after(GUARD), pytest.raises(WSConnectionError) as info:
        await open_and_leave("ws://no-such-host.invalid/")
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, OSError)
    assert "no-such-host.invalid" in str(info.value)


async def test_refused_port_raises_connection_error() -> None:
    """A port nobody listens on raises WSConnectionError (also OSError) with a cause."""
    port = refused_port()
    with trio.fail_after(GUARD), pytest.raises(WSConnectionError) as info:
        await open_and_leave(url(port))
    assert isinstance(info.value, OSError)
    assert info.value.__cause__ is not None
    assert str(port) in str(info.value)


async def test_silent_server_raises_connect_timeout_and_closes_the_socket() -> None:
    """A server that never answers: ConnectTimeoutError after connect_timeout, socket closed."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.wait_eof()
        hung_up.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            start = trio.current_time()
            with pytest.raises(ConnectTimeoutError) as info:
                await open_and_leave(url(port), connect_timeout=0.5)
            elapsed = trio.current_time() - start
            await hung_up.wait()
    assert 0.5 <= elapsed < 1.5
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, WSConnectionError)
    assert isinstance(info.value, trio_ws.WSTimeoutError)


async def test_cancelled_connect_stays_cancellation_and_closes_the_socket() -> None:
    """A cancelled connect stays plain cancellation and closes the half-open socket."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.wait_eof()
        hung_up.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            with trio.move_on_after(0.3) as scope:
                await open_and_leave(url(port))
            assert scope.cancelled_caught
            await hung_up.wait()


async def test_connect_timeout_does_not_limit_the_session() -> None:
    """connect_timeout bounds only the connect phase: the open connection outlives it."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.read_close()  # the client's close frame, which comes after the wait below
        await peer.send(frame(OP_CLOSE, close_payload(1000)))

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), connect_timeout=0.3) as ws:
                with pytest.raises(WSTimeoutError):
                    await ws.receive(timeout=0.5)
                assert not ws.closed
    assert ws.close_code == 1000


# --------------------------------------------------------------------------------------------
# the opening handshake


async def test_rejection_403_carries_status_headers_and_body() -> None:
    """403 with a body: WSServerHandshakeError carries status, headers and body."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.send(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
            b"X-Reason: no entry\r\n\r\nforbidden"
        )
        await peer.wait_eof()
        hung_up.set()

    exc = await handshake_error(handler)
    assert hung_up.is_set()
    assert exc.status == 403
    assert ("Content-Type", "text/plain") in exc.headers
    assert ("X-Reason", "no entry") in exc.headers
    assert exc.body == b"forbidden"
    assert "403" in str(exc)


async def test_rejection_body_delimited_by_eof() -> None:
    """A rejection without Content-Length: the body runs until the server closes."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.send(b"HTTP/1.1 401 Unauthorized\r\n\r\nlog in first")

    exc = await handshake_error(handler)
    assert (exc.status, exc.body) == (401, b"log in first")


async def test_rejection_with_chunked_body() -> None:
    """A chunked rejection body is decoded for the error."""

    handler = answering(
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nbad \r\n7\r\nrequest\r\n0\r\n\r\n"
    )

    exc = await handshake_error(handler)
    assert (exc.status, exc.body) == (400, b"bad request")


async def test_stalled_rejection_body_is_cut_short() -> None:
    """A rejection whose body stalls is reported after a short grace with the partial body."""

    handler = answering(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\npartial")

    start = trio.current_time()
    exc = await handshake_error(handler, connect_timeout=10)
    assert trio.current_time() - start < 1.9
    assert (exc.status, exc.body) == (403, b"partial")


async def test_rejection_status_survives_connect_timeout_during_its_body() -> None:
    """A 403 whose body stalls past connect_timeout still raises the 403, not a timeout."""

    handler = answering(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\npartial")

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
            await open_and_leave(url(port), connect_timeout=0.3)
    assert (info.value.status, info.value.body) == (403, b"partial")


async def test_plain_200_is_a_handshake_error() -> None:
    """A plain HTTP 200 (not an upgrade) raises WSServerHandshakeError with status 200."""

    handler = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")

    exc = await handshake_error(handler)
    assert (exc.status, exc.body) == (200, b"hello")


async def test_redirect_is_a_handshake_error_with_location() -> None:
    """A 302 is not followed: WSServerHandshakeError with the Location header."""

    handler = answering(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")

    exc = await handshake_error(handler)
    assert exc.status == 302
    assert ("Location", "/elsewhere") in exc.headers


@pytest.mark.parametrize(
    "accept_options",
    [
        pytest.param({"upgrade": "WebSocket"}, id="upgrade-case"),
        pytest.param({"connection": "keep-alive, upgrade"}, id="connection-token-list"),
        pytest.param({"headers": [("Sec-WebSocket-Extensions", "")]}, id="empty-extensions"),
    ],
)
async def test_valid_101_variants_are_accepted(accept_options: dict[str, Any]) -> None:
    """Header values are compared as RFC 6455 says: case-insensitive tokens, lists allowed."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(**accept_options, then=frame(OP_TEXT, b"welcome"))
        await peer.read_close()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert await ws.receive_str() == "welcome"


@pytest.mark.parametrize(
    ("accept_options", "complaint"),
    [
        pytest.param({"accept": "dGhlIHNhbXBsZSBub25jZQ=="}, "Accept", id="wrong-accept"),
        pytest.param({"upgrade": None}, "Upgrade", id="no-upgrade"),
        pytest.param({"upgrade": "h2c"}, "Upgrade", id="wrong-upgrade"),
        pytest.param({"connection": None}, "Connection", id="no-connection"),
        pytest.param({"connection": "keep-alive"}, "Connection", id="wrong-connection"),
    ],
)
async def test_invalid_101_is_a_handshake_error(
    accept_options: dict[str, Any], complaint: str
) -> None:
    """A 101 with a wrong Sec-WebSocket-Accept, or without Upgrade/Connection, is refused."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept(**accept_options)

    exc = await handshake_error(handler)
    assert exc.status == 101
    assert complaint in str(exc)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        pytest.param((), "chat", id="none-offered"),
        pytest.param(("chat",), "superchat", id="other-chosen"),
        pytest.param(("chat", "superchat"), "chat, superchat", id="two-chosen"),
    ],
)
async def test_subprotocol_not_offered_is_a_handshake_error(
    offered: tuple[str, ...], chosen: str
) -> None:
    """A subprotocol we did not offer (or more than one) fails the handshake (RFC 6455 §4.1)."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept(headers=[("Sec-WebSocket-Protocol", chosen)])

    exc = await handshake_error(handler, protocols=offered)
    assert exc.status == 101
    assert "subprotocol" in str(exc)


@pytest.mark.parametrize(
    ("compress", "extensions"),
    [
        pytest.param(0, "permessage-deflate", id="not-offered"),
        pytest.param(15, "x-webkit-deflate-frame", id="unknown"),
        pytest.param(15, "permessage-deflate, permessage-deflate", id="twice"),
        pytest.param(15, "permessage-deflate; server_max_window_bits=7", id="bad-param"),
        pytest.param(10, "permessage-deflate; client_max_window_bits=12", id="bigger-window"),
        pytest.param(15, "permessage-deflate; foo=1", id="unknown-param"),
    ],
)
async def test_extension_not_offered_is_a_handshake_error(compress: int, extensions: str) -> None:
    """An extension we did not offer, or one with invalid parameters, fails the handshake."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept(headers=[("Sec-WebSocket-Extensions", extensions)])

    exc = await handshake_error(handler, compress=compress)
    assert exc.status == 101
    assert "extension" in str(exc) or "permessage-deflate" in str(exc)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", id="half"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 101 OK\r\nBad Header\r\n\r\n", id="bad-header-line"),
        pytest.param(b"HTTP/1.1 101 OK\r\n X: folded\r\n\r\n", id="obs-fold"),
    ],
)
async def test_server_closing_or_garbling_the_response_is_a_handshake_error(
    response: bytes,
) -> None:
    """No, half or a garbled response, then EOF: WSServerHandshakeError, never a hang."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.send(response)

    exc = await handshake_error(handler)
    assert exc.status in (0, 101)


async def test_oversized_response_head_is_a_handshake_error() -> None:
    """A response head over 64 KiB is refused instead of being buffered without limit."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        with contextlib.suppress(trio.BrokenResourceError):  # the client hangs up part way
            await peer.send(b"HTTP/1.1 101 OK\r\n" + b"X-Filler: " + b"a" * 200_000)

    exc = await handshake_error(handler)
    assert "exceeds" in str(exc)


async def test_handshake_error_closes_the_connection() -> None:
    """After a refused upgrade the client closes its socket (nothing is leaked)."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(accept="wrong")
        await peer.wait_eof()
        hung_up.set()

    await handshake_error(handler)
    assert hung_up.is_set()


# --------------------------------------------------------------------------------------------
# protocol violations after the handshake


async def violation(
    data: bytes,
    *,
    with_response: bool = False,
    accept_headers: list[tuple[str, str]] | None = None,
    **options: Any,
) -> tuple[list[WSMessage], trio_ws.ClientWebSocket, Frame | None]:
    """A server sends ``data`` after the 101 (in the same write, or separately), then reads the
    client's close frame and hangs up. Returns what the client received, the client and the
    close frame the server got."""
    got: list[Frame | None] = []

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=data if with_response else b"", headers=accept_headers or ())
        if not with_response:
            await peer.send(data)
        got.append(await peer.read_close())

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), **options) as ws:
                msgs = await receive_all(ws)
                with pytest.raises(WSClosedError) as info:
                    await ws.send_str("too late")
                assert info.value.__cause__ is ws.exception()
    assert len(got) == 1
    return msgs, ws, got[0]


def assert_failed(
    msgs: list[WSMessage], ws: trio_ws.ClientWebSocket, close: Frame | None, code: int
) -> None:
    """ERROR once (with the WSProtocolError), then CLOSED; our close frame carried ``code``."""
    assert [m.type for m in msgs] == [WSMsgType.ERROR, WSMsgType.CLOSED]
    exc = msgs[0].data
    assert isinstance(exc, WSProtocolError)
    assert exc is ws.exception()
    assert exc.code == code
    assert ws.close_code == code
    assert ws.closed
    assert close is not None
    assert close.masked
    assert close.close_code == code


@pytest.mark.parametrize("with_response", [False, True], ids=["separate", "with-101"])
async def test_masked_frame_from_server_fails_with_1002(with_response: bool) -> None:
    """A masked frame from the server: ERROR with WSProtocolError, close code 1002 sent."""
    msgs, ws, close = await violation(
        frame(OP_TEXT, b"hi", masked=True), with_response=with_response
    )
    assert_failed(msgs, ws, close, 1002)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(0x3, b"x"), id="reserved-opcode-3"),
        pytest.param(frame(0xB, b"x"), id="reserved-control-opcode-B"),
        pytest.param(frame(OP_TEXT, b"x", rsv=4), id="rsv1"),
        pytest.param(frame(OP_TEXT, b"x", rsv=2), id="rsv2"),
        pytest.param(frame(OP_BINARY, b"x", rsv=1), id="rsv3"),
        pytest.param(frame(OP_PING, b"x", fin=False), id="fragmented-ping"),
        pytest.param(frame(OP_PING, b"x" * 126), id="ping-too-long"),
        pytest.param(frame(OP_CONT, b"x"), id="continuation-without-start"),
        pytest.param(
            frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), id="new-message-mid-message"
        ),
        pytest.param(frame(OP_CLOSE, b"\x03"), id="close-payload-1-byte"),
        pytest.param(frame(OP_CLOSE, close_payload(1005)), id="close-code-1005"),
        pytest.param(frame(OP_CLOSE, close_payload(999)), id="close-code-999"),
    ],
)
async def test_framing_violation_fails_with_1002(data: bytes) -> None:
    """A bad opcode, reserved bits, a bad control frame or bad fragmentation: close code 1002."""
    msgs, ws, close = await violation(data)
    assert_failed(msgs, ws, close, 1002)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(OP_TEXT, b"\xff\xfe"), id="one-frame"),
        pytest.param(
            frame(OP_TEXT, "é".encode()[:1], fin=False) + frame(OP_CONT, b"a"), id="fragmented"
        ),
        pytest.param(frame(OP_CLOSE, close_payload(1000) + b"\xff"), id="close-reason"),
    ],
)
async def test_invalid_utf8_fails_with_1007(data: bytes) -> None:
    """Invalid UTF-8 in a TEXT message or a close reason: close code 1007."""
    msgs, ws, close = await violation(data)
    assert_failed(msgs, ws, close, 1007)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(OP_BINARY, b"x" * 101), id="one-frame"),
        pytest.param(
            frame(OP_TEXT, b"x" * 60, fin=False) + frame(OP_CONT, b"x" * 60), id="fragmented"
        ),
    ],
)
async def test_message_above_max_msg_size_fails_with_1009(data: bytes) -> None:
    """A message above max_msg_size, in one frame or in fragments: close code 1009."""
    msgs, ws, close = await violation(data, max_msg_size=100)
    assert_failed(msgs, ws, close, 1009)


def deflate(data: bytes) -> bytes:
    """A permessage-deflate payload (RFC 7692 §7.2.1: raw deflate, sync flush, tail removed)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[: -len(b"\x00\x00\xff\xff")]


async def test_compressed_message_above_max_msg_size_fails_with_1009() -> None:
    """A small compressed frame that inflates past max_msg_size fails with 1009."""
    msgs, ws, close = await violation(
        frame(OP_BINARY, deflate(b"\0" * 10_000), rsv=4),
        compress=15,
        max_msg_size=1000,
        accept_headers=[("Sec-WebSocket-Extensions", "permessage-deflate")],
    )
    assert_failed(msgs, ws, close, 1009)


async def test_decompression_bomb_is_refused_without_inflating_it() -> None:
    """A deflate bomb fails with 1009 while peak memory stays far below its inflated size."""
    bomb = frame(OP_BINARY, deflate(b"\0" * (16 << 20)), rsv=4)
    tracemalloc.start()
    try:
        msgs, ws, close = await violation(
            bomb,
            compress=15,
            max_msg_size=1 << 20,
            accept_headers=[("Sec-WebSocket-Extensions", "permessage-deflate")],
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_failed(msgs, ws, close, 1009)
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB while refusing a 16 MiB message"


async def test_frame_header_announcing_too_much_is_refused_at_once() -> None:
    """A frame header announcing more than max_msg_size fails with 1009 at once."""
    got: list[Frame | None] = []

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(OP_BINARY, b"x" * 1000)[:50])
        got.append(await peer.read_close())

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), max_msg_size=100) as ws:
                msg = await ws.receive(timeout=0.5)
    assert msg.type is WSMsgType.ERROR
    assert ws.close_code == 1009
    assert got[0] is not None
    assert got[0].close_code == 1009


async def test_messages_before_a_violation_are_delivered_first() -> None:
    """A message of exactly max_msg_size arrives; the bigger one after it gives ERROR (1009)."""
    msgs, ws, close = await violation(
        frame(OP_BINARY, b"a" * 100) + frame(OP_BINARY, b"b" * 101), max_msg_size=100
    )
    assert msgs[0] == WSMessage(WSMsgType.BINARY, b"a" * 100, None)
    assert_failed(msgs[1:], ws, close, 1009)


async def test_async_for_yields_the_error_then_stops() -> None:
    """async for (aiohttp semantics) yields the messages, then the ERROR, then stops."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(OP_TEXT, b"ok") + frame(0x3, b"?"))
        await peer.read_close()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                msgs = [msg async for msg in ws]
    assert [m.type for m in msgs] == [WSMsgType.TEXT, WSMsgType.ERROR]
    assert msgs[1].data is ws.exception()


async def test_violation_then_silent_server_ends_within_ws_close() -> None:
    """After a violation, a server that keeps TCP open delays exit by at most ws_close."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(OP_TEXT, b"x", masked=True))
        await peer.read_close()
        await peer.wait_eof()
        hung_up.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), timeout=ClientWSTimeout(ws_close=0.3)) as ws:
                assert (await ws.receive()).type is WSMsgType.ERROR
                start = trio.current_time()
            assert trio.current_time() - start < 1.0
            await hung_up.wait()
    assert ws.close_code == 1002


# --------------------------------------------------------------------------------------------
# the end of the connection


async def test_eof_without_close_frame_is_closed_1006_without_exception() -> None:
    """TCP EOF without a close frame: receive() returns CLOSED, close code 1006, no exception."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert await receive_all(ws) == [trio_ws.WSMessage(WSMsgType.CLOSED, None, None)]
                assert (ws.close_code, ws.exception(), ws.closed) == (1006, None, True)
                with pytest.raises(WSClosedError):
                    await ws.send_bytes(b"x")
                assert (await ws.receive()).type is WSMsgType.CLOSED


async def test_eof_inside_a_fragmented_message_drops_it() -> None:
    """EOF inside a fragmented message: earlier messages arrive, the fragment is dropped."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept(
            then=frame(OP_TEXT, b"whole") + frame(OP_TEXT, b"part", fin=False)
        )

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                msgs = await receive_all(ws)
    assert [(m.type, m.data) for m in msgs] == [
        (WSMsgType.TEXT, "whole"),
        (WSMsgType.CLOSED, None),
    ]
    assert (ws.close_code, ws.exception()) == (1006, None)


async def test_eof_inside_a_frame_is_closed_1006() -> None:
    """EOF in the middle of a frame's payload: CLOSED with 1006."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept(then=frame(OP_BINARY, b"x" * 50)[:20])

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert [m.type for m in await receive_all(ws)] == [WSMsgType.CLOSED]
    assert ws.close_code == 1006


async def test_connection_reset_gives_error_then_closed() -> None:
    """A TCP reset: ERROR with a WSConnectionError once, then CLOSED; close code 1006."""

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept()
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                msgs = await receive_all(ws)
    assert [m.type for m in msgs] == [WSMsgType.ERROR, WSMsgType.CLOSED]
    assert isinstance(msgs[0].data, WSConnectionError)
    assert msgs[0].data is ws.exception()
    assert ws.close_code == 1006


async def test_big_frames_in_pieces_arrive_whole_over_tcp() -> None:
    """Big frames that span many reads (read straight into one buffer on a plain socket)
    arrive whole and in order with the small messages around them."""
    big = bytes(range(256)) * 2048  # 512 KiB
    wire = frame(OP_BINARY, b"a") + frame(OP_BINARY, big) + frame(OP_BINARY, big[::-1])
    wire += frame(OP_BINARY, b"z")

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        for i in range(0, len(wire), 100_000):
            await stream.send_all(wire[i : i + 100_000])
            await trio.sleep(0.001)  # a read each time, cut anywhere
        await peer.read_close()
        await peer.send(frame(OP_CLOSE, close_payload(1000)))

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                got = [await ws.receive_bytes() for _ in range(4)]
    assert got == [b"a", big, big[::-1], b"z"]


async def test_connection_reset_in_the_middle_of_a_big_frame() -> None:
    """A reset while a big frame's payload is being read into its buffer: ERROR with a
    WSConnectionError, then CLOSED, 1006; the partial message is not delivered."""
    big = b"x" * (1 << 20)

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept()
        await stream.send_all(frame(OP_BINARY, big)[: 300_000])
        await trio.sleep(0.05)  # the client reads what came, then waits for the rest
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                msgs = await receive_all(ws)
    assert [m.type for m in msgs] == [WSMsgType.ERROR, WSMsgType.CLOSED]
    assert isinstance(msgs[0].data, WSConnectionError)
    assert ws.close_code == 1006


async def test_server_close_is_echoed_at_once_with_autoclose() -> None:
    """The server's close is echoed before receive(), which then gives CLOSE, then CLOSED."""
    echoed: list[Frame | None] = []
    echo_seen = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.send(frame(OP_CLOSE, close_payload(1001, "bye")))
        echoed.append(await peer.read_frame())
        echo_seen.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                await echo_seen.wait()
                msgs = await receive_all(ws)
                assert await ws.close() is False
    assert msgs == [
        WSMessage(WSMsgType.CLOSE, 1001, "bye"),
        WSMessage(WSMsgType.CLOSED, None, None),
    ]
    assert echoed[0] is not None
    assert (echoed[0].opcode, echoed[0].close_code) == (OP_CLOSE, 1001)
    assert (ws.close_code, ws.exception(), ws.closed) == (1001, None, True)


async def test_server_that_keeps_tcp_open_after_close_is_dropped_after_ws_close() -> None:
    """A server keeping TCP open after the close handshake delays exit by at most ws_close."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(OP_CLOSE, close_payload(1000)))
        await peer.read_close()
        await peer.wait_eof()
        hung_up.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), timeout=ClientWSTimeout(ws_close=0.3)) as ws:
                assert await ws.receive() == WSMessage(WSMsgType.CLOSE, 1000, "")
                start = trio.current_time()
            assert trio.current_time() - start < 1.0
            await hung_up.wait()
    assert (ws.close_code, ws.exception()) == (1000, None)


@pytest.mark.parametrize("with_response", [False, True], ids=["separate", "with-101"])
async def test_server_that_hangs_up_right_after_its_close_frame(with_response: bool) -> None:
    """A server that hangs up right after its close frame: CLOSE, CLOSED, no exception."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        closing = frame(OP_CLOSE, close_payload(1000, "done"))
        await peer.accept(then=closing if with_response else b"")
        if not with_response:
            await peer.send(closing)

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                msgs = await receive_all(ws)
                with pytest.raises(WSClosedError):
                    await ws.send_str("x")
    assert msgs == [
        WSMessage(WSMsgType.CLOSE, 1000, "done"),
        WSMessage(WSMsgType.CLOSED, None, None),
    ]
    assert (ws.close_code, ws.exception()) == (1000, None)


async def test_server_close_is_answered_by_the_application_without_autoclose() -> None:
    """autoclose=False: nothing is echoed; the server gets the close frame the app sends."""
    first: list[Frame | None] = []
    answered = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.send(frame(OP_CLOSE, close_payload(1001, "bye")))
        first.append(await peer.read_frame())
        answered.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), autoclose=False) as ws:
                assert await ws.receive() == WSMessage(WSMsgType.CLOSE, 1001, "bye")
                assert not answered.is_set()
                assert not ws.closed
                assert await ws.close(code=4000, message="ok") is True
                await answered.wait()
    assert first[0] is not None
    assert (first[0].opcode, first[0].close_code, first[0].close_reason) == (OP_CLOSE, 4000, "ok")
    assert ws.close_code == 1001


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda ws: ws.send_str("x"), id="send_str"),
        pytest.param(lambda ws: ws.send_bytes(b"x"), id="send_bytes"),
        pytest.param(lambda ws: ws.send_json({}), id="send_json"),
        pytest.param(lambda ws: ws.send_frame(b"x", WSMsgType.BINARY), id="send_frame"),
        pytest.param(lambda ws: ws.ping(), id="ping"),
        pytest.param(lambda ws: ws.pong(), id="pong"),
    ],
)
async def test_send_after_close_raises_closed_error(
    send: Callable[[trio_ws.ClientWebSocket], Awaitable[None]],
) -> None:
    """Every kind of send after close() raises WSClosedError."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        close = await peer.read_close()
        assert close is not None
        await peer.send(frame(OP_CLOSE, close.payload))

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert await ws.close() is True
                with pytest.raises(WSClosedError):
                    await send(ws)
                assert await ws.close() is False
    assert (ws.close_code, ws.exception()) == (1000, None)


async def test_send_after_server_close_raises_closed_error() -> None:
    """Once the server's close frame arrived, a send raises WSClosedError."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(OP_CLOSE, close_payload(1000)))
        await peer.read_close()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert (await ws.receive()).type is WSMsgType.CLOSE
                with pytest.raises(WSClosedError):
                    await ws.send_str("x")


async def test_server_that_never_answers_close_times_out_after_ws_close() -> None:
    """An unanswered close: close() returns True after ws_close, WSTimeoutError, code 1006."""
    got: list[Frame | None] = []
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        got.append(await peer.read_close())
        await peer.wait_eof()
        hung_up.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port), timeout=ClientWSTimeout(ws_close=0.5)) as ws:
                start = trio.current_time()
                assert await ws.close() is True
                elapsed = trio.current_time() - start
                assert await ws.receive() == WSMessage(WSMsgType.CLOSED, None, None)
            await hung_up.wait()
    assert 0.5 <= elapsed < 1.5
    assert isinstance(ws.exception(), WSTimeoutError)
    assert isinstance(ws.exception(), TimeoutError)
    assert ws.close_code == 1006
    assert got[0] is not None
    assert got[0].close_code == 1000


async def test_receive_after_close_returns_closed_forever() -> None:
    """After the closing handshake, receive() keeps returning CLOSED and async for stops."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        await peer.read_close()
        await peer.send(frame(OP_CLOSE, close_payload(1000)))

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                await ws.close()
                for _ in range(3):
                    assert (await ws.receive()).type is WSMsgType.CLOSED
                assert [msg async for msg in ws] == []


# --------------------------------------------------------------------------------------------
# misuse of an open connection


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda ws: ws.send_str(b"bytes"), trio_ws.WSMessageTypeError, id="send_str"),
        pytest.param(lambda ws: ws.send_bytes("text"), trio_ws.WSMessageTypeError, id="send_bytes"),
        pytest.param(lambda ws: ws.send_json({1, 2}), TypeError, id="send_json-unserializable"),
        pytest.param(lambda ws: ws.send_str("x", compress=9), InvalidArgument, id="compress-arg"),
        pytest.param(lambda ws: ws.ping(b"x" * 126), InvalidArgument, id="ping-too-long"),
        pytest.param(lambda ws: ws.pong(1), trio_ws.WSMessageTypeError, id="pong-not-bytes"),
        pytest.param(
            lambda ws: ws.send_frame(b"x", WSMsgType.CLOSE), InvalidArgument, id="frame-close"
        ),
        pytest.param(
            lambda ws: ws.send_frame(b"\xff", WSMsgType.TEXT), InvalidArgument, id="frame-utf8"
        ),
        pytest.param(lambda ws: ws.close(code=1006), InvalidArgument, id="close-1006"),
        pytest.param(lambda ws: ws.close(code=1005), InvalidArgument, id="close-1005"),
        pytest.param(lambda ws: ws.close(code=2999), InvalidArgument, id="close-2999"),
        pytest.param(lambda ws: ws.close(code=5000), InvalidArgument, id="close-5000"),
        pytest.param(lambda ws: ws.close(message="x" * 124), InvalidArgument, id="close-reason"),
    ],
)
async def test_bad_call_raises_and_leaves_the_connection_usable(
    call: Callable[[trio_ws.ClientWebSocket], Awaitable[object]], error: type[Exception]
) -> None:
    """A bad send or close argument raises a typed error and leaves the connection usable."""
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url()) as ws:
                with pytest.raises(error):
                    await call(ws)
                assert not ws.closed
                await ws.send_str("still open")
                assert await ws.receive_str() == "still open"
            assert (await server.closed("/echo"))["code"] == 1000
