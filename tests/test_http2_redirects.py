"""Redirects over HTTP/2: a 3xx answer to the extended CONNECT is followed as on HTTP/1.1
(the same policy: max_redirects, loops, credentials dropped across origins), on the same
HTTP/2 connection when the origin stays, on a new one when it changes. Scripted h2c servers
(tests.h2peer)."""

from __future__ import annotations

import pytest
import trio

import trio_ws
from trio_ws import WSRedirectError, WSServerHandshakeError
from trio_ws.testing import open_test_server

from .h2peer import H2Peer
from .test_http2_faults import scripted

GUARD = 10.0


async def redirect(peer: H2Peer, location: str, status: int = 301) -> dict[bytes, bytes]:
    """Answer the next extended CONNECT with ``status`` and ``location``; its headers."""
    stream_id, headers = await peer.next_request()
    peer.conn.send_headers(
        stream_id,
        [(b":status", str(status).encode()), (b"location", location.encode())],
        end_stream=True,
    )
    await peer.flush()
    return headers


async def accept(peer: H2Peer) -> tuple[int, dict[bytes, bytes]]:
    stream_id, headers = await peer.next_request()
    await peer.respond(stream_id)
    return stream_id, headers


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_same_origin_redirect_uses_the_same_connection(status: int) -> None:
    """A redirect to another path of the same server: the next extended CONNECT goes on the
    same HTTP/2 connection; the WebSocket works there."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio.open_nursery() as nursery:
            seen: list[dict[bytes, bytes]] = []

            async def serve() -> None:
                peer = await peers.receive()
                seen.append(await redirect(peer, "/new?x=1", status))
                stream_id, headers = await accept(peer)
                seen.append(headers)
                await peer.send_text(stream_id, "moved")
                await peer.send_close(stream_id, 1000)

            nursery.start_soon(serve)
            async with trio_ws.open_ws(f"{url}/old", http2="require") as ws:
                assert await ws.receive_str() == "moved"
                assert ws.get_extra_info("http_version") == "2"
                assert (await ws.receive()).data == 1000
            assert [h[b":path"] for h in seen] == [b"/old", b"/new?x=1"]
            with pytest.raises(trio.WouldBlock):
                peers.receive_nowait()  # one connection only


async def test_redirect_to_another_origin_opens_a_new_session() -> None:
    """A redirect to another server: the first connection ends (GOAWAY), a new HTTP/2
    connection carries the WebSocket, and the URL's credentials stay with the first origin."""
    with trio.fail_after(GUARD):
        async with (
            scripted() as (first_url, first_peers),
            scripted() as (second_url, second_peers),
            trio.open_nursery() as nursery,
        ):
            seen: list[dict[bytes, bytes]] = []
            first: list[H2Peer] = []

            async def serve() -> None:
                peer = await first_peers.receive()
                first.append(peer)
                seen.append(await redirect(peer, f"{second_url}/there"))
                other = await second_peers.receive()
                stream_id, headers = await accept(other)
                seen.append(headers)
                await other.send_text(stream_id, "elsewhere")
                await other.send_close(stream_id, 1000)

            nursery.start_soon(serve)
            host = first_url.removeprefix("ws://")
            async with trio_ws.open_ws(f"ws://u:p@{host}/here", http2=True) as ws:
                assert await ws.receive_str() == "elsewhere"
                assert (await ws.receive()).data == 1000
                await first[0].wait(lambda: first[0].closed)
                assert first[0].conn.state_machine.state.name == "CLOSED"  # our GOAWAY
            assert b"authorization" in seen[0]
            assert b"authorization" not in seen[1]
            assert seen[1][b":path"] == b"/there"


async def test_redirect_loop_is_refused() -> None:
    """/a -> /b -> /a: WSRedirectError naming the loop, with the chain."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio.open_nursery() as nursery:

            async def serve() -> None:
                peer = await peers.receive()
                await redirect(peer, "/b")
                await redirect(peer, "/a")

            nursery.start_soon(serve)
            with pytest.raises(WSRedirectError, match="redirect loop") as info:
                async with trio_ws.open_ws(f"{url}/a", http2="require"):
                    pytest.fail("must not connect")
            assert info.value.chain == [f"{url}/a", f"{url}/b", f"{url}/a"]
            assert info.value.status == 301


async def test_max_redirects_zero_reports_the_redirect() -> None:
    """max_redirects=0: the 3xx is a WSServerHandshakeError with its status and Location."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio.open_nursery() as nursery:

            async def serve() -> None:
                await redirect(await peers.receive(), "/b", 307)

            nursery.start_soon(serve)
            with pytest.raises(WSServerHandshakeError) as info:
                async with trio_ws.open_ws(f"{url}/a", http2="require", max_redirects=0):
                    pytest.fail("must not connect")
            assert not isinstance(info.value, WSRedirectError)
            assert info.value.status == 307
            assert ("location", "/b") in info.value.headers


async def test_too_many_redirects() -> None:
    """More hops than max_redirects: WSRedirectError naming the limit."""
    with trio.fail_after(GUARD):
        async with scripted() as (url, peers), trio.open_nursery() as nursery:

            async def serve() -> None:
                peer = await peers.receive()
                for hop in range(2):
                    await redirect(peer, f"/{hop}")

            nursery.start_soon(serve)
            with pytest.raises(WSRedirectError, match="max_redirects=1"):
                async with trio_ws.open_ws(f"{url}/a", http2="require", max_redirects=1):
                    pytest.fail("must not connect")


async def test_redirect_to_a_server_without_http2() -> None:
    """http2=True, redirected to a server that only speaks HTTP/1.1: the next hop falls back
    to the HTTP/1.1 upgrade, and the WebSocket works there."""
    with trio.fail_after(GUARD):
        async with (
            open_test_server() as h1,
            scripted() as (url, peers),
            trio.open_nursery() as nursery,
        ):

            async def serve() -> None:
                await redirect(await peers.receive(), h1.url_for("/moved"))

            nursery.start_soon(serve)
            async with trio_ws.open_ws(f"{url}/a", http2=True) as ws:
                assert ws.get_extra_info("http_version") == "1.1"
                await ws.send_str("hello")
                assert await ws.receive_str() == "hello"
