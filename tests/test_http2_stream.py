"""The HTTP/2 stream adapter as a ``trio.abc.Stream``, and the session's socket, on memory
streams against the scripted h2 server (tests.h2peer), with exact time where time matters.

The adapter honours the ``trio.abc.Stream`` contract (partial reads, closed and busy errors,
an idempotent ``aclose``); the session's writer waits for a socket that does not take its
backlog, a broken socket breaks every stream, its heartbeat counts any byte as life, and
frames for streams it already gave up (after ``stop()``) never keep its GOAWAY from going out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h2.errors
import pytest
import trio
import trio.testing

from trio_ws import WSMsgType
from trio_ws._connection import GOING_AWAY_GRACE
from trio_ws._h2connect import handshake
from trio_ws._h2handshake import H2Handshake
from trio_ws._h2session import WRITE_HIGH, H2Session, H2Stream
from trio_ws._options import ConnectOptions
from trio_ws._session import WSSession
from trio_ws._url import parse_url

from .h2peer import H2Peer
from .servers import OP_TEXT, frame
from .test_http2_behaviour import open_ws, session_pair
from .test_http2_faults import _causes


class GateStream(trio.abc.Stream):
    """A client socket whose sending can be held (a full send buffer), over ``inner``."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.open = trio.Event()
        self.open.set()
        self.sent = 0

    def hold(self) -> None:
        self.open = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.open.wait()
        await self.inner.send_all(data)
        self.sent += len(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.inner.receive_some(max_bytes))

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def gated_pair(
    window: int | None = None,
) -> AsyncIterator[tuple[H2Session, H2Peer, GateStream, trio.Nursery]]:
    """As ``session_pair``, with the client's socket a :class:`GateStream` and the server's
    initial windows ``window``."""
    client, server = trio.testing.memory_stream_pair()
    gate = GateStream(client)
    session = H2Session(gate, where="test")
    peer = H2Peer(server, connect_protocol=True, max_streams=None, window=window)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        nursery.start_soon(peer.run)
        yield session, peer, gate, nursery
        nursery.cancel_scope.cancel()


async def open_stream(session: H2Session, peer: H2Peer) -> H2Stream:
    """An accepted stream of ``session``, without a WebSocket on it."""
    async with trio.open_nursery() as nursery:

        @nursery.start_soon
        async def answer() -> None:
            stream_id, _ = await peer.next_request()
            await peer.respond(stream_id)

        stream, _ = await handshake(session, H2Handshake(parse_url("ws://test/")))
    return stream


async def read_message(peer: H2Peer, stream_id: int) -> tuple[int, bytes]:
    """The next message the client sent on the stream, its fragments joined."""
    first = got = await peer.read_frame(stream_id)
    data = bytearray(got.payload)
    while not got.fin:
        got = await peer.read_frame(stream_id)
        data += got.payload
    return first.opcode, bytes(data)


# --- the trio.abc.Stream contract --------------------------------------------------------------


async def test_partial_reads_keep_the_rest(autojump_clock: trio.testing.MockClock) -> None:
    """receive_some(max_bytes) below the DATA received gives that much; the rest follows."""
    async with session_pair() as (session, peer, _):
        stream = await open_stream(session, peer)
        await peer.send(stream.stream_id, b"0123456789")
        assert await stream.receive_some(4) == b"0123"
        assert await stream.receive_some(4) == b"4567"
        assert await stream.receive_some() == b"89"


async def test_closed_stream(autojump_clock: trio.testing.MockClock) -> None:
    """After aclose(): receive_some and send_all raise ClosedResourceError, aclose() again
    does nothing, and the server saw one RST_STREAM (CANCEL)."""
    async with session_pair() as (session, peer, _):
        stream = await open_stream(session, peer)
        await stream.wait_send_all_might_not_block()  # returns at once
        await stream.aclose()
        await stream.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"late")
        await peer.wait(lambda: stream.stream_id in peer.resets)
        assert peer.resets == {stream.stream_id: h2.errors.ErrorCodes.CANCEL}


async def test_concurrent_send_is_busy(autojump_clock: trio.testing.MockClock) -> None:
    """A send_all waiting for the server's window makes another send_all on the stream
    raise BusyResourceError."""
    async with session_pair() as (session, peer, nursery):
        stream = await open_stream(session, peer)
        peer.silent = True  # no WINDOW_UPDATE
        nursery.start_soon(stream.send_all, b"x" * 70_000)  # above the default 65,535
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await stream.send_all(b"y")


# --- the session's socket ----------------------------------------------------------------------


async def test_send_waits_for_the_socket(autojump_clock: trio.testing.MockClock) -> None:
    """A message above WRITE_HIGH, with windows that allow it at once, holds the next send
    until the socket takes the backlog; then the server receives both whole."""
    async with gated_pair(window=4 * 1024 * 1024) as (session, peer, gate, nursery):
        ws, stream_id = await open_ws(session, peer, nursery)
        gate.hold()
        payload = b"\x07" * (2 * WRITE_HIGH)
        sent = trio.Event()

        async def send() -> None:
            await ws.send_bytes(payload)
            await ws.send_bytes(payload)
            sent.set()

        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set()
        gate.open.set()
        await sent.wait()
        for _ in range(2):
            assert await read_message(peer, stream_id) == (0x2, payload)


async def test_broken_socket_on_send(autojump_clock: trio.testing.MockClock) -> None:
    """The socket breaks when the session writes: the WebSocket sees 1006 with the broken
    connection as the cause."""
    async with session_pair() as (session, peer, nursery):
        ws, _ = await open_ws(session, peer, nursery)
        await peer.stream.receive_stream.aclose()  # type: ignore[attr-defined]
        await ws.send_str("into the void")
        assert (await ws.receive()).type is WSMsgType.ERROR
        assert ws.close_code == 1006
        assert "HTTP/2 connection to test broke" in repr(_causes(ws.exception()))
        assert session.failure is not None


async def test_heartbeat_counts_any_byte(autojump_clock: trio.testing.MockClock) -> None:
    """heartbeat=10: a byte from the server at t=5 puts the session's PING off to t=15."""
    async with session_pair(heartbeat=10) as (session, peer, nursery):
        start = trio.current_time()
        ws, stream_id = await open_ws(session, peer, nursery)
        await trio.sleep_until(start + 5)
        await peer.send(stream_id, frame(OP_TEXT, b"news"))
        assert await ws.receive_str() == "news"
        await trio.sleep_until(start + 14.9)
        assert peer.pings == 0
        await trio.sleep_until(start + 15.1)
        assert peer.pings == 1
        assert session.failure is None


async def test_frames_after_stop_are_dropped(autojump_clock: trio.testing.MockClock) -> None:
    """After stop(), frames still arriving for the streams it gave up (DATA, END_STREAM,
    a response, a reset) are dropped: the GOAWAY goes out once the socket takes it."""
    async with gated_pair() as (session, peer, gate, nursery):
        ws, a = await open_ws(session, peer, nursery)
        b = session._h2.get_next_available_stream_id()
        pending = nursery.start_soon
        opened: list[BaseException] = []

        async def open_b() -> None:
            try:
                await handshake(session, H2Handshake(parse_url("ws://test/")))
            except BaseException as exc:
                opened.append(exc)

        pending(open_b)
        await peer.wait(lambda: b in peer.received)
        gate.hold()
        session.stop()
        await peer.send(a, frame(OP_TEXT, b"late"), end_stream=True)
        await peer.respond(b)
        await peer.reset(b)
        await trio.testing.wait_all_tasks_blocked()
        assert "was closed" in str(session.failure)
        gate.open.set()
        await session.wait_closed()
        await peer.wait(lambda: peer.closed)
        assert peer.conn.state_machine.state.name == "CLOSED"  # GOAWAY received
        assert "was closed" in str(session.failure)
        assert len(opened) == 1
        assert "was closed" in repr(_causes(opened[0]))
        assert (await ws.receive()).type is WSMsgType.ERROR


async def test_session_close_gives_up_on_a_stuck_socket(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving a session whose socket takes nothing more: its GOAWAY waits GOING_AWAY_GRACE,
    then the connection is closed anyway (the server reads EOF, no GOAWAY)."""
    async with gated_pair() as (h2session, peer, gate, _):
        await h2session.wait_settings()
        session = WSSession(parse_url("ws://test/"), ConnectOptions(), h2session)
        gate.hold()
        start = trio.current_time()
        await session.aclose()
        assert trio.current_time() - start == GOING_AWAY_GRACE
        await peer.wait(lambda: peer.closed)
        assert peer.conn.state_machine.state.name != "CLOSED"  # no GOAWAY arrived
        assert session.closed
