"""Regression tests for the defects of the connection layer found in review (one section each).

Each test states the behaviour after the fix, through the public API only: ``open_ws`` and
``connect_ws`` over ``trio.testing.memory_stream_pair`` with the scripted wsproto peer of
``tests/peer.py`` and exact time (``autojump_clock``), or over real loopback sockets with the
raw servers of ``tests/servers.py`` (every wait there under ``trio.fail_after(GUARD)``). The
one test that blocks the event loop on purpose talks to a wsproto server in a thread, which
keeps answering while the loop is blocked.

Races are made deterministic, never left to chance:

* a cancellation that must land *while a send is in progress* is caused by a stream wrapper
  (:class:`SteppedStream`) whose ``send_all`` first runs a hook (cancel a scope, jump the mock
  clock) and then takes one shielded step before it forwards the bytes;
* two tasks woken in the same scheduler batch run in an order Trio randomizes, so such a test
  repeats its trial many times within one run: the defect shows with probability
  ``1 - 2**-trials`` and the fixed code passes every time.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import attrs
import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)

import trio_ws
from trio_ws import (
    ClientWSTimeout,
    InvalidArgument,
    WSClosedError,
    WSConnectionError,
    WSDecodeError,
    WSError,
    WSMessage,
    WSMsgType,
)

from .peer import Peer
from .servers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    Frame,
    RawPeer,
    close_payload,
    frame,
    open_raw_server,
)

#: Guard against hangs on real sockets: far above what any test here needs.
GUARD: Final = 10.0
#: How long a cancelled ``open_ws`` waits for the server's answer to its 1001 close frame
#: (``GOING_AWAY_GRACE`` in the connection layer, documented in docs/).
GOING_AWAY_GRACE: Final = 1.0
#: A message bigger than the writer's high-water mark and than one read of the peer.
BIG: Final = b"x" * 2**20


# ---------------------------------------------------------------------------------------------
# helpers


class SteppedStream(trio.abc.Stream):
    """A stream that forwards to ``inner``; its ``send_all`` takes one shielded step first.

    ``on_send``, when set, is called once at the start of the next ``send_all`` (and then
    cleared): a hook that cancels a scope or jumps the mock clock there makes the cancellation
    land while a send is in progress, after the library handed bytes to the transport and
    before the transport took any.
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.on_send: Callable[[], object] | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        hook, self.on_send = self.on_send, None
        if hook is not None:
            hook()
        with trio.CancelScope(shield=True):
            await trio.lowlevel.checkpoint()
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class FailingSendStream(SteppedStream):
    """A stream whose ``send_all`` raises ``fail`` (once it is set) instead of sending."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        super().__init__(inner)
        self.fail: BaseException | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.fail is not None:
            await trio.lowlevel.checkpoint()
            raise self.fail
        await self.inner.send_all(data)


class StallAfterPing(SteppedStream):
    """A real socket stream that blocks the whole event loop right after it sent a ping.

    The ping is written with a plain ``os.write`` and the stall follows in the same step, so
    no task (the reader in particular) runs in between. The stall (``time.sleep``, then a
    blocking ``select`` until the answer is readable) stands for a slow callback in the
    application: the pong reaches our socket while the loop is blocked, and the heartbeat's
    pong deadline passes meanwhile. After ``trials`` stalls, the next ping (proof that the
    heartbeat survived the last one) calls ``on_enough`` instead.
    """

    def __init__(self, inner: trio.SocketStream, *, stall: float, trials: int) -> None:
        super().__init__(inner)
        self.socket = inner.socket
        self.stall = stall
        self.trials = trials
        self.stalls = 0
        self.on_enough: Callable[[], object] | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if bytes(data[:1]) != b"\x89" or self.stalls == self.trials:  # not a ping (FIN set)
            if bytes(data[:1]) == b"\x89" and self.on_enough is not None:
                self.on_enough()
            await self.inner.send_all(data)
            return
        # trio's send_all yields after writing, which would let the reader take the pong
        # before the stall: write the few bytes of the ping directly instead.
        assert os.write(self.socket.fileno(), data) == len(data)
        self.stalls += 1
        time.sleep(self.stall)  # noqa: ASYNC251 - the blocking stall is the point
        readable, _, _ = select.select([self.socket], [], [], GUARD)
        assert readable, "the server did not answer the ping"
        await trio.lowlevel.cancel_shielded_checkpoint()


async def handshaken(
    nursery: trio.Nursery, peer: Peer, stream: trio.abc.Stream, **options: Any
) -> trio_ws.ClientWebSocket:
    """``connect_ws`` over ``stream`` while ``peer`` accepts the upgrade."""
    async with trio.open_nursery() as inner:
        inner.start_soon(peer.accept)
        return await trio_ws.connect_ws(nursery, "ws://test.example/", stream=stream, **options)


async def next_message(peer: Peer) -> Event:
    """The client's next whole message (data fragments joined) or control event."""
    parts: list[Any] = []
    while True:
        event = await peer.next_event()
        if not isinstance(event, (TextMessage, BytesMessage)):
            assert not parts, f"{event!r} in the middle of a message"
            return event
        parts.append(event.data)
        if event.message_finished:
            if isinstance(event, TextMessage):
                return TextMessage(data="".join(parts))
            return BytesMessage(data=b"".join(parts))


def summary(event: Event) -> tuple[str, object]:
    """A short, comparable form of what the peer received."""
    if isinstance(event, TextMessage):
        return ("text", event.data)
    if isinstance(event, BytesMessage):
        return ("binary", len(event.data))
    if isinstance(event, CloseConnection):
        return ("close", int(event.code))
    return (type(event).__name__, None)


def frame_summary(f: Frame) -> tuple[str, object]:
    """The same short form for a frame read by a raw server."""
    if f.opcode == OP_CLOSE:
        return ("close", f.close_code)
    if f.opcode == OP_TEXT:
        return ("text", f.payload.decode("utf-8"))
    if f.opcode == OP_BINARY:
        return ("binary", len(f.payload))
    return (f"opcode {f.opcode}", None)


async def answer_close(peer: Peer) -> None:
    """Answer the client's close frame, then close TCP (the server closes first)."""
    close = await peer.expect_close()
    await peer.send(close.response())
    await peer.stream.aclose()


def url(port: int, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port}{path}"


# ---------------------------------------------------------------------------------------------
# 1. a send cancelled while it is in progress


@pytest.mark.parametrize("how", ["cancel", "deadline"])
async def test_send_cancelled_by_its_own_scope_keeps_the_connection(
    how: str, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """A send cancelled mid-send by its own scope raises Cancelled there; the connection stays
    usable and the server receives whole messages only."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    stepped = SteppedStream(client_stream)
    peer = Peer(server_stream)
    ws = await handshaken(nursery, peer, stepped)
    returned = False
    with trio.move_on_after(5) as scope:
        stepped.on_send = scope.cancel if how == "cancel" else lambda: autojump_clock.jump(10)
        await ws.send_bytes(BIG)
        returned = True
    # Cancelled (caught by the scope) or, if the cancellation came too late, sent: never ours.
    assert scope.cancelled_caught or returned
    assert (ws.exception(), ws.close_code, ws.closed) == (None, None, False)
    await ws.send_str("after")
    got = [summary(await next_message(peer))]
    if got[0] != ("text", "after"):
        got.append(summary(await next_message(peer)))
    # The cancelled message went out whole or not at all; one that returned went out.
    assert got in ([("binary", len(BIG)), ("text", "after")], [("text", "after")])
    assert returned is False or len(got) == 2
    nursery.start_soon(answer_close, peer)
    assert await ws.close() is True
    assert (ws.exception(), ws.close_code) == (None, 1000)


async def test_open_ws_cancelled_mid_send_is_plain_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Outer cancellation landing mid-send in open_ws: only Cancelled, caught by its scope;
    the server gets whole messages, then the 1001 close frame."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    stepped = SteppedStream(client_stream)
    peer = Peer(server_stream)
    got: list[tuple[str, object]] = []

    async def serve() -> None:
        await peer.accept()
        while True:
            event = await next_message(peer)
            got.append(summary(event))
            if isinstance(event, CloseConnection):
                break
        if event.code != 1006:  # wsproto reports EOF as 1006: nothing to answer
            with contextlib.suppress(trio.BrokenResourceError):  # the client may be gone
                await peer.send(event.response())
        await peer.stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.move_on_after(5) as scope:
            async with trio_ws.open_ws("ws://t/", stream=stepped) as ws:
                stepped.on_send = lambda: autojump_clock.jump(10)  # past the scope's deadline
                await ws.send_bytes(BIG)
                await trio.sleep_forever()
        assert scope.cancelled_caught
    assert got in ([("binary", len(BIG)), ("close", 1001)], [("close", 1001)])
    assert ws.close_code == 1001


async def serve_frames(stream: trio.SocketStream, frames: list[tuple[str, object]]) -> None:
    """A raw server: log the client's messages (whole frames only; the frames of a
    fragmented message as one entry, or ``("unfinished", n)`` if the close frame comes before
    its last) until its close frame, which it answers; then close TCP."""
    peer = RawPeer(stream)
    await peer.accept()
    started: list[Frame] = []  # the frames of a fragmented message so far
    while (f := await peer.read_frame()) is not None:  # asserts no EOF inside a frame
        if f.opcode == OP_CONT or (f.opcode in (OP_TEXT, OP_BINARY) and not f.fin):
            assert (f.opcode == OP_CONT) is bool(started)
            started.append(f)
            if f.fin:
                payload = b"".join(part.payload for part in started)
                frames.append(frame_summary(attrs.evolve(started[0], payload=payload, fin=True)))
                started.clear()
            continue
        if f.opcode == OP_CLOSE:
            if started:
                frames.append(("unfinished", sum(len(part.payload) for part in started)))
            frames.append(frame_summary(f))
            await peer.send(frame(OP_CLOSE, f.payload))
            break
        frames.append(frame_summary(f))


async def test_own_scope_cancel_mid_send_on_a_real_socket() -> None:
    """connect_ws on a real socket: a send cancelled mid-send by its own scope leaves the
    connection usable, the user's nursery exits cleanly, the server reads whole frames."""
    frames: list[tuple[str, object]] = []
    async with open_raw_server(partial(serve_frames, frames=frames)) as port:
        with trio.fail_after(GUARD):
            stepped = SteppedStream(await trio.open_tcp_stream("127.0.0.1", port))
            async with trio.open_nursery() as nursery:
                ws = await trio_ws.connect_ws(nursery, url(port), stream=stepped)
                with trio.CancelScope() as scope:
                    stepped.on_send = scope.cancel
                    await ws.send_bytes(BIG)
                await ws.send_str("after")
                assert await ws.close() is True
            assert (ws.exception(), ws.close_code) == (None, 1000)
    assert frames in (
        [("binary", len(BIG)), ("text", "after"), ("close", 1000)],
        [("text", "after"), ("close", 1000)],
    )


async def test_open_ws_cancelled_mid_send_on_a_real_socket() -> None:
    """open_ws on a real socket, outer cancellation landing mid-send: only Cancelled, caught
    by its scope; the server reads whole frames, then 1001."""
    frames: list[tuple[str, object]] = []
    async with open_raw_server(partial(serve_frames, frames=frames)) as port:
        with trio.fail_after(GUARD):
            stepped = SteppedStream(await trio.open_tcp_stream("127.0.0.1", port))
            with trio.CancelScope() as outer:
                async with trio_ws.open_ws(url(port), stream=stepped) as ws:
                    stepped.on_send = outer.cancel
                    await ws.send_bytes(BIG)
                    await trio.sleep_forever()
            assert outer.cancelled_caught
    assert frames in ([("binary", len(BIG)), ("close", 1001)], [("close", 1001)])
    assert ws.close_code == 1001


async def test_connect_ws_nursery_cancelled_mid_send_raises_no_group() -> None:
    """Cancelling the scope around a connect_ws nursery mid-send (real socket): plain
    cancellation, no ExceptionGroup; the server reads whole frames, then 1001."""
    frames: list[tuple[str, object]] = []
    async with open_raw_server(partial(serve_frames, frames=frames)) as port:
        with trio.fail_after(GUARD):
            stepped = SteppedStream(await trio.open_tcp_stream("127.0.0.1", port))
            with trio.CancelScope() as outer:
                async with trio.open_nursery() as nursery:
                    ws = await trio_ws.connect_ws(nursery, url(port), stream=stepped)
                    stepped.on_send = outer.cancel
                    await ws.send_bytes(BIG)
                    await trio.sleep_forever()
            assert outer.cancelled_caught
    assert frames in ([("binary", len(BIG)), ("close", 1001)], [("close", 1001)])
    assert (ws.closed, ws.close_code) == (True, 1001)


# ---------------------------------------------------------------------------------------------
# 2. no false heartbeat timeout after a stall of our own event loop


async def test_heartbeat_counts_a_pong_that_arrived_during_a_stall(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """A pong that reached us while our loop stalled past the pong deadline counts as life:
    no ServerTimeoutError, over 20 trials (the reader and the heartbeat wake together)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    ws = await handshaken(nursery, peer, client_stream, heartbeat=10)
    for trial in range(20):
        ping = await peer.next_event()
        assert isinstance(ping, Ping), (trial, ping, ws.exception())
        await peer.send(ping.response())
        # In the same step: the loop "stalls" past the pong deadline (ping + 5 s). The reader
        # (pong readable) and the heartbeat (deadline passed) now wake in one batch.
        autojump_clock.jump(10)
    # The heartbeat survived every trial: it pings again.
    assert isinstance(await peer.next_event(), Ping), ws.exception()
    assert ws.exception() is None
    assert not ws.closed


def serve_in_a_thread(listener: socket.socket) -> None:
    """One WebSocket connection served by wsproto on blocking sockets, in a thread of its own,
    so it answers while the trio loop is blocked: echo TEXT, answer pings and the close.

    Every socket call has a timeout (GUARD), so the thread always ends.
    """
    conn, _ = listener.accept()
    conn.settimeout(GUARD)
    ws = WSConnection(ConnectionType.SERVER)
    with conn:
        while True:
            data = conn.recv(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Request):
                    conn.sendall(ws.send(AcceptConnection()))
                elif isinstance(event, Ping):
                    conn.sendall(ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    conn.sendall(ws.send(TextMessage(data=event.data)))
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        conn.sendall(ws.send(event.response()))
                    return
            if not data:
                return


async def test_heartbeat_survives_a_blocking_stall_on_a_real_socket() -> None:
    """heartbeat=0.2 s against a real server: a blocking 0.3 s stall right after each ping
    (the pong arrives meanwhile) never gives a false ServerTimeoutError (10 trials)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(GUARD)
        port = listener.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.to_thread.run_sync, serve_in_a_thread, listener))
            with trio.fail_after(30):
                tcp = await trio.open_tcp_stream("127.0.0.1", port)
                stalling = StallAfterPing(tcp, stall=0.3, trials=10)
                async with trio_ws.open_ws(url(port), stream=stalling, heartbeat=0.2) as ws:
                    with trio.CancelScope() as waiting:
                        stalling.on_enough = waiting.cancel  # 11th ping: the 10 trials passed
                        msg = await ws.receive()
                        pytest.fail(f"{msg!r} after {stalling.stalls} stalls")
                    assert ws.exception() is None
                    await ws.send_str("still alive")
                    assert await ws.receive_str() == "still alive"
                assert (ws.exception(), ws.close_code) == (None, 1000)


# ---------------------------------------------------------------------------------------------
# 3. the client closes TCP only after the server did (RFC 6455 §7.1.1)


async def test_close_waits_for_the_server_to_close_tcp_first() -> None:
    """close(): the client holds TCP open until the server closes it, then returns True."""
    saw_eof_early: list[bool] = []
    server_closing = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept()
        close = await peer.read_close()
        assert close is not None
        await peer.send(frame(OP_CLOSE, close.payload))
        with trio.move_on_after(0.3):
            await peer.wait_eof()
        saw_eof_early.append(peer.eof)
        server_closing.set()
        await stream.aclose()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert await ws.close() is True
                assert server_closing.is_set()  # close() returned after the server's EOF
    assert saw_eof_early == [False]
    assert (ws.exception(), ws.close_code) == (None, 1000)


async def test_close_with_a_server_that_never_closes_tcp_returns_at_ws_close(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """A server that answers our close frame but keeps TCP open: close() returns True at
    exactly ws_close and the transport is closed."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    ws = await handshaken(nursery, peer, client_stream, timeout=ClientWSTimeout(ws_close=5))

    async def answer_and_keep_open() -> None:
        close = await peer.expect_close()
        await peer.send(close.response())

    nursery.start_soon(answer_and_keep_open)
    assert await ws.close() is True
    assert trio.current_time() == 5
    assert (ws.exception(), ws.close_code) == (None, 1000)
    assert await server_stream.receive_some() == b""  # the transport is closed: EOF
    assert trio.current_time() == 5


async def test_server_close_with_tcp_kept_open_ends_at_ws_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Server-initiated close (autoclose) and TCP kept open: the client closes the transport at
    exactly ws_close, not before, and leaves open_ws then."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    eof_at: list[float] = []

    async def serve() -> None:
        await peer.accept()
        await peer.send(CloseConnection(code=1000, reason="done"))
        assert (await peer.expect_close()).code == 1000  # the echo
        assert await server_stream.receive_some() == b""
        eof_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with trio_ws.open_ws(
            "ws://t/", stream=client_stream, timeout=ClientWSTimeout(ws_close=5)
        ) as ws:
            assert await ws.receive() == WSMessage(WSMsgType.CLOSE, 1000, "done")
            assert trio.current_time() == 0
        assert trio.current_time() == 5
    assert eof_at == [5]
    assert (ws.exception(), ws.close_code) == (None, 1000)


async def test_server_close_on_a_real_socket_the_server_closes_first() -> None:
    """Server-initiated close: after echoing it the client waits for the server's EOF."""
    saw_eof_early: list[bool] = []

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(OP_CLOSE, close_payload(1000, "done")))
        echo = await peer.read_close()
        assert echo is not None
        with trio.move_on_after(0.3):
            await peer.wait_eof()
        saw_eof_early.append(peer.eof)
        await stream.aclose()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(url(port)) as ws:
                assert await ws.receive() == WSMessage(WSMsgType.CLOSE, 1000, "done")
    assert saw_eof_early == [False]
    assert (ws.exception(), ws.close_code) == (None, 1000)


# ---------------------------------------------------------------------------------------------
# 4. outer cancellation waits (briefly) for the server's answer to 1001


async def test_outer_cancellation_lets_the_server_answer_1001(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Outer cancellation: 1001 goes out and the server's close frame, 0.5 s later, arrives
    before the client drops TCP; then Cancelled propagates."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    log: list[tuple[str, float]] = []

    async def watch_for_eof() -> None:
        assert await server_stream.receive_some() == b""
        log.append(("eof", trio.current_time()))

    async def serve() -> None:
        await peer.accept()
        close = await peer.expect_close()
        log.append((f"close {close.code}", trio.current_time()))
        async with trio.open_nursery() as watching:
            watching.start_soon(watch_for_eof)
            await trio.sleep(0.5)
            log.append(("reply", trio.current_time()))
            await peer.send(close.response())
            # The server closes first (RFC 6455 §7.1.1); its receive side keeps watching.
            await server_stream.send_stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.move_on_after(5) as scope:
            async with trio_ws.open_ws("ws://t/", stream=client_stream) as ws:
                await ws.receive()
        assert scope.cancelled_caught
        assert trio.current_time() == 5.5
    assert log == [("close 1001", 5), ("reply", 5.5), ("eof", 5.5)]
    assert (ws.exception(), ws.close_code) == (None, 1001)


async def test_outer_cancellation_waits_at_most_the_grace_for_a_silent_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Outer cancellation with a server that never answers 1001: the client drops TCP and the
    cancellation completes at exactly GOING_AWAY_GRACE."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    log: list[tuple[str, float]] = []

    async def serve() -> None:
        await peer.accept()
        close = await peer.expect_close()
        log.append((f"close {close.code}", trio.current_time()))
        assert await server_stream.receive_some() == b""
        log.append(("eof", trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.move_on_after(5) as scope:
            async with trio_ws.open_ws("ws://t/", stream=client_stream) as ws:
                await ws.receive()
        assert scope.cancelled_caught
        assert trio.current_time() == 5 + GOING_AWAY_GRACE
    assert log == [("close 1001", 5), ("eof", 5 + GOING_AWAY_GRACE)]
    assert ws.closed


# ---------------------------------------------------------------------------------------------
# 5. bad arguments and undecodable messages raise our errors, and lose nothing


async def test_close_with_a_non_utf8_reason_is_an_invalid_argument(
    autojump_clock: trio.testing.MockClock, open_pair: Any, nursery: trio.Nursery
) -> None:
    """close(message=b"\\xff") raises InvalidArgument and leaves the connection open."""
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(InvalidArgument) as info:
            await ws.close(message=b"\xff")
        assert isinstance(info.value, ValueError)
        assert not ws.closed
        await ws.send_str("still open")
        assert await next_message(peer) == TextMessage(data="still open")
        nursery.start_soon(answer_close, peer)
        assert await ws.close() is True


async def test_close_accepts_a_memoryview_reason(
    autojump_clock: trio.testing.MockClock, open_pair: Any, nursery: trio.Nursery
) -> None:
    """close(message=memoryview(b"bye")) is accepted; the reason reaches the server."""
    async with open_pair(nursery) as (ws, peer):
        reasons: list[tuple[int, str | None]] = []

        async def answer() -> None:
            close = await peer.expect_close()
            reasons.append((int(close.code), close.reason))
            await peer.send(close.response())
            await peer.stream.aclose()

        nursery.start_soon(answer)
        assert await ws.close(message=memoryview(b"bye")) is True
    assert reasons == [(1000, "bye")]


async def test_send_str_with_a_lone_surrogate_is_an_invalid_argument(
    autojump_clock: trio.testing.MockClock, open_pair: Any, nursery: trio.Nursery
) -> None:
    """send_str("\\udcff") raises InvalidArgument, sends nothing, and the connection stays
    usable."""
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(InvalidArgument):
            await ws.send_str("\udcff")
        assert (ws.exception(), ws.closed) == (None, False)
        await ws.send_str("next")
        assert await next_message(peer) == TextMessage(data="next")
        nursery.start_soon(answer_close, peer)
        assert await ws.close() is True


async def test_receive_json_on_invalid_json_raises_a_decode_error_with_the_message(
    autojump_clock: trio.testing.MockClock, open_pair: Any, nursery: trio.Nursery
) -> None:
    """receive_json() on a TEXT message that is not JSON raises WSDecodeError carrying the
    message and the json error; the next receive gets the next message."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="not json"))
        await peer.send(TextMessage(data='{"ok": 1}'))
        with pytest.raises(WSDecodeError) as info:
            await ws.receive_json()
        assert isinstance(info.value, WSError)
        assert isinstance(info.value, ValueError)
        assert info.value.msg == WSMessage(WSMsgType.TEXT, "not json", None)
        assert isinstance(info.value.__cause__, json.JSONDecodeError)
        assert await ws.receive_json() == {"ok": 1}
        nursery.start_soon(answer_close, peer)
        assert await ws.close() is True


# ---------------------------------------------------------------------------------------------
# 6. a user stream failing with a foreign error in a background write


@pytest.mark.parametrize(
    "error", [RuntimeError("stream bug"), OSError(5, "I/O error")], ids=["RuntimeError", "OSError"]
)
@pytest.mark.parametrize("writer", ["autopong", "heartbeat"])
async def test_foreign_error_in_a_background_write_is_recorded_not_raised(
    writer: str, error: Exception, autojump_clock: trio.testing.MockClock
) -> None:
    """A stream= whose send_all raises a foreign error when the library writes on its own
    (pong, heartbeat ping): the user's nursery exits cleanly, exception() is our error caused
    by it, receive() gives ERROR then CLOSED and sends raise WSClosedError."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    failing = FailingSendStream(client_stream)
    peer = Peer(server_stream)
    async with trio.open_nursery() as nursery:
        heartbeat = 10 if writer == "heartbeat" else None
        ws = await handshaken(nursery, peer, failing, heartbeat=heartbeat)
        failing.fail = error
        if writer == "autopong":
            await peer.send(Ping(payload=b"hb"))
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR, msg
        exc = ws.exception()
        assert msg.data is exc
        assert isinstance(exc, WSError)
        if isinstance(error, OSError):
            assert isinstance(exc, WSConnectionError)
        assert exc.__cause__ is error
        assert ws.close_code == 1006
        assert (await ws.receive()).type is WSMsgType.CLOSED
        with pytest.raises(WSClosedError):
            await ws.send_str("x")
        assert await ws.close() is False
    assert ws.exception() is exc


# ---------------------------------------------------------------------------------------------
# 7. WSClosedError names the close code and the reason


async def test_closed_error_names_the_servers_code_and_reason(
    autojump_clock: trio.testing.MockClock, open_pair: Any, nursery: trio.Nursery
) -> None:
    """After the server closed with 4001 "bye": close_code/close_reason say so, and a send's
    WSClosedError carries and names both."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(CloseConnection(code=4001, reason="bye"))
        assert await ws.receive() == WSMessage(WSMsgType.CLOSE, 4001, "bye")
        with pytest.raises(WSClosedError) as info:
            await ws.send_str("late")
        assert (info.value.code, info.value.reason) == (4001, "bye")
        assert "4001" in str(info.value)
        assert "bye" in str(info.value)
        assert (ws.close_code, ws.close_reason) == (4001, "bye")


async def test_closed_error_names_1006_after_an_abnormal_end(
    autojump_clock: trio.testing.MockClock, open_pair: Any, nursery: trio.Nursery
) -> None:
    """After EOF without a close frame: close_code 1006, and WSClosedError says 1006."""
    async with open_pair(nursery) as (ws, peer):
        await peer.stream.aclose()
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert ws.close_code == 1006
        with pytest.raises(WSClosedError) as info:
            await ws.send_str("late")
        assert info.value.code == 1006
        assert "1006" in str(info.value)
