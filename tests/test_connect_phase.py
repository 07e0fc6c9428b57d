"""The connect phase against real servers: redirects, Unix sockets, TLS mix-ups, User-Agent.

Every server binds 127.0.0.1 or a Unix socket in a temporary directory. Redirecting servers
are raw TCP servers (they read the request and answer 3xx); the WebSocket servers behind them
are the ``websockets`` server (an independent peer) or a raw server that accepts the upgrade.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trustme

import trio_ws
from trio_ws import (
    ConnectTimeoutError,
    WSConnectionError,
    WSRedirectError,
    WSServerHandshakeError,
    WSTLSError,
)

from .servers import Handler, RawPeer, Request, open_raw_server, open_websockets_server

#: Guard against hangs: far above what any test here needs.
GUARD = 5.0


def redirect(status: int, location: str, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} Moved", f"Location: {location}", "Content-Length: 0", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def redirector(answer: Callable[[Request], bytes | None], seen: list[Request]) -> Handler:
    """A raw server handler: record the request, send ``answer(request)`` (3xx) or, for
    ``None``, accept the upgrade and echo one message."""

    async def handler(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        request = await peer.read_request()
        seen.append(request)
        response = answer(request)
        if response is not None:
            await peer.send(response)
            return
        peer._buffer.clear()
        await peer.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {request.accept_token}\r\n\r\n".encode()
            + b"\x81\x02ok"
        )
        await peer.read_close()
        await peer.send(b"\x88\x02\x03\xe8")

    return handler


def path_of(request: Request) -> str:
    return request.request_line.split()[1]


# ---------------------------------------------------------------------------------------------
# redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_server_is_followed(status: int) -> None:
    seen: list[Request] = []
    async with open_websockets_server() as target:
        location = target.url("/echo")
        async with open_raw_server(redirector(lambda _: redirect(status, location), seen)) as port:
            with trio.fail_after(GUARD):
                async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/start") as ws:
                    await ws.send_str("hello")
                    assert await ws.receive_str() == "hello"
    assert [path_of(r) for r in seen] == ["/start"]


async def test_relative_redirect_on_the_same_server() -> None:
    """A relative Location resolves against the current URL; same origin keeps the
    credentials (the URL's user:pass becomes Authorization on both requests)."""
    seen: list[Request] = []

    def answer(request: Request) -> bytes | None:
        return redirect(302, "../final?x=1") if path_of(request) == "/a/b" else None

    async with open_raw_server(redirector(answer, seen)) as port:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(f"ws://u:p@127.0.0.1:{port}/a/b") as ws:
                assert await ws.receive_str() == "ok"
    assert [path_of(r) for r in seen] == ["/a/b", "/final?x=1"]
    assert [r.header("Authorization") for r in seen] == ["Basic dTpw", "Basic dTpw"]


async def test_credentials_stay_on_their_origin() -> None:
    """On a change of origin, Authorization, Cookie and the URL's credentials are dropped;
    other headers follow."""
    seen: list[Request] = []
    async with open_websockets_server() as target:
        location = target.url("/headers")
        async with open_raw_server(redirector(lambda _: redirect(307, location), seen)) as port:
            with trio.fail_after(GUARD):
                async with trio_ws.open_ws(
                    f"ws://user:pw@127.0.0.1:{port}/",
                    headers={"Cookie": "session=1", "X-Trace": "abc"},
                ) as ws:
                    headers = {k.lower(): v for k, v in json.loads(await ws.receive_str())}
    assert seen[0].header("Authorization") == "Basic dXNlcjpwdw=="
    assert seen[0].header("Cookie") == "session=1"
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert headers["x-trace"] == "abc"


async def test_explicit_auth_is_dropped_on_another_origin() -> None:
    seen: list[Request] = []
    async with open_websockets_server() as target:
        location = target.url("/headers")
        async with open_raw_server(redirector(lambda _: redirect(302, location), seen)) as port:
            with trio.fail_after(GUARD):
                async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/", auth=("a", "b")) as ws:
                    headers = {k.lower() for k, _ in json.loads(await ws.receive_str())}
    assert seen[0].header("Authorization") == "Basic YTpi"
    assert "authorization" not in headers


async def test_max_redirects_zero_reports_the_redirect() -> None:
    seen: list[Request] = []
    async with open_raw_server(redirector(lambda _: redirect(302, "/other"), seen)) as port:
        with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
            await trio_ws.open_ws(f"ws://127.0.0.1:{port}/", max_redirects=0).__aenter__()
    assert not isinstance(info.value, WSRedirectError)
    assert info.value.status == 302
    assert ("Location", "/other") in info.value.headers
    assert len(seen) == 1


async def test_too_many_redirects() -> None:
    seen: list[Request] = []

    def answer(request: Request) -> bytes:
        return redirect(302, f"/{int(path_of(request)[1:]) + 1}")

    async with open_raw_server(redirector(answer, seen)) as port:
        with trio.fail_after(GUARD), pytest.raises(WSRedirectError) as info:
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/0", max_redirects=3):
                pass
    exc = info.value
    assert "more than max_redirects=3 redirects" in str(exc)
    base = f"ws://127.0.0.1:{port}"
    assert exc.chain == [f"{base}/{i}" for i in range(5)]
    assert f"{base}/0 -> {base}/1 -> {base}/2 -> {base}/3 -> {base}/4" in str(exc)
    assert exc.status == 302
    assert len(seen) == 4


async def test_redirect_loop() -> None:
    seen: list[Request] = []

    def answer(request: Request) -> bytes:
        return redirect(301, "/b" if path_of(request) == "/a" else "/a")

    async with open_raw_server(redirector(answer, seen)) as port:
        with trio.fail_after(GUARD), pytest.raises(WSRedirectError, match="redirect loop") as info:
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/a"):
                pass
    assert [c.rsplit("/", 1)[1] for c in info.value.chain] == ["a", "b", "a"]
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://127.0.0.1/x", "unusable location"),
        ("ws://[::1/x", "unusable location"),
        ("/x#fragment", "unusable location"),
    ],
)
async def test_redirect_to_a_location_that_is_no_websocket_url(location: str, message: str) -> None:
    async with open_raw_server(redirector(lambda _: redirect(302, location), [])) as port:
        with trio.fail_after(GUARD), pytest.raises(WSRedirectError, match=message):
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/"):
                pass


async def test_redirect_over_a_given_stream_is_refused() -> None:
    async with open_raw_server(redirector(lambda _: redirect(302, "/b"), [])) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(GUARD), pytest.raises(WSRedirectError, match="over stream="):
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/", stream=stream):
                pass


async def test_connect_timeout_covers_every_hop() -> None:
    """The second server never answers: one connect_timeout for both hops, and both
    connections are closed afterwards (each server reads EOF)."""
    closed = [trio.Event(), trio.Event()]

    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some(65536):
            pass
        closed[1].set()

    def answer(request: Request) -> bytes:
        return redirect(302, location)

    async def redirecting(stream: trio.SocketStream) -> None:
        await redirector(answer, [])(stream)
        while await stream.receive_some(65536):
            pass
        closed[0].set()

    async with open_raw_server(silent) as silent_port:
        location = f"ws://127.0.0.1:{silent_port}/"
        async with open_raw_server(redirecting) as port:
            with trio.fail_after(GUARD), pytest.raises(ConnectTimeoutError) as info:
                async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/", connect_timeout=0.3):
                    pass
            with trio.fail_after(GUARD):
                for event in closed:
                    await event.wait()
    assert f"redirected from ws://127.0.0.1:{port}/" in str(info.value)


# ---------------------------------------------------------------------------------------------
# TLS: redirects to plaintext, mix-ups


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


async def test_redirect_from_wss_to_ws_is_refused_without_connecting(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    plaintext: list[Request] = []
    async with open_raw_server(redirector(lambda _: None, plaintext)) as ws_port:
        location = f"ws://127.0.0.1:{ws_port}/"

        async def tls_redirector(stream: trio.SocketStream) -> None:
            tls = trio.SSLStream(stream, server_ctx, server_side=True)
            await tls.do_handshake()
            data = b""
            while b"\r\n\r\n" not in data:
                data += await tls.receive_some(65536)
            await tls.send_all(redirect(301, location))
            await trio.aclose_forcefully(tls)

        async with open_raw_server(tls_redirector) as port:
            with trio.fail_after(GUARD), pytest.raises(WSRedirectError) as info:
                async with trio_ws.open_ws(f"wss://127.0.0.1:{port}/", ssl=client_ctx):
                    pass
    assert "refusing to follow a redirect from wss:// to ws://" in str(info.value)
    assert info.value.chain == [f"wss://127.0.0.1:{port}/", location]
    assert plaintext == []


async def test_tls_server_behind_a_ws_url_is_named(server_ctx: ssl.SSLContext) -> None:
    async def tls_only(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, server_ctx, server_side=True)
        with pytest.raises(trio.BrokenResourceError):
            await tls.do_handshake()

    async with open_raw_server(tls_only) as port:
        with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/"):
                pass
    assert "use wss://" in str(info.value)


async def test_plain_server_behind_a_wss_url_is_named(client_ctx: ssl.SSLContext) -> None:
    async def plain_http(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    async with open_raw_server(plain_http) as port:
        with trio.fail_after(GUARD), pytest.raises(WSTLSError) as info:
            async with trio_ws.open_ws(f"wss://127.0.0.1:{port}/", ssl=client_ctx):
                pass
    assert "does not speak TLS there: is it a ws:// server?" in str(info.value)


async def test_wss_over_a_plain_given_stream_says_tls_was_expected(
    server_ctx: ssl.SSLContext,
) -> None:
    async def tls_only(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, server_ctx, server_side=True)
        with pytest.raises(trio.BrokenResourceError):
            await tls.do_handshake()

    async with open_raw_server(tls_only) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
            async with trio_ws.open_ws(f"wss://127.0.0.1:{port}/", stream=stream):
                pass
    assert "stream= is not a trio.SSLStream: TLS was expected" in str(info.value)


async def test_missing_client_certificate_says_certificate_required(
    ca: trustme.CA, client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    """TLS 1.3: the server refuses the missing certificate after the client's side of the
    handshake is done; its alert arrives when the client reads the answer to its request.
    (OpenSSL's own server, driven through memory BIOs so that its alert is sent: Python's
    servers close without flushing it.)"""
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ca.configure_trust(server_ctx)

    errors: list[ssl.SSLError] = []

    async def needs_cert(stream: trio.SocketStream) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = server_ctx.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                await stream.send_all(outgoing.read())
                data = await stream.receive_some(65536)
                if not data:
                    return
                incoming.write(data)
                continue
            except ssl.SSLError as exc:
                errors.append(exc)
                await stream.send_all(outgoing.read())  # the certificate_required alert
            return

    async with open_raw_server(needs_cert) as port:
        with trio.fail_after(GUARD), pytest.raises(WSTLSError) as info:
            async with trio_ws.open_ws(f"wss://127.0.0.1:{port}/", ssl=client_ctx):
                pass
    assert "the server requires a client certificate (certificate required)" in str(info.value)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(errors)


async def test_a_refused_host_name_carries_no_unrelated_cause() -> None:
    """DNS or connect failures of a host name are not chained to ipaddress's ValueError."""
    with trio.fail_after(GUARD), pytest.raises(WSConnectionError) as info:
        async with trio_ws.open_ws("ws://localhost:1/"):
            pass
    err: BaseException | None = info.value
    while err is not None:
        assert "does not appear to be an IPv4 or IPv6 address" not in str(err)
        err = err.__cause__ or err.__context__


# ---------------------------------------------------------------------------------------------
# Unix sockets


async def test_unix_socket_option_and_url(tmp_path: Path) -> None:
    """The websockets server on a Unix socket: by option (the URL gives Host) and by URL."""
    path = tmp_path / "ws.sock"
    async with open_websockets_server(unix_path=path) as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws("ws://app.internal/headers", unix_socket=path) as ws:
                headers = dict(json.loads(await ws.receive_str()))
                assert ws.get_extra_info("peername") in (str(path), "")
            encoded = str(path).replace("/", "%2F")
            async with trio_ws.open_ws(f"ws+unix://{encoded}/echo") as ws:
                await ws.send_str("over unix")
                assert await ws.receive_str() == "over unix"
        assert (await server.closed("/echo"))["code"] == 1000
    assert headers["Host"] == "app.internal"


async def test_wss_over_a_unix_socket(tmp_path: Path, ca: trustme.CA) -> None:
    path = tmp_path / "wss.sock"
    cert = tmp_path / "cert.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(cert))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with open_websockets_server(unix_path=path, certfile=cert):
        with trio.fail_after(GUARD):
            encoded = str(path).replace("/", "%2F")
            async with trio_ws.open_ws(f"wss+unix://{encoded}/echo", ssl=ctx) as ws:
                await ws.send_str("tls over unix")
                assert await ws.receive_str() == "tls over unix"
                assert ws.get_extra_info("ssl_object") is not None


async def test_missing_unix_socket_is_a_connection_error(tmp_path: Path) -> None:
    with trio.fail_after(GUARD), pytest.raises(WSConnectionError, match="Unix socket") as info:
        async with trio_ws.open_ws("ws://x/", unix_socket=tmp_path / "nothing.sock"):
            pass
    assert isinstance(info.value.__cause__, FileNotFoundError)


# ---------------------------------------------------------------------------------------------
# User-Agent


async def test_default_user_agent_is_sent_and_can_be_removed() -> None:
    async with open_websockets_server() as server:
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(server.url("/headers")) as ws:
                sent = dict(json.loads(await ws.receive_str()))
            async with trio_ws.open_ws(server.url("/headers"), user_agent=None) as ws:
                removed = dict(json.loads(await ws.receive_str()))
    assert sent["User-Agent"].startswith(f"trio_ws/{trio_ws.__version__} Python/3.")
    assert "User-Agent" not in removed
