"""Opening the byte stream under a WebSocket: TCP, then TLS for ``wss://``.

Errors are translated here, once: :class:`OSError` from DNS or ``connect()`` becomes
:class:`WSConnectionError`, a failed TLS handshake :class:`WSTLSError`, each with the original
chained as ``__cause__``. A certificate that does not verify fails the handshake at once.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import ssl as _ssl
import weakref
from collections.abc import Sequence
from typing import Any, Final

import attrs
import trio

from ._errors import InvalidArgument, WSConnectionError, WSProxyError, WSTLSError
from ._h2stream import H2Stream
from ._proxy import HttpTunnel, Proxy, SocksTunnel
from ._url import Target

__all__ = [
    "Progress",
    "close_now",
    "extra_info",
    "open_stream",
    "receive_into",
    "socket_of",
    "ssl_context",
    "start_tls",
    "tls_reason",
    "write_now",
]

#: Bytes asked of the proxy per read during its handshake.
_PROXY_READ: Final = 4096
#: Writing to a socket's file descriptor needs ``os.write`` on sockets (not Windows).
_CAN_WRITE_NOW: Final = os.name == "posix"

#: ``read(2)`` reads a socket's descriptor everywhere but on Windows.
_READ_FD: Final = os.name == "posix"


def ssl_context(ssl: bool | _ssl.SSLContext) -> _ssl.SSLContext:
    """The TLS context for ``ssl=``: ``True`` verifies (the default), ``False`` does not."""
    if isinstance(ssl, _ssl.SSLContext):
        return ssl
    if ssl is True:
        return _ssl.create_default_context()
    if ssl is False:
        ctx = _ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
        return ctx
    raise InvalidArgument(f"ssl must be True, False or an ssl.SSLContext, not {ssl!r}")


async def open_stream(
    target: Target,
    *,
    ssl: bool | _ssl.SSLContext = True,
    server_hostname: str | None = None,
    proxy: Proxy | None = None,
    user_agent: str | None = None,
    progress: Progress | None = None,
    alpn: Sequence[str] | None = None,
) -> trio.abc.Stream:
    """Connect to ``target``: TCP (or its Unix socket, or a tunnel through ``proxy``), plus
    TLS if ``target.secure``, offering the ``alpn`` protocols (``("h2", "http/1.1")`` when
    HTTP/2 is asked for).

    Cancellation closes whatever was opened and propagates.

    Raises:
        WSConnectionError: DNS failure, refused or unreachable host, no such socket.
        WSProxyError: the proxy could not be reached, refused, or broke the protocol.
        WSTLSError: the TLS handshake failed (certificate, hostname, protocol).
    """
    ctx = ssl_context(ssl) if target.secure else None
    if proxy is not None and target.unix_path is None:
        if progress is not None:
            progress.proxy = proxy
        raw: trio.abc.Stream = await _tunnel(target, proxy, ssl, user_agent)
        if progress is not None:
            progress.proxy = None
        where = f"{target.host}:{target.port} (through the proxy {proxy.url})"
    elif target.unix_path is not None:
        try:
            raw = await trio.open_unix_socket(target.unix_path)
        except OSError as exc:
            raise WSConnectionError(
                f"cannot connect to the Unix socket {target.unix_path!r}: {exc}"
            ) from exc
        where = f"the Unix socket {target.unix_path!r}"
    else:
        try:
            raw = await _open_tcp(target.host, target.port)
        except OSError as exc:
            raise WSConnectionError(
                f"cannot connect to {target.host}:{target.port}: {exc}"
            ) from exc
        where = f"{target.host}:{target.port}"
    if ctx is None:
        return raw
    return await start_tls(raw, ctx, server_hostname or target.host, where, alpn=alpn)


@attrs.define
class Progress:
    """How far :func:`open_stream` got, for the message of a timeout."""

    #: The proxy being connected to or talked to, if that is where it is.
    proxy: Proxy | None = None


async def _tunnel(
    target: Target, proxy: Proxy, ssl: bool | _ssl.SSLContext, user_agent: str | None
) -> trio.abc.Stream:
    """A stream to ``target`` through ``proxy``: TCP to the proxy, TLS to it for https://,
    then the CONNECT or SOCKS exchange."""
    try:
        tcp = await _open_tcp(proxy.host, proxy.port)
    except OSError as exc:
        raise WSProxyError(
            f"cannot connect to the proxy {proxy.url}: {exc}", proxy=proxy.url
        ) from exc
    stream: trio.abc.Stream = tcp
    try:
        if proxy.scheme == "https":
            # TLS to the proxy uses the same ssl= settings as TLS to the server.
            try:
                stream = await start_tls(
                    tcp, ssl_context(ssl), proxy.host, f"the proxy {proxy.url}"
                )
            except WSTLSError as exc:
                raise WSProxyError(str(exc), proxy=proxy.url) from exc.__cause__
        if proxy.scheme in ("http", "https"):
            http = HttpTunnel(proxy, target.host, target.port, user_agent=user_agent)
            await stream.send_all(http.request_bytes())
            while not http.done:
                http.receive_data(await stream.receive_some(_PROXY_READ))
            early = http.result()
        else:
            host = target.host if proxy.remote_dns else await _resolve(target, proxy)
            socks = SocksTunnel(proxy, host, target.port)
            while True:
                out = socks.data_to_send()
                if out:
                    await stream.send_all(out)
                if socks.done:
                    break
                socks.receive_data(await stream.receive_some(_PROXY_READ))
            early = socks.result()
        if early:
            # The server speaks second (our upgrade request or TLS ClientHello goes first).
            raise WSProxyError(  # noqa: TRY301 - the except clauses close the stream
                f"the proxy {proxy.url} sent data before the tunnel was used: {early[:40]!r}",
                proxy=proxy.url,
            )
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        await trio.aclose_forcefully(stream)
        if isinstance(exc, WSConnectionError):
            raise
        raise WSProxyError(
            f"the connection to the proxy {proxy.url} broke: {tls_reason(exc)}", proxy=proxy.url
        ) from exc
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _resolve(target: Target, proxy: Proxy) -> str:
    """The address a ``socks4://`` or ``socks5://`` proxy is given for ``target`` (those
    proxies take addresses, not names): the first of the system resolver's answers (IPv4
    only for SOCKS4)."""
    family = trio.socket.AF_INET if proxy.scheme == "socks4" else trio.socket.AF_UNSPEC
    try:
        infos = await trio.socket.getaddrinfo(
            target.host, target.port, family=family, type=trio.socket.SOCK_STREAM
        )
    except OSError as exc:
        raise WSConnectionError(
            f"cannot resolve {target.host} (for the proxy {proxy.url}): {exc}"
        ) from exc
    return str(infos[0][4][0])


#: The contexts whose ALPN protocols trio_ws set (see start_tls).
_ALPN_SET: Final[weakref.WeakSet[_ssl.SSLContext]] = weakref.WeakSet()


async def start_tls(
    stream: trio.abc.Stream,
    ctx: _ssl.SSLContext,
    server_hostname: str,
    where: str,
    *,
    alpn: Sequence[str] | None = None,
) -> trio.SSLStream[trio.abc.Stream]:
    """TLS over ``stream`` (closed if this fails), handshake done, offering ``alpn``.

    ALPN is a property of the context, which may be the caller's ``ssl=`` context: it is set
    just before the connection is made from it (OpenSSL copies it into the connection then, so
    concurrent connections do not see each other's), and a context whose ALPN trio_ws once set
    offers only ``http/1.1`` to connections that ask for nothing (a WebSocket over HTTP/1.1 or
    a proxy's CONNECT), never a stale ``h2``.

    Raises:
        WSTLSError: the handshake failed; the message says why in words where OpenSSL's
            reason is cryptic (a server that does not speak TLS, a missing certificate).
    """
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
        _ALPN_SET.add(ctx)
    elif ctx in _ALPN_SET:
        ctx.set_alpn_protocols(["http/1.1"])
    # https_compatible: the WebSocket close handshake, not TLS close_notify, ends a session.
    tls = trio.SSLStream(stream, ctx, server_hostname=server_hostname, https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(stream)
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise WSTLSError(f"TLS handshake with {where} failed: {tls_reason(cause)}") from cause
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return tls


#: OpenSSL reasons that mean the other end does not speak TLS (it answered in plain text or
#: hung up at our ClientHello).
_NOT_TLS: Final = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)


def tls_reason(exc: BaseException) -> str:
    """``exc`` (or the TLS error in its causes) in words."""
    err: BaseException | None = exc
    while err is not None and not isinstance(err, _ssl.SSLError):
        err = err.__cause__
    if err is None:
        return str(exc) or type(exc).__name__
    reason = getattr(err, "reason", None) or ""
    if reason in _NOT_TLS:
        return f"{err} (the server does not speak TLS there: is it a ws:// server?)"
    if isinstance(err, _ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return f"{err} (the server closed the connection: does it speak TLS there?)"
    if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return "the server requires a client certificate (certificate required)"
    return str(err)


@functools.lru_cache(maxsize=256)
def _ip_version(host: str) -> int:
    """4 or 6 for an IP address, 0 for a name (kept: connections go to few hosts, and
    parsing the address was 1.3 % of a connection's CPU in W4)."""
    try:
        return ipaddress.ip_address(host.partition("%")[0]).version
    except ValueError:
        return 0


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """TCP to ``host``: an IP address is connected to directly; a name goes through
    ``trio.open_tcp_stream`` (DNS, then Happy Eyeballs over the addresses it returns)."""
    version = _ip_version(host)
    if not version:
        return await trio.open_tcp_stream(host, port)
    family = trio.socket.AF_INET6 if version == 6 else trio.socket.AF_INET
    # The same steps as open_tcp_stream for one address, without its nursery and DNS call.
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


#: Linux (and macOS) can bound the bytes a TCP socket holds that it has not sent yet.
_TCP_NOTSENT_LOWAT: Final[int | None] = getattr(trio.socket, "TCP_NOTSENT_LOWAT", None)


def limit_unsent(stream: trio.abc.Stream, size: int) -> bool:
    """Let the kernel hold at most about ``size`` bytes of ours not yet sent on the TCP
    socket under ``stream`` (TLS included), so a pong written after a big message waits
    behind that much only: the writer keeps the rest and puts the pong first
    (``TCP_NOTSENT_LOWAT``). Returns ``False`` where the system or the stream has no such
    bound (Unix sockets, other streams)."""
    base = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if _TCP_NOTSENT_LOWAT is None or not isinstance(base, trio.SocketStream):
        return False
    try:
        # A Unix socket refuses the option (EOPNOTSUPP): cheaper than asking its family,
        # which costs an enum conversion on every connection.
        base.socket.setsockopt(trio.socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, size)
    except OSError:
        return False
    return True


def write_now(stream: trio.abc.Stream, data: bytes) -> int:
    """Write to a plain TCP stream what its socket takes at once, without waiting or a trip
    through the scheduler (the opening handshake's request: one pass less per connection).

    Returns the number of bytes written: 0 for streams that are not a ``trio.SocketStream``
    (TLS, ``stream=``) or when the socket's buffer is full.

    Raises:
        OSError: the socket failed.
    """
    if not (_CAN_WRITE_NOW and isinstance(stream, trio.SocketStream)):
        return 0
    try:
        return os.write(stream.socket.fileno(), data)
    except (BlockingIOError, InterruptedError):
        return 0


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket of a plain TCP stream; ``None`` for TLS and ``stream=`` streams."""
    return stream.socket if isinstance(stream, trio.SocketStream) else None


async def receive_into(sock: trio.socket.SocketType, view: memoryview) -> int:
    """Read from ``sock`` into ``view`` (the sink of a big frame, no read buffer): the number
    of bytes read, 0 at EOF.

    Raises:
        trio.BrokenResourceError: the socket failed (as ``SocketStream.receive_some``).
        trio.ClosedResourceError: the socket was closed.
    """
    try:
        return await sock.recv_into(view)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise trio.ClosedResourceError("the socket was closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


def readable_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket of a plain TCP stream if :func:`read_now` can read it (where ``read(2)``
    works on a socket's descriptor: not on Windows); ``None`` otherwise."""
    return stream.socket if _READ_FD and isinstance(stream, trio.SocketStream) else None


def read_now(sock: trio.socket.SocketType, max_bytes: int) -> bytes | None:
    """What ``sock`` has to read now (``b""`` at EOF), ``None`` if nothing yet; no waiting.

    With ``trio.lowlevel.wait_readable`` around it, this is ``SocketStream.receive_some``
    without its three coroutine frames, which every idle connection would carry while it
    waits. The descriptor is asked of the socket at each call: once closed it is -1, never a
    number another socket may have been given since.

    Raises:
        trio.BrokenResourceError: the socket failed (as ``SocketStream.receive_some``).
        trio.ClosedResourceError: the socket was closed.
    """
    try:
        return os.read(sock.fileno(), max_bytes)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise trio.ClosedResourceError("the socket was closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


async def close_now(stream: trio.abc.Stream) -> None:
    """Close ``stream`` forcefully. A plain TCP socket is closed at once (closing it never
    blocks); other streams go through ``trio.aclose_forcefully``."""
    if isinstance(stream, trio.SocketStream):
        stream.socket.close()
    else:
        await trio.aclose_forcefully(stream)


def extra_info(stream: trio.abc.Stream, name: str, default: Any = None) -> Any:
    """Transport details by name: ``peername``, ``sockname``, ``socket``, ``ssl_object``,
    ``peercert``, ``cipher`` (of the connection an HTTP/2 stream runs on), ``http_version``
    (``"1.1"`` or ``"2"``); ``default`` when the stream has no such thing."""
    if isinstance(stream, H2Stream):
        if name == "http_version":
            return "2"
        stream = stream.session.stream  # the connection the HTTP/2 stream runs on
    elif name == "http_version":
        return "1.1"
    tls = stream if isinstance(stream, trio.SSLStream) else None
    base = tls.transport_stream if tls is not None else stream
    sock = base.socket if isinstance(base, trio.SocketStream) else None
    try:
        if name == "peername" and sock is not None:
            return sock.getpeername()
        if name == "sockname" and sock is not None:
            return sock.getsockname()
    except OSError:
        return default
    if name == "socket" and sock is not None:
        return sock
    if tls is not None:
        # trio does not expose the SSLObject; the SSLStream forwards its methods.
        if name == "ssl_object":
            return tls
        if name == "peercert":
            return tls.getpeercert()
        if name == "cipher":
            return tls.cipher()
    return default
