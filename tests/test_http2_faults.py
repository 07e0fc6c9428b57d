"""WebSockets over HTTP/2 when the server misbehaves: a scripted h2 server (tests.h2peer).

Stream resets, GOAWAY, a session killed under open WebSockets, a server without RFC 8441,
a limit on concurrent streams, a cancelled open: each WebSocket sees 1006 with the cause where
its stream breaks, and the others (and the session) go on where theirs does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h2.errors
import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import WSConnectionError, WSMsgType, WSServerHandshakeError
from trio_ws._h2session import H2Session

from .h2peer import H2Peer, open_h2_server
from .servers import OP_CLOSE, OP_TEXT, RawPeer

GUARD = 10.0


@asynccontextmanager
async def scripted(
    **options: object,
) -> AsyncIterator[tuple[str, trio.MemoryReceiveChannel[H2Peer]]]:
    """A scripted h2c server: yields its base URL and the channel its connections arrive on
    (the test drives each :class:`H2Peer`)."""
    send, receive = trio.open_memory_channel[H2Peer](10)

    async def handler(peer: H2Peer) -> None:
        await send.send(peer)
        await trio.sleep_forever()

    async with open_h2_server(handler, **options) as port:  # type: ignore[arg-type]
        yield f"ws://127.0.0.1:{port}", receive


@asynccontextmanager
async def scripted_session(
    **options: object,
) -> AsyncIterator[tuple[trio_ws.WSSession, H2Peer, trio.Nursery]]:
    """A session on the scripted server (``options`` are the server's), the server's side of
    its connection, and a nursery for ``connect_ws``."""
    async with (
        scripted(**options) as (url, peers),
        trio_ws.open_session(url) as session,
        trio.open_nursery() as nursery,
    ):
        yield session, await peers.receive(), nursery


async def accept(peer: H2Peer) -> int:
    """Answer the next extended CONNECT with 200; its stream id."""
    stream_id, headers = await peer.next_request()
    assert headers[b":method"] == b"CONNECT"
    assert headers[b":protocol"] == b"websocket"
    await peer.respond(stream_id)
    return stream_id


async def test_reset_stream_breaks_only_its_websocket() -> None:
    """RST_STREAM on one stream: its WebSocket closes with 1006 and the reset as the cause;
    another WebSocket of the session goes on."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            a = await session.connect_ws(nursery, "/a")
            nursery.start_soon(accept, peer)
            b = await session.connect_ws(nursery, "/b")
            await peer.reset(1, h2.errors.ErrorCodes.INTERNAL_ERROR)
            msg = await a.receive()
            assert msg.type is WSMsgType.ERROR
            assert isinstance(a.exception(), WSConnectionError)
            assert "reset the stream (INTERNAL_ERROR)" in repr(_causes(a.exception()))
            assert a.close_code == 1006
            # b still works both ways.
            await b.send_str("still here")
            assert (await peer.read_frame(3)).payload == b"still here"
            await peer.send_text(3, "yes")
            assert await b.receive_str() == "yes"
            await peer.send_close(3, 1000)
            assert (await b.receive()).type is WSMsgType.CLOSE


async def test_goaway_with_error_breaks_every_websocket() -> None:
    """GOAWAY with an error code: every WebSocket sees 1006 with the GOAWAY as the cause."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            sockets = []
            for path in ("/a", "/b", "/c"):
                nursery.start_soon(accept, peer)
                sockets.append(await session.connect_ws(nursery, path))
            await peer.goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            for ws in sockets:
                assert (await ws.receive()).type is WSMsgType.ERROR
                assert ws.close_code == 1006
                assert "GOAWAY (ENHANCE_YOUR_CALM)" in repr(_causes(ws.exception()))
            assert session.closed
            with pytest.raises(WSConnectionError):
                await session.connect_ws(nursery, "/d")


async def test_graceful_goaway_ends_the_session() -> None:
    """GOAWAY without error: h2 allows no frame after it, so every WebSocket ends with 1006
    and the GOAWAY as the cause, and no new one is opened."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            a = await session.connect_ws(nursery, "/a")
            await peer.goaway(0, last_stream_id=1)
            assert (await a.receive()).type is WSMsgType.ERROR
            assert "GOAWAY (NO_ERROR)" in repr(_causes(a.exception()))
            with pytest.raises(WSConnectionError, match="GOAWAY"):
                await session.connect_ws(nursery, "/c")


async def test_killed_session_breaks_every_websocket() -> None:
    """The server's socket dies mid-traffic: each WebSocket sees 1006 with the cause."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            sockets = []
            for path in ("/a", "/b"):
                nursery.start_soon(accept, peer)
                sockets.append(await session.connect_ws(nursery, path))
            await peer.send_text(1, "x" * 1000)
            await peer.kill()
            for ws in sockets:
                types = [msg.type async for msg in ws]
                assert types[-1] is WSMsgType.ERROR
                assert ws.close_code == 1006
                assert "HTTP/2 connection" in repr(_causes(ws.exception()))


async def test_no_connect_protocol_require_is_a_typed_error() -> None:
    """A server without SETTINGS_ENABLE_CONNECT_PROTOCOL: http2='require' refuses."""
    with trio.fail_after(GUARD):
        async with scripted(connect_protocol=False) as (url, _):
            with pytest.raises(WSServerHandshakeError, match="SETTINGS_ENABLE_CONNECT_PROTOCOL"):
                async with trio_ws.open_ws(f"{url}/", http2="require"):
                    pass


async def test_no_connect_protocol_falls_back_to_http11() -> None:
    """A server without SETTINGS_ENABLE_CONNECT_PROTOCOL gets GOAWAY, then an HTTP/1.1
    upgrade on a new connection."""

    async def http1(raw: RawPeer) -> None:
        await raw.accept()
        frame = await raw.read_frame()
        assert frame is not None
        assert frame.opcode == OP_TEXT
        await raw.send(bytes([0x81, len(frame.payload)]) + frame.payload)
        close = await raw.read_close()
        assert close is not None
        assert close.opcode == OP_CLOSE
        await raw.send(bytes([0x88, 2]) + close.payload[:2])

    async def h2handler(peer: H2Peer) -> None:
        await peer.wait(lambda: peer.closed)

    with trio.fail_after(GUARD):
        async with (
            open_h2_server(h2handler, connect_protocol=False, http1=http1) as port,
            trio_ws.open_ws(f"ws://127.0.0.1:{port}/", http2=True) as ws,
        ):
            assert ws.get_extra_info("http_version") == "1.1"
            await ws.send_str("hi")
            assert await ws.receive_str() == "hi"


async def test_opening_waits_for_a_free_stream() -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS=1: a second open waits until the first stream closes,
    and gives up at connect_timeout."""
    with trio.fail_after(GUARD):
        async with scripted_session(max_streams=1) as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            a = await session.connect_ws(nursery, "/a")
            with pytest.raises(trio_ws.ConnectTimeoutError):
                await session.connect_ws(nursery, "/late", connect_timeout=0.2)
            opened: list[trio_ws.ClientWebSocket] = []
            got = trio.Event()

            async def second() -> None:
                opened.append(await session.connect_ws(nursery, "/b"))
                got.set()

            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            assert not opened
            nursery.start_soon(accept, peer)
            await peer.send_close(1, 1000)
            assert (await a.receive()).type is WSMsgType.CLOSE
            await a.close()
            await got.wait()
            b = opened[0]
            await peer.send_text(3, "b")
            assert await b.receive_str() == "b"
            await peer.send_close(3, 1000)


async def test_cancelled_open_resets_its_stream_and_session_goes_on() -> None:
    """open_ws cancelled while waiting for the response resets its stream (CANCEL); the
    session opens the next WebSocket normally."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio_ws.open_session(url) as session:
            peer = await peers.receive()
            with trio.CancelScope() as scope:

                async def cancel_when_asked() -> None:
                    await peer.next_request()  # the request arrived; no answer
                    scope.cancel()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cancel_when_asked)
                    async with session.open_ws("/never"):
                        pytest.fail("the open should have been cancelled")
            assert scope.cancelled_caught
            await peer.wait(lambda: 1 in peer.resets)
            assert peer.resets[1] == h2.errors.ErrorCodes.CANCEL
            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept, peer)
                async with session.open_ws("/next") as ws:
                    await peer.send_text(3, "fine")
                    assert await ws.receive_str() == "fine"
                    await peer.send_close(3, 1000)
                    assert (await ws.receive()).type is WSMsgType.CLOSE


async def test_stream_refused_before_response() -> None:
    """A stream reset before its response: WSConnectionError naming the reset; the session
    goes on."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio_ws.open_session(url) as session:
            peer = await peers.receive()

            async def end_it() -> None:
                stream_id, _ = await peer.next_request()
                await peer.reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(end_it)
                with pytest.raises(WSConnectionError, match="REFUSED_STREAM"):
                    await session.connect_ws(nursery, "/x")
            assert not session.closed


def _causes(exc: BaseException | None) -> list[BaseException]:
    chain = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    return chain


async def test_rejection_body_is_not_read_as_frames() -> None:
    """A 403 whose body looks like a WebSocket close frame ("H" is 0x48) is kept whole."""
    body = b"H" * 300
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):

            async def refuse() -> None:
                stream_id, _ = await peer.next_request()
                await peer.respond(stream_id, 403, body)

            nursery.start_soon(refuse)
            with pytest.raises(WSServerHandshakeError) as info:
                await session.connect_ws(nursery, "/x")
            assert (info.value.status, info.value.body) == (403, body)


async def test_protocol_error_breaks_every_websocket() -> None:
    """Bytes that are not HTTP/2 from the server: an HTTP/2 protocol error, every WebSocket
    1006 with it as the cause."""
    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            ws = await session.connect_ws(nursery, "/a")
            # A DATA frame on stream 0, which RFC 9113 §6.1 forbids.
            await peer.stream.send_all(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
            assert (await ws.receive()).type is WSMsgType.ERROR
            assert ws.close_code == 1006
            assert "HTTP/2 protocol error" in repr(_causes(ws.exception()))
            assert session.closed


async def test_a_bug_in_the_session_ends_it_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the session's reader breaks its WebSockets with an internal WSError; nothing
    raises into the nursery."""
    def broken(self: H2Session, event: object) -> None:
        raise ZeroDivisionError("bug")

    with trio.fail_after(GUARD):
        async with scripted_session() as (session, peer, nursery):
            nursery.start_soon(accept, peer)
            ws = await session.connect_ws(nursery, "/a")
            monkeypatch.setattr(H2Session, "_event", broken)
            await peer.send_text(1, "boom")
            assert (await ws.receive()).type is WSMsgType.ERROR
            assert "internal error in the trio_ws HTTP/2 session" in repr(_causes(ws.exception()))
