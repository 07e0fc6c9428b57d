"""reconnecting(): backoff with exact delays (MockClock, jitter injected, connects that fail
without I/O), what is retried, and against real servers: one that stops and restarts on the
same port, one that answers 503 with Retry-After, leaving the loop, the body's exceptions.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import (
    Backoff,
    InvalidArgument,
    WSConnectionError,
    WSRedirectError,
    WSServerHandshakeError,
    WSTLSError,
    _reconnect,
    is_retryable,
    reconnecting,
)
from trio_ws.testing import ServerConnection, open_test_server

from .servers import RawPeer, open_raw_server

GUARD = 10.0


class FakeWS:
    """Stands for a connection in the timing tests: it opens and ends at once."""

    closed = True

    def exception(self) -> BaseException | None:
        return None

    async def close(self, **_: Any) -> bool:
        return False


def scripted(outcomes: list[BaseException | None], times: list[float]) -> Callable[..., Any]:
    """A stand-in for open_ws: each attempt records the time, then raises the next outcome
    (``None``: a connection that opens and is lost at once)."""

    @asynccontextmanager
    async def fake_open(url: str, options: Any) -> AsyncIterator[FakeWS]:
        times.append(trio.current_time())
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome
        yield FakeWS()

    return fake_open


async def run_attempts(
    monkeypatch: pytest.MonkeyPatch,
    outcomes: list[BaseException | None],
    connections: int,
    **kwargs: Any,
) -> list[float]:
    """Run reconnecting() until ``connections`` connections were yielded; the attempt times."""
    times: list[float] = []
    monkeypatch.setattr(_reconnect, "_open", scripted(outcomes, times))
    got = 0
    async with reconnecting("ws://example.test/", **kwargs) as stream:
        async for _ws in stream:
            got += 1
            if got == connections:
                break
    return times


REFUSED = WSConnectionError("refused")


async def test_backoff_delays_are_exact(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full jitter (here fixed at 0.5) of 1, 2, 4, then the cap of 5."""
    backoff = Backoff(first=1, factor=2, cap=5, jitter=lambda: 0.5)
    times = await run_attempts(monkeypatch, [REFUSED] * 5, 1, backoff=backoff)
    assert times == [0, 0.5, 1.5, 3.5, 6.0, 8.5]


async def test_a_lost_connection_is_retried_and_a_long_one_resets_the_delay(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backoff = Backoff(first=1, factor=3, cap=100, reset_after=10, jitter=lambda: 1.0)
    times: list[float] = []
    monkeypatch.setattr(_reconnect, "_open", scripted([None, None, REFUSED, None], times))
    async with reconnecting("ws://example.test/", backoff=backoff) as stream:
        count = 0
        async for _ws in stream:
            count += 1
            if count == 2:
                await trio.sleep(20)  # this connection stays up: the delay starts over
            if count == 3:
                break
    # lost at once (wait 1), then up 20 s (reset: wait 1), refused (wait 3)
    assert times == [0, 1, 22, 25]


async def test_retry_after_is_honoured(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = WSServerHandshakeError("busy", status=503, headers=[("Retry-After", "7")])
    limited = WSServerHandshakeError("slow down", status=429, headers=[("retry-after", "999")])
    backoff = Backoff(first=1, cap=60, jitter=lambda: 0.5)
    times = await run_attempts(monkeypatch, [busy, limited], 1, backoff=backoff)
    assert times == [0, 7, 67]  # Retry-After, then the cap


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(WSServerHandshakeError("forbidden", status=403), id="403"),
        pytest.param(WSRedirectError("loop", status=302), id="redirect"),
        pytest.param(InvalidArgument("bad option"), id="invalid-argument"),
        pytest.param(trio_ws.InvalidURL("bad url"), id="invalid-url"),
    ],
)
async def test_what_is_not_retried_is_raised_at_once(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    times: list[float] = []
    monkeypatch.setattr(_reconnect, "_open", scripted([error], times))
    async def loop() -> None:
        async with reconnecting("ws://example.test/") as stream:
            async for _ws in stream:
                pytest.fail("no connection expected")

    with pytest.raises(type(error)) as info:
        await loop()
    assert info.value is error
    assert times == [0]


def test_the_default_rule() -> None:
    verify = WSTLSError("certificate")
    verify.__cause__ = ssl.SSLCertVerificationError("unknown CA")
    other_tls = WSTLSError("handshake reset")
    assert is_retryable(REFUSED)
    assert is_retryable(trio_ws.ConnectTimeoutError("slow"))
    assert is_retryable(trio_ws.WSProxyError("proxy down"))
    assert is_retryable(other_tls)
    assert not is_retryable(verify)
    assert is_retryable(WSServerHandshakeError("x", status=502))
    assert not is_retryable(WSServerHandshakeError("x", status=404))
    assert not is_retryable(ValueError("not ours"))


async def test_should_retry_decides(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[BaseException] = []

    def twice(exc: BaseException) -> bool:
        seen.append(exc)
        return len(seen) < 3

    with pytest.raises(WSConnectionError, match="refused"):
        await run_attempts(monkeypatch, [REFUSED] * 5, 1, should_retry=twice)
    assert len(seen) == 3


def test_retry_after_as_an_http_date() -> None:
    when = time.time() + 30
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when))
    exc = WSServerHandshakeError("busy", status=503, headers=[("Retry-After", date)])
    wait = _reconnect.retry_after(exc)
    assert wait is not None
    assert 25 < wait <= 31
    bad = WSServerHandshakeError("busy", status=503, headers=[("Retry-After", "soon")])
    assert _reconnect.retry_after(bad) is None
    assert _reconnect.retry_after(WSServerHandshakeError("busy", status=503)) is None
    assert _reconnect.retry_after(REFUSED) is None


def test_backoff_checks_its_values() -> None:
    with pytest.raises(InvalidArgument, match="first must be a positive number"):
        Backoff(first=0)
    with pytest.raises(InvalidArgument, match="factor must be a number >= 1"):
        Backoff(factor=0.5)


# ---------------------------------------------------------------------------------------------
# real servers


async def test_a_server_that_restarts_on_the_same_port() -> None:
    """The server goes away with a connection open; the loop reconnects once it is back."""
    backoff = Backoff(first=0.05, factor=1.5, cap=0.2)
    received: list[str] = []
    stop, gone = trio.Event(), trio.Event()

    async def greet(conn: ServerConnection) -> None:
        await conn.send_str("hello")
        await trio.sleep_forever()

    async def serve(port: int, *, task_status: trio.TaskStatus[int]) -> None:
        async with open_test_server(greet, port=port) as server:
            task_status.started(server.port)
            await stop.wait()
        gone.set()  # leaving the block dropped the connection without a close frame

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve, 0)
            async with reconnecting(f"ws://127.0.0.1:{port}/", backoff=backoff) as conns:
                async for ws in conns:
                    received.append(await ws.receive_str())
                    if len(received) == 2:
                        break
                    stop.set()
                    await gone.wait()
                    assert (await ws.receive()).type is trio_ws.WSMsgType.CLOSED
                    stop = trio.Event()
                    await nursery.start(serve, port)  # back, on the same port
            stop.set()
    assert received == ["hello", "hello"]


async def test_503_with_retry_after_then_101() -> None:
    attempts: list[float] = []

    async def busy_then_ok(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            await peer.read_request()
            await peer.send(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
            )
            return
        await peer.accept(then=b"\x81\x02ok")
        await peer.read_close()
        await peer.send(b"\x88\x02\x03\xe9")

    async with open_raw_server(busy_then_ok) as port:
        with trio.fail_after(GUARD):
            async with reconnecting(f"ws://127.0.0.1:{port}/") as conns:
                async for ws in conns:
                    assert await ws.receive_str() == "ok"
                    break
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 1.0  # Retry-After, not the 1 s * jitter backoff


async def test_leaving_the_loop_closes_the_connection_with_1001() -> None:
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            async with reconnecting(server.url) as conns:
                async for ws in conns:
                    await ws.send_str("one")
                    assert await ws.receive_str() == "one"
                    break
        assert ws.closed
        assert server.connections[0].close_code == 1001


async def test_moving_on_closes_the_current_connection_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Asking for the next connection while the current one is open closes it (1000)."""
    caplog.set_level(logging.INFO, logger="trio_ws")
    backoff = Backoff(first=0.01, jitter=lambda: 1.0)
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            async with reconnecting(server.url, backoff=backoff) as conns:
                count = 0
                async for _ws in conns:
                    count += 1
                    if count == 2:
                        break
        assert [c.close_code for c in server.connections] == [1000, 1001]
    (line,) = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert line == f"reconnecting to {server.url} in 0.010 s (attempt 2)"


async def test_the_body_exception_leaves_the_loop_unchanged() -> None:
    class Boom(Exception):
        pass

    async def loop(url: str) -> None:
        async with reconnecting(url) as conns:
            async for _ws in conns:
                raise Boom

    async with open_test_server() as server:
        with trio.fail_after(GUARD), pytest.raises(Boom):
            await loop(server.url)
    assert len(server.connections) == 1
