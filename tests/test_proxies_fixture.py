"""The pproxy helpers of ``tests/proxies.py`` against a TCP echo server, driven by hand.

Each proxy kind is spoken to with bytes written here (HTTP ``CONNECT``) or built by the
sans-I/O ``socksio`` package (SOCKS4, SOCKS5), never through trio_ws, so these tests check the
test infrastructure alone. The echo server answers in upper case, so an answer proves the
bytes went to it and back, not through pproxy's own ``echo`` target. The tests also pin the
pproxy behaviours the module docstring of ``tests/proxies.py`` lists, so a pproxy release that
changes them shows up here first.
"""

from __future__ import annotations

import importlib.util
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trustme
from socksio import (
    SOCKS4ARequest,
    SOCKS4Command,
    SOCKS4Connection,
    SOCKS4ReplyCode,
    SOCKS4Request,
    SOCKS5AuthMethod,
    SOCKS5AuthMethodsRequest,
    SOCKS5AuthReply,
    SOCKS5Command,
    SOCKS5CommandRequest,
    SOCKS5Connection,
    SOCKS5Reply,
    SOCKS5ReplyCode,
    SOCKS5UsernamePasswordRequest,
)
from socksio.socks5 import SOCKS5UsernamePasswordReply

from .proxies import (
    Proxy,
    Scheme,
    basic_auth,
    http_proxy,
    https_proxy,
    open_pproxy,
    socks4_proxy,
    socks5_proxy,
)
from .servers import refused_port

#: Guard against hangs: far above what any test here needs.
GUARD = 5.0

Echo = tuple[str, int]


async def _echo_upper(stream: trio.SocketStream) -> None:
    try:
        async for data in stream:
            await stream.send_all(data.upper())
    except trio.BrokenResourceError:
        pass


@pytest.fixture
async def echo(nursery: trio.Nursery) -> AsyncIterator[Echo]:
    """A TCP server on 127.0.0.1 that sends back what it receives, in upper case."""
    listeners = await nursery.start(partial(trio.serve_tcp, _echo_upper, 0, host="127.0.0.1"))
    yield "127.0.0.1", listeners[0].socket.getsockname()[1]
    nursery.cancel_scope.cancel()


class Reader:
    """A stream with a buffer, to read a protocol's replies exactly."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:  # a reset: refused as well as a close
            data = b""
        self.buffer += data
        return bool(data)

    async def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not await self._fill():
                raise EOFError(f"EOF after {bytes(self.buffer)!r}, wanted {n} bytes")
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def until(self, delimiter: bytes) -> bytes:
        while (end := self.buffer.find(delimiter)) < 0:
            if not await self._fill():
                raise EOFError(f"EOF after {bytes(self.buffer)!r}, wanted {delimiter!r}")
        data = bytes(self.buffer[: end + len(delimiter)])
        del self.buffer[: end + len(delimiter)]
        return data

    async def at_eof(self) -> bool:
        """Whether the peer closes without sending anything more."""
        return not self.buffer and not await self._fill()


@asynccontextmanager
async def proxy_connection(proxy: Proxy) -> AsyncIterator[Reader]:
    """A connection to ``proxy``, with TLS for ``https`` (verifying its certificate)."""
    async with await trio.open_tcp_stream(proxy.host, proxy.port) as tcp:
        if proxy.scheme != "https":
            yield Reader(tcp)
            return
        tls = trio.SSLStream(tcp, proxy.ssl_context(), server_hostname="localhost")
        await tls.do_handshake()
        yield Reader(tls)  # closed with the TCP stream under it, without close_notify


async def assert_tunnel(reader: Reader, message: bytes = b"ping through the proxy") -> None:
    """Bytes go to the echo server and come back from it."""
    await reader.stream.send_all(message)
    assert await reader.exactly(len(message)) == message.upper()


async def http_connect(
    reader: Reader,
    target: Echo,
    authorization: str | None = None,
    header: str = "Proxy-Authorization",
) -> bytes:
    """Send ``CONNECT`` to an HTTP(S) proxy by hand; the response head."""
    head = f"CONNECT {target[0]}:{target[1]} HTTP/1.1\r\nHost: {target[0]}:{target[1]}\r\n"
    if authorization is not None:
        head += f"{header}: {authorization}\r\n"
    await reader.stream.send_all((head + "\r\n").encode("ascii"))
    return await reader.until(b"\r\n\r\n")


async def socks5_handshake(
    reader: Reader,
    target: tuple[str, int],
    *,
    username: str | None = None,
    password: str = "",
) -> None:
    """SOCKS5 up to a successful command reply (``EOFError`` where the proxy closes)."""
    conn = SOCKS5Connection()
    method = SOCKS5AuthMethod.NO_AUTH_REQUIRED
    if username is not None:
        method = SOCKS5AuthMethod.USERNAME_PASSWORD
    conn.send(SOCKS5AuthMethodsRequest([method]))
    await reader.stream.send_all(conn.data_to_send())
    auth = conn.receive_data(await reader.exactly(2))
    assert isinstance(auth, SOCKS5AuthReply)
    assert auth.method == method
    if username is not None:
        conn.send(SOCKS5UsernamePasswordRequest(username.encode(), password.encode()))
        await reader.stream.send_all(conn.data_to_send())
        status = conn.receive_data(await reader.exactly(2))
        assert isinstance(status, SOCKS5UsernamePasswordReply)
        assert status.success
    conn.send(SOCKS5CommandRequest.from_address(SOCKS5Command.CONNECT, target))
    await reader.stream.send_all(conn.data_to_send())
    head = await reader.exactly(5)  # VER REP RSV ATYP and the first byte of the address
    rest = {1: 3 + 2, 3: head[4] + 2, 4: 15 + 2}[head[3]]
    reply = conn.receive_data(head + await reader.exactly(rest))
    assert isinstance(reply, SOCKS5Reply)
    assert reply.reply_code == SOCKS5ReplyCode.SUCCEEDED


async def socks4_handshake(
    reader: Reader, request: SOCKS4Request | SOCKS4ARequest, user_id: str = ""
) -> None:
    """SOCKS4(a) up to a granted reply (``EOFError`` where the proxy closes)."""
    if user_id:
        conn = SOCKS4Connection(user_id=user_id.encode())
        conn.send(request)
        data = conn.data_to_send()
    else:
        # socksio cannot send the empty user id (it takes b"" for "none given"), which is what
        # clients send without credentials.
        assert isinstance(request, SOCKS4Request)
        data = b"\x04" + request.command + request.port.to_bytes(2, "big") + request.addr + b"\0"
    await reader.stream.send_all(data)
    reply = SOCKS4Connection(user_id=b"-").receive_data(await reader.exactly(8))
    assert reply.reply_code == SOCKS4ReplyCode.REQUEST_GRANTED


# --------------------------------------------------------------------------------------------
# HTTP CONNECT


async def test_http_connect(echo: Echo) -> None:
    with trio.fail_after(GUARD):
        async with http_proxy() as proxy, proxy_connection(proxy) as reader:
            assert proxy.url == f"http://127.0.0.1:{proxy.port}"
            assert proxy.authorization is None
            head = await http_connect(reader, echo)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"\r\nConnection: close\r\n" in head  # pproxy's quirk: ignore it
            await assert_tunnel(reader)
            await proxy.wait_target(*echo)
            assert proxy.targets == [echo]


async def test_http_connect_with_auth(echo: Echo) -> None:
    with trio.fail_after(GUARD):
        async with http_proxy(username="user", password="p@ss:word") as proxy:
            assert proxy.url == f"http://user:p%40ss%3Aword@127.0.0.1:{proxy.port}"
            assert proxy.url_for(password=None) == f"http://user@127.0.0.1:{proxy.port}"
            assert proxy.authorization == basic_auth("user", "p@ss:word")
            async with proxy_connection(proxy) as reader:
                head = await http_connect(reader, echo, proxy.authorization)
                assert head.startswith(b"HTTP/1.1 200 ")
                await assert_tunnel(reader)
                await proxy.wait_target(*echo)
            # Every connection must authenticate: no credentials, or a wrong password, is a
            # 407 and a close, also after a good login from the same address. pproxy only
            # knows the header by its usual spelling.
            for authorization, header in [
                (None, ""),
                (basic_auth("user", "wrong"), "Proxy-Authorization"),
                (proxy.authorization, "proxy-authorization"),
            ]:
                async with proxy_connection(proxy) as reader:
                    head = await http_connect(reader, echo, authorization, header)
                    assert head.startswith(b"HTTP/1.1 407 ")
                    assert b"\r\nProxy-Authenticate: Basic " in head
                    assert await reader.at_eof()
            await proxy.wait_log(r"^Unauthorized HTTP from 127\.0\.0\.1$")
            assert proxy.targets == [echo]


async def test_http_connect_to_a_refused_target_closes() -> None:
    """No 502: pproxy closes the connection without an answer."""
    target = ("127.0.0.1", refused_port())
    with trio.fail_after(GUARD):
        async with http_proxy() as proxy, proxy_connection(proxy) as reader:
            with pytest.raises(EOFError, match=r"EOF after b''"):
                await http_connect(reader, target)
            await proxy.wait_target(*target)
            await proxy.wait_log(rf"Connect call failed \('127\.0\.0\.1', {target[1]}\)")


async def test_https_connect(echo: Echo) -> None:
    ca = trustme.CA()
    with trio.fail_after(GUARD):
        async with https_proxy(ca=ca, username="user", password="pass") as proxy:
            assert proxy.url == f"https://user:pass@127.0.0.1:{proxy.port}"
            assert proxy.ca is ca
            async with proxy_connection(proxy) as reader:
                head = await http_connect(reader, echo, proxy.authorization)
                assert head.startswith(b"HTTP/1.1 200 ")
                await assert_tunnel(reader)
                await proxy.wait_target(*echo)


async def test_https_proxy_certificate_is_verified() -> None:
    """A client that does not trust the CA fails the handshake: the proxy really is TLS."""
    with trio.fail_after(GUARD):
        async with https_proxy() as proxy:
            assert proxy.ca is not None
            async with await trio.open_tcp_stream(proxy.host, proxy.port) as tcp:
                tls = trio.SSLStream(tcp, ssl.create_default_context(), server_hostname="localhost")
                with pytest.raises(trio.BrokenResourceError) as caught:
                    await tls.do_handshake()
                assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


async def test_ssl_context_needs_tls() -> None:
    async with http_proxy() as proxy:
        assert proxy.ca is None
        with pytest.raises(ValueError, match="no TLS"):
            proxy.ssl_context()


# --------------------------------------------------------------------------------------------
# SOCKS5


async def test_socks5(echo: Echo) -> None:
    with trio.fail_after(GUARD):
        async with socks5_proxy() as proxy, proxy_connection(proxy) as reader:
            assert proxy.url == f"socks5://127.0.0.1:{proxy.port}"
            assert proxy.url_for("socks5h") == f"socks5h://127.0.0.1:{proxy.port}"
            await socks5_handshake(reader, echo)
            await assert_tunnel(reader)
            await proxy.wait_target(*echo)


async def test_socks5_domain_name_is_passed_on(echo: Echo) -> None:
    """``socks5h``: the client sends the name; the log shows the name, not an address."""
    with trio.fail_after(GUARD):
        async with socks5_proxy() as proxy, proxy_connection(proxy) as reader:
            await socks5_handshake(reader, ("localhost", echo[1]))
            await assert_tunnel(reader)
            await proxy.wait_target("localhost", echo[1])
            assert proxy.targets == [("localhost", echo[1])]


async def test_socks5_with_auth(echo: Echo) -> None:
    with trio.fail_after(GUARD):
        async with socks5_proxy(username="user", password="pass") as proxy:
            assert proxy.url == f"socks5://user:pass@127.0.0.1:{proxy.port}"
            async with proxy_connection(proxy) as reader:
                await socks5_handshake(reader, echo, username="user", password="pass")
                await assert_tunnel(reader)
                await proxy.wait_target(*echo)
            # A wrong password, or offering no auth method, is refused by closing.
            async with proxy_connection(proxy) as reader:
                with pytest.raises(EOFError, match=r"EOF after b'', wanted 2 bytes"):
                    await socks5_handshake(reader, echo, username="user", password="wrong")
            await proxy.wait_log(r"^Unauthorized SOCKS b'user':b'wrong' from 127\.0\.0\.1$")
            async with proxy_connection(proxy) as reader:
                with pytest.raises(EOFError, match=r"EOF after b'', wanted 2 bytes"):
                    await socks5_handshake(reader, echo)
            await proxy.wait_log(r"^Unauthorized SOCKS from 127\.0\.0\.1$")
            assert proxy.targets == [echo]


async def test_socks_succeeds_before_connecting() -> None:
    """The SOCKS5 and SOCKS4 replies say "succeeded" / "granted" before pproxy tries the
    target; a refused target closes the tunnel afterwards."""
    target = ("127.0.0.1", refused_port())
    with trio.fail_after(GUARD):
        async with socks5_proxy() as proxy, proxy_connection(proxy) as reader:
            await socks5_handshake(reader, target)
            assert await reader.at_eof()
            await proxy.wait_target(*target)
        request = SOCKS4Request.from_address(SOCKS4Command.CONNECT, target)
        async with socks4_proxy() as proxy, proxy_connection(proxy) as reader:
            await socks4_handshake(reader, request)
            assert await reader.at_eof()
            await proxy.wait_target(*target)


# --------------------------------------------------------------------------------------------
# SOCKS4


async def test_socks4(echo: Echo) -> None:
    with trio.fail_after(GUARD):
        async with socks4_proxy() as proxy, proxy_connection(proxy) as reader:
            assert proxy.url == f"socks4://127.0.0.1:{proxy.port}"
            await socks4_handshake(reader, SOCKS4Request.from_address(SOCKS4Command.CONNECT, echo))
            await assert_tunnel(reader)
            await proxy.wait_target(*echo)


async def test_socks4_with_user_id(echo: Echo) -> None:
    request = SOCKS4Request.from_address(SOCKS4Command.CONNECT, echo)
    with trio.fail_after(GUARD):
        async with socks4_proxy(user_id="alice") as proxy:
            assert proxy.url == f"socks4://alice@127.0.0.1:{proxy.port}"
            async with proxy_connection(proxy) as reader:
                await socks4_handshake(reader, request, user_id="alice")
                await assert_tunnel(reader)
                await proxy.wait_target(*echo)
            for user_id in ("bob", ""):
                async with proxy_connection(proxy) as reader:
                    with pytest.raises(EOFError, match=r"EOF after b'', wanted 8 bytes"):
                        await socks4_handshake(reader, request, user_id=user_id)
            await proxy.wait_log(r"^Unauthorized SOCKS b'bob' from 127\.0\.0\.1$")
            await proxy.wait_log(r"^Unauthorized SOCKS b'' from 127\.0\.0\.1$")
            assert proxy.targets == [echo]


async def test_socks4a_is_not_supported(echo: Echo) -> None:
    """pproxy grants a SOCKS4a request but ignores its name: it connects to the placeholder
    address (socksio sends 0.0.0.255)."""
    request = SOCKS4ARequest.from_address(SOCKS4Command.CONNECT, ("localhost", echo[1]))
    with trio.fail_after(GUARD):
        async with socks4_proxy() as proxy, proxy_connection(proxy) as reader:
            await socks4_handshake(reader, request, user_id="anyone")
            await proxy.wait_target("0.0.0.255", echo[1])
            assert ("localhost", echo[1]) not in proxy.targets


# --------------------------------------------------------------------------------------------
# the helpers themselves


async def _raise_in_body() -> None:
    async with http_proxy() as proxy:
        assert proxy.process.returncode is None
        raise KeyError(proxy)


async def test_process_is_stopped_on_exit_and_errors_pass_through() -> None:
    with pytest.raises(KeyError) as caught:  # itself, not in an ExceptionGroup
        await _raise_in_body()
    proxy = caught.value.args[0]
    assert isinstance(proxy, Proxy)
    assert proxy.process.returncode is not None


async def test_start_failure_shows_pproxy_output() -> None:
    with trio.fail_after(GUARD), pytest.raises(RuntimeError, match=r"exited.*no-such-option"):
        async with open_pproxy("http", extra_args=("--no-such-option",)):
            pass  # pragma: no cover


async def test_skips_without_pproxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="pproxy is not installed"):
        async with http_proxy():
            pass  # pragma: no cover


async def test_wait_target_times_out_with_the_targets_seen() -> None:
    async with socks5_proxy() as proxy:
        with pytest.raises(AssertionError, match=r"did not connect to 127\.0\.0\.1:1 .*\[\]"):
            await proxy.wait_target("127.0.0.1", 1, timeout=0.1)


@pytest.mark.parametrize(
    ("scheme", "username", "password"),
    [
        ("http", "user", None),
        ("socks5", None, "pass"),
        ("http", "us:er", "pass"),
        ("socks5", "user", "pa__ss"),
        ("socks4", "alice", "pass"),
        ("socks4", "al\nice", None),
    ],
)
async def test_credentials_pproxy_cannot_take(
    scheme: Scheme, username: str | None, password: str | None
) -> None:
    with pytest.raises(ValueError, match=r"username|user id|credentials"):
        async with open_pproxy(scheme, username=username, password=password):
            pass  # pragma: no cover
