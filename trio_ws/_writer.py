"""The only way to the socket: the writer lock, the outbox flush, backpressure.

Theory of operation
-------------------

Every frame, from any task, is produced synchronously into the core's outbox
(``ClientProtocol`` methods), so the order of the calls is the order on the wire. This module
decides how the outbox reaches the transport, with three guarantees:

1. **A send never waits for the socket below the high-water mark.** :meth:`Writer.send`
   produces its message and returns. It waits only while :data:`HIGH_WATER` bytes (the default
   of the ``write_limit`` option) are
   queued and not yet written (backpressure), in FIFO order on the **writer lock**, *before*
   producing. So a send cancelled while waiting queued nothing, and a send that returned
   queued its whole message: a cancelled send never cuts a frame and never breaks the
   connection.
2. **Only the writer's own tasks await the stream.** Bytes are written either *directly* —
   a non-blocking ``os.writev`` on the socket of a plain ``trio.SocketStream``, in whatever
   task produced them, without a trip through the scheduler — or by the **flush task**, a
   short-lived task in the connection's nursery that the application's cancel scopes cannot
   reach. A direct write that the kernel does not take whole leaves the rest to the flush
   task. Other streams (TLS, ``stream=``) are always written by the flush task. The flush
   task writes what it took from the outbox (whole frames) in a shielded scope that only the
   writer cancels (:meth:`Writer.close`) or times out (:meth:`Writer.limit`), so even the
   nursery's cancellation never cuts a frame; the connection bounds that with a short grace.
3. **Failures are recorded, never raised into a nursery.** A failed write is handed to the
   owner (:class:`WriterOwner`) as a :class:`WSConnectionError` chaining the cause; the
   connection records it and the application's next call raises it. (An owner object rather
   than a callback: a stored bound method would cost every idle connection 64 bytes.)

Batching: only the first write of each scheduling round is direct (the reader re-arms the
direct path with :meth:`Writer.next_round` after each read, the flush task when it ends).
Sends that follow in the same round only append to the outbox, and the flush task writes
them all with one system call once the sending task yields. A ping-pong client thus writes
each message at once (no extra scheduler pass per round trip) and a pipelining client
writes many messages per system call. A send yields (without raising) once the sends since
the last yield reach :data:`SEND_BATCH` units (a unit per message and per 4 KiB of it: 64
small messages, or about 256 KiB), so a sending loop cannot starve the reader or other tasks,
and big messages let the reader run as often as they would if each waited for the socket.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Protocol, cast, final

import trio

from ._errors import WSConnectionError
from ._protocol import ClientProtocol
from ._transport import socket_of
from ._types import DEFAULT_WRITE_LIMIT

__all__ = ["HIGH_WATER", "SEND_BATCH", "Writer", "WriterOwner"]

#: Senders wait (in FIFO order) while this many bytes are queued and not yet written (by
#: default).
HIGH_WATER: Final = DEFAULT_WRITE_LIMIT
#: A send yields to the scheduler once this many units were sent since the last yield: one
#: unit per message, and one more per 4 KiB (``_UNIT_SHIFT``) of it.
SEND_BATCH: Final = 64
_UNIT_SHIFT: Final = 12
#: The most buffers one ``writev`` is given (Linux allows 1024).
_MAX_IOV: Final = 512
#: The most one ``send_all`` of a stream that is not a socket is given (see _write_all).
_MAX_PIECE: Final = 64 * 1024
#: Direct writes need ``os.writev`` (not on Windows).
_CAN_WRITE_DIRECTLY: Final = hasattr(os, "writev")


class WriterOwner(Protocol):
    """What the writer tells its owner."""

    def _fail(self, exc: BaseException) -> None:
        """A write failed: ``exc`` is a :class:`WSConnectionError` (called synchronously)."""


@final
class Writer:
    """Writes the core's outbox to the stream; see the module docstring.

    Args:
        stream: the transport.
        core: the protocol core whose outbox is written.
        nursery: where flush tasks run (the connection's).
        owner: told when a write fails.
        high_water: senders wait while this many bytes are unwritten (``write_limit``).
    """

    # Slots: thousands of idle connections are a use case.
    __slots__ = (
        "_closed",
        "_core",
        "_cut",
        "_deadline",
        "_direct_ok",
        "_drained",
        "_flushing",
        "_high_water",
        "_lock",
        "_nursery",
        "_owner",
        "_pending",
        "_pending_size",
        "_scope",
        "_sends",
        "_sock",
        "_started",
        "_stream",
        "written",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        core: ClientProtocol,
        nursery: trio.Nursery,
        owner: WriterOwner,
        high_water: int = HIGH_WATER,
    ) -> None:
        self._stream = stream
        self._core = core
        self._nursery = nursery
        self._owner = owner
        self._high_water = high_water  # the write_limit option
        self._sock = socket_of(stream) if _CAN_WRITE_DIRECTLY else None
        self._lock: trio.Lock | None = None  # made on first contention: idle connections are many
        # Bytes taken from the outbox and not written yet (always before the outbox's).
        # (A tuple while empty: no list per idle connection.)
        self._pending: list[bytes | memoryview] | tuple[()] = ()
        self._pending_size = 0
        self._started = False  # part of _pending was written: abandoning it cuts a frame
        self._flushing = False  # a flush task is scheduled or running, or write_out is
        self._scope: trio.CancelScope | None = None  # the flush task's write of one take
        self._deadline = math.inf  # when a write in progress is given up (a shared float)
        self._direct_ok = True
        self._sends = 0
        self._drained: trio.Event | None = None
        self._closed = False  # nothing more will be written
        self._cut = False  # a write was abandoned mid-way: the stream is unusable
        #: Bytes written to the stream so far.
        self.written = 0

    # ----------------------------------------------------------------------------------------
    # state

    @property
    def backlog(self) -> int:
        """Bytes queued and not yet written."""
        return self._core.outbox.size + self._pending_size

    @property
    def cut(self) -> bool:
        """A write was abandoned part of the way: nothing more may be written."""
        return self._cut

    # ----------------------------------------------------------------------------------------
    # producing and flushing

    async def send(self, produce: Callable[..., None], *args: Any) -> None:
        """Produce one message with ``produce(*args)`` and see that it is written.

        Raises whatever ``produce`` raises (nothing is queued then).

        Cancellation: cancelled while waiting for its turn, nothing was queued.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        lock = self._lock
        core = self._core
        if (lock is not None and lock.locked()) or (
            self.backlog >= self._high_water and not self._relieve()
        ):
            self._sends += 1 + (await self._send_in_turn(produce, args) >> _UNIT_SHIFT)
        else:
            before = core.outbox.size
            produce(*args)
            self._sends += 1 + ((core.outbox.size - before) >> _UNIT_SHIFT)
        self.flush()
        if self._sends >= SEND_BATCH:
            self._sends = 0
            await trio.lowlevel.cancel_shielded_checkpoint()
            self._direct_ok = True

    async def send_control(self, produce: Callable[..., None], *args: Any) -> None:
        """Produce a ping or pong with ``produce(*args)`` and see that it is written: at once,
        without waiting for the writer lock or the backlog, since control frames go ahead of
        queued data anyway (a cancelled call produced nothing)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        produce(*args)
        self.flush()
        self._sends += 1
        if self._sends >= SEND_BATCH:
            self._sends = 0
            await trio.lowlevel.cancel_shielded_checkpoint()
            self._direct_ok = True

    async def _send_in_turn(self, produce: Callable[..., None], args: tuple[Any, ...]) -> int:
        """Backpressure: wait in FIFO order until the backlog is below the mark, then produce.
        Returns the bytes produced."""
        lock = self._lock
        if lock is None:
            lock = self._lock = trio.Lock()
        async with lock:
            while self.backlog >= self._high_water and not self._closed:
                await self._wait_drained()
            before = self._core.outbox.size
            produce(*args)
            return self._core.outbox.size - before

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the writer lock for a message sent in pieces: other senders wait (in FIFO
        order) until the block ends. Inside, produce with :meth:`send_held`."""
        lock = self._lock
        if lock is None:
            lock = self._lock = trio.Lock()
        async with lock:
            yield

    async def send_held(self, produce: Callable[..., None], *args: Any) -> None:
        """:meth:`send` for the holder of :meth:`exclusive`: it waits only while the backlog
        is at the high-water mark. Cancelled while waiting, it produced nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while self.backlog >= self._high_water and not self._closed and not self._relieve():
            await self._wait_drained()
        produce(*args)
        self.flush()

    def next_round(self) -> None:
        """Other tasks ran since the last direct write: the next write may be direct again."""
        self._direct_ok = True

    def flush(self) -> None:
        """Get the outbox written: now if the socket takes it, else by the flush task.

        Written at once: the first write of a round, and a backlog at the high-water mark
        (the kernel takes it without waiting; only what it refuses is backpressure). Pings
        and pongs queued while frames are being written go right after the frame in
        progress. Never waits and never raises; a failed direct write is reported to the
        owner.
        """
        outbox = self._core.outbox
        if self._closed or not outbox.size:
            return
        if outbox.urgent is not None and self._pending:
            # Every piece ends a frame: after the one being written is the next boundary.
            urgent = outbox.take_urgent()
            self._pending.insert(1, urgent)
            self._pending_size += len(urgent)
        if (self._direct_ok or self.backlog >= self._high_water) and self._write_directly():
            return
        if not self._flushing:
            self._flushing = True
            self._nursery.start_soon(self._flush_task)

    def _relieve(self) -> bool:
        """At the high-water mark: write directly what the kernel takes. Returns ``True`` if
        the backlog is below the mark afterwards."""
        self._write_directly()
        return self.backlog < self._high_water

    def _write_directly(self) -> bool:
        """Write the outbox to the socket now, if there is a socket and nothing is in flight
        (so the order stays the outbox's). Returns ``True`` if everything was written."""
        if self._sock is None or self._pending or self._closed:
            return False
        self._direct_ok = False
        self._take()
        try:
            self._write_some()
        except OSError as exc:
            self._fail(exc)
            return True  # nothing more will be written
        return not self._pending

    async def write_out(self) -> None:
        """Write everything queued, in the calling task, unless the stream was cut: after a
        running flush task (or another write_out) has ended.

        For the closing paths: ``close()``, and outer cancellation's going away, which runs
        shielded after the nursery was cancelled (no flush task could start then). The
        caller bounds the wait.
        """
        while self._flushing and not self._closed:
            await self._wait_drained()  # a flush task or another write_out is ending
        if self._closed or self._cut:
            return
        self._flushing = True
        try:
            while self._pending or self._core.outbox.size:
                await self._write_all()
        except Exception as exc:
            self._fail(exc)
        finally:
            if self._pending:
                self._abandon()  # cancelled part of the way
            self._flushing = False
            self._wake_drained()

    def limit(self, deadline: float) -> None:
        """Give up a write still in progress at ``deadline`` (outer cancellation's grace)."""
        self._deadline = min(self._deadline, deadline)
        if self._scope is not None:
            self._scope.deadline = self._deadline

    def close(self) -> None:
        """Nothing more will be written: stop a running flush task, wake every waiter."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        self._wake_drained()

    # ----------------------------------------------------------------------------------------
    # writing

    async def _flush_task(self) -> None:
        try:
            while not self._closed:
                if not self._pending:
                    if not self._core.outbox.size:
                        return
                    self._take()
                # Whole frames: shielded, so that only close() or limit() stop it midway.
                scope = self._scope = trio.CancelScope(shield=True, deadline=self._deadline)
                with scope:
                    await self._write_all()
                self._scope = None
                if scope.cancelled_caught:
                    return
                # Between takes, the nursery's cancellation may end the task.
                await trio.lowlevel.checkpoint_if_cancelled()
        except Exception as exc:
            # The transport broke, or a user-supplied stream raised anything at all: record
            # it; background tasks never raise into the nursery.
            self._fail(exc)
        finally:
            if self._pending:
                self._abandon()
            self._scope = None
            self._flushing = False
            self._direct_ok = True
            self._wake_drained()

    async def _write_all(self) -> None:
        """Write ``_pending`` (taking the outbox first if it is empty) until it is empty."""
        stream = self._stream
        if not self._pending:
            self._take()
        while self._pending and not self._closed:
            if self._sock is not None:
                self._write_some()
                if self._pending:
                    await stream.wait_send_all_might_not_block()
            else:
                piece = self._pending[0]
                self._started = True
                if len(piece) > _MAX_PIECE:
                    # TLS keeps an outgoing buffer as big as the largest write, for good:
                    # big payloads go in slices.
                    view = memoryview(piece)
                    await stream.send_all(view[:_MAX_PIECE])
                    self._pending[0] = view[_MAX_PIECE:]
                    self._pending_size -= _MAX_PIECE
                    self.written += _MAX_PIECE
                    continue
                await stream.send_all(piece)
                del self._pending[0]
                self._pending_size -= len(piece)
                self.written += len(piece)
                if not self._pending:
                    self._started = False
            self._wake_drained()

    def _take(self) -> None:
        self._pending_size = self._core.outbox.size
        # A fresh list: ours to change (a written part of a piece is replaced by a view).
        self._pending = cast("list[bytes | memoryview]", self._core.outbox.take_pieces())

    def _write_some(self) -> None:
        """Write as much of ``_pending`` as the socket takes now, without waiting.

        Raises:
            OSError: the socket failed.
        """
        assert self._sock is not None
        pending = self._pending
        fd = self._sock.fileno()
        while pending:
            batch = pending[:_MAX_IOV] if len(pending) > _MAX_IOV else pending
            try:
                written = os.writev(fd, batch)
            except (BlockingIOError, InterruptedError):
                return
            self._pending_size -= written
            self.written += written
            done = 0
            for piece in batch:
                size = len(piece)
                if written < size:
                    break
                written -= size
                done += 1
            if done == len(pending):
                self._pending = ()
                self._started = False
                return
            self._started = True
            if done < len(batch):
                # The kernel took part of the batch: its buffer is full.
                pending[: done + 1] = [memoryview(pending[done])[written:]]
                return
            del pending[:done]

    def _abandon(self) -> None:
        if self._started:
            self._cut = True
        self._pending = ()
        self._pending_size = 0
        self._started = False

    def _fail(self, exc: BaseException) -> None:
        if self._closed:
            return  # we closed the transport ourselves; what breaks now is expected
        self._abandon()
        self._closed = True
        self._wake_drained()
        err = WSConnectionError(f"the connection broke while sending: {exc!r}")
        err.__cause__ = exc
        self._owner._fail(err)

    async def _wait_drained(self) -> None:
        event = self._drained
        if event is None:
            event = self._drained = trio.Event()
        await event.wait()

    def _wake_drained(self) -> None:
        if self._drained is not None:
            self._drained.set()
            self._drained = None
