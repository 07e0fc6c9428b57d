"""trio_ws.testing.open_memory_pair: a real client and a scripted server in memory, with
heartbeats and timeouts in virtual time (MockClock, autojump)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import ClientWSTimeout, ServerTimeoutError, WSMsgType, WSTimeoutError
from trio_ws.testing import open_memory_pair


async def test_messages_both_ways() -> None:
    async with open_memory_pair(protocols=["chat"], subprotocol="chat") as (ws, server):
        assert ws.protocol == "chat"
        assert server.request is not None
        assert server.request.subprotocols == ["chat"]
        await ws.send_str("hi")
        await ws.send_bytes(b"\x00")
        assert [m.data for m in (await server.expect(), await server.expect())] == ["hi", b"\x00"]
        await server.send_text("hello")
        await server.send_bytes(b"\x01")
        assert await ws.receive_str() == "hello"
        assert await ws.receive_bytes() == b"\x01"
        await ws.send_stream(["a", "b"])
        assert (await server.expect()).data == "ab"
    assert (await server.expect()).type is WSMsgType.CLOSE  # the block's close, answered
    assert ws.close_code == 1000


async def test_pings_pongs_and_the_servers_close() -> None:
    async with open_memory_pair() as (ws, server):
        rtt = await ws.ping(b"p")
        assert rtt >= 0
        assert (await server.expect()).type is WSMsgType.PING
        await server.send_ping(b"s")
        assert await server.expect() == trio_ws.WSMessage(WSMsgType.PONG, b"s", None)
        await server.close(4000, "bye")
        assert await ws.receive() == trio_ws.WSMessage(WSMsgType.CLOSE, 4000, "bye")
        assert (await server.expect()).data == 4000  # the client's echo


async def test_heartbeat_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    """A silent server fails the heartbeat at exactly 1.5 intervals, in no real time."""
    async with open_memory_pair(heartbeat=10) as (ws, server):
        server.autopong = False
        msg = await ws.receive()
        assert msg.type is WSMsgType.ERROR
        assert isinstance(msg.data, ServerTimeoutError)
        assert trio.current_time() == 15
        assert (await server.expect()).type is WSMsgType.PING


async def test_receive_timeout_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_pair(timeout=ClientWSTimeout(ws_receive=30)) as (ws, server):
        with pytest.raises(WSTimeoutError):
            await ws.receive()
        assert trio.current_time() == 30
        await server.send_text("late")
        assert await ws.receive_str() == "late"


async def test_a_dropped_connection() -> None:
    async with open_memory_pair() as (ws, server):
        await server.drop()
        assert (await ws.receive()).type is WSMsgType.CLOSED
        assert ws.close_code == 1006
        assert (await server.expect()).type is WSMsgType.CLOSED


async def test_a_rejected_handshake_raises_the_clients_error() -> None:
    with pytest.raises(trio_ws.WSServerHandshakeError) as info:
        async with open_memory_pair(reject=403):
            pytest.fail("not reached")
    assert info.value.status == 403


async def test_the_body_exception_is_not_wrapped() -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with open_memory_pair():
            raise Boom


async def test_compression_is_negotiated_when_offered() -> None:
    async with open_memory_pair(compress=15) as (ws, server):
        assert ws.compress == 15
        await ws.send_str("x" * 1000)
        assert (await server.expect()).data == "x" * 1000
    async with open_memory_pair(compress=15, deflate=False) as (ws, _):
        assert ws.compress == 0
