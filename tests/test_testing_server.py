"""trio_ws.testing: the test server, driven by a raw wsproto client and by `websockets`."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
import trio
import trustme
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from trio_ws._types import WSMessage, WSMsgType
from trio_ws.testing import (
    HandshakeRequest,
    ServerConnection,
    TestServer,
    echo_handler,
    open_test_server,
)

EOF = "EOF"


class RawClient:
    """A wsproto client over a real TCP (or TLS) stream, one event at a time."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._pending: list[Event] = []

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def next_event(self) -> Event | str:
        """The next event from the server, or EOF once the server closed TCP."""
        while not self._pending:
            data = await self.stream.receive_some(65536)
            if not data:
                return EOF
            self.ws.receive_data(bytes(data))
            self._pending.extend(self.ws.events())
        return self._pending.pop(0)

    async def next_message(self) -> str | bytes:
        """The next whole TEXT or BINARY message (fragments joined)."""
        parts: list[Message[str] | Message[bytes | bytearray]] = []
        while True:
            event = await self.next_event()
            assert isinstance(event, (TextMessage, BytesMessage)), event
            parts.append(event)
            if event.message_finished:
                if isinstance(event, TextMessage):
                    return "".join(str(p.data) for p in parts)
                return b"".join(bytes(p.data) for p in parts if not isinstance(p.data, str))

    async def close(self, code: int = 1000) -> CloseConnection:
        """Run the client side of the closing handshake; the server's close frame."""
        await self.send(CloseConnection(code=code))
        event = await self.next_event()
        assert isinstance(event, CloseConnection), event
        assert await self.next_event() == EOF  # the server closes TCP first
        return event


@asynccontextmanager
async def raw_client(
    url_or_server: TestServer,
    path: str = "/",
    *,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[PerMessageDeflate] = (),
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ssl_context: ssl.SSLContext | None = None,
    expect_accept: bool = True,
) -> AsyncIterator[RawClient]:
    """Connect and send the upgrade request; with expect_accept, check the 101."""
    server = url_or_server
    tcp = await trio.open_tcp_stream(server.host, server.port)
    stream: trio.abc.Stream = tcp
    if ssl_context is not None:
        stream = trio.SSLStream(tcp, ssl_context, server_hostname="localhost")
    client = RawClient(stream)
    try:
        await client.send(
            Request(
                host="localhost",
                target=path,
                subprotocols=list(subprotocols),
                extensions=list(extensions),
                extra_headers=list(extra_headers),
            )
        )
        if expect_accept:
            event = await client.next_event()
            assert isinstance(event, AcceptConnection), event
        yield client
    finally:
        await trio.aclose_forcefully(stream)


async def test_echo_text_and_binary_and_close() -> None:
    """The default handler echoes TEXT and BINARY and answers the client's close."""
    async with open_test_server() as server, raw_client(server) as client:
        await client.send(TextMessage(data="hello"))
        assert await client.next_message() == "hello"
        await client.send(BytesMessage(data=b"\x00\x01"))
        assert await client.next_message() == b"\x00\x01"
        reply = await client.close(4001)
        assert reply.code == 4001  # the echo handler echoes the client's code
    conn = server.connections[0]
    assert conn.received == [
        WSMessage(WSMsgType.TEXT, "hello", None),
        WSMessage(WSMsgType.BINARY, b"\x00\x01", None),
        WSMessage(WSMsgType.CLOSE, 4001, ""),
    ]
    assert (conn.close_code, conn.close_reason) == (4001, "")
    assert server.errors == []


async def test_url_and_request_recorded() -> None:
    """url, url_for and the recorded request (path, headers as sent, offers) are exact."""
    async with (
        open_test_server() as server,
        raw_client(
            server,
            "/chat?room=1",
            subprotocols=["a", "b"],
            extra_headers=[(b"X-Custom", b"Value"), (b"x-custom", b"second")],
        ),
    ):
        assert server.url == f"ws://127.0.0.1:{server.port}/"
        assert server.url_for("/x?y=1") == f"ws://127.0.0.1:{server.port}/x?y=1"
        assert not server.secure
        request = server.requests[0]
        assert server.connections[0].request is request
        assert request.path == "/chat?room=1"
        assert request.method == "GET"
        assert request.subprotocols == ["a", "b"]
        assert request.extensions == []
        assert request.header("HOST") == "localhost"
        assert request.header("x-custom") == "Value"
        assert request.header_values("X-CUSTOM") == ["Value", "second"]
        assert request.header("missing", "default") == "default"
        assert ("X-Custom", "Value") in request.headers


def test_url_for_needs_a_slash() -> None:
    """url_for refuses a path without a leading slash."""
    server = TestServer(host="127.0.0.1", port=1, secure=False, url="ws://127.0.0.1:1/")
    with pytest.raises(ValueError, match="must start with"):
        server.url_for("x")


async def test_non_loopback_host_is_refused() -> None:
    """The server listens on loopback addresses only."""
    for host in ("0.0.0.0", "localhost", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            async with open_test_server(host=host):
                pass  # pragma: no cover


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
async def test_ipv6_loopback_url_has_brackets() -> None:
    """On ::1 the URL puts the address in brackets, and clients can connect."""
    try:
        cm = open_test_server(host="::1")
        server = await cm.__aenter__()
    except OSError:  # pragma: no cover - IPv6 disabled in this environment
        pytest.skip("cannot bind ::1")
    try:
        assert server.url == f"ws://[::1]:{server.port}/"
        async with raw_client(server) as client:
            await client.send(TextMessage(data="six"))
            assert await client.next_message() == "six"
    finally:
        await cm.__aexit__(None, None, None)


async def test_fragmented_messages_are_reassembled() -> None:
    """A message sent in fragments reaches the handler as one message."""
    async with open_test_server() as server, raw_client(server) as client:
        await client.send(TextMessage(data="hel", message_finished=False))
        await client.send(TextMessage(data="lo", message_finished=True))
        await client.send(BytesMessage(data=b"ab", message_finished=False))
        await client.send(BytesMessage(data=b"cd", message_finished=True))
        assert await client.next_message() == "hello"
        assert await client.next_message() == b"abcd"
        await client.close()


async def test_autopong_answers_pings_and_logs_them() -> None:
    """With autopong, pings are answered and logged, and receive() does not return them."""
    got: list[WSMessage] = []

    async def handler(conn: ServerConnection) -> None:
        got.append(await conn.receive())

    async with open_test_server(handler) as server, raw_client(server) as client:
        await client.send(Ping(payload=b"p1"))
        assert await client.next_event() == Pong(payload=b"p1")
        await client.send(TextMessage(data="after"))
        event = await client.next_event()  # the handler returned: the server closes
        assert event == CloseConnection(code=1000, reason="")
    assert got == [WSMessage(WSMsgType.TEXT, "after", None)]
    assert server.connections[0].received[0] == WSMessage(WSMsgType.PING, b"p1", None)


async def test_without_autopong_pings_reach_the_handler() -> None:
    """With autopong=False, a ping is delivered as PING and only the handler's pong goes out."""
    seen = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        msg = await conn.receive()
        assert msg == WSMessage(WSMsgType.PING, b"p", None)
        seen.set()
        await conn.pong(b"mine")

    async with open_test_server(handler, autopong=False) as server, raw_client(server) as client:
        await client.send(Ping(payload=b"p"))
        assert await client.next_event() == Pong(payload=b"mine")
        await seen.wait()
    assert server.errors == []


async def test_echo_handler_pongs_when_autopong_is_off() -> None:
    """The echo handler answers pings itself when the server does not."""
    async with open_test_server(autopong=False) as server, raw_client(server) as client:
        await client.send(Ping(payload=b"x"))
        assert await client.next_event() == Pong(payload=b"x")
        await client.close()


async def test_server_ping_and_client_pong() -> None:
    """The handler can ping; the client's pong comes back as PONG."""

    async def handler(conn: ServerConnection) -> None:
        await conn.ping(b"hb")
        assert await conn.receive() == WSMessage(WSMsgType.PONG, b"hb", None)
        await conn.send_str("got pong")

    async with open_test_server(handler) as server, raw_client(server) as client:
        event = await client.next_event()
        assert isinstance(event, Ping)
        await client.send(event.response())
        assert await client.next_message() == "got pong"
    assert server.errors == []


@pytest.mark.parametrize(
    ("offer", "supported", "chosen"),
    [
        (["b", "a"], ["a", "b"], "b"),
        (["x", "a"], ["a"], "a"),
        (["x"], ["a"], None),
        ([], ["a"], None),
    ],
)
async def test_subprotocol_is_the_first_offered_one_supported(
    offer: list[str], supported: list[str], chosen: str | None
) -> None:
    """The server picks the first subprotocol of the client's offer that it supports."""
    async with (
        open_test_server(subprotocols=supported) as server,
        raw_client(server, subprotocols=offer, expect_accept=False) as client,
    ):
        event = await client.next_event()
        assert isinstance(event, AcceptConnection)
        assert event.subprotocol == chosen
        assert server.connections[0].subprotocol == chosen


@pytest.mark.parametrize("compression", [True, False])
async def test_compression_is_negotiated_only_when_enabled(compression: bool) -> None:
    """permessage-deflate is accepted only with compression=True, and messages round-trip."""
    async with (
        open_test_server(compression=compression) as server,
        raw_client(server, extensions=[PerMessageDeflate()], expect_accept=False) as client,
    ):
        event = await client.next_event()
        assert isinstance(event, AcceptConnection)
        assert [ext.name for ext in event.extensions] == (
            ["permessage-deflate"] if compression else []
        )
        assert server.connections[0].compressed is compression
        assert server.requests[0].extensions[0].startswith("permessage-deflate")
        await client.send(TextMessage(data="z" * 10_000))
        assert await client.next_message() == "z" * 10_000
        await client.close()


async def test_reject_answers_every_upgrade() -> None:
    """reject= sends that status, headers and body, records the request, accepts nothing."""
    reject = (403, [(b"X-Why", b"because")], b"go away")
    async with (
        open_test_server(reject=reject) as server,
        raw_client(server, "/secret", expect_accept=False) as client,
    ):
        event = await client.next_event()
        assert isinstance(event, RejectConnection)
        assert event.status_code == 403
        assert (b"x-why", b"because") in event.headers
        assert (b"content-length", b"7") in event.headers
        body = b""
        while True:
            data = await client.next_event()
            assert isinstance(data, RejectData)
            body += data.data
            if data.body_finished:
                break
        assert body == b"go away"
        assert await client.next_event() == EOF
    assert [r.path for r in server.requests] == ["/secret"]
    assert server.connections == []


async def test_invalid_upgrade_gets_400_and_is_recorded() -> None:
    """A plain HTTP GET without the upgrade headers is refused with 400."""
    async with open_test_server() as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(b"GET /plain HTTP/1.1\r\nHost: localhost\r\n\r\n")
            response = await _read_all(stream)
        assert response.startswith(b"HTTP/1.1 400 ")
        assert [r.path for r in server.requests] == ["/plain"]
        assert server.connections == []


async def test_non_get_upgrade_gets_405() -> None:
    """An upgrade request with another method than GET is refused with 405."""
    async with open_test_server() as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(_raw_upgrade(b"POST"))
            response = await _read_all(stream)
        assert response.startswith(b"HTTP/1.1 405 ")
        assert server.requests[0].method == "POST"


async def test_garbage_gets_400_without_a_recorded_request() -> None:
    """Bytes that are not HTTP get a 400 response, and no request is recorded."""
    async with open_test_server() as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(b"\x16\x03\x01 not http\r\n\r\n")
            response = await _read_all(stream)
        assert response.startswith(b"HTTP/1.1 400 ")
        assert server.requests == []


async def test_eof_before_the_request_is_harmless() -> None:
    """A client that connects and leaves without a request does not disturb the server."""
    async with open_test_server() as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        await stream.send_eof()
        assert await _read_all(stream) == b""
        await stream.aclose()
        async with raw_client(server) as client:
            await client.send(TextMessage(data="still there"))
            assert await client.next_message() == "still there"
        assert server.errors == []


async def test_frames_sent_with_the_request_are_not_lost() -> None:
    """A frame pipelined right behind the upgrade request is still received."""
    async with open_test_server() as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(_raw_upgrade(b"GET") + _masked_text_frame(b"early"))
            response = await _read_all(stream, until=b"early")
        assert response.startswith(b"HTTP/1.1 101 ")
        assert response.endswith(b"\x81\x05early")
        assert server.connections[0].received[0] == WSMessage(WSMsgType.TEXT, "early", None)


async def test_handler_error_is_logged_recorded_and_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing handler is logged, recorded, gets 1011, and other connections keep working."""

    async def handler(conn: ServerConnection) -> None:
        msg = await conn.receive()
        if msg.data == "boom":
            raise KeyError("boom")
        await echo_handler(conn)

    with caplog.at_level(logging.ERROR, logger="trio_ws.testing"):
        async with (
            open_test_server(handler) as server,
            raw_client(server) as good,
            raw_client(server) as bad,
        ):
            await bad.send(TextMessage(data="boom"))
            event = await bad.next_event()
            assert event == CloseConnection(code=1011, reason="handler error")
            await bad.send(event.response())
            assert await bad.next_event() == EOF
            await good.send(TextMessage(data="first"))
            await good.send(TextMessage(data="second"))
            assert await good.next_message() == "second"
    conn = server.connections[1]
    assert isinstance(conn.error, KeyError)
    assert server.errors == [conn.error]
    assert server.connections[0].error is None
    assert any("handler failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_server_close_runs_the_closing_handshake() -> None:
    """close() sends the close frame, waits for the client's, records it, then closes TCP."""
    closed = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        await conn.close(4000, "bye")
        assert conn.close_code == 1000
        assert await conn.receive() == WSMessage(WSMsgType.CLOSE, 1000, "")
        assert await conn.receive() == WSMessage(WSMsgType.CLOSED, None, None)
        with pytest.raises(trio.ClosedResourceError):
            await conn.send_str("too late")
        await conn.close()  # a second close does nothing
        closed.set()

    async with open_test_server(handler) as server, raw_client(server) as client:
        event = await client.next_event()
        assert event == CloseConnection(code=4000, reason="bye")
        await client.send(CloseConnection(code=1000))
        assert await client.next_event() == EOF
        await closed.wait()
    assert server.errors == []


async def test_close_without_answer_gives_up_after_timeout() -> None:
    """close() stops waiting for a silent client after its timeout and closes TCP anyway."""

    async def handler(conn: ServerConnection) -> None:
        await conn.close(timeout=0.01)

    async with open_test_server(handler) as server, raw_client(server) as client:
        assert await client.next_event() == CloseConnection(code=1000, reason="")
        assert await client.next_event() == EOF  # never answered, still closed
    assert server.connections[0].close_code is None


async def test_messages_before_the_client_close_are_delivered_then_close() -> None:
    """receive() returns queued messages, then CLOSE, then CLOSED forever."""
    got: list[WSMessage] = []

    async def handler(conn: ServerConnection) -> None:
        got.extend([await conn.receive() for _ in range(4)])

    async with open_test_server(handler) as server, raw_client(server) as client:
        await client.send(TextMessage(data="last words"))
        await client.send(CloseConnection(code=1001, reason="leaving"))
        event = await client.next_event()
        assert event == CloseConnection(code=1000, reason="")  # handler returned: close reply
        assert await client.next_event() == EOF
    assert got == [
        WSMessage(WSMsgType.TEXT, "last words", None),
        WSMessage(WSMsgType.CLOSE, 1001, "leaving"),
        WSMessage(WSMsgType.CLOSED, None, None),
        WSMessage(WSMsgType.CLOSED, None, None),
    ]


async def test_echo_drops_a_message_that_raced_the_client_close() -> None:
    """The echo handler cannot echo after the client's close frame, and still answers it."""
    async with open_test_server() as server, raw_client(server) as client:
        # Both arrive in one segment, so the server sees the close before echoing.
        await client.stream.send_all(
            client.ws.send(TextMessage(data="x")) + client.ws.send(CloseConnection(code=1000))
        )
        assert await client.next_event() == CloseConnection(code=1000, reason="")
        assert await client.next_event() == EOF
    assert server.errors == []


async def test_echo_handler_takes_a_client_reset_mid_echo_calmly() -> None:
    """A client that resets TCP while its message is being echoed is no handler error."""
    # 16 MiB cannot fit in the server's send buffer (tcp_wmem caps it at 4 MiB) plus the
    # client's tiny receive buffer, so the echo is still inside send_all when the RST arrives.
    payload = b"e" * (16 * 1024 * 1024)
    done = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        try:
            await echo_handler(conn)
        finally:
            done.set()

    with trio.fail_after(20):
        async with open_test_server(handler) as server:
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
            await sock.connect((server.host, server.port))
            tcp = trio.SocketStream(sock)
            client = RawClient(tcp)
            try:
                await client.send(Request(host="localhost", target="/"))
                assert isinstance(await client.next_event(), AcceptConnection)
                await client.send(BytesMessage(data=payload))
                # The first bytes of the echo prove the server is inside send_all.
                assert await tcp.receive_some(2)
                # SO_LINGER 0: close() sends RST instead of FIN.
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                await tcp.aclose()
            await done.wait()
    conn = server.connections[0]
    assert conn.received == [WSMessage(WSMsgType.BINARY, payload, None)]
    assert conn.error is None
    assert server.errors == []


async def test_client_eof_without_close_frame() -> None:
    """A client that drops TCP: receive() returns CLOSED and close_code stays None."""
    got: list[WSMessage] = []
    done = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        got.append(await conn.receive())
        with pytest.raises(trio.ClosedResourceError):
            await conn.send_str("nobody there")
        done.set()

    async with open_test_server(handler) as server:
        async with raw_client(server):
            pass  # drops TCP on exit
        await done.wait()
    assert got == [WSMessage(WSMsgType.CLOSED, None, None)]
    assert server.connections[0].close_code is None
    assert server.errors == []


async def test_protocol_violation_gets_close_code_and_error() -> None:
    """An unmasked client frame gets close 1002, and receive() returns ERROR then CLOSED."""
    got: list[WSMessage] = []

    async def handler(conn: ServerConnection) -> None:
        got.append(await conn.receive())
        got.append(await conn.receive())

    async with open_test_server(handler) as server, raw_client(server) as client:
        await client.stream.send_all(b"\x81\x02hi")  # unmasked: RFC 6455 §5.1 forbids it
        event = await client.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1002
        await client.send(event.response())
        assert await client.next_event() == EOF
    assert got[0].type is WSMsgType.ERROR
    assert got[0].data == 1002
    assert got[1] == WSMessage(WSMsgType.CLOSED, None, None)
    assert server.errors == []


async def test_invalid_utf8_gets_1007() -> None:
    """A TEXT frame that is not UTF-8 gets close code 1007."""
    async with open_test_server() as server, raw_client(server) as client:
        await client.stream.send_all(_masked_frame(0x81, b"\xff\xfe"))
        event = await client.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1007
        await client.send(event.response())
        assert await client.next_event() == EOF
    assert server.connections[0].received[-1].type is WSMsgType.ERROR


async def test_send_raw_and_aclose() -> None:
    """send_raw writes bytes as they are; aclose drops TCP without a close frame."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send_raw(b"\x81\x03raw")
        await conn.aclose()
        await conn.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await conn.send_str("x")

    async with open_test_server(handler) as server, raw_client(server) as client:
        assert await client.next_message() == "raw"
        assert await client.next_event() == EOF
    assert server.errors == []


async def test_leaving_the_block_drops_connections_and_listener() -> None:
    """Exiting the context cancels handlers, closes connections and stops listening."""
    started = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        started.set()
        await trio.sleep_forever()

    async with open_test_server(handler) as server:
        client_cm = raw_client(server)
        client = await client_cm.__aenter__()
        await started.wait()
    try:
        assert await client.next_event() == EOF
    finally:
        await client_cm.__aexit__(None, None, None)
    with pytest.raises(OSError):
        await trio.open_tcp_stream(server.host, server.port)


async def test_body_exception_is_not_wrapped() -> None:
    """An exception raised inside the block leaves it unchanged (no ExceptionGroup)."""
    with pytest.raises(KeyError, match="mine"):
        async with open_test_server():
            raise KeyError("mine")


async def test_outer_cancellation_stays_cancellation() -> None:
    """Cancelling the code around the server cancels cleanly, as a plain Cancelled."""
    with trio.CancelScope() as scope:
        async with open_test_server() as server, raw_client(server):
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_tls_echo() -> None:
    """With ssl_context the server speaks wss, and the url says so."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with (
        open_test_server(ssl_context=server_ctx) as server,
        raw_client(server, ssl_context=client_ctx) as client,
    ):
        assert server.secure
        assert server.url == f"wss://127.0.0.1:{server.port}/"
        await client.send(TextMessage(data="secret"))
        assert await client.next_message() == "secret"
        await client.close()


async def test_tls_handshake_failure_does_not_disturb_the_server() -> None:
    """A client that rejects the certificate fails alone; the server stays up."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    untrusting = ssl.create_default_context()  # does not trust the test CA
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with open_test_server(ssl_context=server_ctx) as server:
        with pytest.raises(trio.BrokenResourceError):
            async with raw_client(server, ssl_context=untrusting):
                pass  # pragma: no cover
        async with raw_client(server, ssl_context=trusting) as client:
            await client.send(TextMessage(data="ok"))
            assert await client.next_message() == "ok"
        assert server.errors == []


async def test_websockets_client_interoperates() -> None:
    """The independent `websockets` client can talk to the server (subprotocol, deflate)."""
    from websockets.sync.client import connect

    def talk(url: str) -> tuple[object, object, str | None]:
        # websockets' sync client in a worker thread: acceptable for this interop test only.
        with connect(url, subprotocols=["chat"], compression="deflate") as ws:  # type: ignore[list-item]
            ws.send("hello")
            text = ws.recv(timeout=5)
            ws.send(b"\x00\x01")
            blob = ws.recv(timeout=5)
            return text, blob, ws.subprotocol

    async with open_test_server(subprotocols=["chat"], compression=True) as server:
        text, blob, subprotocol = await trio.to_thread.run_sync(talk, server.url_for("/ws"))
    assert (text, blob, subprotocol) == ("hello", b"\x00\x01", "chat")
    conn = server.connections[0]
    assert conn.compressed
    assert conn.close_code == 1000
    assert conn.received[:2] == [
        WSMessage(WSMsgType.TEXT, "hello", None),
        WSMessage(WSMsgType.BINARY, b"\x00\x01", None),
    ]
    assert server.errors == []


def test_handshake_request_is_a_value() -> None:
    """HandshakeRequest compares by value."""
    a = HandshakeRequest(path="/", headers=[("Host", "x")], subprotocols=[], extensions=[])
    assert a == HandshakeRequest(path="/", headers=[("Host", "x")], subprotocols=[], extensions=[])


# ---- helpers ------------------------------------------------------------------------------


def _raw_upgrade(method: bytes) -> bytes:
    return (
        method + b" /raw HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )


def _masked_frame(first_byte: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first_byte, 0x80 | len(payload)]) + mask + masked


def _masked_text_frame(payload: bytes) -> bytes:
    return _masked_frame(0x81, payload)


async def _read_all(stream: trio.abc.ReceiveStream, until: bytes | None = None) -> bytes:
    """Read until EOF (or until the data ends with `until`)."""
    data = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return data
        data += chunk
        if until is not None and data.endswith(until):
            return data
