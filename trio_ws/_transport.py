"""Opening the byte stream under a WebSocket: TCP, then TLS for ``wss://``.

Errors are translated here, once: :class:`OSError` from DNS or ``connect()`` becomes
:class:`WSConnectionError`, a failed TLS handshake :class:`WSTLSError`, each with the original
chained as ``__cause__``. A certificate that does not verify fails the handshake at once.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import ssl as _ssl
from typing import Any, Final

import trio

from ._errors import InvalidArgument, WSConnectionError, WSTLSError
from ._url import Target

__all__ = [
    "close_now",
    "extra_info",
    "open_stream",
    "receive_into",
    "socket_of",
    "ssl_context",
    "write_now",
]

#: Writing to a socket's file descriptor needs ``os.write`` on sockets (not Windows).
_CAN_WRITE_NOW: Final = os.name == "posix"


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
) -> trio.abc.Stream:
    """Connect to ``target``: TCP, plus TLS if ``target.secure``.

    Cancellation closes whatever was opened and propagates.

    Raises:
        WSConnectionError: DNS failure, refused or unreachable host.
        WSTLSError: the TLS handshake failed (certificate, hostname, protocol).
    """
    ctx = ssl_context(ssl) if target.secure else None
    try:
        tcp = await _open_tcp(target.host, target.port)
    except OSError as exc:
        raise WSConnectionError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
    if ctx is None:
        return tcp
    # https_compatible: the WebSocket close handshake, not TLS close_notify, ends a session.
    stream = trio.SSLStream(
        tcp, ctx, server_hostname=server_hostname or target.host, https_compatible=True
    )
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(tcp)
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise WSTLSError(
            f"TLS handshake with {target.host}:{target.port} failed: {cause}"
        ) from cause
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return stream


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """TCP to ``host``: an IP address is connected to directly; a name goes through
    ``trio.open_tcp_stream`` (DNS, then Happy Eyeballs over the addresses it returns)."""
    try:
        family = (
            trio.socket.AF_INET6
            if ipaddress.ip_address(host.partition("%")[0]).version == 6
            else trio.socket.AF_INET
        )
    except ValueError:
        return await trio.open_tcp_stream(host, port)
    # The same steps as open_tcp_stream for one address, without its nursery and DNS call.
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


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


async def close_now(stream: trio.abc.Stream) -> None:
    """Close ``stream`` forcefully. A plain TCP socket is closed at once (closing it never
    blocks); other streams go through ``trio.aclose_forcefully``."""
    if isinstance(stream, trio.SocketStream):
        stream.socket.close()
    else:
        await trio.aclose_forcefully(stream)


def extra_info(stream: trio.abc.Stream, name: str, default: Any = None) -> Any:
    """Transport details by name: ``peername``, ``sockname``, ``socket``, ``ssl_object``,
    ``peercert``, ``cipher``; ``default`` when the stream has no such thing."""
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
