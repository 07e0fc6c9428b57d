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
    "start_tls",
    "tls_reason",
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
    """Connect to ``target``: TCP (or its Unix socket), plus TLS if ``target.secure``.

    Cancellation closes whatever was opened and propagates.

    Raises:
        WSConnectionError: DNS failure, refused or unreachable host, no such socket.
        WSTLSError: the TLS handshake failed (certificate, hostname, protocol).
    """
    ctx = ssl_context(ssl) if target.secure else None
    if target.unix_path is not None:
        try:
            raw: trio.SocketStream = await trio.open_unix_socket(target.unix_path)
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
    return await start_tls(raw, ctx, server_hostname or target.host, where)


async def start_tls(
    stream: trio.abc.Stream, ctx: _ssl.SSLContext, server_hostname: str, where: str
) -> trio.SSLStream[trio.abc.Stream]:
    """TLS over ``stream`` (closed if this fails), handshake done.

    Raises:
        WSTLSError: the handshake failed; the message says why in words where OpenSSL's
            reason is cryptic (a server that does not speak TLS, a missing certificate).
    """
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


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """TCP to ``host``: an IP address is connected to directly; a name goes through
    ``trio.open_tcp_stream`` (DNS, then Happy Eyeballs over the addresses it returns)."""
    version: int
    try:
        version = ipaddress.ip_address(host.partition("%")[0]).version
    except ValueError:
        version = 0  # a name (not called in this except clause: nothing to chain to its errors)
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
