"""The server side of one accepted WebSocket connection of :mod:`trio_ws.testing`.

:class:`ServerConnection` (and the :class:`HandshakeRequest` that opened it) live here; the
public names are re-exported by ``trio_ws.testing``, which also says who they are. That module
listens, runs the opening handshake and hands the connection over here once it has answered
101; this one runs the connection from then on until TCP is closed.

Theory of operation
-------------------

This is the second half of the theory told in :mod:`trio_ws.testing` (the listener and the
opening handshake are there). wsproto does the protocol work; this module moves bytes.

* After the upgrade, two tasks share the connection. The *reader* reads in 64 KiB chunks,
  feeds wsproto, reassembles fragmented messages, logs every message in
  ``ServerConnection.received``, answers pings itself when ``autopong`` is on, and hands the
  rest to an unbounded queue that :meth:`ServerConnection.receive` takes from. It never answers
  a close frame itself: the handler decides (so a test can script a server that never answers).
  The *handler* (yours, or ``echo_handler``) runs in the connection task. When it returns
  the server closes the connection gracefully; when it raises, the exception is logged on the
  ``trio_ws.testing`` logger, kept in ``ServerConnection.error`` and ``TestServer.errors``, and
  the connection is closed with 1011. Other connections never notice.
* Every byte goes out under one lock, and frames are produced under it, so wire order equals
  wsproto order even when the reader sends a pong while the handler sends a message.
* A client that breaks the protocol (unmasked frame, bad UTF-8, bad opcode...) gets a close
  frame with wsproto's code; ``receive()`` returns ``ERROR`` (data = that code) and then
  ``CLOSED``, and the server closes TCP once the client answers or after ``CLOSE_TIMEOUT``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Final, final

import attrs
import trio
from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage

from ._types import WSCloseCode, WSMessage, WSMsgType

__all__ = [
    "CLOSE_TIMEOUT",
    "RECEIVE_SIZE",
    "Handler",
    "HandshakeRequest",
    "ServerConnection",
    "logger",
]

# The public module's name: users configure (and tests capture) one logger for the test server.
logger: Final = logging.getLogger("trio_ws.testing")

#: Bytes asked for per read.
RECEIVE_SIZE: Final = 65536
#: Default seconds :meth:`ServerConnection.close` waits for the client's close frame.
CLOSE_TIMEOUT: Final = 5.0

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
