"""trio_ws against an independent implementation: the ``websockets`` server, in a subprocess.

The server shares no code with trio_ws or wsproto, so these tests catch the bugs that a client
and a test server built on the same library would agree on. It reports the close code it
received from each connection, which is how the ``open_ws`` exit policy is checked on the wire.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import trio_ws
from trio_ws import ClientWebSocket, WSMessage, WSMsgType, WSServerHandshakeError

from .servers import WebsocketsServer, open_node_ws_server, open_websockets_server

#: Guard against hangs: far above what any test here needs.
GUARD = 5.0


@pytest.fixture
async def server() -> AsyncIterator[WebsocketsServer]:
    """The websockets server with its defaults (echo, permessage-deflate available)."""
    async with open_websockets_server() as srv:
        yield srv


async def open_and_leave(url: str, **options: Any) -> None:
    """Connect with ``open_ws`` and leave the block at once."""
    async with trio_ws.open_ws(url, **options):
        pass


async def server_info(ws: ClientWebSocket) -> dict[str, Any]:
    """What the server negotiated: the first message on ``/info``."""
    info: dict[str, Any] = await ws.receive_json()
    return info


# --------------------------------------------------------------------------------------------
# messages


async def test_text_echo(server: WebsocketsServer) -> None:
    """A TEXT message, including non-ASCII text, round-trips as str."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            await ws.send_str("héllo wörld ✓")
            assert await ws.receive() == WSMessage(WSMsgType.TEXT, "héllo wörld ✓", None)


async def test_binary_echo(server: WebsocketsServer) -> None:
    """A BINARY message round-trips as bytes, including an empty one."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            await ws.send_bytes(b"\x00\xffbinary")
            await ws.send_bytes(b"")
            assert await ws.receive_bytes() == b"\x00\xffbinary"
            assert await ws.receive_bytes() == b""


async def test_json_echo(server: WebsocketsServer) -> None:
    """send_json / receive_json round-trip a nested value."""
    value = {"op": "subscribe", "ids": [1, 2, 3], "opts": {"snapshot": True, "depth": None}}
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            await ws.send_json(value)
            assert await ws.receive_json() == value


async def test_text_as_bytes_with_decode_text_false(server: WebsocketsServer) -> None:
    """decode_text=False delivers TEXT messages as UTF-8 bytes."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), decode_text=False) as ws:
            await ws.send_str("é")
            assert await ws.receive() == WSMessage(WSMsgType.TEXT, "é".encode(), None)


@pytest.mark.parametrize("kind", ["binary", "text"])
async def test_one_mebibyte_message(server: WebsocketsServer, kind: str) -> None:
    """A 1 MiB message goes out and comes back intact."""
    data = os.urandom(1 << 20) if kind == "binary" else "abcdefghijklmnop" * (1 << 16)
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_str(data)
            msg = await ws.receive()
    assert msg.data == data


async def test_many_concurrent_senders_lose_nothing(server: WebsocketsServer) -> None:
    """20 tasks sending 50 messages each at once: all 1000 come back, each sender's in order."""
    senders, count = 20, 50

    async def send_all(ws: ClientWebSocket, sender: int) -> None:
        for i in range(count):
            await ws.send_str(f"{sender}:{i}")

    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            async with trio.open_nursery() as nursery:
                for sender in range(senders):
                    nursery.start_soon(send_all, ws, sender)
            received = [await ws.receive_str() for _ in range(senders * count)]
    by_sender: dict[int, list[int]] = {}
    for text in received:
        sender, i = map(int, text.split(":"))
        by_sender.setdefault(sender, []).append(i)
    assert by_sender == {sender: list(range(count)) for sender in range(senders)}


async def test_ping_delivers_pong_without_autoping(server: WebsocketsServer) -> None:
    """autoping=False: our ping's PONG (with the same payload) is delivered by receive()."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), autoping=False) as ws:
            await ws.ping(b"heartbeat")
            assert await ws.receive() == WSMessage(WSMsgType.PONG, b"heartbeat", None)


async def test_pong_is_swallowed_with_autoping(server: WebsocketsServer) -> None:
    """autoping=True: the PONG is consumed; the next message is the echo sent after the ping."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            await ws.ping("text payload")
            await ws.send_str("after")
            assert await ws.receive() == WSMessage(WSMsgType.TEXT, "after", None)


async def test_heartbeat_keeps_a_quiet_connection_alive(server: WebsocketsServer) -> None:
    """heartbeat=0.1 on an idle connection: the server's pongs keep it open."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), heartbeat=0.1) as ws:
            with pytest.raises(trio_ws.WSTimeoutError):
                await ws.receive(timeout=0.4)
            assert ws.exception() is None
            await ws.send_str("still here")
            assert await ws.receive_str() == "still here"


async def test_heartbeat_pings_reach_the_server(server: WebsocketsServer) -> None:
    """heartbeat=0.1, autoping=False: the answer to our heartbeat ping arrives as PONG."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), heartbeat=0.1, autoping=False) as ws:
            assert await ws.receive() == WSMessage(WSMsgType.PONG, b"", None)
            assert ws.exception() is None


@pytest.mark.parametrize("compress", [0, 15])
async def test_fragmented_messages_from_the_server_are_reassembled(
    server: WebsocketsServer, compress: int
) -> None:
    """Messages the server sends in several frames arrive whole (with and without deflate)."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/fragments"), compress=compress) as ws:
            assert await ws.receive() == WSMessage(WSMsgType.TEXT, "fragmented", None)
            assert await ws.receive() == WSMessage(WSMsgType.BINARY, b"bytes", None)


async def test_server_ping_is_answered_with_autoping(server: WebsocketsServer) -> None:
    """autoping=True: the server's ping is answered in the background, never delivered."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/ping")) as ws:
            assert await ws.receive() == WSMessage(WSMsgType.TEXT, "pong received", None)


async def test_server_ping_is_delivered_without_autoping(server: WebsocketsServer) -> None:
    """autoping=False: the server's ping is delivered as PING and answered by the app."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/ping"), autoping=False) as ws:
            assert await ws.receive() == WSMessage(WSMsgType.PING, b"srv", None)
            await ws.pong(b"srv")
            assert await ws.receive() == WSMessage(WSMsgType.TEXT, "pong received", None)


async def test_message_above_max_msg_size_from_a_real_server(server: WebsocketsServer) -> None:
    """max_msg_size bytes pass; one more gives ERROR and the server receives close 1009."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/big/1001"), max_msg_size=1001) as ws:
            assert len(await ws.receive_bytes()) == 1001
        async with trio_ws.open_ws(server.url("/big/1002"), max_msg_size=1001) as ws:
            msg = await ws.receive()
            assert msg.type is WSMsgType.ERROR
            assert ws.close_code == 1009
        assert (await server.closed("/big/1002"))["code"] == 1009


# --------------------------------------------------------------------------------------------
# negotiation


async def test_subprotocol_negotiation() -> None:
    """The server picks its preferred subprotocol among ours; ws.protocol reports it."""
    async with open_websockets_server(subprotocols=["chat", "superchat"]) as srv:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(srv.url("/info"), protocols=["superchat", "chat"]) as ws:
                assert ws.protocol == "chat"
                assert (await server_info(ws))["subprotocol"] == "chat"


async def test_no_subprotocol_when_the_server_has_none(server: WebsocketsServer) -> None:
    """Offering a subprotocol to a server that supports none gives ws.protocol None."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/info"), protocols=["chat"]) as ws:
            assert ws.protocol is None
            assert (await server_info(ws))["subprotocol"] is None


async def test_subprotocol_in_extra_info() -> None:
    """get_extra_info("subprotocol") is the negotiated subprotocol, like ws.protocol."""
    async with open_websockets_server(subprotocols=["chat"]) as srv:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(srv.url(), protocols=["chat"]) as ws:
                assert ws.get_extra_info("subprotocol") == "chat"


async def test_server_rejecting_our_subprotocols_is_a_handshake_error() -> None:
    """A real server's 400 (no shared subprotocol) raises WSServerHandshakeError with it."""
    async with open_websockets_server(subprotocols=["chat"]) as srv:
        with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
            await open_and_leave(srv.url(), protocols=["other"])
    assert info.value.status == 400
    assert b"subprotocol" in info.value.body


def offered_client_window(ws: ClientWebSocket) -> int | None:
    """client_max_window_bits in the server's Sec-WebSocket-Extensions answer."""
    for name, value in ws.get_extra_info("response_headers"):
        if name.lower() == "sec-websocket-extensions":
            match = re.search(r"client_max_window_bits=(\d+)", value)
            return int(match.group(1)) if match else None
    return None


@pytest.mark.parametrize("compress", [9, 12, 15])
async def test_compression_negotiated_and_messages_round_trip(
    server: WebsocketsServer, compress: int
) -> None:
    """compress=N: ws.compress is the window granted and compressed messages round-trip."""
    big_text = "compressible " * 20_000
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/info"), compress=compress) as ws:
            assert (await server_info(ws))["extensions"] == ["permessage-deflate"]
            granted = offered_client_window(ws)
            assert ws.compress == (granted or compress)
            assert 9 <= ws.compress <= compress
            assert ws.client_notakeover is False
            for i in range(3):
                await ws.send_str(f"{i} {big_text}")
                assert await ws.receive_str() == f"{i} {big_text}"
            await ws.send_bytes(b"\x00" * 100_000)
            assert await ws.receive_bytes() == b"\x00" * 100_000


async def test_client_no_context_takeover(server: WebsocketsServer) -> None:
    """client_notakeover=True is negotiated and messages still round-trip."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), compress=15, client_notakeover=True) as ws:
            assert ws.compress > 0
            assert ws.client_notakeover is True
            for i in range(3):
                await ws.send_str(f"{i} " + "again " * 1000)
                assert await ws.receive_str() == f"{i} " + "again " * 1000


async def test_compression_declined_by_the_server() -> None:
    """A server without permessage-deflate: ws.compress is 0 and messages still work."""
    async with open_websockets_server(compression=False) as srv:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(srv.url("/info"), compress=15) as ws:
                assert ws.compress == 0
                assert (await server_info(ws))["extensions"] == []
                await ws.send_str("plain")
                assert await ws.receive_str() == "plain"


async def test_no_compression_by_default(server: WebsocketsServer) -> None:
    """Without compress=, nothing is offered, so nothing is negotiated."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/info")) as ws:
            assert ws.compress == 0
            assert (await server_info(ws))["extensions"] == []


# --------------------------------------------------------------------------------------------
# transport details


async def test_extra_info_names_the_server(server: WebsocketsServer) -> None:
    """peername is the server's address, sockname ours; TLS details are absent on ws://."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            assert ws.get_extra_info("peername") == ("127.0.0.1", server.port)
            host, port = ws.get_extra_info("sockname")
            assert host == "127.0.0.1"
            assert port not in (0, server.port)
            assert ws.get_extra_info("socket") is not None
            assert ws.get_extra_info("peercert") is None
            assert ws.get_extra_info("ssl_object") is None
            assert ws.get_extra_info("no such thing", "dflt") == "dflt"
            headers = dict(ws.get_extra_info("response_headers"))
            assert headers["Upgrade"].lower() == "websocket"


# --------------------------------------------------------------------------------------------
# closing


async def test_server_close_code_propagates(server: WebsocketsServer) -> None:
    """The server's close code and reason arrive as CLOSE, become close_code, are echoed."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/close/4001")) as ws:
            assert await ws.receive() == WSMessage(WSMsgType.CLOSE, 4001, "bye")
            assert await ws.receive() == WSMessage(WSMsgType.CLOSED, None, None)
            assert (ws.close_code, ws.exception()) == (4001, None)
        assert (await server.closed("/close/4001"))["code"] == 4001


async def test_async_for_stops_at_the_server_close(server: WebsocketsServer) -> None:
    """async for yields the server's messages and stops at its close frame."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/send/5")) as ws:
            texts = [msg.data async for msg in ws]
            assert ws.close_code == 1000
    assert texts == ["0", "1", "2", "3", "4"]


async def test_close_sends_code_and_reason(server: WebsocketsServer) -> None:
    """close(code, message) reaches the server as sent and returns True, then False."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            assert await ws.close(code=4000, message="done") is True
            assert await ws.close() is False
            assert (ws.close_code, ws.exception()) == (4000, None)
        record = await server.closed("/echo")
    assert (record["code"], record["reason"]) == (4000, "done")


async def test_normal_exit_sends_1000(server: WebsocketsServer) -> None:
    """Leaving open_ws normally sends close code 1000."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url()) as ws:
            await ws.send_str("x")
            assert await ws.receive_str() == "x"
        assert (await server.closed("/echo"))["code"] == 1000
    assert ws.close_code == 1000


class AppError(Exception):
    pass


async def test_user_exception_propagates_unchanged_and_sends_1011(
    server: WebsocketsServer,
) -> None:
    """An exception in the open_ws block propagates as the same object; the server got 1011."""
    cause = KeyError("root cause")
    error = AppError("boom")
    opened: list[ClientWebSocket] = []

    async def body() -> None:
        async with trio_ws.open_ws(server.url()) as ws:
            opened.append(ws)
            await ws.send_str("x")
            assert await ws.receive_str() == "x"
            raise error from cause

    with trio.fail_after(GUARD):
        with pytest.raises(AppError) as info:
            await body()
        assert (await server.closed("/echo"))["code"] == 1011
    assert info.value is error
    assert not isinstance(info.value, BaseExceptionGroup)
    assert info.value.__cause__ is cause
    assert opened[0].close_code == 1011


async def test_outer_cancellation_stays_cancellation_and_sends_1001(
    server: WebsocketsServer,
) -> None:
    """Outer cancellation during receive() stays cancellation; the server got close 1001."""
    with trio.fail_after(GUARD):
        with trio.move_on_after(0.3) as scope:
            async with trio_ws.open_ws(server.url()) as ws:
                await ws.receive()
            pytest.fail("the block must not exit normally")
        assert scope.cancelled_caught
        assert (await server.closed("/echo"))["code"] == 1001
    assert ws.closed


async def test_connect_ws_in_callers_nursery(server: WebsocketsServer) -> None:
    """connect_ws runs in the caller's nursery; closing the connection lets the nursery end."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            ws = await trio_ws.connect_ws(nursery, server.url())
            await ws.send_str("hi")
            assert await ws.receive_str() == "hi"
            assert await ws.close() is True
        assert (await server.closed("/echo"))["code"] == 1000


# ---------------------------------------------------------------------------------------------
# Node's ws server


@pytest.mark.parametrize("bits", [8, 9, None])
async def test_node_ws_server_with_a_small_server_window(bits: int | None) -> None:
    """Node's ws with serverMaxWindowBits 8 (RFC 7692 allows it; zlib inflates it with 9):
    compressed messages both ways, small and big."""
    async with open_node_ws_server(server_max_window_bits=bits) as server:
        with trio.fail_after(10):
            async with trio_ws.open_ws(server.url("/"), compress=15) as ws:
                offer = json.loads(await ws.receive_str())["offer"]
                assert "permessage-deflate" in offer
                assert ws.compress == 15
                extension = dict(ws.get_extra_info("response_headers"))["Sec-WebSocket-Extensions"]
                if bits is not None:
                    assert f"server_max_window_bits={bits}" in extension
                for message in ["small", "x" * 100_000, os.urandom(70_000).hex()]:
                    await ws.send_str(message)
                    assert await ws.receive_str() == message
