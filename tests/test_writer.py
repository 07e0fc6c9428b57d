"""The writer alone: direct writes, batching, backpressure, failures, cancellation."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
import trio
import trio.testing

from trio_ws import WSConnectionError
from trio_ws._protocol import ClientProtocol
from trio_ws._writer import HIGH_WATER, SEND_BATCH, Writer

from .scheduling import counting_steps

pytestmark = pytest.mark.skipif(not hasattr(socket, "socketpair"), reason="needs socketpair")


def unmask_frames(data: bytes) -> list[bytes]:
    """Split ``data`` into client frames and return their unmasked payloads (whole frames only)."""
    out = []
    pos = 0
    while pos < len(data):
        length = data[pos + 1] & 0x7F
        head = 2
        if length == 126:
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            head = 4
        elif length == 127:
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            head = 10
        mask = data[pos + head : pos + head + 4]
        start = pos + head + 4
        assert start + length <= len(data), "a cut frame"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[start : start + length]))
        out.append(payload)
        pos = start + length
    return out


class Failures:
    """A writer's owner that records the failures it is told of."""

    def __init__(self) -> None:
        self.seen: list[BaseException] = []

    def _fail(self, exc: BaseException) -> None:
        self.seen.append(exc)


@contextmanager
def socket_pair() -> Iterator[tuple[trio.SocketStream, socket.socket]]:
    """A trio SocketStream and the stdlib socket at the other end (non-blocking)."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    try:
        yield stream, theirs
    finally:
        theirs.close()
        stream.socket.close()


def read_all(peer: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@asynccontextmanager
async def writer_on(
    stream: trio.abc.Stream,
) -> AsyncIterator[tuple[Writer, ClientProtocol, Failures]]:
    core = ClientProtocol()
    failures = Failures()
    async with trio.open_nursery() as nursery:
        writer = Writer(stream, core, nursery, failures)
        yield writer, core, failures
        writer.close()


async def test_the_first_send_of_a_round_is_written_at_once() -> None:
    """On a socket, a send with nothing queued writes its frame before it returns, no task."""
    with socket_pair() as (stream, peer):
        async with writer_on(stream) as (writer, core, _):
            await writer.send(core.send_bytes, b"now")
            assert unmask_frames(read_all(peer)) == [b"now"]
            assert writer.backlog == 0


async def test_sends_in_the_same_round_share_one_flush() -> None:
    """Sends after the first in one round are queued and written together once the task yields."""
    with socket_pair() as (stream, peer):
        async with writer_on(stream) as (writer, core, _):
            for payload in (b"a", b"b", b"c"):
                await writer.send(core.send_bytes, payload)
            assert unmask_frames(read_all(peer)) == [b"a"]
            assert writer.backlog > 0
            await trio.testing.wait_all_tasks_blocked()
            assert writer.backlog == 0
            assert unmask_frames(read_all(peer)) == [b"b", b"c"]
            writer.next_round()  # the reader re-arms the direct path after a read
            await writer.send(core.send_bytes, b"d")
            assert unmask_frames(read_all(peer)) == [b"d"]


async def test_a_send_loop_yields_once_per_batch() -> None:
    """A task sending in a loop yields once every SEND_BATCH sends, so others can run."""
    with socket_pair() as (stream, peer):
        async with writer_on(stream) as (writer, core, _):
            with counting_steps() as counter:
                for _ in range(SEND_BATCH - 1):
                    await writer.send(core.send_bytes, b"x")
                assert counter.steps == 0
                await writer.send(core.send_bytes, b"x")
                assert counter.steps == 1
            await trio.testing.wait_all_tasks_blocked()
            assert unmask_frames(read_all(peer)) == [b"x"] * SEND_BATCH


async def test_backpressure_waits_before_queuing(autojump_clock: trio.testing.MockClock) -> None:
    """Above the high-water mark a send waits; cancelled there, it queued nothing."""
    with socket_pair() as (stream, peer):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with writer_on(stream) as (writer, core, _):
            sent = 0
            while writer.backlog < HIGH_WATER:
                await writer.send(core.send_bytes, bytes([sent % 256]) * 16384)
                sent += 1
            backlog = writer.backlog
            with trio.move_on_after(5) as scope:
                await writer.send(core.send_bytes, b"never")
            assert scope.cancelled_caught
            assert writer.backlog == backlog
            received = b""

            async def drain_peer() -> None:
                nonlocal received
                while True:
                    received += read_all(peer)
                    await trio.sleep(0.01)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain_peer)
                await writer.send(core.send_bytes, b"last")
                await writer.write_out()
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
            payloads = unmask_frames(received)
            assert payloads[-1] == b"last"
            assert len(payloads) == sent + 1
            assert b"never" not in payloads


async def test_a_cancelled_send_queues_nothing() -> None:
    """A send in a cancelled scope raises Cancelled before producing its frame."""
    stream, _ = trio.testing.memory_stream_pair()
    async with writer_on(stream) as (writer, core, _):
        with trio.CancelScope() as scope:
            scope.cancel()
            await writer.send(core.send_bytes, b"no")
        assert scope.cancelled_caught
        assert writer.backlog == 0


async def test_other_streams_are_written_by_the_flush_task() -> None:
    """Over a non-socket stream (TLS, stream=) the flush task writes, in order."""
    client, server = trio.testing.memory_stream_pair()
    async with writer_on(client) as (writer, core, _):
        for payload in (b"1", b"2"):
            await writer.send(core.send_bytes, payload)
        await writer.write_out()
        assert unmask_frames(await server.receive_some()) == [b"1", b"2"]


class FailingStream(trio.abc.Stream):
    """A user-supplied stream whose send_all raises something trio never would."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("the user's stream failed")

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_a_failing_stream_is_reported_not_raised() -> None:
    """Any exception from send_all reaches the owner as WSConnectionError, not the nursery."""
    async with writer_on(FailingStream()) as (writer, core, failures):
        await writer.send(core.send_bytes, b"x")
        await writer.write_out()
    [err] = failures.seen
    assert isinstance(err, WSConnectionError)
    assert isinstance(err.__cause__, RuntimeError)


async def test_a_broken_socket_is_reported_by_a_direct_write() -> None:
    """A direct write to a socket whose peer is gone reports WSConnectionError, once."""
    with socket_pair() as (stream, peer):
        peer.close()
        async with writer_on(stream) as (writer, core, failures):
            await writer.send(core.send_bytes, b"x")
            await writer.send(core.send_bytes, b"y")
            await writer.write_out()
        [err] = failures.seen
        assert isinstance(err, WSConnectionError)
        assert isinstance(err.__cause__, OSError)


async def test_close_stops_a_blocked_write_and_marks_the_stream_cut() -> None:
    """close() stops a flush stuck in send_all; the abandoned frame makes the stream cut."""
    client, _server = trio.testing.lockstep_stream_pair()
    async with writer_on(client) as (writer, core, failures):
        await writer.send(core.send_bytes, b"stuck")
        await trio.testing.wait_all_tasks_blocked()
        assert writer.backlog > 0
        writer.close()
        await writer.write_out()
    assert writer.cut
    assert failures.seen == []


async def test_write_out_writes_in_the_calling_task_after_cancellation() -> None:
    """write_out() writes what is queued in the caller's (shielded) task, with no flush task."""
    client, server = trio.testing.memory_stream_pair()
    core = ClientProtocol()
    with trio.CancelScope() as outer:
        async with trio.open_nursery() as nursery:
            writer = Writer(client, core, nursery, Failures())
            outer.cancel()
            with trio.CancelScope(shield=True):
                core.send_close(1001)
                await writer.write_out()
                data = await server.receive_some()
    assert len(unmask_frames(data)) == 1
    assert writer.backlog == 0


async def test_big_payloads_reach_other_streams_in_slices() -> None:
    """Over a non-socket stream (TLS) a 1 MiB payload is written 64 KiB at a time, in order."""
    sizes: list[int] = []

    class Recording(trio.abc.SendStream):
        def __init__(self) -> None:
            self.data = bytearray()

        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            await trio.lowlevel.checkpoint()
            sizes.append(len(data))
            self.data += data

        async def wait_send_all_might_not_block(self) -> None:
            await trio.lowlevel.checkpoint()  # pragma: no cover

        async def aclose(self) -> None:
            await trio.lowlevel.checkpoint()  # pragma: no cover

    stream = Recording()
    payload = bytes(range(256)) * 4096
    async with writer_on(stream) as (writer, core, _):  # type: ignore[arg-type]
        await writer.send(core.send_bytes, payload)
        await writer.write_out()
    assert max(sizes) <= 64 * 1024
    assert unmask_frames(bytes(stream.data)) == [payload]


async def test_a_socket_that_takes_the_backlog_is_no_backpressure() -> None:
    """At the high-water mark the socket is written directly: while the kernel takes the
    bytes, a send loop within one batch neither waits nor yields."""
    payload = b"p" * (HIGH_WATER // 8)
    # As many sends as fit in one batch (a unit per send and per 4 KiB): well past the mark.
    count = (SEND_BATCH - 1) // (1 + len(payload) // 4096)
    assert count * len(payload) > 2 * HIGH_WATER
    with socket_pair() as (stream, peer):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        async with writer_on(stream) as (writer, core, _):
            received = b""
            with counting_steps() as counter:
                for _ in range(count):
                    await writer.send(core.send_bytes, payload)
                    received += read_all(peer)
                assert counter.steps == 0
            await writer.write_out()
            received += read_all(peer)
    assert unmask_frames(received) == [payload] * count


async def test_big_messages_yield_as_often_as_their_size_says() -> None:
    """A loop sending 1 MiB messages yields at every one of them (256 KiB of sends at most),
    even though the socket takes them at once: the reader must get to run."""
    with socket_pair() as (stream, peer):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024 * 1024)
        async with writer_on(stream) as (writer, core, _):
            received = b""
            with counting_steps() as counter:
                for count in range(1, 4):
                    await writer.send(core.send_bytes, b"m" * (1 << 20))
                    received += read_all(peer)
                    assert counter.steps == count
            await writer.write_out()
            received += read_all(peer)
    assert len(unmask_frames(received)) == 3
