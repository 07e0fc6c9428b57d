"""WebSockets over HTTP/2 (RFC 8441) against hypercorn: over TLS (ALPN h2) and h2c.

hypercorn serves ``tests.h2servers.echo_app`` in this process; the client runs the same
connection layer as over HTTP/1.1 on an HTTP/2 stream.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

import trio_ws
from trio_ws import WSMsgType, WSServerHandshakeError

from .h2servers import Hypercorn, client_context, open_hypercorn
from .proxies import http_proxy
from .servers import open_websockets_server

#: Guard against hangs: far above what any test here needs.
GUARD = 10.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h2tls") / "localhost.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.fixture(params=["tls", "h2c"])
async def server(request: pytest.FixtureRequest, cert_file: Path) -> AsyncIterator[Hypercorn]:
    """hypercorn over TLS with ALPN h2, then over cleartext (h2c with prior knowledge)."""
    async with open_hypercorn(cert_file=cert_file if request.param == "tls" else None) as srv:
        yield srv


@pytest.fixture
def tls(ca: trustme.CA, server: Hypercorn) -> dict[str, Any]:
    """The TLS options for ``server`` (none for h2c)."""
    if server.scheme == "ws":
        return {}
    return {"ssl": client_context(ca), "server_hostname": "localhost"}


async def test_echo_over_http2(server: Hypercorn, tls: dict[str, Any]) -> None:
    """Text, binary and JSON messages echo over one HTTP/2 stream; the close completes."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), http2=True, **tls) as ws:
            assert ws.get_extra_info("http_version") == "2"
            await ws.send_str("hello")
            assert await ws.receive_str() == "hello"
            await ws.send_bytes(b"\x00\xff" * 100_000)
            assert await ws.receive_bytes() == b"\x00\xff" * 100_000
            await ws.send_json({"a": [1, 2]})
            assert await ws.receive_json() == {"a": [1, 2]}
        assert ws.close_code == 1000
        assert ws.exception() is None


async def test_request_carries_rfc8441_headers(server: Hypercorn, tls: dict[str, Any]) -> None:
    """The extended CONNECT carries :authority, the version, the offer and user headers."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(
            server.url("/headers"),
            http2=True,
            headers={"X-Trace": "abc"},
            origin="https://app.example",
            **tls,
        ) as ws:
            seen = json.loads(await ws.receive_str())
    assert seen["http_version"] == "2"
    assert seen["host"] == f"127.0.0.1:{server.port}"
    assert seen["sec-websocket-version"] == "13"
    assert seen["x-trace"] == "abc"
    assert seen["origin"] == "https://app.example"
    assert "sec-websocket-key" not in seen


async def test_deflate_and_subprotocol_negotiated(server: Hypercorn, tls: dict[str, Any]) -> None:
    """permessage-deflate and the subprotocol are negotiated as on HTTP/1.1."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(
            server.url(), http2=True, compress=15, protocols=["chat", "v2"], **tls
        ) as ws:
            assert ws.compress == 15
            assert ws.protocol == "chat"
            await ws.send_str("z" * 50_000)
            assert await ws.receive_str() == "z" * 50_000


async def test_close_with_code(server: Hypercorn, tls: dict[str, Any]) -> None:
    """close(code=4000) completes the closing handshake promptly (the stream ends after
    both close frames even though hypercorn does not end it)."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), http2=True, **tls) as ws:
            start = trio.current_time()
            assert await ws.close(code=4000, message=b"done") is True
            # Far below ws_close (10 s): no wait for an END_STREAM that never comes.
            assert trio.current_time() - start < 5.0
    assert ws.close_code == 4000


async def test_server_closes(server: Hypercorn, tls: dict[str, Any]) -> None:
    """A close from the server is delivered as CLOSE with its code, then CLOSED."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url("/close/4001"), http2=True, **tls) as ws:
            assert await ws.receive_str() == "bye"
            msg = await ws.receive()
            assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001)
            assert (await ws.receive()).type is WSMsgType.CLOSED
    assert ws.close_code == 4001


async def test_refusal_is_a_typed_error(server: Hypercorn, tls: dict[str, Any]) -> None:
    """A non-200 answer is WSServerHandshakeError with the status, headers and body."""
    with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
        async with trio_ws.open_ws(server.url("/reject"), http2=True, **tls):
            pass
    assert info.value.status == 403
    assert info.value.body == b"go away"
    assert ("content-type", "text/plain") in info.value.headers
    assert "not 200" in str(info.value)


async def test_session_carries_many_websockets(server: Hypercorn, tls: dict[str, Any]) -> None:
    """50 WebSockets run concurrently on one session, over one socket."""
    sockets: set[object] = set()
    with trio.fail_after(GUARD):
        async with trio_ws.open_session(server.url("/"), **tls) as session:
            assert session.http2

            async def one(i: int) -> None:
                async with session.open_ws("/echo") as ws:
                    sockets.add(ws.get_extra_info("sockname"))
                    for j in range(5):
                        await ws.send_str(f"{i}-{j}")
                        assert await ws.receive_str() == f"{i}-{j}"

            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(one, i)
    assert len(sockets) == 1


async def test_unread_websocket_does_not_stall_the_others(
    server: Hypercorn, tls: dict[str, Any]
) -> None:
    """A WebSocket whose application does not read (1 MiB waiting for it) stops its own
    stream only: another WebSocket of the session goes on; the first then gets everything."""
    with trio.fail_after(GUARD):
        async with (
            trio_ws.open_session(server.url("/"), **tls) as session,
            session.open_ws("/flood/64") as slow,
            session.open_ws("/echo") as fast,
        ):
            for i in range(200):
                await fast.send_bytes(b"%d" % i + b"." * 10_000)
                assert (await fast.receive_bytes()).startswith(b"%d." % i)
            for _ in range(64):
                assert await slow.receive_bytes() == b"\x01" * 16384


async def test_session_close_closes_its_websockets(server: Hypercorn, tls: dict[str, Any]) -> None:
    """Leaving the session closes a WebSocket still open on it with 1001 (going away)."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            async with trio_ws.open_session(server.url("/"), **tls) as session:
                ws = await session.connect_ws(nursery, "/echo")
                await ws.send_str("x")
                assert await ws.receive_str() == "x"
            assert ws.closed
            assert ws.close_code == 1001
            assert session.closed


async def test_session_open_ws_refuses_connection_options(server: Hypercorn) -> None:
    """Options of the connection belong to open_session, not to session.open_ws."""
    async with trio_ws.open_session(server.url("/"), http2=False) as session:
        assert not session.http2
        with pytest.raises(trio_ws.InvalidArgument, match="ssl"):
            async with session.open_ws("/echo", ssl=False):
                pass
        with pytest.raises(trio_ws.InvalidArgument, match="path"):
            async with session.open_ws("echo"):
                pass


# --------------------------------------------------------------------------------------------
# fallback to HTTP/1.1


@pytest.fixture
async def h1_only(cert_file: Path) -> AsyncIterator[Hypercorn]:
    """hypercorn over TLS offering only http/1.1 in ALPN."""
    async with open_hypercorn(cert_file=cert_file, alpn=("http/1.1",)) as srv:
        yield srv


async def test_fallback_when_alpn_says_http11(h1_only: Hypercorn, ca: trustme.CA) -> None:
    """http2=True over TLS to a server that picks http/1.1 upgrades on the same connection."""
    ctx = client_context(ca)
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(
            h1_only.url(), http2=True, ssl=ctx, server_hostname="localhost"
        ) as ws:
            assert ws.get_extra_info("http_version") == "1.1"
            await ws.send_str("hi")
            assert await ws.receive_str() == "hi"
        # A context trio_ws set ALPN on offers http/1.1 only to HTTP/1.1 connections after.
        async with trio_ws.open_ws(h1_only.url(), ssl=ctx, server_hostname="localhost") as ws:
            assert ws.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"


async def test_require_refuses_http11(h1_only: Hypercorn, ca: trustme.CA) -> None:
    """http2='require' to a server that picks http/1.1 is a WSServerHandshakeError."""
    with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError, match="ALPN"):
        async with trio_ws.open_ws(
            h1_only.url(), http2="require", ssl=client_context(ca), server_hostname="localhost"
        ):
            pass


async def test_session_falls_back_to_one_connection_per_websocket(
    h1_only: Hypercorn, ca: trustme.CA
) -> None:
    """A session to a server without HTTP/2 still opens WebSockets, over HTTP/1.1."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_session(
            h1_only.url("/"), ssl=client_context(ca), server_hostname="localhost"
        ) as session:
            assert not session.http2
            async with session.open_ws("/echo") as a, session.open_ws("/echo") as b:
                await a.send_str("a")
                await b.send_str("b")
                assert (await a.receive_str(), await b.receive_str()) == ("a", "b")
                assert a.get_extra_info("sockname") != b.get_extra_info("sockname")


async def test_fallback_to_websockets_server_over_tls(
    cert_file: Path, ca: trustme.CA
) -> None:
    """The websockets server (no ALPN at all) gets an HTTP/1.1 upgrade."""
    async with open_websockets_server(certfile=cert_file) as srv:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(
                srv.url(), http2=True, ssl=client_context(ca), server_hostname="localhost"
            ) as ws:
                assert ws.get_extra_info("http_version") == "1.1"
                await ws.send_str("hi")
                assert await ws.receive_str() == "hi"


async def test_h2c_fallback_to_websockets_server() -> None:
    """ws:// with http2=True to an HTTP/1.1-only server: the preface fails, a new
    connection upgrades over HTTP/1.1; with 'require' it is a typed error."""
    async with open_websockets_server() as srv:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(srv.url(), http2=True) as ws:
                assert ws.get_extra_info("http_version") == "1.1"
                await ws.send_str("hi")
                assert await ws.receive_str() == "hi"
            with pytest.raises(WSServerHandshakeError, match="HTTP/2"):
                async with trio_ws.open_ws(srv.url(), http2="require"):
                    pass


def test_http2_option_is_checked() -> None:
    """http2 must be True, False or 'require', checked before any I/O."""
    with pytest.raises(trio_ws.InvalidArgument, match="http2"):
        trio_ws.ConnectOptions(http2="yes")  # type: ignore[arg-type]


async def test_http2_with_stream_is_refused() -> None:
    """http2 needs trio_ws to open the connection itself."""
    a, _ = trio.testing.memory_stream_pair()
    with pytest.raises(trio_ws.InvalidArgument, match="stream="):
        async with trio_ws.open_ws("ws://example/", stream=a, http2=True):
            pass


async def test_ssl_context_without_http2_is_untouched(ca: trustme.CA, h1_only: Hypercorn) -> None:
    """A context trio_ws never set ALPN on offers nothing (HTTP/1.1 as before)."""
    ctx = client_context(ca)
    async with trio_ws.open_ws(h1_only.url(), ssl=ctx, server_hostname="localhost") as ws:
        tls = ws.get_extra_info("ssl_object")
        assert isinstance(tls, trio.SSLStream)
        assert tls.selected_alpn_protocol() is None
    assert isinstance(ctx, ssl.SSLContext)


async def test_session_ping(server: Hypercorn, tls: dict[str, Any]) -> None:
    """session.ping(): hypercorn's HTTP/2 layer answers; the round trip is a duration."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_session(server.url("/"), **tls) as session:
            rtt = await session.ping()
            assert 0 <= rtt < GUARD
            async with session.open_ws("/echo") as ws:
                await ws.send_str("after ping")
                assert await ws.receive_str() == "after ping"
        with pytest.raises(trio_ws.WSConnectionError):
            await session.ping()


# --------------------------------------------------------------------------------------------
# the behaviour contract (docs/behaviour.rst) over HTTP/2 (the close codes the server
# receives are checked in test_http2_behaviour: hypercorn tells its app 1006 for any close)


async def test_receive_rules_over_http2(server: Hypercorn, tls: dict[str, Any]) -> None:
    """A timed-out receive loses nothing; concurrent receive() is a RuntimeError; after
    close, receive() gives CLOSED, close() returns False and sends raise WSClosedError."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), http2=True, **tls) as ws:
            with pytest.raises(trio_ws.WSTimeoutError):
                await ws.receive(timeout=0.05)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.receive)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(RuntimeError):
                    await ws.receive()
                await ws.send_str("one")  # the waiting receive takes it
            await ws.send_str("two")
            assert await ws.receive_str() == "two"
            assert await ws.close() is True
            assert await ws.close() is False
            assert (await ws.receive()).type is WSMsgType.CLOSED
            with pytest.raises(trio_ws.WSClosedError):
                await ws.send_str("late")


async def test_fallback_session_closes_its_websockets(h1_only: Hypercorn, ca: trustme.CA) -> None:
    """Without HTTP/2 too, leaving the session closes its WebSockets (1001)."""
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            async with trio_ws.open_session(
                h1_only.url("/"), ssl=client_context(ca), server_hostname="localhost"
            ) as session:
                done = await session.connect_ws(nursery, "/echo")
                await done.close()
                ws = await session.connect_ws(nursery, "/echo")
            assert ws.close_code == 1001
            assert session.closed


async def test_session_exception_policy(server: Hypercorn, tls: dict[str, Any]) -> None:
    """An exception in the session's block leaves it unchanged (no ExceptionGroup), after
    the session closed; cancellation stays cancellation."""
    with trio.fail_after(GUARD):
        with pytest.raises(KeyError, match="mine") as info:
            async with trio_ws.open_session(server.url("/"), **tls) as session:
                raise KeyError("mine")
        assert info.type is KeyError
        assert session.closed
        with trio.CancelScope() as scope:
            async with trio_ws.open_session(server.url("/"), **tls) as session:
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert session.closed


async def test_http2_through_an_http_proxy(server: Hypercorn, tls: dict[str, Any]) -> None:
    """HTTP/2 (TLS with ALPN, or h2c) through an HTTP CONNECT tunnel: the proxy carries the
    one connection of a session."""
    async with http_proxy() as proxy:
        with trio.fail_after(GUARD):
            async with trio_ws.open_session(
                server.url("/"), http2="require", proxy=proxy.url, **tls
            ) as session, session.open_ws("/echo") as a, session.open_ws("/echo") as b:
                await a.send_str("a")
                await b.send_str("b")
                assert (await a.receive_str(), await b.receive_str()) == ("a", "b")
            await proxy.wait_target("127.0.0.1", server.port)
            assert len(proxy.targets) == 1


async def test_h2c_over_a_unix_socket(tmp_path: Path) -> None:
    """unix_socket= with http2: h2c with prior knowledge over the Unix socket."""
    path = tmp_path / "h2.sock"
    async with open_hypercorn(unix_path=path):
        with trio.fail_after(GUARD):
            async with (
                trio_ws.open_session("ws://localhost", unix_socket=path, http2="require") as s,
                s.open_ws("/echo") as ws,
            ):
                assert ws.get_extra_info("http_version") == "2"
                await ws.send_str("unix")
                assert await ws.receive_str() == "unix"


async def test_debug_log_names_http2(server: Hypercorn, tls: dict[str, Any], caplog: Any) -> None:
    """The debug log shows the extended CONNECT and an HTTP/2 response line (no reason
    phrase), never HTTP/1.1."""
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(server.url(), http2="require", **tls) as ws:
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_ws.client"]
    assert f"[{ws.id}] > CONNECT /echo HTTP/2 (:protocol websocket)" in lines
    assert f"[{ws.id}] < HTTP/2 200" in lines
    assert not any("HTTP/1.1" in line for line in lines)
    opened = [line for line in lines if " connected to " in line]
    assert opened[0].startswith(f"[{ws.id}] connected to {server.url()} over HTTP/2 (")


async def test_debug_log_of_a_session_websocket(
    server: Hypercorn, tls: dict[str, Any], caplog: Any
) -> None:
    """A session's WebSocket logs its extended CONNECT and the HTTP/2 answer too."""
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with trio.fail_after(GUARD):
        async with (
            trio_ws.open_session(server.url("/"), **tls) as session,
            session.open_ws("/echo", headers={"Authorization": "Bearer t0ken"}) as ws,
        ):
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_ws.client"]
    assert f"[{ws.id}] > CONNECT /echo HTTP/2 (:protocol websocket)" in lines
    assert f"[{ws.id}] > authorization: ***" in lines
    assert f"[{ws.id}] < HTTP/2 200" in lines
    assert "t0ken" not in "\n".join(lines)
