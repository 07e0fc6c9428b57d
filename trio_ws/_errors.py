"""The whole exception tree of trio_ws.

Users catch these, never trio's or wsproto's: every failure that crosses the public API is
translated into one of them at a single boundary, with the original chained as ``__cause__``.

.. code-block:: text

    WSError
    ├── InvalidArgument (also ValueError)        an option or header the caller passed is unusable
    │   └── InvalidURL                           malformed URL, unsupported scheme, bad port
    ├── WSConnectionError (also OSError)         DNS failure, refused or unreachable host
    │   ├── WSTLSError                           TLS handshake or certificate failure
    │   ├── WSProxyError                         the proxy refused, failed or answered garbage
    │   │   └── ProxyTimeoutError (also ConnectTimeoutError)  the proxy did not answer in time
    │   └── ConnectTimeoutError (also WSTimeoutError)  connect_timeout expired
    ├── WSServerHandshakeError                   the server did not accept the upgrade
    │   └── WSRedirectError                      a redirect we may not follow, a loop, too many
    ├── WSTimeoutError (also TimeoutError)       receive() timed out; the connection stays usable
    │   └── ServerTimeoutError                   heartbeat: the server went silent
    ├── WSProtocolError                          the server broke RFC 6455 (has the close code)
    ├── WSMessageTypeError (also TypeError)      a message of the wrong type
    ├── WSDecodeError (also ValueError)          receive_json(): the message is not valid JSON
    └── WSClosedError                            the connection is closing, closed or broken
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._types import WSMessage

__all__ = [
    "ConnectTimeoutError",
    "InvalidArgument",
    "InvalidURL",
    "ProxyTimeoutError",
    "ServerTimeoutError",
    "WSClosedError",
    "WSConnectionError",
    "WSDecodeError",
    "WSError",
    "WSMessageTypeError",
    "WSProtocolError",
    "WSProxyError",
    "WSRedirectError",
    "WSServerHandshakeError",
    "WSTLSError",
    "WSTimeoutError",
]


class WSError(Exception):
    """Base class of every exception trio_ws raises."""


class InvalidArgument(WSError, ValueError):
    """An argument passed to trio_ws cannot be used (raised before anything is sent)."""


class InvalidURL(InvalidArgument):
    """The URL is malformed, has an unsupported scheme or an invalid port."""


class WSConnectionError(WSError, OSError):
    """The connection could not be opened: DNS failure, refused or unreachable host.

    The low-level error is chained as ``__cause__``.
    """


class WSTimeoutError(WSError, TimeoutError):
    """An operation did not finish within its timeout.

    Raised by :meth:`ClientWebSocket.receive` (and the typed variants) when the receive timeout
    expires; the connection stays usable and no message is lost.
    """


class WSTLSError(WSConnectionError):
    """The TLS handshake failed, for example because the certificate did not verify."""


class WSProxyError(WSConnectionError):
    """The proxy refused the tunnel (407, 403, 502...), closed early, answered something that
    is not its protocol, or could not reach the server.

    Attributes:
        proxy: the proxy's URL, without credentials.
        status: the HTTP status of an HTTP proxy's answer (0 if none; SOCKS: its reply code).
        headers: an HTTP proxy's response headers, as ``(name, value)`` pairs.
    """

    def __init__(
        self,
        message: str,
        *,
        proxy: str = "",
        status: int = 0,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.status = status
        self.headers: list[tuple[str, str]] = headers if headers is not None else []

    def __reduce__(self) -> tuple[Any, ...]:
        args = (type(self), str(self), self.proxy, self.status, self.headers)
        return (_rebuild_proxy_error, args)


def _rebuild_proxy_error(
    cls: type[WSProxyError], message: str, proxy: str, status: int, headers: list[tuple[str, str]]
) -> WSProxyError:
    return cls(message, proxy=proxy, status=status, headers=headers)


class ConnectTimeoutError(WSConnectionError, WSTimeoutError):
    """The connect phase (DNS, TCP, TLS, opening handshake) exceeded ``connect_timeout``."""


class ProxyTimeoutError(WSProxyError, ConnectTimeoutError):
    """``connect_timeout`` expired while connecting to the proxy or waiting for its answer:
    both a :exc:`WSProxyError` and a :exc:`ConnectTimeoutError`."""


class WSServerHandshakeError(WSError):
    """The server answered the opening handshake with something other than a valid upgrade.

    Attributes:
        status: the HTTP status code the server sent (0 if it sent no parsable status line).
        headers: the response headers, as ``(name, value)`` pairs in the order received.
        body: the start of the response body, at most 64 KiB.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers: list[tuple[str, str]] = headers if headers is not None else []
        self.body = body

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_handshake_error,
            (type(self), str(self), self.status, self.headers, self.body),
        )


def _rebuild_handshake_error(
    cls: type[WSServerHandshakeError],
    message: str,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> WSServerHandshakeError:
    return cls(message, status=status, headers=headers, body=body)


class WSRedirectError(WSServerHandshakeError):
    """A redirect that is not followed: from ``wss://`` to ``ws://`` (no plaintext connection
    is ever opened), a loop, more than ``max_redirects`` hops, a ``Location`` that is not a
    WebSocket URL, or any redirect over ``stream=``. ``status``, ``headers`` and ``body`` are
    the redirect's.

    Attributes:
        chain: the URLs visited, first to last, without credentials; the last is where the
            redirect pointed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        chain: list[str] | None = None,
    ) -> None:
        super().__init__(message, status=status, headers=headers, body=body)
        self.chain: list[str] = chain if chain is not None else []

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_redirect_error,
            (type(self), str(self), self.status, self.headers, self.body, self.chain),
        )


def _rebuild_redirect_error(
    cls: type[WSRedirectError],
    message: str,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    chain: list[str],
) -> WSRedirectError:
    return cls(message, status=status, headers=headers, body=body, chain=chain)


class ServerTimeoutError(WSTimeoutError):
    """Heartbeat: no byte arrived from the server within ``heartbeat / 2`` after our ping."""


class WSProtocolError(WSError):
    """The server violated the WebSocket protocol.

    Attributes:
        code: the close code trio_ws sent because of it (1002, 1007, 1009, ...).
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[WSProtocolError], tuple[str, int]]:
        return (type(self), (str(self), self.code))


class WSMessageTypeError(WSError, TypeError):
    """A message was not of the expected type.

    Attributes:
        msg: the message that was received (for ``receive_str`` and friends), so nothing is lost;
            ``None`` when raised for an argument of the wrong type.
    """

    def __init__(self, message: str, msg: WSMessage | None = None) -> None:
        super().__init__(message)
        self.msg = msg


class WSDecodeError(WSError, ValueError):
    """A message could not be decoded as asked (``receive_json()``: not valid JSON).

    Attributes:
        msg: the message that was received, so nothing is lost; the decoder's own error is
            chained as ``__cause__``.
    """

    def __init__(self, message: str, msg: WSMessage) -> None:
        super().__init__(message)
        self.msg = msg


class WSClosedError(WSError):
    """The connection is closing, closed or broken, so the operation cannot be performed.

    The message names the close code and reason. When a failure broke the connection, it is
    chained as ``__cause__``.

    Attributes:
        code: the connection's close code, or ``None`` while the closing handshake is still
            under way.
        reason: the close reason that came with ``code`` (``""`` if none), or ``None``.
    """

    def __init__(self, message: str, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.code, self.reason))
