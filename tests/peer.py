"""A scripted wsproto server peer over Trio's in-memory streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Request
from wsproto.extensions import PerMessageDeflate

import trio_ws


class Peer:
    """The server side of one connection, driven step by step by a test."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None
        self._pending: list[Event] = []

    async def accept(self, subprotocol: str | None = None, *, deflate: bool = False) -> None:
        """Read the upgrade request and accept it (with permessage-deflate if ``deflate``)."""
        while self.request is None:
            for event in await self._read_events():
                if isinstance(event, Request):
                    self.request = event
                else:  # pragma: no cover - nothing else can precede the request
                    self._pending.append(event)
        extensions = [PerMessageDeflate()] if deflate else []
        await self.send(AcceptConnection(subprotocol=subprotocol, extensions=extensions))

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.conn.send(event))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _read_events(self) -> list[Event]:
        data = await self.stream.receive_some(65536)
        self.conn.receive_data(data or None)
        return list(self.conn.events())

    async def next_event(self) -> Event:
        """The next event the client caused (a CloseConnection for EOF)."""
        while not self._pending:
            self._pending.extend(await self._read_events())
        return self._pending.pop(0)

    async def expect_close(self) -> CloseConnection:
        event = await self.next_event()
        assert isinstance(event, CloseConnection), event
        return event


@asynccontextmanager
async def ws_pair(
    nursery: trio.Nursery,
    *,
    lockstep: bool = False,
    subprotocol: str | None = None,
    **options: object,
) -> AsyncIterator[tuple[trio_ws.ClientWebSocket, Peer]]:
    """A connected (client, peer) pair over in-memory streams, with the handshake done."""
    if lockstep:
        client_stream, server_stream = trio.testing.lockstep_stream_pair()
    else:
        client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    async with trio.open_nursery() as inner:
        inner.start_soon(partial(peer.accept, subprotocol, deflate=bool(options.get("compress"))))
        ws = await trio_ws.connect_ws(
            nursery, "ws://test.example/path", stream=client_stream, **options
        )
    yield ws, peer
