"""One adapter per client library, all with the same small interface.

An adapter's ``connect(url, compress)`` is an async context manager that opens a connection the
library's normal way and yields :class:`Endpoints`: four callables that are the library's own
bound methods, not wrappers, so the adapter adds no cost per message (the workloads even copy
them into local variables before their loops). Leaving the block closes the connection the
library's normal way, close handshake included.

Settings are the same for every library wherever the library has the knob: incoming messages of
up to 64 MiB, no keep-alive pings, permessage-deflate only when ``compress`` is true (W6), and
environment proxies ignored. Anything else is the library's default.

Most rows are Trio clients. The ``aiohttp`` row is the asyncio client whose API trio_ws mirrors,
on plain asyncio (no uvloop), as the reference for what that API costs on its home loop; its
``loop`` is ``"asyncio"``, and :mod:`benchmarks.workloads` runs the same workloads on asyncio.

Each library is imported only by :meth:`Client.load`, so that a measuring process imports only
the library it measures, and a missing library makes its row "n/a" instead of an error.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Literal

import attrs

#: The largest incoming message every client is configured to accept (W2-1M needs 1 MiB).
MAX_MESSAGE: Final = 64 * 1024 * 1024


@attrs.frozen
class Endpoints:
    """What the workloads call, bound to the library's own methods."""

    send_text: Callable[[str], Awaitable[None]]
    send_bytes: Callable[[bytes], Awaitable[None]]
    recv_text: Callable[[], Awaitable[Any]]
    recv_bytes: Callable[[], Awaitable[Any]]


@attrs.frozen
class Client:
    """A client library: how to find it, and how to connect with it."""

    #: Row name in the tables.
    name: str
    #: Top-level module to import.
    module: str
    #: Distribution name, for the version in results.json.
    distribution: str
    #: Whether the library can negotiate permessage-deflate (W6).
    deflate: bool
    #: ``connect(url, compress)``, see the module docstring.
    connect: Callable[[str, bool], AbstractAsyncContextManager[Endpoints]]
    #: The event loop the library runs on: the workloads' runtime (benchmarks.workloads).
    loop: Literal["trio", "asyncio"] = "trio"
    #: Awaited once after the workload, inside the event loop: frees what the adapter keeps
    #: for the whole process (aiohttp's session).
    shutdown: Callable[[], Awaitable[None]] | None = None

    def available(self) -> bool:
        """Whether the library is installed (importing at most its parent package)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:  # the parent package of a dotted name is missing
            return False

    def version(self) -> str | None:
        """The installed version, or ``None``."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def load(self) -> None:
        """Import the library now, before anything is timed."""
        importlib.import_module(self.module)


@asynccontextmanager
async def _trio_ws(url: str, compress: bool = False) -> AsyncIterator[Endpoints]:
    import trio_ws

    async with trio_ws.open_ws(
        url, max_msg_size=MAX_MESSAGE, heartbeat=None, compress=15 if compress else 0
    ) as ws:
        yield Endpoints(ws.send_str, ws.send_bytes, ws.receive_str, ws.receive_bytes)


@asynccontextmanager
async def _websockets_trio(url: str, compress: bool = False) -> AsyncIterator[Endpoints]:
    from websockets.trio.client import connect

    options: dict[str, Any] = {}
    # websockets reads HTTP(S)_PROXY from the environment unless told not to; the others never do.
    if "proxy" in inspect.signature(connect).parameters:
        options["proxy"] = None
    async with connect(
        url,
        max_size=MAX_MESSAGE,
        ping_interval=None,
        compression="deflate" if compress else None,
        **options,
    ) as ws:
        # One send() for both kinds (it looks at the type) and one recv() that returns str for
        # TEXT and bytes for BINARY, which is what the workloads expect.
        yield Endpoints(ws.send, ws.send, ws.recv, ws.recv)


@asynccontextmanager
async def _trio_websocket(url: str, compress: bool = False) -> AsyncIterator[Endpoints]:
    from trio_websocket import open_websocket_url

    if compress:
        raise ValueError("trio-websocket has no permessage-deflate")
    async with open_websocket_url(url, max_message_size=MAX_MESSAGE) as ws:
        yield Endpoints(ws.send_message, ws.send_message, ws.get_message, ws.get_message)


#: aiohttp: one ClientSession per event loop (aiohttp's documented use: one per application),
#: with an unlimited connection pool, so that W5's 1,000 connections are not queued at 100.
_aiohttp_sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _aiohttp(url: str, compress: bool = False) -> AsyncIterator[Endpoints]:
    import asyncio

    import aiohttp

    loop = asyncio.get_running_loop()
    session = _aiohttp_sessions.get(loop)
    if session is None:
        # trust_env=False (the default): environment proxies are ignored, as for the others.
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        _aiohttp_sessions[loop] = session
    # heartbeat=None (the default): no keep-alive pings. autoping=True (the default) only
    # answers the server's pings, and this server sends none.
    async with session.ws_connect(
        url, max_msg_size=MAX_MESSAGE, heartbeat=None, compress=15 if compress else 0
    ) as ws:
        yield Endpoints(ws.send_str, ws.send_bytes, ws.receive_str, ws.receive_bytes)


async def _aiohttp_shutdown() -> None:
    import asyncio

    session = _aiohttp_sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


#: Every row, by name, in the order of the tables.
CLIENTS: Final = {
    c.name: c
    for c in [
        Client("trio_ws", "trio_ws", "trio-ws", True, _trio_ws),
        Client("websockets.trio", "websockets.trio", "websockets", True, _websockets_trio),
        Client("trio-websocket", "trio_websocket", "trio-websocket", False, _trio_websocket),
        Client(
            "aiohttp",
            "aiohttp",
            "aiohttp",
            True,
            _aiohttp,
            loop="asyncio",
            shutdown=_aiohttp_shutdown,
        ),
    ]
}
