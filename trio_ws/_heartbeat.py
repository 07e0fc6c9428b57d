"""The heartbeat of one connection (``heartbeat=H``): is the server still there?

Theory of operation
-------------------

The reader calls :meth:`Heartbeat.note_rx` after every read, so the heartbeat knows when the
server last sent a byte. :meth:`Heartbeat.run`, a background task in the connection's nursery:

* after H seconds without a byte, it asks the connection to send a ping;
* if no byte at all arrives within H/2 after that (a pong or anything else: any byte is a
  sign of life), it reports :class:`ServerTimeoutError` through ``on_timeout``; the connection
  fails with close code 1006 and aborts the transport.

Two situations must not count against the server:

* **We are the slow side.** While the reader is paused because the application does not
  take its messages (a full inbox), the server cannot be heard: nothing is judged, and the
  clock restarts when the reader resumes.
* **Our own event loop stalled.** If the loop was blocked for longer than H/2, the pong may
  be in the socket already, and the reader and the heartbeat wake in the same scheduler batch,
  in an order Trio chooses at random. So before it judges, the heartbeat yields once: the
  reader, already runnable, reads first.

It knows nothing of the connection: the inbox for the pause, a ``ping`` callback and an
``on_timeout`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

import trio

from ._errors import ServerTimeoutError
from ._inbox import Inbox

__all__ = ["Heartbeat"]


@final
class Heartbeat:
    """Liveness of the server: when it last sent a byte, and the keepalive task.

    Args:
        interval: H, the seconds of silence before a ping.
        inbox: the connection's inbox (its pause stops the judging).
        ping: queue and flush a ping; returns ``False`` if the connection can send no more.
        on_timeout: called with the :class:`ServerTimeoutError` when the server went silent.
    """

    __slots__ = ("_inbox", "_interval", "_last_rx", "_on_timeout", "_ping", "_rx_count", "scope")

    def __init__(
        self,
        interval: float,
        inbox: Inbox,
        ping: Callable[[], bool],
        on_timeout: Callable[[BaseException], None],
    ) -> None:
        self._interval = interval
        self._inbox = inbox
        self._ping = ping
        self._on_timeout = on_timeout
        self._last_rx = trio.current_time()
        self._rx_count = 0
        #: Cancelled when the connection ends.
        self.scope = trio.CancelScope()

    def note_rx(self) -> None:
        """The reader read something (or resumed after a pause): the server is alive."""
        self._last_rx = trio.current_time()
        self._rx_count += 1

    async def run(self) -> None:
        """The heartbeat task; returns when the connection ends or the server timed out."""
        interval = self._interval
        with self.scope:
            while True:
                # While the reader is paused by a full inbox the server is not judged.
                if self._inbox.paused:
                    await self._inbox.wait_resumed()
                    self.note_rx()
                    continue
                due = self._last_rx + interval
                if trio.current_time() < due:
                    await trio.sleep_until(due)
                    continue
                count = self._rx_count
                if not self._ping():
                    return
                await trio.sleep(interval / 2)
                if self._rx_count == count:
                    # A pong that reached the socket while our own loop was stalled wakes
                    # the reader in the same batch as us: let it run before we judge.
                    await trio.lowlevel.checkpoint()
                if self._rx_count != count or self._inbox.paused:
                    continue
                self._on_timeout(
                    ServerTimeoutError(
                        f"no data from the server within {interval / 2:g} s after a ping"
                    )
                )
                return
