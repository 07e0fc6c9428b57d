"""Seeing inside a connection: ping round trips, statistics, id/url/state/repr, logging.

Timing (round trips, ages, pauses) runs on ``MockClock(autojump)`` against a scripted
in-memory peer, so the values are exact; logging runs against real loopback servers (the
``websockets`` server and raw ones) and checks the records with ``caplog``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

import trio_ws
from trio_ws import ClientWSTimeout, WSClosedError, WSState, WSStatistics, WSTimeoutError
from trio_ws._monitor import MAX_PENDING

from .peer import Peer
from .servers import RawPeer, frame, open_raw_server, open_websockets_server

OpenPair = Any  # the open_pair fixture (see conftest.py)
GUARD = 5.0


async def answer_pings(peer: Peer, delay: float, count: int = 1) -> None:
    """Answer ``count`` pings, each after ``delay`` seconds."""
    for _ in range(count):
        event = await peer.next_event()
        assert isinstance(event, Ping), event
        await trio.sleep(delay)
        await peer.send(event.response())


# ---------------------------------------------------------------------------------------------
# ping() and latency


async def test_ping_returns_the_round_trip_time(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery) as (ws, peer):
        assert ws.latency is None
        nursery.start_soon(answer_pings, peer, 0.25)
        assert await ws.ping(b"x") == 0.25
        assert ws.latency == 0.25
        stats = ws.statistics()
        assert (stats.pings_sent, stats.pongs_received, stats.latency) == (1, 1, 0.25)


async def test_a_pong_answers_every_earlier_ping(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """RFC 6455 §5.5.3: a server may answer only the latest ping."""
    async with open_pair(nursery) as (ws, peer):
        results: dict[str, float] = {}

        async def ping(payload: bytes, at: float) -> None:
            await trio.sleep(at)
            results[payload.decode()] = await ws.ping(payload)

        nursery.start_soon(ping, b"a", 0)
        nursery.start_soon(ping, b"b", 1)
        assert isinstance(await peer.next_event(), Ping)
        latest = await peer.next_event()
        assert isinstance(latest, Ping)
        await trio.sleep_until(3)
        await peer.send(Pong(b"unsolicited"))  # answers nothing: ignored
        await peer.send(latest.response())
        await trio.testing.wait_all_tasks_blocked()
        assert results == {"a": 3.0, "b": 2.0}
        assert ws.latency == 2.0


async def test_ping_timeout_leaves_the_connection_usable(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """No pong within timeout: WSTimeoutError; a late pong still updates latency."""
    async with open_pair(nursery, timeout=ClientWSTimeout(ws_close=3)) as (ws, peer):
        with pytest.raises(WSTimeoutError, match="no pong within 5 s"):
            await ws.ping(b"late", timeout=5)
        assert trio.current_time() == 5
        with pytest.raises(WSTimeoutError, match="no pong within 3 s"):
            await ws.ping(b"default")  # ws_close bounds it by default
        assert trio.current_time() == 8
        ping = await peer.next_event()
        assert isinstance(ping, Ping)
        await trio.sleep(2)
        await peer.send(ping.response())
        await ws.send_str("still usable")
        assert isinstance(await peer.next_event(), Ping)
        assert await peer.next_event() == TextMessage("still usable")
        assert ws.latency == 10.0  # sent at 0, answered at 10


async def test_a_cancelled_ping_loses_nothing(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery) as (ws, peer):
        with trio.move_on_after(1) as scope:
            await ws.ping(b"c")
        assert scope.cancelled_caught
        nursery.start_soon(answer_pings, peer, 0)
        await trio.testing.wait_all_tasks_blocked()
        assert ws.latency == 1.0
        nursery.start_soon(answer_pings, peer, 0.5)
        assert await ws.ping(b"d") == 0.5


async def test_ping_on_a_connection_that_ends_raises_closed(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery) as (ws, peer):

        async def close_instead() -> None:
            assert isinstance(await peer.next_event(), Ping)
            await trio.sleep(1)
            await peer.send(CloseConnection(code=1001))

        nursery.start_soon(close_instead)
        with pytest.raises(WSClosedError, match="code 1001"):
            await ws.ping()
        with pytest.raises(WSClosedError):
            await ws.ping()


async def test_a_ping_on_a_closed_connection_and_too_many_pings(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """At most MAX_PENDING pings wait: the oldest gives up (as if unanswered) beyond that."""
    async with open_pair(nursery) as (ws, peer):
        results: list[float | str] = []

        async def ping(payload: bytes) -> None:
            try:
                results.append(await ws.ping(payload, timeout=100))
            except WSTimeoutError:
                results.append("unanswered")

        for i in range(MAX_PENDING + 1):  # one at a time: in this order
            nursery.start_soon(ping, str(i).encode())
            await trio.testing.wait_all_tasks_blocked()
        assert results == []  # the oldest was dropped: its ping() waits out its timeout
        await peer.send(Pong(str(MAX_PENDING).encode()))  # answers all the others
        await trio.testing.wait_all_tasks_blocked()
        assert results == [0.0] * MAX_PENDING
        await trio.sleep(101)  # past the dropped ping's timeout (at 100)
        assert results[-1] == "unanswered"
        await ws.close()
        with pytest.raises(WSClosedError):
            await ws.ping(b"after")
        assert ws.statistics().pings_sent == MAX_PENDING + 1


async def test_heartbeat_pings_update_latency(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery, heartbeat=10) as (ws, peer):
        nursery.start_soon(answer_pings, peer, 0.5)
        await trio.sleep(11)
        assert ws.latency == 0.5
        assert ws.statistics().pings_sent == 1


# ---------------------------------------------------------------------------------------------
# statistics(), id, url, state, repr


async def test_statistics_count_a_known_exchange(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    async with open_pair(nursery) as (ws, peer):
        await ws.send_str("hello")  # wire: 2 + 4 (mask) + 5
        await ws.send_bytes(b"12345678")  # 2 + 4 + 8
        await peer.send(TextMessage("hi"))  # 2 + 2
        await peer.send(BytesMessage(b"abc"))  # 2 + 3
        await peer.send(Ping(b"p"))  # 2 + 1, answered with a pong: 2 + 4 + 1
        assert await ws.receive_str() == "hi"
        await peer.send(TextMessage("queued"))  # 2 + 6
        await trio.sleep(7)
        stats = ws.statistics()
    assert stats == WSStatistics(
        messages_in=3,
        messages_out=2,
        payload_bytes_in=2 + 3 + 6,
        payload_bytes_out=5 + 8,
        wire_bytes_in=4 + 5 + 3 + 8,
        wire_bytes_out=11 + 14 + 7,
        frames_in=4,
        frames_out=3,
        pings_sent=0,
        pongs_received=0,
        queue_messages=2,
        queue_bytes=3 + 6,
        outbox_bytes=0,
        reader_paused=0.0,
        latency=None,
        subprotocol=None,
        extensions="",
        age=7.0,
    )


async def test_statistics_show_compression_and_subprotocol() -> None:
    async with open_websockets_server(subprotocols=["chat"]) as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url(), compress=15, protocols=["chat"]) as ws:
                text = "compressible " * 100
                await ws.send_str(text)
                assert await ws.receive_str() == text
                stats = ws.statistics()
    assert stats.subprotocol == "chat"
    assert stats.extensions.startswith("permessage-deflate")
    assert (stats.payload_bytes_out, stats.payload_bytes_in) == (len(text), len(text))
    assert stats.wire_bytes_out < len(text) // 5
    assert stats.wire_bytes_in < len(text) // 5


async def test_reader_pause_time_is_counted(
    autojump_clock: trio.testing.MockClock, open_pair: OpenPair, nursery: trio.Nursery
) -> None:
    """The queue fills (1024 messages), the reader waits 5 s until the application takes
    half of them."""
    async with open_pair(nursery) as (ws, peer):
        for i in range(1100):
            await peer.send(TextMessage(str(i)))
        await trio.sleep(5)
        assert ws.statistics().queue_messages == 1024
        for _ in range(600):
            await ws.receive_str()
        await trio.testing.wait_all_tasks_blocked()
        assert ws.statistics().reader_paused == 5.0


async def test_id_url_state_and_repr(open_pair: OpenPair, nursery: trio.Nursery) -> None:
    async with open_pair(nursery) as (ws, peer), open_pair(nursery) as (other, _):
        assert ws.id != other.id
        assert ws.url == "ws://test.example/path"
        assert ws.state is WSState.OPEN
        assert repr(ws) == f"<ClientWebSocket {ws.id} ws://test.example/path OPEN>"
        await peer.send(CloseConnection(code=1000))
        await ws.receive()
        assert ws.state is WSState.CLOSED
        assert repr(ws).endswith("CLOSED code=1000>")
        await other.close()


async def test_url_has_no_credentials_and_is_the_last_hop() -> None:
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            url = server.url("/echo").replace("://", "://user:secret@")
            async with trio_ws.open_ws(url) as ws:
                assert ws.url == server.url("/echo")
                assert "secret" not in repr(ws)


# ---------------------------------------------------------------------------------------------
# logging


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "trio_ws.client" and r.levelno >= level
    ]


async def test_info_records_of_a_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_ws")
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url(), compress=15) as ws:
                await ws.send_str("x")
                await ws.receive_str()
    records = [r for r in caplog.records if r.name == "trio_ws.client"]
    assert [r.levelname for r in records] == ["INFO", "INFO"]
    opened, closed = (r.getMessage() for r in records)
    assert opened.startswith(f"[{ws.id}] connected to {server.url()} (subprotocol None, ")
    assert "permessage-deflate" in opened
    assert closed.startswith(f"[{ws.id}] closed with code 1000, closed by us, after ")
    assert all((r.ws_id, r.ws_url) == (ws.id, server.url()) for r in records)  # type: ignore[attr-defined]
    assert ws._core.trace is None  # DEBUG off: no frame is traced


async def test_debug_records_redact_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            url = server.url("/echo").replace("://", "://user:s3cret@")
            async with trio_ws.open_ws(url, headers={"Cookie": "session=t0ken"}) as ws:
                await ws.send_str("hello")
                assert await ws.receive_str() == "hello"
                await ws.ping(b"rtt")
                await ws.send_bytes(b"\x01\x02")
                assert await ws.receive_bytes() == b"\x01\x02"
                await ws.send_frame(b"frame", trio_ws.WSMsgType.TEXT)
                assert await ws.receive_str() == "frame"
                await ws.pong(b"unasked")
    lines = messages(caplog)
    text = "\n".join(lines)
    assert "s3cret" not in text
    assert "t0ken" not in text
    assert "dXNlcjpzM2NyZXQ=" not in text  # the Basic token
    prefix = f"[{ws.id}] "
    assert f"{prefix}> GET /echo HTTP/1.1" in lines
    assert f"{prefix}> Authorization: ***" in lines
    assert f"{prefix}> Cookie: ***" in lines
    assert f"{prefix}< HTTP/1.1 101 Switching Protocols" in lines
    assert f"{prefix}> TEXT fin 5 bytes b'hello'" in lines
    assert f"{prefix}< TEXT fin 5 bytes b'hello'" in lines
    assert f"{prefix}> PING fin 3 bytes b'rtt'" in lines
    assert f"{prefix}> BINARY fin 2 bytes b'\\x01\\x02'" in lines
    assert f"{prefix}> TEXT fin 5 bytes b'frame'" in lines
    assert f"{prefix}> PONG fin 7 bytes b'unasked'" in lines
    assert any(line.startswith(f"{prefix}pong: round trip ") for line in lines)
    assert f"{prefix}state OPEN -> CLOSING" in lines
    assert f"{prefix}> CLOSE fin 2 bytes b'\\x03\\xe8'" in lines


async def test_warning_for_an_abnormal_end(caplog: pytest.LogCaptureFixture) -> None:
    """The server drops TCP: 1006, logged at WARNING with the cause."""

    async def drop(stream: trio.SocketStream) -> None:
        await RawPeer(stream).accept()

    caplog.set_level(logging.INFO, logger="trio_ws")
    async with open_raw_server(drop) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/") as ws:
                await ws.receive()
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1
    assert warning[0].getMessage().startswith(f"[{ws.id}] closed with code 1006, closed by ")


async def test_warning_for_a_protocol_violation(caplog: pytest.LogCaptureFixture) -> None:
    async def violate(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.accept(then=frame(0x3, b""))  # a reserved opcode
        await peer.read_close()

    caplog.set_level(logging.INFO, logger="trio_ws")
    async with open_raw_server(violate) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/") as ws:
                assert (await ws.receive()).type is trio_ws.WSMsgType.ERROR
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"[{ws.id}] closed with code 1002, closed by us")
    assert "violated the WebSocket protocol" in warning


async def test_warning_for_a_refused_handshake(caplog: pytest.LogCaptureFixture) -> None:
    async def refuse(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        await peer.read_request()
        await peer.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")

    caplog.set_level(logging.INFO, logger="trio_ws")
    async with open_raw_server(refuse) as port:
        with trio.fail_after(GUARD), pytest.raises(trio_ws.WSServerHandshakeError):
            await trio_ws.open_ws(f"ws://127.0.0.1:{port}/x").__aenter__()
    (record,) = [r for r in caplog.records if r.name == "trio_ws.client"]
    assert record.levelname == "WARNING"
    assert f"connecting to ws://127.0.0.1:{port}/x failed" in record.getMessage()
    assert "403 Forbidden, not 101: nope" in record.getMessage()


async def test_heartbeat_timeout_is_a_warning(
    autojump_clock: trio.testing.MockClock,
    open_pair: OpenPair,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_pair(nursery, heartbeat=4) as (ws, _peer):
        assert (await ws.receive()).type is trio_ws.WSMsgType.ERROR
        await trio.testing.wait_all_tasks_blocked()  # the reader has ended and logged
    lines = messages(caplog)
    assert f"[{ws.id}] heartbeat: the server was silent, ping" in lines
    (warning,) = messages(caplog, logging.WARNING)
    assert warning.startswith(f"[{ws.id}] closed with code 1006")
    assert "no data from the server within 2 s after a ping" in warning


async def test_reader_pauses_are_logged(
    autojump_clock: trio.testing.MockClock,
    open_pair: OpenPair,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_pair(nursery) as (ws, peer):
        for i in range(1100):
            await peer.send(TextMessage(str(i)))
        await trio.sleep(1)
        for _ in range(600):
            await ws.receive_str()
        await trio.testing.wait_all_tasks_blocked()
    lines = messages(caplog)
    assert any(line.startswith(f"[{ws.id}] reader paused: 1024 messages") for line in lines)
    assert f"[{ws.id}] reader resumed" in lines


async def test_logger_option_takes_a_logger_or_an_adapter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    mine = logging.getLogger("my.app.feed")
    adapter = logging.LoggerAdapter(logging.getLogger("my.app.adapted"), {"feed": "ticks"})
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url(), logger=mine):
                pass
            async with trio_ws.open_ws(server.url(), logger=adapter):
                pass
    names = [r.name for r in caplog.records]
    assert names == ["my.app.feed"] * 2 + ["my.app.adapted"] * 2
    assert "trio_ws.client" not in names


async def test_logging_switched_on_while_connected(
    open_pair: OpenPair, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """DEBUG is asked once per read batch: turned on later, frames are logged from then on."""
    caplog.set_level(logging.INFO, logger="trio_ws")
    async with open_pair(nursery) as (ws, peer):
        await peer.send(TextMessage("before"))
        assert await ws.receive_str() == "before"
        caplog.set_level(logging.DEBUG, logger="trio_ws")
        await peer.send(TextMessage("first"))  # this batch switches tracing on
        assert await ws.receive_str() == "first"
        await peer.send(TextMessage("after"))
        assert await ws.receive_str() == "after"
    lines = messages(caplog)
    assert f"[{ws.id}] < TEXT fin 5 bytes b'after'" in lines
    assert not any("before" in line for line in lines)


async def test_silent_until_logging_is_configured() -> None:
    """Without any logging configuration, a refused connection prints nothing on stderr (no
    "last resort" output): only the exception the application catches."""
    code = (
        "import trio, trio_ws\n"
        "async def main():\n"
        "    try:\n"
        "        async with trio_ws.open_ws('ws://127.0.0.1:1/'): pass\n"
        "    except trio_ws.WSConnectionError:\n"
        "        print('caught')\n"
        "trio.run(main)\n"
    )
    result = await trio.run_process(
        [sys.executable, "-c", code], capture_stdout=True, capture_stderr=True
    )
    assert result.stdout == b"caught\n"
    assert result.stderr == b""
