"""``trio-ws bench``: round trips and throughput against an echo server.

Theory of operation
-------------------

One connection, two tests of ``n`` TEXT messages of ``size`` bytes each:

* **round trips**: send a message, wait for its echo, ``n`` times. Each round trip is timed,
  so the summary gives the latency's minimum, median, 99th percentile and maximum; it
  measures the latency of the whole path (client, loopback or network, server).
* **pipelined**: one task sends the ``n`` messages without waiting while the main task
  receives the ``n`` echoes; the time from the first send to the last echo gives the
  throughput, which is what batching (one ``send_all`` for many messages) is for.

Every echo is checked (type and length; the content for round trips): a server that does not
echo makes the bench fail with status 1 rather than measure nonsense, one that stays silent
fails after :data:`ECHO_TIMEOUT` with status 7 (timeout), and one that closes ends the bench
with the status of its close code, as the client does. The clock is
:func:`time.perf_counter`: this measures the real world.

While it runs, a one-line progress bar is redrawn on stderr when stderr is a terminal (never
in a pipe or a log, where it would be noise); it is erased before the summary is printed.
"""

from __future__ import annotations

import statistics
import time
from typing import Final

import attrs
import trio

from trio_ws import ClientWebSocket, WSClosedError, WSError, WSMsgType

from ._cli_output import Console, TextStream

__all__ = ["ECHO_TIMEOUT", "BenchResult", "Progress", "bench", "summary"]

#: Seconds to wait for one echo before giving up (status 7).
ECHO_TIMEOUT: Final = 10.0
#: The least time between two redraws of the progress bar.
_REDRAW: Final = 0.1
_BAR_WIDTH: Final = 30
#: What ``receive()`` returns once the connection is ending or over.
_END_TYPES: Final = frozenset(
    {WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR}
)


class NotAnEchoError(WSError):
    """The server answered with something other than the echo of our message."""


class Progress:
    """A progress bar on one terminal line (nothing when the stream is not a terminal)."""

    def __init__(self, stream: TextStream, *, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._drawn_at = -float("inf")
        self._shown = False

    def update(self, label: str, done: int, total: int) -> None:
        """Redraw the bar (at most every :data:`_REDRAW` seconds, and at 100%)."""
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at < _REDRAW and done < total:
            return
        self._drawn_at = now
        filled = _BAR_WIDTH * done // total
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        self._write(f"\r{label:<12} [{bar}] {done}/{total}\x1b[K")
        self._shown = True

    def clear(self) -> None:
        """Erase the bar."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except OSError:  # stderr gone: the bar is not worth an error
            self._enabled = False


@attrs.frozen
class BenchResult:
    """What ``bench`` measured.

    Attributes:
        n: messages per test.
        size: bytes per message.
        round_trips: the duration of each round trip, in seconds.
        pipelined: seconds from the first pipelined send to the last echo.
    """

    n: int
    size: int
    round_trips: tuple[float, ...]
    pipelined: float


async def bench(ws: ClientWebSocket, n: int, size: int, progress: Progress) -> BenchResult | None:
    """Run both tests on ``ws``; ``None`` if the connection ended before they were done.

    Raises:
        WSTimeoutError: no echo within :data:`ECHO_TIMEOUT`.
        NotAnEchoError: the server answered something else.
    """
    payload = "x" * size
    round_trips = []
    for i in range(n):
        start = time.perf_counter()
        try:
            await ws.send_str(payload)
        except WSClosedError:
            return None
        echo = await _echo(ws, size)
        if echo is None:
            return None
        round_trips.append(time.perf_counter() - start)
        if echo != payload:
            raise NotAnEchoError("the server's answer differs from our message")
        progress.update("round trips", i + 1, n)

    async def send_all() -> None:
        for _ in range(n):
            try:
                await ws.send_str(payload)
            except WSClosedError:
                return  # the receiving side sees the end

    # Errors are raised outside the nursery, which would wrap them in an exception group.
    failure: WSError | None = None
    ended = False
    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        nursery.start_soon(send_all)
        try:
            for i in range(n):
                if await _echo(ws, size) is None:
                    ended = True
                    break
                progress.update("pipelined", i + 1, n)
        except WSError as exc:
            failure = exc
        pipelined = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if ended:
        return None
    return BenchResult(n=n, size=size, round_trips=tuple(round_trips), pipelined=pipelined)


async def _echo(ws: ClientWebSocket, size: int) -> str | None:
    """The next echo; ``None`` if the connection ended."""
    msg = await ws.receive(timeout=ECHO_TIMEOUT)
    if msg.type is WSMsgType.TEXT and len(msg.data) == size:
        return str(msg.data)
    if msg.type in _END_TYPES:
        return None
    shown = msg.data[:40] if isinstance(msg.data, (str, bytes)) else msg.data
    raise NotAnEchoError(
        f"the server did not echo our {size}-byte TEXT message; it sent {msg.type.name} "
        f"{shown!r}: bench needs an echo server (such as `trio-ws serve`)"
    )


def summary(url: str, result: BenchResult, compress: int) -> list[str]:
    """The summary table, as lines for stdout."""
    n, size = result.n, result.size
    total = sum(result.round_trips)
    deflate = "on" if compress else "off"
    rows = [("round trips", total), ("pipelined", result.pipelined)]
    lines = [
        f"= bench {url}: n={n}, size={size} bytes, permessage-deflate {deflate}",
        f"{'test':<12} {'messages':>9} {'seconds':>9} {'msg/s':>10} {'MiB/s':>9}",
    ]
    for name, seconds in rows:
        rate = n / seconds if seconds > 0 else float("inf")
        mib = n * size / seconds / 2**20 if seconds > 0 else float("inf")
        lines.append(f"{name:<12} {n:>9} {seconds:>9.3f} {rate:>10.0f} {mib:>9.2f}")
    latencies = sorted(result.round_trips)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    lines.append(
        "round-trip latency (ms): "
        f"min {latencies[0] * 1e3:.3f}, median {statistics.median(latencies) * 1e3:.3f}, "
        f"p99 {p99 * 1e3:.3f}, max {latencies[-1] * 1e3:.3f}"
    )
    return lines


async def run(
    ws: ClientWebSocket, console: Console, url: str, n: int, size: int, progress: Progress
) -> None:
    """``talk`` for :func:`~trio_ws._cli_session.run_session`: bench, print the summary."""
    try:
        result = await bench(ws, n, size, progress)
    finally:
        progress.clear()
    if result is not None:  # else the session reports how the connection ended
        console.say(*summary(url, result, ws.compress))
