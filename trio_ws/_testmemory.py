"""The in-memory scripted server of :mod:`trio_ws.testing` (loaded by it alone).

Theory of operation
-------------------

:func:`open_memory_pair` connects a real :class:`~trio_ws.ClientWebSocket` (``connect_ws`` with
``stream=``) to a :class:`ScriptedServer` over Trio's in-memory streams: no socket, no port,
nothing for the kernel to do, so a test under ``MockClock(autojump_threshold=0)`` runs the
client's heartbeat, receive timeouts and reconnect delays in virtual time, in milliseconds.

The server side is wsproto (the project's independent peer) driven step by step by the test:
it sends what the test says (:meth:`ScriptedServer.send_text`, ``send_bytes``, ``send_ping``,
``close``), hands over what the client sent in order (:meth:`ScriptedServer.expect`, a
:class:`~trio_ws.WSMessage`), answers pings unless told not to, and can go silent (simply not
act) or drop the connection without a close frame (:meth:`ScriptedServer.drop`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Unpack

import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate

from ._client import connect_ws
from ._connection import ClientWebSocket
from ._options import WSOptions
from ._types import WSCloseCode, WSMessage, WSMsgType

__all__ = ["ScriptedServer", "open_memory_pair"]

#: The URL the client is told it connects to (nothing resolves it).
MEMORY_URL: Final = "ws://memory.test/"


class ScriptedServer:
    """The server end of an in-memory connection, driven by a test.

    :func:`open_memory_pair` makes it; the test makes it send (:meth:`send_text`,
    :meth:`send_bytes`, :meth:`send_ping`, :meth:`close`), takes what the client sent in order
    (:meth:`expect`), lets it go silent (``autopong = False``, then simply not act) or drops the
    connection without a close frame (:meth:`drop`).

    Attributes:
        request: the client's upgrade request (path, headers, subprotocols, extensions).
        autopong: answer the client's pings (the pings are still returned by :meth:`expect`).
        closed: the connection ended (a close frame either way, or a drop).
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._conn = WSConnection(ConnectionType.SERVER)
        self._pending: list[WSMessage] = []
        self._parts: list[Any] = []
        self.request: Request | None = None
        self.autopong = True
        self.closed = False
        self._dropped = False
        self._changed = trio.Event()

    async def _accept(
        self, subprotocol: str | None, deflate: bool, reject: int | None
    ) -> None:
        while self.request is None:
            for event in await self._read():
                if isinstance(event, Request):
                    self.request = event
        if reject is not None:
            await self._send(RejectConnection(status_code=reject, has_body=False))
            self.closed = True
            return
        offered = bool(self.request.extensions) and deflate
        extensions: list[Extension] = [PerMessageDeflate()] if offered else []
        await self._send(AcceptConnection(subprotocol=subprotocol, extensions=extensions))
        await self._run()

    async def _read(self) -> list[Event]:
        try:
            data = await self._stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        self._conn.receive_data(bytes(data) or None)
        return list(self._conn.events())

    async def _send(self, event: Event) -> None:
        await self._stream.send_all(self._conn.send(event))

    # ----------------------------------------------------------------------------------------
    # what the test makes the server do

    async def send_text(self, text: str) -> None:
        """Send a TEXT message."""
        await self._send(TextMessage(text))

    async def send_bytes(self, data: bytes) -> None:
        """Send a BINARY message."""
        await self._send(BytesMessage(data))

    async def send_ping(self, payload: bytes = b"") -> None:
        """Send a PING (the client answers it by itself unless ``autoping=False``)."""
        await self._send(Ping(payload))

    async def close(self, code: int = WSCloseCode.OK, reason: str = "") -> None:
        """Send a close frame (the client's answer comes out of :meth:`expect` as CLOSE)."""
        await self._send(CloseConnection(code=code, reason=reason))

    async def drop(self) -> None:
        """End the connection at once, without a close frame (as a lost TCP connection)."""
        self.closed = self._dropped = True
        self._changed.set()
        await trio.aclose_forcefully(self._stream)

    async def expect(self) -> WSMessage:
        """The next thing the client sent: TEXT, BINARY, PING, PONG or CLOSE (``data`` the
        code, ``extra`` the reason; 1006 if the connection ended without a close frame), then
        CLOSED. Waits for it (bound it with the test's own timeout)."""
        while not self._pending:
            if self.closed:
                return WSMessage(WSMsgType.CLOSED, None, None)
            await self._changed.wait()
        return self._pending.pop(0)

    async def _run(self) -> None:
        """Read what the client sends, in the background (so pings are answered while the
        test does something else), until the connection ends."""
        while not self.closed:
            events = await self._read()
            if self._dropped:
                return  # (the EOF of our own drop says nothing of the client)
            for event in events:
                await self._handle(event)
            self._changed.set()
            self._changed = trio.Event()

    async def _handle(self, event: Event) -> None:
        if isinstance(event, Message):
            self._parts.append(event.data)
            if event.message_finished:
                kind = WSMsgType.TEXT if isinstance(event, TextMessage) else WSMsgType.BINARY
                data: Any = ("" if kind is WSMsgType.TEXT else b"").join(self._parts)
                self._parts = []
                self._pending.append(WSMessage(kind, data, None))
        elif isinstance(event, Ping):
            self._pending.append(WSMessage(WSMsgType.PING, event.payload, None))
            if self.autopong and not self.closed:
                await self._send(event.response())
        elif isinstance(event, Pong):
            self._pending.append(WSMessage(WSMsgType.PONG, event.payload, None))
        elif isinstance(event, CloseConnection):
            self._pending.append(WSMessage(WSMsgType.CLOSE, event.code, event.reason or ""))
            if not self.closed:
                self.closed = True
                if self._conn.state is ConnectionState.REMOTE_CLOSING:
                    await self._send(event.response())
                await trio.aclose_forcefully(self._stream)


@asynccontextmanager
async def open_memory_pair(
    *,
    subprotocol: str | None = None,
    deflate: bool = True,
    reject: int | None = None,
    **options: Unpack[WSOptions],
) -> AsyncIterator[tuple[ClientWebSocket, ScriptedServer]]:
    """A real client connected to a :class:`ScriptedServer` in memory, for tests of code that
    uses trio_ws.

    No socket, no port: under ``MockClock(autojump_threshold=0)`` (pytest-trio's
    ``autojump_clock``) the client's heartbeat, receive timeouts and reconnect delays run in
    virtual time, in milliseconds.

    .. code-block:: python

        async def test_my_feed(autojump_clock):  # pytest-trio, trio_mode = true
            async with trio_ws.testing.open_memory_pair(heartbeat=10) as (ws, server):
                await server.send_text('{"price": 1}')
                assert await my_code_reads_one_price(ws) == 1
                server.autopong = False  # go silent: the heartbeat fails at 15 s, in virtual time

    Args:
        subprotocol: the subprotocol the server accepts, if any.
        deflate: accept permessage-deflate when the client offers it (``compress=``).
        reject: answer the upgrade with this HTTP status instead (``open_memory_pair`` then
            raises the client's :exc:`~trio_ws.WSServerHandshakeError`).
        **options: the client's options, as for :func:`trio_ws.open_ws`.

    Leaving the block closes the client (close frame 1000, answered by the server) and ends
    its tasks.
    """
    client_stream, server_stream = trio.testing.memory_stream_pair()
    server = ScriptedServer(server_stream)
    inner: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._accept, subprotocol, deflate, reject)
            ws = await connect_ws(nursery, MEMORY_URL, stream=client_stream, **options)
            try:
                yield ws, server
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + 5
                    await ws.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        inner = group.exceptions[0]
    if inner is not None:
        raise inner  # the body's (or the connect's) exception as it is, not in a group
