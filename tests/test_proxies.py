"""``proxy=`` against real proxies (pproxy, see ``tests/proxies.py``) and scripted ones.

The WebSocket server behind the proxies is the ``websockets`` server; every proxy listens on
127.0.0.1. Proxy environment variables are set per test with ``monkeypatch`` (the autouse
fixture in ``conftest.py`` clears them first).
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trustme

import trio_ws
from trio_ws import ConnectTimeoutError, ProxyTimeoutError, WSProxyError

from .proxies import http_proxy, https_proxy, socks4_proxy, socks5_proxy
from .servers import (
    RawPeer,
    WebsocketsServer,
    open_raw_server,
    open_websockets_server,
    refused_port,
)

#: Guard against hangs: far above what any test here needs.
GUARD = 10.0


@pytest.fixture
async def server() -> AsyncIterator[WebsocketsServer]:
    async with open_websockets_server() as srv:
        yield srv


async def echo_once(url: str, **options: object) -> None:
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(url, **options) as ws:  # type: ignore[arg-type]
            await ws.send_str("through the proxy")
            assert await ws.receive_str() == "through the proxy"


async def proxy_error(url: str, **options: object) -> WSProxyError:
    with trio.fail_after(GUARD), pytest.raises(WSProxyError) as info:
        async with trio_ws.open_ws(url, **options):  # type: ignore[arg-type]
            pass
    return info.value


# ---------------------------------------------------------------------------------------------
# HTTP CONNECT


async def test_http_proxy(server: WebsocketsServer) -> None:
    async with http_proxy() as proxy:
        await echo_once(server.url(), proxy=proxy.url)
        await proxy.wait_target("127.0.0.1", server.port)


async def test_http_proxy_with_credentials_in_the_url_or_proxy_auth(
    server: WebsocketsServer,
) -> None:
    async with http_proxy(username="user", password="s3cret") as proxy:
        await echo_once(server.url(), proxy=proxy.url)
        without = proxy.url_for(username=None)
        await echo_once(server.url(), proxy=without, proxy_auth=("user", "s3cret"))
        assert len(proxy.targets) == 2


async def test_http_proxy_refuses_wrong_credentials(server: WebsocketsServer) -> None:
    async with http_proxy(username="user", password="s3cret") as proxy:
        exc = await proxy_error(server.url(), proxy=proxy.url_for(password="wr0ng"))
        assert exc.status == 407
        assert "refused the tunnel: 407" in str(exc)
        assert exc.proxy == f"http://127.0.0.1:{proxy.port}"
        assert "wr0ng" not in str(exc)
        assert "user" not in str(exc)
        assert any(name.lower() == "proxy-authenticate" for name, _ in exc.headers)
        exc = await proxy_error(server.url(), proxy=proxy.url_for(username=None))
        assert exc.status == 407
        assert proxy.targets == []


async def test_proxy_headers_reach_the_proxy(server: WebsocketsServer) -> None:
    """pproxy reads Proxy-Authorization from the CONNECT request: given as a proxy header
    (the way a token-based proxy is used), it authenticates."""
    async with http_proxy(username="user", password="pw") as proxy:
        assert proxy.authorization is not None
        await echo_once(
            server.url(),
            proxy=proxy.url_for(username=None),
            proxy_headers={"Proxy-Authorization": proxy.authorization},
        )


async def test_https_proxy_and_tls_inside_it(tmp_path: Path) -> None:
    """TLS to the proxy, then TLS to the server through it (TLS in TLS)."""
    server_ca = trustme.CA()
    cert = tmp_path / "server.pem"
    server_ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(cert))
    async with https_proxy() as proxy, open_websockets_server(certfile=cert) as tls_server:
        ctx = proxy.ssl_context()
        server_ca.configure_trust(ctx)
        await echo_once(tls_server.url(host="localhost"), proxy=proxy.url, ssl=ctx)
        await proxy.wait_target("localhost", tls_server.port)
        # The proxy's certificate must verify too.
        exc = await proxy_error(tls_server.url(host="localhost"), proxy=proxy.url)
        assert "TLS handshake with the proxy" in str(exc)
        assert isinstance(exc.__cause__, ssl.SSLCertVerificationError)


# ---------------------------------------------------------------------------------------------
# SOCKS


async def test_socks5_resolves_locally_and_socks5h_remotely(server: WebsocketsServer) -> None:
    async with socks5_proxy() as proxy:
        url = server.url(host="localhost")
        await echo_once(url, proxy=proxy.url_for("socks5"))
        await proxy.wait_target("127.0.0.1", server.port)  # we resolved localhost
        await echo_once(url, proxy=proxy.url_for("socks5h"))
        await proxy.wait_target("localhost", server.port)  # the proxy did


async def test_socks5_with_credentials(server: WebsocketsServer) -> None:
    async with socks5_proxy(username="user", password="pw") as proxy:
        await echo_once(server.url(), proxy=proxy.url)
        exc = await proxy_error(server.url(), proxy=proxy.url_for(password="bad"))
        assert "closed the connection during the SOCKS handshake" in str(exc)
        assert "bad" not in str(exc)
        exc = await proxy_error(server.url(), proxy=proxy.url_for(username=None))
        assert exc.proxy == f"socks5://127.0.0.1:{proxy.port}"


async def test_socks4(server: WebsocketsServer) -> None:
    async with socks4_proxy() as proxy:
        await echo_once(server.url(host="localhost"), proxy=proxy.url)
        await proxy.wait_target("127.0.0.1", server.port)
    async with socks4_proxy(user_id="me") as proxy:
        await echo_once(server.url(), proxy=proxy.url)
        exc = await proxy_error(server.url(), proxy=proxy.url_for(username="other"))
        assert "closed the connection during the SOCKS handshake" in str(exc)


async def test_socks4a_against_a_scripted_proxy() -> None:
    """pproxy has no SOCKS4a: a scripted one checks the request, grants it, then plays the
    WebSocket server on the same connection."""
    requests: list[bytes] = []

    async def socks4a(stream: trio.SocketStream) -> None:
        data = b""
        while data.count(b"\x00") < 3 or not data.endswith(b"\x00"):
            data += await stream.receive_some(1024)
        requests.append(data)
        await stream.send_all(b"\x00\x5a" + bytes(6))
        peer = RawPeer(stream)
        await peer.accept(then=b"\x81\x02ok")
        await peer.read_close()
        await peer.send(b"\x88\x02\x03\xe8")

    async with open_raw_server(socks4a) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(
                "ws://app.example:8080/", proxy=f"socks4a://me@127.0.0.1:{port}"
            ) as ws:
                assert await ws.receive_str() == "ok"
    assert requests == [b"\x04\x01\x1f\x90\x00\x00\x00\x01me\x00app.example\x00"]


# ---------------------------------------------------------------------------------------------
# proxies that fail


async def test_unreachable_proxy() -> None:
    port = refused_port()
    exc = await proxy_error("ws://127.0.0.1:9/", proxy=f"http://u:secret@127.0.0.1:{port}")
    assert f"cannot connect to the proxy http://127.0.0.1:{port}" in str(exc)
    assert "secret" not in str(exc)
    assert isinstance(exc.__cause__, OSError)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", "refused the tunnel: 502"),
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", "refused the tunnel: 403 Forbidden"),
        (b"\x00\x01garbage\r\n\r\n", "answered something that is not HTTP"),
        (b"", "closed the connection before answering CONNECT"),
        (b"HTTP/1.1 200 OK\r\n\r\nearly", "sent data before the tunnel was used"),
    ],
)
async def test_proxy_that_refuses_or_misbehaves(answer: bytes, message: str) -> None:
    async def scripted(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(1024)
        await stream.send_all(answer)

    async with open_raw_server(scripted) as port:
        exc = await proxy_error("ws://app.example/", proxy=f"http://127.0.0.1:{port}")
    assert message in str(exc)


async def test_proxy_that_resets_the_connection() -> None:
    async def resetting(stream: trio.SocketStream) -> None:
        await stream.receive_some(1024)
        # SO_LINGER 0: close() sends RST instead of FIN.
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async with open_raw_server(resetting) as port:
        exc = await proxy_error("ws://app.example/", proxy=f"socks5h://u:pw@127.0.0.1:{port}")
    assert f"the connection to the proxy socks5h://127.0.0.1:{port} broke" in str(exc)
    assert exc.__cause__ is not None


async def test_proxy_that_never_answers() -> None:
    """ProxyTimeoutError within connect_timeout, and our socket to the proxy is closed (the
    proxy reads EOF): nothing is left behind."""
    closed = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some(1024):
            pass
        closed.set()

    async with open_raw_server(silent) as port:
        with trio.fail_after(GUARD), pytest.raises(ProxyTimeoutError) as info:
            async with trio_ws.open_ws(
                "ws://app.example/", proxy=f"socks5h://127.0.0.1:{port}", connect_timeout=0.3
            ):
                pass
        with trio.fail_after(GUARD):
            await closed.wait()
    exc = info.value
    assert isinstance(exc, ConnectTimeoutError)
    assert isinstance(exc, WSProxyError)
    assert exc.proxy == f"socks5h://127.0.0.1:{port}"
    assert "did not open the tunnel to ws://app.example/ within connect_timeout=0.3 s" in str(exc)


async def test_proxy_that_refuses_the_target(server: WebsocketsServer) -> None:
    """pproxy answers a CONNECT to a closed port by closing the connection."""
    async with http_proxy() as proxy:
        exc = await proxy_error(f"ws://127.0.0.1:{refused_port()}/", proxy=proxy.url)
    assert "closed the connection before answering CONNECT" in str(exc)


# ---------------------------------------------------------------------------------------------
# the environment


async def test_environment_proxy_is_used_by_default(
    server: WebsocketsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with http_proxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        await echo_once(server.url())
        assert len(proxy.targets) == 1
        await echo_once(server.url(), proxy=None)
        await echo_once(server.url(), proxy=False)
        monkeypatch.setenv("no_proxy", "localhost, 127.0.0.0/8")
        await echo_once(server.url())
        assert len(proxy.targets) == 1


async def test_ws_proxy_wins_over_http_proxy(
    server: WebsocketsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with socks5_proxy() as socks, http_proxy() as http:
        monkeypatch.setenv("ws_proxy", socks.url)
        monkeypatch.setenv("http_proxy", http.url)
        await echo_once(server.url())
    assert (len(socks.targets), len(http.targets)) == (1, 0)


async def test_a_bad_proxy_variable_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("all_proxy", "gopher://user:secret@proxy:70")
    with pytest.raises(trio_ws.InvalidArgument, match="unsupported proxy scheme") as info:
        async with trio_ws.open_ws("ws://127.0.0.1:9/"):
            pass
    assert "secret" not in str(info.value)


async def test_unix_sockets_never_use_a_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("all_proxy", f"http://127.0.0.1:{refused_port()}")
    path = tmp_path / "ws.sock"
    async with open_websockets_server(unix_path=path):
        await echo_once("ws://app.internal/echo", unix_socket=path)
