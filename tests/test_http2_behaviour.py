"""The behaviour contract (docs/behaviour.rst) over an HTTP/2 stream, with exact time.

The session runs over ``trio.testing.memory_stream_pair()`` against the scripted h2 server of
``tests.h2peer``, on the mock clock (``autojump_clock``): heartbeats, close deadlines and
outer cancellation behave over HTTP/2 as over HTTP/1.1, and flow control is checked from the
server's side (its send window).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h2.errors
import pytest
import trio
import trio.testing

from trio_ws import ClientWebSocket, ServerTimeoutError, WSConnectionError, WSMsgType
from trio_ws._client import hidden_nursery, start_ws
from trio_ws._h2connect import handshake
from trio_ws._h2handshake import H2Handshake
from trio_ws._h2session import STREAM_WINDOW, H2Session
from trio_ws._monitor import LOGGER, new_serial
from trio_ws._options import ConnectOptions
from trio_ws._url import parse_url

from .h2peer import H2Peer
from .servers import OP_CLOSE, OP_PING, OP_TEXT, frame


@asynccontextmanager
async def session_pair(
    heartbeat: float | None = None,
) -> AsyncIterator[tuple[H2Session, H2Peer, trio.Nursery]]:
    """A running session over a memory stream, the scripted server at its other end, and a
    nursery for the WebSockets' tasks (cancelled on exit)."""
    client, server = trio.testing.memory_stream_pair()
    session = H2Session(client, where="test", heartbeat=heartbeat)
    peer = H2Peer(server, connect_protocol=True, max_streams=None)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        nursery.start_soon(peer.run)
        yield session, peer, nursery
        nursery.cancel_scope.cancel()


async def open_ws(
    session: H2Session, peer: H2Peer, nursery: trio.Nursery, **options: Any
) -> tuple[ClientWebSocket, int]:
    """A WebSocket on a new stream of ``session`` (the peer answers 200); and its stream id."""
    target = parse_url("ws://test/")
    ids: list[int] = []

    async def answer() -> None:
        stream_id, _ = await peer.next_request()
        ids.append(stream_id)
        await peer.respond(stream_id)

    nursery.start_soon(answer)
    stream, result = await handshake(session, H2Handshake(target))
    opts = ConnectOptions(**options)
    ws = start_ws(nursery, stream, result, opts, target, LOGGER, new_serial(), trio.current_time())
    stream.owner = ws
    return ws, ids[0]


async def answer_pings(peer: H2Peer, stream_id: int) -> None:
    """Answer every ping on the stream, until the client's close frame."""
    while True:
        got = await peer.read_frame(stream_id)
        if got.opcode == OP_PING:
            await peer.send(stream_id, frame(0xA, got.payload))
        elif got.opcode == OP_CLOSE:
            return


async def test_heartbeat_timeout_over_http2(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No pong within heartbeat/2: ServerTimeoutError, code 1006 at t=30, the stream reset;
    the session goes on."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery, heartbeat=20)
        start = trio.current_time()
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert isinstance(ws.exception(), ServerTimeoutError)
        assert (trio.current_time() - start, ws.close_code) == (30, 1006)
        await peer.wait(lambda: stream_id in peer.resets)
        assert peer.resets[stream_id] == h2.errors.ErrorCodes.CANCEL
        other, other_id = await open_ws(session, peer, nursery)
        await peer.send(other_id, frame(OP_TEXT, b"alive"))
        assert await other.receive_str() == "alive"


async def test_heartbeat_answered_over_http2(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Pings answered: the WebSocket stays open through many heartbeats."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery, heartbeat=20)
        nursery.start_soon(answer_pings, peer, stream_id)
        with trio.move_on_after(200):
            await ws.receive()
        assert not ws.closed
        assert ws.exception() is None


async def test_close_times_out_when_the_server_never_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """close() waits ws_close (10 s) for the server's close frame, then ends: True, 1006 and
    the stream reset."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery)
        start = trio.current_time()
        assert await ws.close() is True
        assert trio.current_time() - start == 10
        assert ws.close_code == 1006
        got = await peer.read_frame(stream_id)
        assert (got.opcode, got.close_code) == (OP_CLOSE, 1000)
        await peer.wait(lambda: stream_id in peer.resets)


async def test_close_handshake_without_end_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The server answers our close frame but never ends the stream: close() is done at
    once, and the stream is closed with RST_STREAM (NO_ERROR)."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery)

        async def answer_close() -> None:
            got = await peer.read_frame(stream_id)
            await peer.send(stream_id, frame(OP_CLOSE, got.payload[:2]))

        nursery.start_soon(answer_close)
        start = trio.current_time()
        assert await ws.close(code=4001) is True
        assert trio.current_time() == start
        assert ws.close_code == 4001
        await peer.wait(lambda: stream_id in peer.resets)
        assert peer.resets[stream_id] == h2.errors.ErrorCodes.NO_ERROR


async def test_server_close_then_end_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The server's close frame and END_STREAM: the close is echoed, then our END_STREAM."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery)
        await peer.send_close(stream_id, 1001)
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1001)
        got = await peer.read_frame(stream_id)
        assert (got.opcode, got.close_code) == (OP_CLOSE, 1001)
        await peer.wait(lambda: stream_id in peer.ended)
        assert stream_id not in peer.resets


async def test_outer_cancellation_sends_going_away(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling the WebSocket's nursery sends a close frame 1001 on its stream."""
    async with session_pair() as (session, peer, _outer):
        async with trio.open_nursery() as nursery:
            ws, stream_id = await open_ws(session, peer, nursery)
            nursery.cancel_scope.cancel()
        got = await peer.read_frame(stream_id)
        assert (got.opcode, got.close_code) == (OP_CLOSE, 1001)
        assert ws.closed


async def test_unread_stream_holds_the_server_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The server can send one stream at most its window ahead of the application; the
    connection's window stays open for the other streams; reading reopens the stream's."""
    async with session_pair() as (session, peer, nursery):
        slow, slow_id = await open_ws(session, peer, nursery, max_queue=2, max_queue_bytes=2)
        fast, fast_id = await open_ws(session, peer, nursery)
        big = frame(0x2, b"\x01" * 60_000)
        sent = 0
        # Send on the slow stream while its window allows.
        while peer.conn.local_flow_control_window(slow_id) >= len(big):
            await peer.send(slow_id, big)
            sent += 1
            await trio.testing.wait_all_tasks_blocked()
        await trio.testing.wait_all_tasks_blocked()
        assert peer.conn.local_flow_control_window(slow_id) < len(big)
        # The application took nothing: the server sent no more than the window (and what
        # the reader took into its small queue before it paused).
        assert sent * len(big) <= STREAM_WINDOW + 2 * len(big)
        for i in range(50):
            await peer.send(fast_id, frame(OP_TEXT, b"%d" % i))
            assert await fast.receive_str() == str(i)
        for _ in range(sent):
            assert len(await slow.receive_bytes()) == 60_000
        await trio.testing.wait_all_tasks_blocked()
        assert peer.conn.local_flow_control_window(slow_id) > STREAM_WINDOW // 2


async def test_connection_window_is_replenished(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """More than the connection's window (16 MiB) arrives over one session as the
    application reads: the connection's window is given back as data arrives."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery, max_msg_size=0)
        message = frame(0x2, b"\x02" * (1024 * 1024))

        async def send_all() -> None:
            # As much as the windows allow at a time; the client's WINDOW_UPDATEs wake the
            # peer's reader, which signals a change.
            data = message * 20
            while data:
                await peer.wait(lambda: peer.conn.local_flow_control_window(stream_id) > 0)
                size = peer.conn.local_flow_control_window(stream_id)
                await peer.send(stream_id, data[:size])
                data = data[size:]

        nursery.start_soon(send_all)
        for _ in range(20):
            assert len(await ws.receive_bytes()) == 1024 * 1024


async def test_session_ping(autojump_clock: trio.testing.MockClock) -> None:
    """An HTTP/2 PING is answered by the server's HTTP/2 layer; a dead session raises."""
    async with session_pair() as (session, peer, _):
        assert await session.ping() == 0
        assert await session.ping() == 0
        with trio.move_on_after(1) as scope:
            await trio.sleep_forever()  # the clock moves; the session is idle, still fine
        assert scope.cancelled_caught
        assert await session.ping() == 0
        await peer.kill()
        with pytest.raises(WSConnectionError):
            await session.ping()


async def test_codes_the_server_receives(autojump_clock: trio.testing.MockClock) -> None:
    """With the exception policy of open_ws: a normal exit sends 1000, an exception in the
    block 1011 (and leaves unchanged), cancellation 1001."""
    async with session_pair() as (session, peer, _):
        ids: list[int] = []

        async def connect(nursery: trio.Nursery) -> ClientWebSocket:
            ws, stream_id = await open_ws(session, peer, nursery)
            ids.append(stream_id)
            return ws

        async with hidden_nursery(connect):
            pass
        with pytest.raises(KeyError, match="mine"):
            async with hidden_nursery(connect):
                raise KeyError("mine")
        with trio.CancelScope() as scope:
            async with hidden_nursery(connect):
                scope.cancel()
                await trio.sleep_forever()
        codes = [(await peer.read_frame(stream_id)).close_code for stream_id in ids]
        assert codes == [1000, 1011, 1001]


async def test_session_heartbeat_keeps_a_live_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """heartbeat=20 on the session: PINGs after 20 s of silence are answered; it lives."""
    async with session_pair(heartbeat=20) as (session, peer, nursery):
        ws, _ = await open_ws(session, peer, nursery)
        await trio.sleep(500)
        assert session.usable
        assert not ws.closed


async def test_session_heartbeat_fails_a_hung_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A server that stops answering: at t=30 (20 s of silence, then 10 s after the PING)
    the session fails with ServerTimeoutError; its WebSockets see 1006 with that cause."""
    async with session_pair(heartbeat=20) as (session, peer, nursery):
        ws, _ = await open_ws(session, peer, nursery)
        start = trio.current_time()
        peer.silent = True
        assert (await ws.receive()).type is WSMsgType.ERROR
        assert trio.current_time() - start == 30
        assert ws.close_code == 1006
        assert isinstance(session.failure, ServerTimeoutError)
        assert session.failure in _causes(ws.exception())


def _causes(exc: BaseException | None) -> list[BaseException]:
    chain = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    return chain


@pytest.mark.parametrize(
    ("sent", "code", "options"),
    [
        (frame(0x3, b""), 1002, {}),  # a reserved opcode
        (frame(OP_TEXT, b"\xff\xfe"), 1007, {}),  # invalid UTF-8
        (frame(0x2, b"x" * 2000), 1009, {"max_msg_size": 1000}),
        (frame(OP_TEXT, b"masked", masked=True), 1002, {}),  # a server must not mask
    ],
)
async def test_protocol_violation_over_http2(
    autojump_clock: trio.testing.MockClock, sent: bytes, code: int, options: dict[str, Any]
) -> None:
    """A violation by the server on the stream: ERROR for the application, then our close
    frame with the right code on that stream; the session goes on."""
    async with session_pair() as (session, peer, nursery):
        ws, stream_id = await open_ws(session, peer, nursery, **options)
        await peer.send(stream_id, sent)
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        got = await peer.read_frame(stream_id)
        assert (got.opcode, got.close_code) == (OP_CLOSE, code)
        other, other_id = await open_ws(session, peer, nursery)
        await peer.send(other_id, frame(OP_TEXT, b"fine"))
        assert await other.receive_str() == "fine"
