"""The edges of an HTTP/2 session against the scripted h2c server (tests.h2peer): a session
that is closed or never opened, the connect phase timing out or failing, a reset in the middle
of a rejection's body, an open that waits for a stream while the session dies, a socket reset,
a PING the session's end answers, and the session's exception policy.
"""

from __future__ import annotations

import socket
import struct
from functools import partial

import h2.errors
import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import (
    ConnectTimeoutError,
    WSConnectionError,
    WSError,
    WSMsgType,
    WSServerHandshakeError,
)
from trio_ws._h2session import H2Session

from .test_http2_faults import _causes, accept, scripted, scripted_session

GUARD = 10.0


async def test_session_url_and_closed_session() -> None:
    """session.url has no credentials; after the block, opening a WebSocket raises WSError
    and aclose() again does nothing."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers):
            host = url.removeprefix("ws://")
            async with trio_ws.open_session(f"ws://user:secret@{host}/base") as session:
                assert session.url == f"ws://{host}/base"
                await peers.receive()
            assert session.closed
            await session.aclose()  # idempotent
            async with trio.open_nursery() as nursery:
                with pytest.raises(WSError, match="the session is closed"):
                    await session.connect_ws(nursery, "/a")


async def test_ping_without_http2_is_zero() -> None:
    """http2=False: no shared connection to check, ping() returns 0.0 at once."""
    async with trio_ws.open_session("ws://127.0.0.1:9/", http2=False) as session:
        assert not session.http2
        assert await session.ping() == 0.0


async def test_open_session_require_without_rfc8441() -> None:
    """http2="require" and a server without SETTINGS_ENABLE_CONNECT_PROTOCOL: open_session
    itself raises WSServerHandshakeError, before the block runs."""
    ran = False
    with trio.fail_after(GUARD):
        async with scripted(connect_protocol=False) as (url, _):
            with pytest.raises(WSServerHandshakeError, match="SETTINGS_ENABLE_CONNECT"):
                async with trio_ws.open_session(url, http2="require"):
                    ran = True
    assert not ran


async def test_open_session_connect_timeout() -> None:
    """A server that accepts and never answers the preface: ConnectTimeoutError (also a
    TimeoutError) after connect_timeout, and the connection is closed."""
    seen: list[bytes] = []
    closed = trio.Event()

    async def mute(stream: trio.SocketStream) -> None:
        while data := await stream.receive_some():
            seen.append(data)
        closed.set()

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, mute, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(ConnectTimeoutError, match=r"connect_timeout=0\.2") as info:
                async with trio_ws.open_session(f"ws://127.0.0.1:{port}", connect_timeout=0.2):
                    pytest.fail("the block must not run")
            assert isinstance(info.value, TimeoutError)
            await closed.wait()
            assert b"".join(seen).startswith(b"PRI * HTTP/2.0")
            nursery.cancel_scope.cancel()


async def test_cancelled_while_closing_stays_cancelled() -> None:
    """The session closed in the block, then the block cancelled: cancellation propagates
    (to its scope); with an exception in the block, that exception wins."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, _):
            with trio.CancelScope() as scope:
                async with trio_ws.open_session(url) as session:
                    await session.aclose()
                    scope.cancel()
            assert scope.cancelled_caught
            with trio.CancelScope() as scope, pytest.raises(KeyError, match="mine"):
                await _close_cancel_and_raise(url, scope)


async def _close_cancel_and_raise(url: str, scope: trio.CancelScope) -> None:
    async with trio_ws.open_session(url) as session:
        await session.aclose()
        scope.cancel()
        raise KeyError("mine")


async def test_bug_in_the_session_task_is_one_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug that escapes the session's task surfaces from open_session as one WSError naming
    an internal error (no ExceptionGroup), the bug chained."""

    async def broken(self: H2Session) -> None:
        await trio.aclose_forcefully(self.stream)  # what run() does on its way out
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(H2Session, "run", broken)
    with trio.fail_after(GUARD):
        async with scripted() as (url, _):
            with pytest.raises(WSError, match="internal error in trio_ws") as info:
                async with trio_ws.open_session(url):
                    pytest.fail("the block must not run")
            assert "ZeroDivisionError" in repr(info.value.__cause__)


async def test_reset_in_the_middle_of_a_rejection_body() -> None:
    """A 403 whose stream is reset before its body ended: WSServerHandshakeError with the
    status and the part of the body that arrived; the session goes on."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio_ws.open_session(url) as session:
            peer = await peers.receive()

            async def refuse() -> None:
                stream_id, _ = await peer.next_request()
                peer.conn.send_headers(stream_id, [(b":status", b"403")])
                peer.conn.send_data(stream_id, b"not for ")
                await peer.flush()
                await peer.reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(refuse)
                with pytest.raises(WSServerHandshakeError) as info:
                    await session.connect_ws(nursery, "/x")
                assert (info.value.status, info.value.body) == (403, b"not for ")
                assert not session.closed


async def test_open_waiting_for_a_stream_fails_with_the_session() -> None:
    """An open waiting for a free stream (SETTINGS_MAX_CONCURRENT_STREAMS=1) raises
    WSConnectionError naming the GOAWAY that ends the session meanwhile."""
    with trio.fail_after(GUARD):
        async with scripted_session(max_streams=1) as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            await session.connect_ws(nursery, "/a")
            failed: list[BaseException] = []

            async def second() -> None:
                with pytest.raises(WSConnectionError) as info:
                    await session.connect_ws(nursery, "/b")
                failed.append(info.value)

            async with trio.open_nursery() as waiting:
                waiting.start_soon(second)
                await trio.testing.wait_all_tasks_blocked()
                assert not failed  # it waits for a stream
                await peer.goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            assert "GOAWAY (ENHANCE_YOUR_CALM)" in str(failed[0])


async def test_unknown_reset_code_is_named_by_its_number() -> None:
    """RST_STREAM with an error code HTTP/2 does not define: the cause names its number."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            ws = await session.connect_ws(nursery, "/a")
            await peer.reset(1, 0xBEEF)
            assert (await ws.receive()).type is WSMsgType.ERROR
            assert ws.close_code == 1006
            assert "reset the stream (error code 48879)" in repr(_causes(ws.exception()))


async def test_tcp_reset_breaks_every_websocket() -> None:
    """The server's TCP connection is reset (RST, not FIN): each WebSocket sees 1006 with
    the broken connection as the cause; the session is closed."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            sockets = []
            for path in ("/a", "/b"):
                nursery.start_soon(accept, peer)
                sockets.append(await session.connect_ws(nursery, path))
            # SO_LINGER 0: close() sends RST.
            peer.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            await peer.kill()
            for ws in sockets:
                assert (await ws.receive()).type is WSMsgType.ERROR
                assert ws.close_code == 1006
                assert "HTTP/2 connection to" in repr(_causes(ws.exception()))
                assert "broke" in repr(_causes(ws.exception()))
            assert session.closed


@pytest.mark.parametrize(
    ("ending", "match"),
    [("the connection dies", "closed the HTTP/2"), ("protocol error", "HTTP/2 protocol error")],
)
async def test_a_waiting_ping_fails_when_the_connection_ends(ending: str, match: str) -> None:
    """A PING waiting for its ACK raises WSConnectionError when the connection dies, or
    naming the server's HTTP/2 protocol error."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio_ws.open_session(url) as session:
            peer = await peers.receive()
            peer.silent = True  # no PING ACK
            failed = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_expect_ping_failure, session, match, failed)
                await trio.testing.wait_all_tasks_blocked()
                assert not failed.is_set()  # waiting for the ACK
                if ending == "the connection dies":
                    await peer.kill()
                else:
                    # A DATA frame on stream 0, which RFC 9113 §6.1 forbids.
                    await peer.stream.send_all(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")


async def _expect_ping_failure(
    session: trio_ws.WSSession, match: str, failed: trio.Event
) -> None:
    with pytest.raises(WSConnectionError, match=match):
        await session.ping()
    failed.set()
