"""The rows of docs/behaviour.rst's "Situations" table that a real server can drive, over
both transports: a WebSocket over HTTP/1.1 and one over an HTTP/2 stream (RFC 8441), each to
hypercorn serving ``tests.h2servers.echo_app`` in this process (cleartext: HTTP/1.1 upgrade,
or h2c with prior knowledge and ``http2="require"``).

Each test runs twice and expects the same; the rows that need a misbehaving server (protocol
violations, a silent server, exact time) are in test_http2_behaviour for HTTP/2 and
test_connection for HTTP/1.1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, Literal

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import (
    ClientWebSocket,
    WSClosedError,
    WSDecodeError,
    WSMessageTypeError,
    WSMsgType,
    WSProtocolError,
    WSTimeoutError,
)

from .h2servers import open_hypercorn

GUARD = 10.0
Opener = Callable[..., AbstractAsyncContextManager[ClientWebSocket]]


@pytest.fixture(params=["http1", "http2"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def opener(transport: str, base: str) -> Opener:
    """``opener(path, **options)``: open_ws to ``base + path`` over ``transport``, checking
    that the WebSocket runs over it."""
    http2: bool | Literal["require"] = "require" if transport == "http2" else False

    @asynccontextmanager
    async def open_it(path: str = "/echo", **options: Any) -> AsyncIterator[ClientWebSocket]:
        async with trio_ws.open_ws(base + path, http2=http2, **options) as ws:
            assert ws.get_extra_info("http_version") == ("2" if http2 else "1.1")
            yield ws

    return open_it


@pytest.fixture
async def connect(transport: str) -> AsyncIterator[Opener]:
    async with open_hypercorn() as server:
        with trio.fail_after(GUARD):
            yield opener(transport, f"ws://127.0.0.1:{server.port}")


async def test_receive_timeout_loses_nothing(connect: Opener) -> None:
    """receive(timeout) expires with WSTimeoutError (a TimeoutError); the connection stays
    usable and the next message arrives."""
    async with connect() as ws:
        with pytest.raises(WSTimeoutError) as info:
            await ws.receive(timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        await ws.send_str("after")
        assert await ws.receive_str() == "after"


async def test_cancelled_receive_loses_nothing(connect: Opener) -> None:
    """A cancelled receive() takes no message: the next receive() gets it."""
    async with connect() as ws:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.receive)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        await ws.send_str("kept")
        assert await ws.receive_str() == "kept"


async def test_concurrent_receive_is_a_runtime_error(connect: Opener) -> None:
    """A second receive() while one waits raises RuntimeError; the first gets the message."""
    async with connect() as ws, trio.open_nursery() as nursery:
        got: list[str] = []

        async def first() -> None:
            got.append(await ws.receive_str())

        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError):
            await ws.receive()
        await ws.send_str("one")
    assert got == ["one"]


@pytest.mark.parametrize(
    ("send", "receive", "kind"),
    [
        ("send_bytes", "receive_str", WSMsgType.BINARY),
        ("send_str", "receive_bytes", WSMsgType.TEXT),
        ("send_bytes", "receive_json", WSMsgType.BINARY),
    ],
)
async def test_type_mismatch_keeps_the_message(
    connect: Opener, send: str, receive: str, kind: WSMsgType
) -> None:
    """receive_str/bytes/json of another type: WSMessageTypeError (a TypeError) with the
    message in msg."""
    async with connect() as ws:
        data: str | bytes = "text" if send == "send_str" else b"bin"
        await getattr(ws, send)(data)
        with pytest.raises(WSMessageTypeError) as info:
            await getattr(ws, receive)()
        assert isinstance(info.value, TypeError)
        msg = info.value.msg
        assert msg is not None
        assert (msg.type, msg.data) == (kind, data)


async def test_receive_json_on_text_that_is_not_json(connect: Opener) -> None:
    """receive_json() on text that is not JSON: WSDecodeError (a ValueError) with the message
    and the decoder's error as cause; the next message comes next."""
    async with connect() as ws:
        await ws.send_str("{not json")
        await ws.send_json({"a": 1})
        with pytest.raises(WSDecodeError) as info:
            await ws.receive_json()
        assert isinstance(info.value, ValueError)
        assert info.value.msg.data == "{not json"
        assert isinstance(info.value.__cause__, json.JSONDecodeError)
        assert await ws.receive_json() == {"a": 1}


class _Watch(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.seen = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


@contextmanager
def watch_log(needle: str) -> Iterator[trio.Event]:
    """An event set when trio_ws logs a record containing ``needle`` (DEBUG on for it)."""
    logger = logging.getLogger("trio_ws.client")
    handler, level = _Watch(needle), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("autoping", [True, False])
async def test_server_ping(transport: str, autoping: bool) -> None:
    """hypercorn pings every 50 ms: with autoping the reader answers with a pong (seen in
    the debug log) and the ping is never delivered; without, receive() returns PING."""
    async with open_hypercorn(ping_interval=0.05) as server:
        connect = opener(transport, f"ws://127.0.0.1:{server.port}")
        with trio.fail_after(GUARD), watch_log("> PONG") as ponged:
            async with connect(autoping=autoping) as ws:
                if autoping:
                    await ponged.wait()  # a ping came and was answered, without receive()
                    await ws.send_str("data")
                    msg = await ws.receive()  # the echo: no PING before it
                    assert (msg.type, msg.data) == (WSMsgType.TEXT, "data")
                else:
                    msg = await ws.receive()
                    assert msg.type is WSMsgType.PING
                    await ws.pong(msg.data)


@pytest.mark.parametrize("autoclose", [True, False])
async def test_server_close_frame(connect: Opener, autoclose: bool) -> None:
    """The server closes with 4001: receive() returns CLOSE (code, reason); with autoclose
    the answer is already out and then CLOSED; without, closed stays False until close()."""
    async with connect("/close/4001", autoclose=autoclose) as ws:
        assert await ws.receive_str() == "bye"
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001)
        if autoclose:
            assert (await ws.receive()).type is WSMsgType.CLOSED
            assert ws.closed
        else:
            assert not ws.closed
            assert await ws.close() is True
            assert ws.closed
        assert ws.close_code == 4001


async def test_message_over_max_msg_size(connect: Opener) -> None:
    """A 16 KiB message with max_msg_size=1000: ERROR with WSProtocolError 1009, close code
    1009, then CLOSED."""
    async with connect("/flood/1", max_msg_size=1000) as ws:
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        error = ws.exception()
        assert isinstance(error, WSProtocolError)
        assert error.code == 1009
        assert ws.close_code == 1009
        assert (await ws.receive()).type is WSMsgType.CLOSED


async def test_close_twice_and_sending_after_close(connect: Opener) -> None:
    """close() returns True, then False; after it receive() returns CLOSED and a send raises
    WSClosedError naming the code."""
    async with connect() as ws:
        assert await ws.close(code=4002, message=b"done") is True
        assert await ws.close() is False
        assert ws.close_code == 4002
        assert (await ws.receive()).type is WSMsgType.CLOSED
        with pytest.raises(WSClosedError, match="4002"):
            await ws.send_str("late")
        with pytest.raises(WSClosedError):
            await ws.send_bytes(b"late")


async def test_close_while_another_task_receives(connect: Opener) -> None:
    """close() while another task waits in receive(): that receive returns CLOSING."""
    async with connect() as ws, trio.open_nursery() as nursery:
        got: list[WSMsgType] = []

        async def wait() -> None:
            got.append((await ws.receive()).type)

        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert await ws.close() is True
    assert got == [WSMsgType.CLOSING]


async def test_send_stream_and_receive_stream(connect: Opener) -> None:
    """A message sent in pieces (send_stream) echoes whole; a 3-fragment binary message
    received with receive_stream joins to the message."""
    async with connect() as ws:
        await ws.send_stream(["é", "tape ", "un"])
        assert await ws.receive_str() == "étape un"
        data = bytes(range(256)) * 1000
        await ws.send_stream([data[:1000], data[1000:2000], data[2000:]])
        async with ws.receive_stream() as stream:
            assert stream.type is WSMsgType.BINARY
            pieces = [piece async for piece in stream]
        assert b"".join(pieces) == data  # type: ignore[arg-type]
        await ws.send_str("next")
        assert await ws.receive_str() == "next"
