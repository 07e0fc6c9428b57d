"""The receive queue of one connection: bounded, cancel-safe, one parked receiver.

Theory of operation
-------------------

The reader task is the only producer: it :meth:`Inbox.deliver`\\ s the messages one read
completed, as a *batch*. The application is the only consumer: :meth:`Inbox.get` (behind
``ClientWebSocket.receive``) takes them, one task at a time.

* **Bounded.** The queue counts messages and payload bytes. While it holds
  :data:`HIGH_MESSAGES` messages or :data:`HIGH_BYTES` bytes (the defaults of the ``max_queue``
  and ``max_queue_bytes`` options), :attr:`Inbox.full` is true and the
  reader waits in :meth:`Inbox.wait_for_space` instead of reading, so TCP pushes back on the
  server. It resumes once the queue is below half of both marks. While the reader waits the
  inbox is :attr:`~Inbox.paused`: the heartbeat does not count that time against the server,
  because the slow side is us.
* **Cancel-safe.** A message leaves the queue only in a step that cannot be cancelled: a
  cancelled or timed-out :meth:`~Inbox.get` has taken nothing, and the next one gets the
  message.
* **One yield per read.** A get that finds a message waiting takes it at once, after checking
  for cancellation, and yields to the scheduler only if the reader delivered a new batch since
  the consumer last yielded. A firehose then costs one schedule per read (up to 128 KiB of
  messages) instead of one per message, and still cannot starve other tasks for longer than
  one read's worth of messages. (Trio's rule that every async call yields is bent here on
  purpose; ``docs/concurrency.rst`` says so.)
* **The parked receiver** waits with ``wait_task_rescheduled`` and is woken with ``reschedule``,
  not with a ``trio.Event`` per call: this is the per-message path.
* **End of input.** :meth:`~Inbox.finish` says nothing more will arrive: queued messages are
  still delivered, then CLOSED forever. :meth:`~Inbox.discard` is ``close()``: queued messages
  are dropped, a waiting get returns CLOSING, later ones CLOSED.

The inbox knows nothing of the connection. It tells its owner (any object with the method of
:class:`InboxOwner`) when the application takes an ERROR message: the connection then sends
the close frame it deferred so that earlier messages could still be answered. An owner
object rather than a callback: a stored bound method would cost every idle connection 64
bytes.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Protocol, final

import trio

from ._errors import WSTimeoutError
from ._types import (
    CHUNK_MORE,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_QUEUE_BYTES,
    WS_CLOSED_MESSAGE,
    WS_CLOSING_MESSAGE,
    WSMessage,
    WSMsgType,
)

__all__ = ["HIGH_BYTES", "HIGH_MESSAGES", "Inbox", "InboxOwner"]

#: The reader pauses while the queue holds this many messages (by default)...
HIGH_MESSAGES: Final = DEFAULT_MAX_QUEUE
#: ...or this many payload bytes, and resumes below half of both.
HIGH_BYTES: Final = DEFAULT_MAX_QUEUE_BYTES

_DATA_TYPES: Final = (WSMsgType.TEXT, WSMsgType.BINARY)


class InboxOwner(Protocol):
    """What the inbox tells its owner."""

    def _error_taken(self) -> None:
        """:meth:`Inbox.get` handed out an ERROR message (called synchronously)."""


@final
class Inbox:
    """The messages the reader delivered and the application has not taken yet.

    Args:
        owner: told when the application takes an ERROR message.
    """

    # Slots: thousands of idle connections are a use case.
    __slots__ = (
        "_batch",
        "_bytes",
        "_discarded",
        "_finished",
        "_limits",
        "_owner",
        "_queue",
        "_receiving",
        "_space",
        "_waiter",
        "_yielded_batch",
        "messages_in",
        "paused_seconds",
        "payload_in",
    )

    def __init__(
        self,
        owner: InboxOwner,
        limits: tuple[int, int] = (HIGH_MESSAGES, HIGH_BYTES),
    ) -> None:
        self._owner = owner
        # (messages, bytes) at which the reader pauses; it resumes below half of both. One
        # tuple shared by every connection with the same limits.
        self._limits = limits
        # A deque only while messages wait: an empty one costs 760 bytes per idle connection.
        self._queue: deque[WSMessage] | tuple[()] = ()
        self._bytes = 0
        self._batch = 0  # batches delivered
        self._yielded_batch = 0  # the batch the consumer last yielded in
        self._waiter: trio.lowlevel.Task | None = None  # the task parked in get()
        self._receiving = False
        self._space: trio.Event | None = None  # set when the paused reader may go on
        self._finished = False
        self._discarded = False
        #: TEXT and BINARY messages delivered so far, their payload bytes, and the seconds the
        #: reader spent in :meth:`wait_for_space`.
        self.messages_in = 0
        self.payload_in = 0
        self.paused_seconds = 0.0

    # ----------------------------------------------------------------------------------------
    # the producer's side (the reader task)

    @property
    def discarded(self) -> bool:
        """:meth:`discard` was called: the application gave up its messages."""
        return self._discarded

    @property
    def full(self) -> bool:
        """The reader should stop reading until :meth:`wait_for_space` returns."""
        messages, size = self._limits
        return (len(self._queue) >= messages or self._bytes >= size) and not self._discarded

    @property
    def queued_messages(self) -> int:
        """Messages waiting to be taken."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """The payload bytes of the TEXT and BINARY messages waiting to be taken."""
        return self._bytes

    @property
    def paused(self) -> bool:
        """The reader is waiting for space."""
        return self._space is not None

    def deliver(self, msgs: list[WSMessage]) -> None:
        """Queue the messages one read completed, and wake the receiver."""
        self._batch += 1
        if not self._discarded:
            queue = self._queue
            if not queue:
                queue = self._queue = deque()
            size = count = 0
            for msg in msgs:
                if msg.type in _DATA_TYPES:
                    size += len(msg.data)
                    if msg.extra is not CHUNK_MORE:  # a streamed message counts once
                        count += 1
                queue.append(msg)
            self._bytes += size
            self.payload_in += size
            self.messages_in += count
        self._wake_receiver()

    def finish(self) -> None:
        """Nothing more will arrive; wake the receiver (it gets the rest, then CLOSED)."""
        self._finished = True
        self._wake_receiver()

    def discard(self) -> None:
        """The application closed: drop every message; a waiting :meth:`get` returns CLOSING."""
        self._discarded = True
        self._queue = ()
        self._bytes = 0
        self._wake_receiver()
        self._resume()

    async def wait_for_space(self) -> None:
        """Wait (the reader) until the queue is below half of both marks, or discarded."""
        event = self._space = trio.Event()
        start = trio.current_time()
        try:
            await event.wait()
        finally:
            self.paused_seconds += trio.current_time() - start

    async def wait_resumed(self) -> None:
        """Wait (the heartbeat) while the reader is paused; return at once if it is not."""
        event = self._space
        if event is not None:
            await event.wait()

    # ----------------------------------------------------------------------------------------
    # the consumer's side (receive())

    async def get(self, timeout: float | None) -> WSMessage:
        """The next message; see ``ClientWebSocket.receive`` for what it returns.

        Raises:
            WSTimeoutError: nothing arrived within ``timeout`` seconds; nothing was taken.
            RuntimeError: another task is already waiting here.

        Cancellation: a cancelled get takes no message.
        """
        if self._receiving:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        if self._queue and not self._discarded:
            # The fast path: check for cancellation, take the message, and yield only once
            # per batch the reader delivered.
            await trio.lowlevel.checkpoint_if_cancelled()
            msg = self._pop()
            if self._batch != self._yielded_batch:
                self._yielded_batch = self._batch
                self._receiving = True
                try:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                finally:
                    self._receiving = False
            return msg
        self._receiving = True
        try:
            return await self._wait(timeout)
        finally:
            self._receiving = False

    async def _wait(self, timeout: float | None) -> WSMessage:
        deadline = trio.current_time() + timeout if timeout is not None else None
        discarded_at_start = self._discarded
        yielded_before_park = False
        while True:
            if self._discarded:
                await trio.lowlevel.checkpoint()
                return WS_CLOSED_MESSAGE if discarded_at_start else WS_CLOSING_MESSAGE
            if self._queue:
                # Take it before yielding: discard() may empty the queue meanwhile.
                await trio.lowlevel.checkpoint_if_cancelled()
                msg = self._pop()
                self._yielded_batch = self._batch
                await trio.lowlevel.cancel_shielded_checkpoint()
                return msg
            if self._finished:
                await trio.lowlevel.checkpoint()
                return WS_CLOSED_MESSAGE
            if not yielded_before_park:
                # Once before parking, a pass through the scheduler (cancel-shielded: not a
                # cancel point): measured on W1 (ping-pong), letting the loop poll once before
                # the task waits for the reply is faster than waiting at once (an idle CPU
                # wakes up slowly), 11.5k against 9.5k round trips/s.
                yielded_before_park = True
                await trio.lowlevel.cancel_shielded_checkpoint()
                continue
            yielded_before_park = False
            if deadline is None:
                if await self._park():
                    return self._pop()
                continue
            with trio.move_on_at(deadline):
                if await self._park():
                    return self._pop()
                continue
            if not (self._queue or self._discarded or self._finished):
                raise WSTimeoutError(f"no message within {timeout} s")

    async def _park(self) -> bool:
        """Wait until the reader (or discard, or the end) wakes us.

        Returns ``True`` if a message can be taken at once; parking was the yield of this
        batch. Cancelled, it takes nothing.
        """
        self._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        if self._queue and not self._discarded:
            self._yielded_batch = self._batch
            return True
        return False

    def _pop(self) -> WSMessage:
        queue = self._queue
        assert queue
        msg = queue.popleft()
        if not queue:
            self._queue = ()
        kind = msg.type
        if kind in _DATA_TYPES:
            self._bytes -= len(msg.data)
        elif kind is WSMsgType.ERROR:
            self._owner._error_taken()
        if (
            self._space is not None
            # (or 1: with a limit of 1, half of it is 0, and "below 0" never comes)
            and len(self._queue) < (self._limits[0] // 2 or 1)
            and self._bytes < (self._limits[1] // 2 or 1)
        ):
            self._resume()
        return msg

    def _resume(self) -> None:
        if self._space is not None:
            self._space.set()
            self._space = None

    def _wake_receiver(self) -> None:
        if self._waiter is not None:
            trio.lowlevel.reschedule(self._waiter)
            self._waiter = None
