"""wss:// against the websockets server with a certificate from a throwaway CA (trustme).

The certificate names only ``localhost``; the server listens on 127.0.0.1, so connecting to the
IP address without ``server_hostname`` is a host name mismatch.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

import trio_ws
from trio_ws import ConnectTimeoutError, WSConnectionError, WSError, WSTLSError

from .servers import RawPeer, WebsocketsServer, open_raw_server, open_websockets_server

#: Guard against hangs: far above what any test here needs.
GUARD = 5.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key and certificate chain for ``localhost``, in one PEM file."""
    path = tmp_path_factory.mktemp("tls") / "localhost.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.fixture
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts the test CA."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
async def tls_server(cert_file: Path) -> AsyncIterator[WebsocketsServer]:
    async with open_websockets_server(certfile=cert_file) as srv:
        yield srv


async def open_and_leave(url: str, **options: Any) -> None:
    """Connect with ``open_ws`` and leave the block at once."""
    async with trio_ws.open_ws(url, **options):
        pass


async def test_wss_echo_with_trusted_context(
    tls_server: WebsocketsServer, client_ctx: ssl.SSLContext
) -> None:
    """wss:// with a context trusting the CA: verified, messages echo, close completes."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(
            tls_server.url(), ssl=client_ctx, server_hostname="localhost"
        ) as ws:
            await ws.send_str("secret")
            assert await ws.receive_str() == "secret"
            await ws.send_bytes(b"\x00" * 100_000)
            assert await ws.receive_bytes() == b"\x00" * 100_000
        assert (await tls_server.closed("/echo"))["code"] == 1000
    assert ws.close_code == 1000


async def test_wss_to_localhost_by_name(
    tls_server: WebsocketsServer, client_ctx: ssl.SSLContext
) -> None:
    """wss://localhost verifies against the URL's host name (no server_hostname needed)."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(tls_server.url(host="localhost"), ssl=client_ctx) as ws:
            await ws.send_str("by name")
            assert await ws.receive_str() == "by name"


async def test_tls_extra_info(tls_server: WebsocketsServer, client_ctx: ssl.SSLContext) -> None:
    """peercert is the verified certificate, cipher the negotiated suite, ssl_object set."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(
            tls_server.url(), ssl=client_ctx, server_hostname="localhost"
        ) as ws:
            cert = ws.get_extra_info("peercert")
            assert ("DNS", "localhost") in cert["subjectAltName"]
            name, version, bits = ws.get_extra_info("cipher")
            assert name
            assert version.startswith("TLS")
            assert bits >= 128
            assert ws.get_extra_info("ssl_object") is not None
            assert ws.get_extra_info("ssl_object").version() == version
            assert ws.get_extra_info("peername") == ("127.0.0.1", tls_server.port)


async def test_default_ssl_rejects_unknown_ca_fast(tls_server: WebsocketsServer) -> None:
    """ssl=True against an unknown CA fails at once: WSTLSError from SSLCertVerificationError."""
    with trio.fail_after(GUARD):
        start = trio.current_time()
        with pytest.raises(WSTLSError) as info:
            await open_and_leave(tls_server.url(), server_hostname="localhost")
        assert trio.current_time() - start < 1.0
    assert isinstance(info.value, WSConnectionError)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


@pytest.mark.parametrize(
    "server_hostname",
    [
        pytest.param("wrong.example", id="wrong-server-hostname"),
        pytest.param(None, id="ip-not-in-cert"),
    ],
)
async def test_hostname_mismatch_is_a_tls_error(
    tls_server: WebsocketsServer, client_ctx: ssl.SSLContext, server_hostname: str | None
) -> None:
    """A trusted certificate for another name: WSTLSError caused by a verification error."""
    with trio.fail_after(GUARD), pytest.raises(WSTLSError) as info:
        await open_and_leave(tls_server.url(), ssl=client_ctx, server_hostname=server_hostname)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


async def test_ssl_false_skips_verification(tls_server: WebsocketsServer) -> None:
    """ssl=False connects to the untrusted certificate, under a name it does not carry."""
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(tls_server.url(), ssl=False) as ws:
            await ws.send_str("unverified")
            assert await ws.receive_str() == "unverified"
            assert ws.get_extra_info("cipher") is not None
            # Without verification the stdlib does not decode the certificate.
            assert ws.get_extra_info("peercert") == {}


async def test_wss_to_plain_server_is_a_tls_error() -> None:
    """wss:// to a server that does not speak TLS fails fast with WSTLSError."""
    async with open_websockets_server() as srv:
        with trio.fail_after(GUARD), pytest.raises(WSTLSError):
            await open_and_leave(srv.url().replace("ws://", "wss://", 1))


async def test_ws_to_tls_server_fails_cleanly(tls_server: WebsocketsServer) -> None:
    """ws:// to a TLS-only server raises a WSError instead of hanging."""
    with trio.fail_after(GUARD), pytest.raises(WSError):
        await open_and_leave(tls_server.url().replace("wss://", "ws://", 1))


async def test_tls_handshake_counts_against_connect_timeout(client_ctx: ssl.SSLContext) -> None:
    """A server that never answers the ClientHello: ConnectTimeoutError, socket closed."""
    hung_up = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        await RawPeer(stream).wait_eof()
        hung_up.set()

    async with open_raw_server(handler) as port:
        with trio.fail_after(GUARD):
            start = trio.current_time()
            with pytest.raises(ConnectTimeoutError):
                await open_and_leave(
                    f"wss://127.0.0.1:{port}/", ssl=client_ctx, connect_timeout=0.5
                )
            assert 0.5 <= trio.current_time() - start < 1.5
            await hung_up.wait()
