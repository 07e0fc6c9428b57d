"""The connection layer on in-memory streams with a scripted peer and exact (mock) time."""

from __future__ import annotations

import collections
import json
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)

import trio_ws
from trio_ws import (
    ClientWSTimeout,
    ServerTimeoutError,
    WSClosedError,
    WSMsgType,
    WSTimeoutError,
)

from .peer import Peer

OpenPair = Any  # the open_pair fixture (see conftest.py)


# ---------------------------------------------------------------------------------------------
# heartbeat


async def test_silent_server_fails_after_heartbeat_and_half(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """No byte within heartbeat/2 after the ping: ServerTimeoutError, 1006, ERROR then CLOSED."""
    async with open_pair(nursery, heartbeat=20) as (ws, peer):
        msg = await ws.receive()
        assert trio.current_time() == 30
        assert msg.type is WSMsgType.ERROR
        assert isinstance(msg.data, ServerTimeoutError)
        assert ws.exception() is msg.data
        assert ws.close_code == 1006
        assert ws.closed
        assert isinstance(await peer.next_event(), Ping)
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert await ws.close() is False
        # The transport was aborted: the peer sees EOF (wsproto reports it as 1006).
        assert (await peer.expect_close()).code == 1006


async def test_heartbeat_error_delivered_to_a_later_receive(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A receive() called after the heartbeat failure still gets ERROR once, then CLOSED."""
    async with open_pair(nursery, heartbeat=4) as (ws, _peer):
        await trio.sleep(100)
        assert isinstance(ws.exception(), ServerTimeoutError)
        assert (await ws.receive()).type is WSMsgType.ERROR
        assert (await ws.receive()).type is WSMsgType.CLOSED
        with pytest.raises(WSClosedError) as info:
            await ws.send_str("late")
        assert isinstance(info.value.__cause__, ServerTimeoutError)


async def test_any_inbound_byte_counts_as_life(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Data (not only pongs) resets the heartbeat; the ping goes out H after the last byte."""
    async with open_pair(nursery, heartbeat=20) as (ws, peer):
        await trio.sleep(25)  # the ping went out at t=20; answer with data, not a pong
        await peer.send(TextMessage(data="alive"))
        assert (await ws.receive()).data == "alive"
        assert isinstance(await peer.next_event(), Ping)
        # next ping is due 20 s after that message, at t=45; no answer -> failure at 55
        event = await peer.next_event()
        assert isinstance(event, Ping)
        assert trio.current_time() == 45
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert trio.current_time() == 55


async def test_answered_heartbeat_keeps_the_connection(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A server that answers every ping keeps the connection open indefinitely."""
    async with open_pair(nursery, heartbeat=10) as (ws, peer):
        for _ in range(50):
            ping = await peer.next_event()
            assert isinstance(ping, Ping)
            await peer.send(ping.response())
        assert trio.current_time() == 500
        assert ws.exception() is None
        assert not ws.closed


async def test_no_false_timeout_while_the_user_is_slow(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """While the receive queue is full the reader pauses and no heartbeat timeout runs."""
    async with open_pair(nursery, heartbeat=2) as (ws, peer):
        payload = b"x" * 4096
        for _ in range(400):  # 1.6 MB: more than the queue holds
            await peer.send(BytesMessage(data=payload))
        await trio.sleep(1000)  # the user does not read; the server goes silent
        assert ws.exception() is None
        for _ in range(400):
            assert await ws.receive_bytes() == payload
        # Now the slow side is the server: ping at +2 s after the reader resumed, fail 1 s later.
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert isinstance(ws.exception(), ServerTimeoutError)


# ---------------------------------------------------------------------------------------------
# receive


async def test_receive_timeout_loses_no_message(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A receive that times out raises WSTimeoutError; the next message is still delivered."""
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(WSTimeoutError):
            await ws.receive(timeout=5)
        assert trio.current_time() == 5
        await peer.send(TextMessage(data="after"))
        assert await ws.receive_str() == "after"


async def test_ws_receive_default_timeout(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """ClientWSTimeout(ws_receive) bounds receive() when it gets no timeout of its own."""
    async with open_pair(nursery, timeout=ClientWSTimeout(ws_receive=7)) as (ws, _peer):
        with pytest.raises(TimeoutError):
            await ws.receive()
        assert trio.current_time() == 7


async def test_cancelled_receive_loses_no_message(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A receive cancelled with a message already queued does not take it."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="kept"))
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.receive()
        assert scope.cancelled_caught
        assert await ws.receive_str() == "kept"


async def test_concurrent_receive_is_an_error(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """A second task calling receive() while one waits gets RuntimeError."""
    async with open_pair(nursery) as (ws, peer):
        nursery.start_soon(ws.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="Concurrent"):
            await ws.receive()
        await peer.send(TextMessage(data="x"))


async def test_receive_str_on_binary_keeps_the_message(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """receive_str() on BINARY raises WSMessageTypeError carrying the message."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(BytesMessage(data=b"\x01"))
        with pytest.raises(trio_ws.WSMessageTypeError) as info:
            await ws.receive_str()
        assert info.value.msg is not None
        assert info.value.msg.data == b"\x01"
        await peer.send(TextMessage(data="t"))
        with pytest.raises(TypeError):
            await ws.receive_bytes()


async def test_async_for_stops_at_close(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """async for yields messages and stops at the server's close frame."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="a"))
        await peer.send(BytesMessage(data=b"b"))
        await peer.send(CloseConnection(code=1000))
        assert [m.data async for m in ws] == ["a", b"b"]
        assert ws.close_code == 1000


# ---------------------------------------------------------------------------------------------
# background duties of the reader


async def test_ping_answered_without_receive(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """With autoping the reader answers a ping even if nobody calls receive()."""
    async with open_pair(nursery) as (_ws, peer):
        await peer.send(Ping(payload=b"hb"))
        assert await peer.next_event() == Pong(payload=b"hb")


async def test_ping_delivered_without_autoping(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """Without autoping, PING and PONG are delivered and not answered."""
    async with open_pair(nursery, autoping=False) as (ws, peer):
        await peer.send(Ping(payload=b"p"))
        await peer.send(Pong(payload=b"q"))
        assert await ws.receive() == (WSMsgType.PING, b"p", None)
        assert await ws.receive() == (WSMsgType.PONG, b"q", None)
        await ws.pong(b"p")
        assert await peer.next_event() == Pong(payload=b"p")


async def test_server_close_echoed_at_once(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """autoclose: the close frame is echoed before the user calls receive()."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(CloseConnection(code=1001, reason="bye"))
        assert (await peer.expect_close()).code == 1001
        assert await ws.receive() == (WSMsgType.CLOSE, 1001, "bye")
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert ws.closed
        assert await ws.close() is False


async def test_server_close_without_autoclose(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Without autoclose, the app's close() answers the server's close frame."""
    async with open_pair(nursery, autoclose=False) as (ws, peer):
        await peer.send(CloseConnection(code=4000, reason="done"))
        assert await ws.receive() == (WSMsgType.CLOSE, 4000, "done")
        assert not ws.closed

        async def server_closes_after_the_answer() -> None:
            assert (await peer.expect_close()).code == 1000
            await peer.stream.aclose()

        nursery.start_soon(server_closes_after_the_answer)
        assert await ws.close() is True
        assert trio.current_time() == 0
        assert ws.close_code == 4000


async def test_eof_without_close_frame(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """TCP EOF without a close frame: CLOSED, close code 1006, no exception."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="last"))
        await peer.stream.aclose()
        assert await ws.receive_str() == "last"
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert ws.close_code == 1006
        assert ws.exception() is None
        with pytest.raises(WSClosedError):
            await ws.send_str("x")


async def test_protocol_violation_error_then_closed(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A reserved opcode: ERROR (WSProtocolError 1002) once, a 1002 close frame, then CLOSED."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="before"))
        await peer.send_raw(b"\x83\x00")  # FIN + reserved opcode 0x3
        assert await ws.receive_str() == "before"
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert isinstance(msg.data, trio_ws.WSProtocolError)
        assert msg.data.code == 1002
        assert ws.close_code == 1002
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert (await peer.expect_close()).code == 1002


# ---------------------------------------------------------------------------------------------
# closing


async def test_close_waits_one_deadline_for_the_server(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A server that never answers our close: close() returns True at ws_close, code 1006."""
    async with open_pair(nursery, timeout=ClientWSTimeout(ws_close=3)) as (ws, peer):
        assert await ws.close(code=1000, message=b"bye") is True
        assert trio.current_time() == 3
        assert isinstance(ws.exception(), WSTimeoutError)
        assert ws.close_code == 1006
        close = await peer.expect_close()
        assert (close.code, close.reason) == (1000, "bye")


async def test_close_handshake(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """close() sends our frame, returns True on the server's answer; a second close is False."""
    async with open_pair(nursery) as (ws, peer):

        async def answer() -> None:
            event = await peer.expect_close()
            await peer.send(event.response())

        nursery.start_soon(answer)
        assert await ws.close(code=4001) is True
        assert ws.close_code == 4001
        assert ws.exception() is None
        assert await ws.close() is False
        assert (await ws.receive()).type is WSMsgType.CLOSED


async def test_close_while_receiving_returns_closing(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """close() from another task makes a waiting receive() return CLOSING."""
    async with open_pair(nursery, timeout=ClientWSTimeout(ws_close=1)) as (ws, _peer):
        results = []

        async def receiver() -> None:
            results.append(await ws.receive())

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        await ws.close()
        assert [m.type for m in results] == [WSMsgType.CLOSING]


async def test_cancelled_close_still_closes_the_transport(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A close() cancelled while waiting for the server closes TCP, then re-raises."""
    async with open_pair(nursery) as (ws, peer):
        with trio.move_on_after(1) as scope:
            await ws.close()
        assert scope.cancelled_caught
        assert (await peer.expect_close()).code == 1000
        assert (await peer.expect_close()).code == 1006  # then EOF
        assert ws.closed


# ---------------------------------------------------------------------------------------------
# sending


async def test_concurrent_senders_keep_every_message_in_order(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Many tasks sending at once: every message arrives whole, each task's in order."""
    async with open_pair(nursery, lockstep=True) as (ws, peer):

        async def sender(i: int) -> None:
            for j in range(20):
                await ws.send_str(f"{i}:{j}")

        async with trio.open_nursery() as senders:
            for i in range(10):
                senders.start_soon(sender, i)
            got: list[str] = []
            while len(got) < 200:
                event = await peer.next_event()
                assert isinstance(event, TextMessage)
                got.append(event.data)
        for i in range(10):
            assert [g for g in got if g.startswith(f"{i}:")] == [f"{i}:{j}" for j in range(20)]
        await peer.stream.aclose()


async def test_a_send_cancelled_by_backpressure_queues_nothing(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A send waiting above the high-water mark, cancelled, queued nothing; the connection
    stays usable and the server gets every queued message whole."""
    async with open_pair(nursery, lockstep=True) as (ws, peer):
        await ws.send_bytes(b"x" * 100_000)  # queued at once; the peer is not reading yet
        with trio.move_on_after(1) as scope:
            await ws.send_bytes(b"never")  # above the mark: waits, then is cancelled
        assert scope.cancelled_caught
        assert ws.close_code is None
        assert ws.exception() is None
        received: list[object] = []

        async def read_two_messages() -> None:
            while len(received) < 2:
                event = await peer.next_event()
                if isinstance(event, BytesMessage):
                    while not event.message_finished:
                        event = await peer.next_event()
                received.append(event)

        nursery.start_soon(read_two_messages)
        await ws.send_str("after")  # waits until the peer has read enough, then goes out
        await trio.testing.wait_all_tasks_blocked()
        assert isinstance(received[0], BytesMessage)
        assert received[1] == TextMessage(data="after")


async def test_reader_keeps_reading_while_a_send_is_blocked(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A blocked writer never stops the reader: pings are still read and messages delivered;
    the pong goes out between the frames of the big message being written (max_frame_size),
    after the one in progress."""
    async with open_pair(nursery, lockstep=True) as (ws, peer):
        nursery.start_soon(ws.send_bytes, b"y" * 100_000)  # two frames: 65536 + 34464
        await trio.testing.wait_all_tasks_blocked()
        await peer.send(TextMessage(data="while blocked"))
        assert await ws.receive_str() == "while blocked"
        await peer.send(Ping(payload=b"1"))
        received = 0  # bytes of the message before the pong, then after it
        while not isinstance(event := await peer.next_event(), Pong):
            assert isinstance(event, BytesMessage)
            assert not event.message_finished
            received += len(event.data)
        assert event == Pong(payload=b"1")
        assert received == 65536  # the first frame whole, none of the second
        while not (event := await peer.next_event()).message_finished:  # type: ignore[attr-defined]
            received += len(event.data)  # type: ignore[attr-defined]
        assert received + len(event.data) == 100_000  # type: ignore[attr-defined]


async def test_full_queue_pushes_back_on_the_server(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """When the user does not read, the reader stops and the server's sends block."""
    async with open_pair(nursery, lockstep=True) as (ws, peer):
        sent = 0
        with trio.move_on_after(10):
            while True:
                await peer.send(BytesMessage(data=b"z" * 1024))
                sent += 1
        assert 500 <= sent < 2000  # bounded by the queue limit, not by the test
        for _ in range(sent):
            await ws.receive_bytes()


async def test_a_firehose_yields_once_per_read_not_per_message(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """receive() takes queued messages without a schedule point each, but lets other tasks
    run at least once per read's worth of messages (here: 10 reads of 100 messages)."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with open_pair(nursery, lockstep=True) as (ws, peer):
        chunk = b"".join(peer.conn.send(BytesMessage(data=b"%d" % i)) for i in range(100))

        async def push() -> None:
            for _ in range(10):
                await peer.send_raw(chunk)

        nursery.start_soon(push)
        nursery.start_soon(ticker)
        marks = []
        for i in range(1000):
            assert await ws.receive_bytes() == b"%d" % (i % 100)
            marks.append(ticks)
        runs = collections.Counter(marks)
        assert max(runs.values()) <= 100  # never more than one read between two ticks
        assert len(runs) < 100  # and far fewer schedule points than messages
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# open_ws exception policy


async def test_open_ws_user_exception_unchanged(autojump_clock: trio.testing.MockClock) -> None:
    """A user exception leaves open_ws unchanged and the server receives close 1011."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    codes = []

    async def serve() -> None:
        await peer.accept()
        codes.append((await peer.expect_close()).code)
        await peer.send(CloseConnection(code=1011))

    cause = KeyError("cause")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with pytest.raises(ValueError, match="boom") as info:
            async with trio_ws.open_ws("ws://t/", stream=client_stream):
                raise ValueError("boom") from cause
    assert info.value.__cause__ is cause
    assert codes == [1011]


async def test_open_ws_outer_cancellation_stays_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Outer cancellation in receive(): the scope catches it; the server gets 1001, then EOF."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    codes = []

    async def serve() -> None:
        await peer.accept()
        codes.append((await peer.expect_close()).code)
        # The server does not answer: after the grace the client drops TCP (EOF = 1006).
        assert (await peer.expect_close()).code == 1006

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.move_on_after(5) as scope:
            async with trio_ws.open_ws("ws://t/", stream=client_stream) as ws:
                await ws.receive()
        assert scope.cancelled_caught
    assert codes == [1001]


async def test_open_ws_normal_exit_closes_with_1000(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving the block normally performs the closing handshake with 1000."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    codes = []

    async def serve() -> None:
        await peer.accept()
        assert await peer.next_event() == TextMessage(data="hi")
        close = await peer.expect_close()
        codes.append(close.code)
        await peer.send(close.response())
        await peer.stream.aclose()  # RFC 6455 §7.1.1: the server closes TCP first

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with trio_ws.open_ws("ws://t/", stream=client_stream) as ws:
            await ws.send_str("hi")
        assert ws.close_code == 1000
        assert trio.current_time() == 0  # the server closed TCP after its close frame
    assert codes == [1000]


async def test_violation_while_a_sender_takes_the_lock(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Sends racing a violation all go out, then the 1002 close frame once ERROR is taken."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage(data="Hello"))
        assert await ws.receive_str() == "Hello"
        # The reader sees the violation while the echo below holds the (just taken) lock.
        nursery.start_soon(peer.send_raw, b"\x8f\x05hello\x89\x00")
        for _ in range(10):  # allowed until the application takes the ERROR
            await ws.send_str("Hello")
        assert (await ws.receive()).type is WSMsgType.ERROR
        with pytest.raises(WSClosedError):
            await ws.send_str("Hello")
        event = await peer.next_event()
        while isinstance(event, TextMessage):
            event = await peer.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1002
        await peer.stream.aclose()


# ---------------------------------------------------------------------------------------------
# failures of the transport and of trio_ws itself


async def test_send_frame_checks_its_arguments(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """send_frame() refuses a non-bytes payload or a non-int opcode and stays usable."""
    async with open_pair(nursery) as (ws, peer):
        with pytest.raises(trio_ws.WSMessageTypeError):
            await ws.send_frame("text", WSMsgType.TEXT)  # type: ignore[arg-type]
        with pytest.raises(trio_ws.InvalidArgument):
            await ws.send_frame(b"x", "TEXT")  # type: ignore[arg-type]
        await ws.send_frame(b"ok", WSMsgType.TEXT)
        assert await peer.next_event() == TextMessage(data="ok")


async def test_broken_send_side_is_a_connection_error(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A failed write is recorded (WSConnectionError) and raised by the next send."""
    async with open_pair(nursery) as (ws, peer):
        await peer.stream.receive_stream.aclose()  # the peer stops reading; its end is gone
        await ws.send_str("lost")  # queued; the writer's failure is recorded, not raised here
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(WSClosedError, match="code 1006") as info:
            await ws.send_str("after")
        assert isinstance(info.value.__cause__, trio_ws.WSConnectionError)
        assert isinstance(ws.exception(), trio_ws.WSConnectionError)
        assert ws.close_code == 1006
        assert (await ws.receive()).type is WSMsgType.ERROR
        assert await ws.close() is False


async def test_close_with_a_broken_send_side_returns_true(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """close() whose close frame cannot be sent still closes and returns True, code 1006."""
    async with open_pair(nursery) as (ws, peer):
        await peer.stream.receive_stream.aclose()
        assert await ws.close() is True
        assert ws.close_code == 1006
        assert isinstance(ws.exception(), trio_ws.WSConnectionError)


async def test_blocked_send_fails_cleanly_when_close_gives_up(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """A send waiting for backpressure when close() gives up raises WSClosedError, not trio's
    error; close() still returns at its deadline."""
    options = {"lockstep": True, "timeout": ClientWSTimeout(ws_close=2)}
    async with open_pair(nursery, **options) as (ws, _peer):
        await ws.send_bytes(b"a" * 100_000)  # queued; the peer never reads
        errors: list[BaseException] = []

        async def sender() -> None:
            try:
                await ws.send_bytes(b"b" * 100_000)  # above the high-water mark: waits
            except WSClosedError as exc:
                errors.append(exc)

        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert await ws.close() is True
        assert trio.current_time() == 2
        await trio.testing.wait_all_tasks_blocked()
        assert len(errors) == 1
        assert isinstance(ws.exception(), trio_ws.WSTimeoutError)


async def test_connection_as_its_own_context_manager(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """``async with ws`` (after connect_ws) closes with 1000, or 1011 after an exception."""
    async with open_pair(nursery) as (ws, peer):
        async with ws as same:
            assert same is ws
        close = await peer.expect_close()
        assert close.code == 1000
    async with open_pair(nursery, timeout=ClientWSTimeout(ws_close=0.5)) as (ws, peer):
        with pytest.raises(KeyError):
            async with ws:
                raise KeyError("x")
        assert (await peer.expect_close()).code == 1011


async def test_bug_in_the_reader_surfaces_as_one_error(
    open_pair: OpenPair, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception in the reader becomes exception(), ERROR and code 1006."""
    async with open_pair(nursery) as (ws, peer):

        def broken(self: object, data: bytes) -> list[object]:
            raise RuntimeError("bug")

        monkeypatch.setattr(type(ws._core), "receive_data", broken)
        await peer.send(TextMessage(data="boom"))
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert isinstance(msg.data, trio_ws.WSError)
        assert isinstance(msg.data.__cause__, RuntimeError)
        assert ws.close_code == 1006


async def test_heartbeat_stops_after_the_server_closed(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """Without autoclose, after the server's close frame the heartbeat sends no more pings."""
    async with open_pair(nursery, heartbeat=5, autoclose=False) as (ws, peer):
        await peer.send(CloseConnection(code=1000))
        assert (await ws.receive()).type is WSMsgType.CLOSE
        await trio.sleep(100)
        assert ws.exception() is None
        assert await ws.close() is True
        assert (await peer.expect_close()).code == 1000


@pytest.mark.parametrize(("compress", "rsv1"), [(None, 0x40), (0, 0x00)])
async def test_per_message_compress(
    open_pair: OpenPair, nursery: trio.Nursery, compress: int | None, rsv1: int
) -> None:
    """send_str(compress=0) sends that message with RSV1 clear; None compresses as negotiated."""
    async with open_pair(nursery, compress=15) as (ws, peer):
        assert ws.compress == 15
        await ws.send_str("x" * 200, compress=compress)
        raw = await peer.stream.receive_some(65536)
        assert raw[0] & 0x40 == rsv1
        with pytest.raises(trio_ws.InvalidArgument):
            await ws.send_bytes(b"y", compress=9)


async def test_max_fragments_option(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    """max_fragments: a message of more frames than allowed fails with 1009."""
    async with open_pair(nursery, max_fragments=3) as (ws, peer):
        frames = b"\x01\x01a" + b"\x00\x01b" * 2 + b"\x80\x01c"  # 4 frames
        await peer.send_raw(frames)
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert ws.close_code == 1009


# ---------------------------------------------------------------------------------------------
# a violation behind messages the application has not seen yet

_TEXT_THEN_BAD_OPCODE = b"\x81\x05Hello" + b"\x83\x00"


async def test_messages_before_a_violation_can_be_answered(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """The 1002 close frame waits until the application took the ERROR; its echo goes first."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send_raw(_TEXT_THEN_BAD_OPCODE)
        assert await ws.receive_str() == "Hello"
        assert isinstance(ws.exception(), trio_ws.WSProtocolError)
        await ws.send_str("Hello")  # still allowed: the ERROR has not been taken
        assert (await ws.receive()).type is WSMsgType.ERROR
        with pytest.raises(WSClosedError):
            await ws.send_str("too late")
        assert await peer.next_event() == TextMessage(data="Hello")
        assert (await peer.expect_close()).code == 1002
        assert ws.close_code == 1002


async def test_deferred_violation_close_is_bounded_by_ws_close(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """An application that never takes the ERROR: the 1002 close frame goes out at ws_close."""
    async with open_pair(nursery, timeout=ClientWSTimeout(ws_close=4)) as (ws, peer):
        await peer.send_raw(_TEXT_THEN_BAD_OPCODE)
        assert (await peer.expect_close()).code == 1002
        assert trio.current_time() == 4
        assert ws.closed


async def test_close_sends_the_pending_violation_code(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """close() with a violation pending sends its 1002 frame, not the caller's code."""
    async with open_pair(nursery) as (ws, peer):
        await peer.send_raw(_TEXT_THEN_BAD_OPCODE)
        assert await ws.receive_str() == "Hello"
        assert await ws.close(code=1000) is False
        assert (await peer.expect_close()).code == 1002
        assert ws.close_code == 1002


async def test_an_idle_connection_keeps_no_old_message_alive(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """After a 1 MiB message was taken, the waiting reader holds neither the read nor the batch."""
    import gc
    import tracemalloc

    async with open_pair(nursery) as (ws, peer):
        tracemalloc.start()
        try:
            await peer.send(BytesMessage(data=b"m" * (1 << 20)))
            assert len(await ws.receive_bytes()) == 1 << 20
            await trio.testing.wait_all_tasks_blocked()  # the reader waits for the next read
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert held < 256 * 1024


# ---------------------------------------------------------------------------------------------
# max_queue, max_queue_bytes, write_limit, send_json_bytes


@pytest.mark.parametrize(
    ("options", "message", "paused_at"),
    [
        ({"max_queue": 10}, b"m", 10),
        ({"max_queue_bytes": 10_000}, b"x" * 1000, 10),
    ],
)
async def test_max_queue_options_pause_the_reader(
    autojump_clock: trio.testing.MockClock,
    open_pair: OpenPair,
    nursery: trio.Nursery,
    options: dict[str, int],
    message: bytes,
    paused_at: int,
) -> None:
    """The reader stops at the limit (the server's sends then block) and reads again once
    the application took half."""
    async with open_pair(nursery, lockstep=True, **options) as (ws, peer):
        sent = 0

        async def flood() -> None:
            nonlocal sent
            while True:
                await peer.send(BytesMessage(data=message))
                sent += 1

        nursery.start_soon(flood)
        await trio.sleep(10)
        assert ws.statistics().queue_messages == paused_at
        assert sent <= paused_at + 2  # then the server's sends block in the stream
        for _ in range(paused_at // 2 + 1):
            await ws.receive_bytes()
        await trio.sleep(10)
        assert ws.statistics().queue_messages == paused_at  # it read again, up to the limit
        assert ws.statistics().reader_paused > 0


async def test_write_limit_sets_when_a_send_waits(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """With write_limit=1 MiB, 100 KB queued is below the mark: the next send returns."""
    async with open_pair(nursery, lockstep=True, write_limit=1 << 20) as (ws, _peer):
        await ws.send_bytes(b"x" * 100_000)
        with trio.move_on_after(1) as scope:
            await ws.send_bytes(b"goes at once")
        assert not scope.cancelled_caught
        assert ws.statistics().outbox_bytes > 100_000
    async with open_pair(nursery, lockstep=True) as (ws, _peer):  # the default, 64 KiB
        await ws.send_bytes(b"x" * 100_000)
        with trio.move_on_after(1) as scope:
            await ws.send_bytes(b"waits")
        assert scope.cancelled_caught


async def test_send_json_bytes_sends_the_encoded_text(
    open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery) as (ws, peer):
        await ws.send_json_bytes({"a": [1, 2]}, dumps=lambda d: json.dumps(d).encode())
        assert await peer.next_event() == TextMessage('{"a": [1, 2]}')
        with pytest.raises(trio_ws.WSMessageTypeError, match="dumps\\(\\) must return bytes"):
            await ws.send_json_bytes({}, dumps=json.dumps)  # type: ignore[arg-type]
