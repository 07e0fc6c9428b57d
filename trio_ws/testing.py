"""A small, real WebSocket server for tests: :func:`open_test_server`.

Use it to test code that uses trio_ws (or any WebSocket client) against a real server on the
loopback interface, with no network and no third-party server::

    from trio_ws.testing import open_test_server

    async def test_echo() -> None:
        async with open_test_server() as server, trio_ws.open_ws(server.url) as ws:
            await ws.send_str("hi")
            assert (await ws.receive()).data == "hi"
        assert server.connections[0].received[0].data == "hi"

Theory of operation
-------------------

This is server-side code, independent of the trio_ws client (it only borrows the value types
of ``trio_ws._types``), so a bug in the client cannot hide behind the same bug in the server.
wsproto does the protocol work (the upgrade checks, framing, masking rules, permessage-deflate);
this module only moves bytes and decides policy.

* ``open_test_server`` starts :func:`trio.serve_tcp` in a nursery on 127.0.0.1 (or ::1) and
  yields a :class:`TestServer`. Leaving the ``async with`` cancels that nursery: the listener
  closes and every connection is dropped (TCP closed, no close frame). An exception raised in
  the body leaves the ``async with`` as it is, never wrapped in an ``ExceptionGroup``.
* One task per TCP connection: TLS handshake (``wss``), then the HTTP request is parsed with
  h11 so that :class:`HandshakeRequest` records every header exactly as sent, then the request
  goes through wsproto's server handshake (``initiate_upgrade_connection``), which checks it.
  A bad upgrade gets wsproto's 4xx answer, ``reject=`` answers every upgrade with the given
  response, otherwise the server accepts (subprotocol, permessage-deflate). The connection is
  appended to ``TestServer.connections`` *before* the 101 response is sent, so it is there by
  the time the client's connect returns. The whole opening phase is bounded by
  ``HANDSHAKE_TIMEOUT``.
* After the upgrade, two tasks share the connection. The *reader* reads in 64 KiB chunks,
  feeds wsproto, reassembles fragmented messages, logs every message in
  ``ServerConnection.received``, answers pings itself when ``autopong`` is on, and hands the
  rest to an unbounded queue that :meth:`ServerConnection.receive` takes from. It never answers
  a close frame itself: the handler decides (so a test can script a server that never answers).
  The *handler* (yours, or :func:`echo_handler`) runs in the connection task. When it returns
  the server closes the connection gracefully; when it raises, the exception is logged on the
  ``trio_ws.testing`` logger, kept in ``ServerConnection.error`` and ``TestServer.errors``, and
  the connection is closed with 1011. Other connections never notice.
* Every byte goes out under one lock, and frames are produced under it, so wire order equals
  wsproto order even when the reader sends a pong while the handler sends a message.
* A client that breaks the protocol (unmasked frame, bad UTF-8, bad opcode...) gets a close
  frame with wsproto's code; ``receive()`` returns ``ERROR`` (data = that code) and then
  ``CLOSED``, and the server closes TCP once the client answers or after ``CLOSE_TIMEOUT``.
* Waits are bounded or tied to the peer: the opening phase by ``HANDSHAKE_TIMEOUT``, the
  closing handshake by ``CLOSE_TIMEOUT``; ``receive()`` and sends wait for the client, and all
  of it ends when the ``async with`` exits.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Final, final

import attrs
import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import RemoteProtocolError

from ._types import WSCloseCode, WSMessage, WSMsgType

__all__ = [
    "CLOSE_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "HandshakeRequest",
    "ServerConnection",
    "TestServer",
    "echo_handler",
    "open_test_server",
]

logger: Final = logging.getLogger("trio_ws.testing")

#: Bytes asked for per read.
RECEIVE_SIZE: Final = 65536
#: Seconds allowed for the TLS handshake plus the HTTP upgrade request of one connection.
HANDSHAKE_TIMEOUT: Final = 10.0
#: Default seconds :meth:`ServerConnection.close` waits for the client's close frame.
CLOSE_TIMEOUT: Final = 5.0
#: Largest HTTP upgrade request accepted (bytes); larger ones get 431 from h11.
MAX_REQUEST_SIZE: Final = 64 * 1024

_CLOSED: Final = WSMessage(WSMsgType.CLOSED, None, None)

Handler = Callable[["ServerConnection"], Awaitable[None]]


@attrs.frozen
class HandshakeRequest:
    """One HTTP upgrade request as the client sent it (recorded even when it is refused).

    Attributes:
        path: the request target, with its query string (``"/chat?room=1"``).
        headers: every header in order, names in the case the client used, values decoded
            as latin-1 (``Host``, ``Origin``, ``Sec-WebSocket-*``, ``Authorization``... included).
        subprotocols: the ``Sec-WebSocket-Protocol`` offer, in the client's order.
        extensions: the ``Sec-WebSocket-Extensions`` offers, one string per extension with
            its parameters (``"permessage-deflate; client_max_window_bits"``).
        method: the HTTP method (``"GET"`` for any real upgrade).
    """

    path: str
    headers: list[tuple[str, str]]
    subprotocols: list[str]
    extensions: list[str]
    method: str = "GET"

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``default``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


@final
class ServerConnection:
    """The server side of one accepted WebSocket connection, as a handler sees it.

    Created by the server; handlers receive it. Sending methods raise
    :class:`trio.ClosedResourceError` once the server's close frame was sent or the client's
    close frame arrived (wsproto allows no data then) or after :meth:`aclose`, and
    :class:`trio.BrokenResourceError` when the client is gone. Cancelling a send may leave a
    partial frame on the wire; this is a test server, so that is the test's business.

    Attributes:
        request: the upgrade request that opened this connection.
        subprotocol: the subprotocol the server chose, or ``None``.
        compressed: whether permessage-deflate was negotiated.
        received: every message the client sent, in order, as :class:`~trio_ws.WSMessage`:
            TEXT (``str``), BINARY, PING and PONG (``bytes``), CLOSE (data = code,
            extra = reason) and ERROR (the client broke the protocol; data = the close code
            the server sent, extra = wsproto's description). Pings are logged even when
            ``autopong`` answered them.
        close_code: the code of the client's close frame once it arrived (1005 if it had
            none), else ``None``.
        close_reason: the reason of the client's close frame (``""`` if it had none), or
            ``None`` before it arrived.
        error: the exception the handler raised, if it raised.
    """

    def __init__(
        self,
        *,
        stream: trio.abc.Stream,
        ws: WSConnection,
        request: HandshakeRequest,
        subprotocol: str | None,
        compressed: bool,
        autopong: bool,
        initial_data: bytes,
        errors: list[BaseException],
    ) -> None:
        self.request: HandshakeRequest = request
        self.subprotocol: str | None = subprotocol
        self.compressed: bool = compressed
        self.received: list[WSMessage] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.error: BaseException | None = None
        self._stream = stream
        self._ws = ws
        self._autopong = autopong
        self._initial_data = initial_data
        self._server_errors = errors
        self._write_lock = trio.Lock()
        self._inbox_send, self._inbox = trio.open_memory_channel[WSMessage](math.inf)
        # Set when the client's close frame or the end of the stream has been seen.
        self._peer_closed = trio.Event()
        self._reader_scope = trio.CancelScope()
        self._tcp_closed = False
        self._text_parts: list[str] = []
        self._binary_parts: list[bytes] = []

    def __repr__(self) -> str:
        return f"<ServerConnection {self.request.path!r} state={self._ws.state.name}>"

    # ---- what handlers call -----------------------------------------------------------

    async def receive(self) -> WSMessage:
        """Wait for the next message from the client.

        Returns TEXT, BINARY, PONG, PING (only when the server's ``autopong`` is off), CLOSE
        (the client's close frame: data = code, extra = reason; answer it with :meth:`close`)
        or ERROR (the client broke the protocol), and ``CLOSED`` forever once the connection is
        over. Waits for the client, without a deadline of its own; cancelling it loses no
        message.
        """
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            return _CLOSED

    async def send_str(self, data: str) -> None:
        """Send one TEXT message (compressed if permessage-deflate was negotiated)."""
        await self._send_event(TextMessage(data=data))

    async def send_bytes(self, data: bytes) -> None:
        """Send one BINARY message (compressed if permessage-deflate was negotiated)."""
        await self._send_event(BytesMessage(data=data))

    async def ping(self, payload: bytes = b"") -> None:
        """Send a ping; the client's pong shows up in :meth:`receive` as PONG."""
        await self._send_event(Ping(payload=payload))

    async def pong(self, payload: bytes = b"") -> None:
        """Send a pong (unsolicited, or to answer a ping when ``autopong`` is off)."""
        await self._send_event(Pong(payload=payload))

    async def send_raw(self, data: bytes) -> None:
        """Write ``data`` to the socket as it is, bypassing wsproto (protocol-violation tests).

        Server frames are unmasked: ``b"\\x81\\x02hi"`` is a TEXT frame ``"hi"``.
        """
        async with self._write_lock:
            await self._stream.send_all(data)

    async def close(
        self, code: int = WSCloseCode.OK, reason: str = "", *, timeout: float = CLOSE_TIMEOUT
    ) -> None:
        """Run the closing handshake, then close TCP (RFC 6455 §7.1.1: the server closes first).

        Sends a close frame with ``code`` and ``reason`` unless one was sent already (after
        the client's close frame, this is the answer), waits up to ``timeout`` seconds for the
        client's close frame or the end of its stream, then closes the connection. Does
        nothing more on a connection whose TCP is already closed. If cancelled, the connection
        is still closed before ``Cancelled`` propagates.
        """
        try:
            if self._tcp_closed:
                await trio.lowlevel.checkpoint()
                return
            try:
                await self._send_event(CloseConnection(code=code, reason=reason or None))
            except trio.ClosedResourceError:
                pass  # our close frame went out already, or the client's stream ended: just wait
            except trio.BrokenResourceError:
                return  # the client is gone: nothing to wait for
            with trio.move_on_after(timeout):
                await self._peer_closed.wait()
        finally:
            await self._close_tcp(graceful=True)

    async def aclose(self) -> None:
        """Drop the TCP connection at once, without a close frame (the client sees 1006)."""
        await self._close_tcp(graceful=False)

    # ---- internals -----------------------------------------------------------------

    async def _send_event(self, event: Event) -> None:
        # State check, framing and send_all all happen under the lock: wire order == wsproto order.
        async with self._write_lock:
            state = self._ws.state
            allowed = {ConnectionState.OPEN}
            if isinstance(event, CloseConnection):
                allowed.add(ConnectionState.REMOTE_CLOSING)
            if (
                self._tcp_closed
                or state not in allowed
                or (self._peer_closed.is_set() and state is ConnectionState.OPEN)
            ):
                raise trio.ClosedResourceError(
                    f"cannot send {type(event).__name__}: the WebSocket is {state.name}"
                    + (" and its TCP connection is closed" if self._tcp_closed else "")
                )
            await self._stream.send_all(self._ws.send(event))

    async def _close_tcp(self, *, graceful: bool) -> None:
        if self._tcp_closed:
            await trio.lowlevel.checkpoint()
            return
        self._tcp_closed = True
        self._reader_scope.cancel()
        if graceful:
            # A TLS close_notify could block on a client that does not read: bound it. An
            # aclose that is cancelled still closes the transport.
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._stream.aclose()
        else:
            await trio.aclose_forcefully(self._stream)

    async def _run(self, handler: Handler) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_loop)
            try:
                await handler(self)
            except Exception as exc:
                self.error = exc
                self._server_errors.append(exc)
                logger.exception("handler failed on %r", self)
                await self.close(WSCloseCode.INTERNAL_ERROR, "handler error")
            else:
                await self.close()
            nursery.cancel_scope.cancel()

    async def _read_loop(self) -> None:
        failed = False
        try:
            with self._reader_scope:
                failed = await self._read_frames()
            if failed:
                # Outside the reader's scope, which closing cancels: the close_notify of TLS
                # still goes out.
                await self._close_tcp(graceful=True)
        except Exception as exc:  # a bug in this module: record it, never crash the server
            self.error = exc
            self._server_errors.append(exc)
            logger.exception("reader failed on %r", self)
            await trio.aclose_forcefully(self._stream)
        finally:
            self._peer_closed.set()
            self._inbox_send.close()

    async def _read_frames(self) -> bool:
        """Read until EOF; True if it stopped because the client broke the protocol."""
        data = self._initial_data
        while True:
            if data and self._ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if not await self._dispatch(event):
                        return True
            # Otherwise the close handshake is over (or half over): bytes after the client's
            # close frame mean nothing, so they are dropped while we wait for EOF.
            try:
                data = bytes(await self._stream.receive_some(RECEIVE_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            if not data:
                return False  # EOF (with or without a close frame first)

    async def _dispatch(self, event: Event) -> bool:
        """Handle one wsproto event; False once the connection must be closed."""
        if isinstance(event, TextMessage):
            self._text_parts.append(event.data)
            if event.message_finished:
                self._deliver(WSMessage(WSMsgType.TEXT, "".join(self._text_parts), None))
                self._text_parts = []
        elif isinstance(event, BytesMessage):
            self._binary_parts.append(bytes(event.data))
            if event.message_finished:
                self._deliver(WSMessage(WSMsgType.BINARY, b"".join(self._binary_parts), None))
                self._binary_parts = []
        elif isinstance(event, Ping):
            message = WSMessage(WSMsgType.PING, bytes(event.payload), None)
            if self._autopong:
                self.received.append(message)
                try:
                    await self._send_event(event.response())
                except trio.ClosedResourceError:
                    pass  # closing: RFC 6455 §5.5.1 allows no more frames after our close
                except trio.BrokenResourceError:
                    return True
            else:
                self._deliver(message)
        elif isinstance(event, Pong):
            self._deliver(WSMessage(WSMsgType.PONG, bytes(event.payload), None))
        elif isinstance(event, CloseConnection):
            if self._ws.state in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED):
                # A real close frame from the client (wsproto moved its state).
                self.close_code = int(event.code)  # a plain int, not wsproto's CloseReason
                self.close_reason = event.reason or ""
                self._deliver(WSMessage(WSMsgType.CLOSE, self.close_code, self.close_reason))
                # Nothing can follow a close frame: receive() returns CLOSED from now on,
                # while this task keeps reading until EOF.
                self._inbox_send.close()
                self._peer_closed.set()
                return True
            # wsproto reports a protocol violation as a CloseConnection without a state change.
            await self._fail(event.code, event.reason or "")
            return False
        else:  # pragma: no cover - wsproto yields nothing else after the handshake
            raise TypeError(f"unexpected wsproto event {event!r}")
        return True

    def _deliver(self, message: WSMessage) -> None:
        self.received.append(message)
        self._inbox_send.send_nowait(message)

    async def _fail(self, code: int, reason: str) -> None:
        """The client broke the protocol: send our close frame, then end the connection."""
        logger.info("client broke the protocol on %r: %s %s", self, code, reason)
        self._deliver(WSMessage(WSMsgType.ERROR, int(code), reason))
        try:
            await self._send_event(CloseConnection(code=code, reason=reason or None))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # gone or closing already: nothing to add
        else:
            # wsproto can parse no further, so wait for whatever the client sends next (its
            # close frame, most likely) or EOF: closing TCP with unread bytes would send a
            # reset that could destroy our close frame before the client reads it.
            with trio.move_on_after(CLOSE_TIMEOUT):
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._stream.receive_some(RECEIVE_SIZE)
        self._peer_closed.set()


async def echo_handler(conn: ServerConnection) -> None:
    """The default handler: echo TEXT and BINARY, answer pings and the client's close.

    Pings are answered by the server's ``autopong`` (or here, when it is off). A message that
    arrives just before the client's close frame cannot be echoed (wsproto allows no data after
    a close frame) and is dropped. A client that goes away while its message is being echoed
    (reset, or gone before the echo) is not a handler error: the handler just returns. Returns
    when the connection is over.
    """
    while True:
        msg = await conn.receive()
        try:
            if msg.type is WSMsgType.TEXT:
                await conn.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await conn.send_bytes(msg.data)
            elif msg.type is WSMsgType.PING:
                await conn.pong(msg.data)
        except trio.ClosedResourceError:
            continue  # the client's close frame is next in the queue; answer it below
        except trio.BrokenResourceError:
            return  # the client is gone (reset mid-echo): nothing left to echo or answer
        if msg.type is WSMsgType.CLOSE:
            await conn.close(msg.data)
            return
        if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSED):
            return


@attrs.define(eq=False)
class TestServer:
    """A running test server, as yielded by :func:`open_test_server`.

    Attributes:
        host: the address it listens on (``127.0.0.1`` or ``::1``).
        port: the port it listens on.
        secure: whether it speaks TLS (``wss``).
        url: ``ws://HOST:PORT/`` or ``wss://HOST:PORT/`` with the host as given (IPv6 in
            brackets); for TLS, connect with ``server_hostname`` matching the certificate.
        connections: every accepted connection, in order; a connection is appended before its
            101 response is sent.
        requests: every upgrade request, in order, including refused ones; appended before the
            response is sent.
        errors: every exception a handler raised, in order (``assert not server.errors`` at the
            end of a test catches failing assertions inside handlers).
    """

    __test__ = False  # not a pytest test class, despite the name

    host: str
    port: int
    secure: bool
    url: str
    connections: list[ServerConnection] = attrs.field(factory=list)
    requests: list[HandshakeRequest] = attrs.field(factory=list)
    errors: list[BaseException] = attrs.field(factory=list)

    def url_for(self, path: str) -> str:
        """The URL of ``path`` (with its query string, if any) on this server.

        Raises:
            ValueError: ``path`` does not start with ``/``.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        return self.url[:-1] + path


@attrs.frozen
class _Options:
    handler: Handler
    ssl_context: ssl.SSLContext | None
    subprotocols: tuple[str, ...]
    compression: bool
    reject: tuple[int, list[tuple[bytes, bytes]], bytes] | None
    autopong: bool


@asynccontextmanager
async def open_test_server(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    subprotocols: Sequence[str] = (),
    compression: bool = False,
    reject: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None,
    autopong: bool = True,
) -> AsyncIterator[TestServer]:
    """Run a WebSocket server on the loopback interface for the duration of the block.

    Each accepted connection runs ``handler(conn)`` in its own task; when the handler returns,
    the server closes the connection gracefully (close frame 1000, or the answer to the client's
    close frame). Leaving the block cancels all handlers and drops every connection without a
    close frame; an exception raised in the block propagates unchanged.

    Args:
        handler: the coroutine function that serves one connection; ``None`` means
            :func:`echo_handler`. If it raises, the exception is logged, recorded in
            ``conn.error`` and ``server.errors``, and the client gets close code 1011.
        host: ``"127.0.0.1"`` or ``"::1"`` (the server never listens beyond loopback).
        port: the port; 0 picks a free one.
        ssl_context: a server-side context (e.g. from trustme) to serve ``wss``.
        subprotocols: the subprotocols the server supports; it picks the first one in the
            client's offer that it supports, or none.
        compression: accept permessage-deflate when the client offers it.
        reject: ``(status, headers, body)``: answer every valid upgrade request with this HTTP
            response instead (``Content-Length`` is added unless given).
        autopong: answer pings automatically (they still appear in ``conn.received``); when
            False, pings reach the handler as PING messages.

    Yields:
        The running :class:`TestServer`.

    Raises:
        ValueError: ``host`` is not a loopback IP address.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the test server listens on a loopback address (127.0.0.1 or ::1) only, not {host!r}"
        )
    options = _Options(
        handler=handler or echo_handler,
        ssl_context=ssl_context,
        subprotocols=tuple(subprotocols),
        compression=compression,
        reject=reject,
        autopong=autopong,
    )
    server = TestServer(host=host, port=port, secure=ssl_context is not None, url="")

    async def serve(stream: trio.SocketStream) -> None:
        await _serve_connection(server, options, stream)

    body_exc: BaseException | None = None
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            functools.partial(trio.serve_tcp, serve, port, host=host)
        )
        server.port = int(listeners[0].socket.getsockname()[1])
        scheme = "wss" if server.secure else "ws"
        netloc = f"[{host}]" if ":" in host else host
        server.url = f"{scheme}://{netloc}:{server.port}/"
        try:
            yield server
        except BaseException as exc:
            # Raised again below, outside the nursery, so that it is not wrapped in an
            # ExceptionGroup.
            body_exc = exc
        finally:
            nursery.cancel_scope.cancel()
    if body_exc is not None:
        try:
            raise body_exc
        finally:
            body_exc = None  # break the frame <-> traceback cycle


async def _serve_connection(
    server: TestServer, options: _Options, tcp_stream: trio.SocketStream
) -> None:
    """Serve one TCP connection; never raises anything but cancellation."""
    stream: trio.abc.Stream = tcp_stream
    conn: ServerConnection | None = None
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            if options.ssl_context is not None:
                ssl_stream = trio.SSLStream(tcp_stream, options.ssl_context, server_side=True)
                stream = ssl_stream
                await ssl_stream.do_handshake()
            conn = await _open_connection(server, options, stream)
        if conn is not None:
            await conn._run(options.handler)
    except trio.TooSlowError:
        logger.info("opening handshake timed out after %s s", HANDSHAKE_TIMEOUT)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        # The client went away (or failed the TLS handshake, as certificate tests do).
        logger.debug("connection ended: %r", exc)
    except Exception as exc:  # a bug here; keep the server and other connections alive
        logger.exception("test server failed on a connection")
        server.errors.append(exc)
        if conn is not None and conn.error is None:
            conn.error = exc
    finally:
        await trio.aclose_forcefully(stream)


async def _open_connection(
    server: TestServer, options: _Options, stream: trio.abc.Stream
) -> ServerConnection | None:
    """Read the upgrade request and answer it; the connection if it was accepted."""
    http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_SIZE)
    while True:
        try:
            event = http.next_event()
        except h11.RemoteProtocolError as exc:
            await _respond(stream, http, exc.error_status_hint, [], str(exc).encode())
            return None
        if event is h11.NEED_DATA:
            data = bytes(await stream.receive_some(RECEIVE_SIZE))
            if not data:
                return None  # EOF before a whole request
            http.receive_data(data)
        elif isinstance(event, h11.Request):
            break
        else:  # ConnectionClosed etc.: no request will come
            return None

    request = HandshakeRequest(
        path=event.target.decode("ascii", "replace"),
        headers=[
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers.raw_items()
        ],
        subprotocols=_split_header(event.headers, b"sec-websocket-protocol"),
        extensions=_split_header(event.headers, b"sec-websocket-extensions"),
        method=event.method.decode("ascii", "replace"),
    )
    server.requests.append(request)
    if event.method != b"GET":
        await _respond(stream, http, 405, [(b"Allow", b"GET")], b"method not allowed")
        return None

    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.initiate_upgrade_connection(list(event.headers), event.target)
    except RemoteProtocolError as exc:
        hint = exc.event_hint
        status, headers = 400, []
        if isinstance(hint, RejectConnection):
            status = hint.status_code
            headers = [(_to_bytes(name), _to_bytes(value)) for name, value in hint.headers]
        await _respond(stream, http, status, headers, str(exc).encode())
        return None
    ws_request = next(e for e in ws.events() if isinstance(e, Request))

    if options.reject is not None:
        status, headers, body = options.reject
        await _respond(stream, http, status, headers, body)
        return None

    subprotocol = next((p for p in ws_request.subprotocols if p in options.subprotocols), None)
    extensions: list[Extension] = [PerMessageDeflate()] if options.compression else []
    response = ws.send(AcceptConnection(subprotocol=subprotocol, extensions=extensions))
    conn = ServerConnection(
        stream=stream,
        ws=ws,
        request=request,
        subprotocol=subprotocol,
        compressed=any(ext.enabled() for ext in extensions),
        autopong=options.autopong,
        # Bytes the client sent right after its request (h11 did not consume them).
        initial_data=bytes(http.trailing_data[0]),
        errors=server.errors,
    )
    server.connections.append(conn)
    await stream.send_all(response)
    return conn


async def _respond(
    stream: trio.abc.Stream,
    http: h11.Connection,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    """Answer the request with an HTTP error response (the upgrade is refused)."""
    headers = list(headers)
    if not any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers):
        headers.append((b"Content-Length", str(len(body)).encode()))
    data = http.send(h11.Response(status_code=status, headers=headers)) or b""
    if body:
        data += http.send(h11.Data(data=body)) or b""
    data += http.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def _split_header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    values: list[str] = []
    for key, value in headers:
        if key == name:
            values.extend(
                part.strip() for part in value.decode("latin-1").split(",") if part.strip()
            )
    return values
