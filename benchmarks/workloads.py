"""The workloads, written once for every client, and the configurations that size them.

Every workload is ``async def wN(client, urls, n, size, warm, window) -> dict``. It connects,
runs ``warm`` exchanges of the measured kind on the same connection (so that lazy imports,
buffer growth and the server's first accept are paid before the clock starts), then times
exactly the ``n`` measured exchanges with ``window``. Connecting and closing are outside the
timed part, except in W4 and W5, where they are what is measured.

W1  ping-pong:   send 16 bytes of text, wait for the echo; ``n`` round trips.
W2  pipelined:   a sender task sends ``n`` BINARY messages of ``size`` bytes while the main task
                 reads the ``n`` echoes; timed until the last echo is in.
W3  push:        the server sends ``n`` BINARY messages of ``size`` bytes as fast as the client
                 takes them (``/push``, sent when the client asks, after its clock started).
W4  connect:     open + opening handshake + closing handshake, ``n`` times one after another.
W5  idle:        hold ``n`` connections open at once (opened by 50 tasks in parallel); the
                 resident memory they add, per connection, and the time to open them all.
W6  deflate:     W3 on the permessage-deflate port: 2 KiB JSON documents, received as text.

The returned dict always has ``seconds`` (timed part), ``n`` and ``rate`` (``n / seconds``);
``bytes`` (payload bytes the client received in the timed part) where it applies, and W5 adds
its memory figures.

The same workload code serves Trio and asyncio clients (aiohttp): only W2 and W5 start tasks,
and they do it through the client's :class:`Runtime` (a Trio nursery, or an asyncio TaskGroup
behind the same three methods). No runtime call sits in a timed per-message loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import attrs
import trio

from benchmarks import payloads
from benchmarks.clients import Client

#: W5: how many opening handshakes may be in flight at once.
OPEN_CONCURRENCY: Final = 50

Result = dict[str, Any]


# --------------------------------------------------------------------------------------------
# runtimes: what the workloads need of an event loop


class _Started:
    """``task_status`` for :meth:`_TaskGroup.start`: ``started()`` resolves the future."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future

    def started(self, value: None = None) -> None:
        if not self._future.done():
            self._future.set_result(value)


class _TaskGroup:
    """The part of a Trio nursery the workloads use (``start_soon``, ``start``), on asyncio."""

    __slots__ = ("_group",)

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._group.create_task(fn(*args))  # type: ignore[arg-type]

    async def start(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        # If fn fails before started(), the TaskGroup cancels this task too: no hang.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._group.create_task(fn(*args, task_status=_Started(future)))  # type: ignore[arg-type]
        await future


@asynccontextmanager
async def _open_task_group() -> AsyncIterator[_TaskGroup]:
    async with asyncio.TaskGroup() as group:
        yield _TaskGroup(group)


def _asyncio_run(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return asyncio.run(fn(*args))  # type: ignore[arg-type]


@attrs.frozen
class Runtime:
    """An event loop as the workloads see it: run, start tasks, wait for an event."""

    #: ``run(async_fn, *args)`` from synchronous code: the result of ``async_fn(*args)``.
    run: Callable[..., Any]
    #: An async context manager yielding an object with ``start_soon`` and ``start``.
    open_group: Callable[[], AbstractAsyncContextManager[Any]]
    #: A new event: ``set()`` and ``await wait()``.
    event: Callable[[], Any]


#: By :attr:`benchmarks.clients.Client.loop`.
RUNTIMES: Final = {
    "trio": Runtime(trio.run, trio.open_nursery, trio.Event),
    "asyncio": Runtime(_asyncio_run, _open_task_group, asyncio.Event),
}


@attrs.frozen
class Urls:
    """Where the server listens: ``ws://127.0.0.1:PORT`` for each of its two ports."""

    plain: str
    deflate: str


@attrs.define
class Window:
    """The timed part of a workload: wall time, this process's CPU, and the server's CPU.

    CPU is reported as CPU-seconds per wall-second. The server's comes from
    ``/proc/PID/stat`` (Linux, 10 ms ticks, so only meaningful for windows of a second or
    more): near 1.0 means the server's core was saturated and the client was waiting for it.
    """

    server_pid: int | None = None
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    _t0: float = 0.0
    _cpu0: float = 0.0
    _srv0: float | None = None

    def start(self) -> None:
        """Start the clock (after a full collection, so no old garbage is collected inside)."""
        gc.collect()
        self._srv0 = _process_cpu(self.server_pid)
        self._cpu0 = time.process_time()
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        """Stop the clock; return the seconds elapsed."""
        self.seconds = time.perf_counter() - self._t0
        self.client_cpu = (time.process_time() - self._cpu0) / self.seconds
        srv1 = _process_cpu(self.server_pid)
        if self._srv0 is not None and srv1 is not None:
            self.server_cpu = (srv1 - self._srv0) / self.seconds
        return self.seconds

    def figures(self) -> Result:
        """What the window saw, for the result line."""
        return {
            "seconds": self.seconds,
            "client_cpu": round(self.client_cpu, 3),
            "server_cpu": None if self.server_cpu is None else round(self.server_cpu, 3),
        }


def _process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (all threads), or ``None``."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # Fields after the command name, which is in parentheses and may hold spaces.
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_bytes() -> int | None:
    """This process's resident memory now (not its peak, which is all ``ru_maxrss`` gives).

    Taken after a full garbage collection, so that only what is still referenced counts.
    """
    gc.collect()
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return None


def push_url(base: str, warm: int, n: int, size: int, kind: str) -> str:
    """The server's ``/push`` path: ``warm`` then ``n`` messages of ``size`` bytes of ``kind``."""
    return f"{base}/push?warm={warm}&n={n}&size={size}&type={kind}"


async def w1(client: Client, urls: Urls, n: int, size: int, warm: int, window: Window) -> Result:
    """Ping-pong: 16 bytes of text there and back, one round trip at a time."""
    message = payloads.TEXT16
    async with client.connect(urls.plain + "/echo", False) as ws:
        send, recv = ws.send_text, ws.recv_text
        for _ in range(warm):
            await send(message)
            await recv()
        reply = None
        window.start()
        for _ in range(n):
            await send(message)
            reply = await recv()
        window.stop()
    if reply != message:
        raise AssertionError(f"W1: sent {message!r}, got {reply!r} back")
    return {"n": n, "rate": n / window.seconds, "bytes": n * len(message)}


async def w2(client: Client, urls: Urls, n: int, size: int, warm: int, window: Window) -> Result:
    """Pipelined echo: a sender task and a receiving task, at most the buffers apart."""
    payload = payloads.binary(size)

    async def exchange(ws: Any, count: int) -> int:
        send, recv = ws.send_bytes, ws.recv_bytes

        async def sender() -> None:
            for _ in range(count):
                await send(payload)

        received = 0
        async with RUNTIMES[client.loop].open_group() as nursery:
            nursery.start_soon(sender)
            for _ in range(count):
                received += len(await recv())
        return received

    async with client.connect(urls.plain + "/echo", False) as ws:
        await exchange(ws, warm)
        window.start()
        received = await exchange(ws, n)
        window.stop()
    _check_bytes("W2", received, n * size)
    return {"n": n, "rate": n / window.seconds, "bytes": received}


async def w3(
    client: Client,
    urls: Urls,
    n: int,
    size: int,
    warm: int,
    window: Window,
    *,
    kind: str = "binary",
    compress: bool = False,
) -> Result:
    """Server push: read ``warm`` then ``n`` messages as fast as the server sends them.

    The server sends the ``n`` only when asked, after the clock has started: a client that
    reads ahead (into a queue of 16 to 1024 messages, depending on the library) would
    otherwise start the clock with part of the timed work already done.
    """
    base = urls.deflate if compress else urls.plain
    async with client.connect(push_url(base, warm, n, size, kind), compress) as ws:
        recv, ask = ws.recv_bytes if kind == "binary" else ws.recv_text, ws.send_text
        if warm:
            await ask("warm")
            for _ in range(warm):
                await recv()
        received = 0
        window.start()
        await ask("go")
        for _ in range(n):
            received += len(await recv())
        window.stop()
    _check_bytes("W3" if not compress else "W6", received, n * size)
    return {"n": n, "rate": n / window.seconds, "bytes": received}


async def w4(client: Client, urls: Urls, n: int, size: int, warm: int, window: Window) -> Result:
    """Sequential connections: open, handshake, close handshake; ``n`` times."""
    url = urls.plain + "/echo"
    connect = client.connect
    for _ in range(warm):
        async with connect(url, False):
            pass
    window.start()
    for _ in range(n):
        async with connect(url, False):
            pass
    window.stop()
    return {"n": n, "rate": n / window.seconds}


async def w5(client: Client, urls: Urls, n: int, size: int, warm: int, window: Window) -> Result:
    """Idle connections: open ``n`` at once and hold them; memory per connection, open time.

    Each connection is held by its own task, as an application would hold it; the task is part
    of what a connection costs. Tasks that open connections run ``OPEN_CONCURRENCY`` at a time.
    """
    url = urls.plain + "/echo"
    runtime = RUNTIMES[client.loop]
    for _ in range(max(1, warm)):
        async with client.connect(url, False):
            pass
    release = runtime.event()

    async def hold(*, task_status: Any) -> None:
        async with client.connect(url, False):
            task_status.started()
            await release.wait()

    async def opener(nursery: Any, count: int) -> None:
        for _ in range(count):
            await nursery.start(hold)

    before = resident_bytes()
    async with runtime.open_group() as holders:
        window.start()
        async with runtime.open_group() as openers:
            for i in range(OPEN_CONCURRENCY):
                openers.start_soon(opener, holders, _share(n, OPEN_CONCURRENCY, i))
        window.stop()
        after = resident_bytes()
        closing = time.perf_counter()
        release.set()
    result: Result = {"n": n, "rate": n / window.seconds}
    result["close_seconds"] = time.perf_counter() - closing
    if before is not None and after is not None:
        result["rss_before_kib"] = before / 1024
        result["rss_open_kib"] = after / 1024
        result["kib_per_conn"] = (after - before) / 1024 / n
    return result


async def w6(client: Client, urls: Urls, n: int, size: int, warm: int, window: Window) -> Result:
    """Deflate push: W3 with permessage-deflate, JSON documents received as text."""
    return await w3(client, urls, n, size, warm, window, kind="json", compress=True)


def _share(total: int, parts: int, i: int) -> int:
    """Part ``i`` of ``total`` split into ``parts`` near-equal parts."""
    return total // parts + (1 if i < total % parts else 0)


def _check_bytes(name: str, received: int, expected: int) -> None:
    if received != expected:
        raise AssertionError(f"{name}: received {received} payload bytes, expected {expected}")


Workload = Callable[[Client, Urls, int, int, int, Window], Awaitable[Result]]

WORKLOADS: Final[dict[str, Workload]] = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5": w5,
    "W6": w6,
}


@attrs.frozen
class Config:
    """One row of the tables: a workload with its message size and its full-size ``n``."""

    name: str
    workload: str
    n: int
    size: int
    #: What ``rate`` counts, for the tables.
    unit: str
    #: ``n`` in ``--smoke`` runs and in the pytest smoke test.
    smoke_n: int

    def scaled(self, scale: float) -> int:
        """``n`` times ``scale``, at least the smoke size."""
        return max(self.smoke_n, round(self.n * scale))

    def warm(self, n: int) -> int:
        """How many exchanges warm up before the clock starts."""
        if self.workload == "W5":
            return 1
        return max(1, n // 20)

    @property
    def deflate(self) -> bool:
        """Whether the configuration needs permessage-deflate."""
        return self.workload == "W6"


#: Full-size ``n`` is chosen so that each measurement takes a few seconds on a 2-core VM.
CONFIGS: Final = {
    c.name: c
    for c in [
        Config("W1", "W1", 20_000, 16, "round trips/s", 50),
        Config("W2-64", "W2", 50_000, 64, "msg/s", 100),
        Config("W2-4K", "W2", 20_000, 4096, "msg/s", 100),
        Config("W2-1M", "W2", 100, 1 << 20, "msg/s", 4),
        Config("W3-64", "W3", 200_000, 64, "msg/s", 200),
        Config("W3-64K", "W3", 10_000, 64 * 1024, "msg/s", 20),
        Config("W4", "W4", 1_000, 0, "conn/s", 5),
        Config("W5-1000", "W5", 1_000, 0, "conn/s", 20),
        Config("W6", "W6", 50_000, 2048, "msg/s", 100),
    ]
}
