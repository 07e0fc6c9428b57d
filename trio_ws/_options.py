"""The options of ``open_ws`` and ``connect_ws``, written once.

Theory of operation
-------------------

An option is declared in two places, and only these two:

* a field of :class:`ConnectOptions`, a frozen ``attrs`` value: its default, its check (an
  :exc:`InvalidArgument` that names the option and the bad value), its normalisation (a
  converter: ``protocols`` becomes a tuple, ``headers`` and ``params`` tuples of pairs, an
  ``auth`` tuple a :class:`BasicAuth`) and its documentation, in the class docstring;
* a key of :class:`WSOptions`, the ``TypedDict`` that types ``**options`` in the public
  signatures (PEP 692), so that a type checker checks every keyword of a call.

``tests/test_options.py`` holds the two to the same names and the same accepted types (the
``TypedDict`` type of a key is the annotation of that ``ConnectOptions.__init__`` parameter:
the converter's input type where there is one), and the docstring to the same names. mypy
checks the same agreement statically where :func:`make_options` calls ``ConnectOptions``.

:func:`~trio_ws.connect_ws` turns its keywords into one ``ConnectOptions`` before any I/O, so
a bad value is refused before a socket is opened; the connect phase (and, as they come,
redirects and reconnecting sessions) then passes the one object around.

What the object does not check belongs to another room, which checks it before any I/O too:
the URL and the ``params`` encoding (``_url``), header names and values, the ``Origin`` value,
subprotocol tokens and the headers the handshake owns (``_handshake``, HTTP rules).

``stream=`` (an already-open ``trio.abc.Stream``) is not an option here but a parameter of its
own: it is a live resource used once, not a value that redirects or a reconnecting session
could use again, and this module stays sans-I/O (it never imports trio; tests/test_architecture
checks that).

This module deliberately does not use ``from __future__ import annotations``: the public
classes say they live in ``trio_ws``, where names such as ``Headers`` do not exist, so string
annotations could not be resolved by ``typing.get_type_hints``, cattrs or Sphinx.
"""

import difflib
import functools
import logging
import os
import ssl as _ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypedDict, TypeGuard, final

import attrs

from ._errors import InvalidArgument
from ._handshake import USER_AGENT, Headers
from ._protocol import DEFAULT_MAX_FRAGMENTS
from ._proxy import parse_proxy
from ._types import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_WRITE_LIMIT,
    DEFAULT_WS_CLIENT_TIMEOUT,
    BasicAuth,
    ClientWSTimeout,
)
from ._url import Params

__all__ = ["ConnectOptions", "WSOptions", "make_options"]

#: Header names whose values a repr never shows (DESIGN §5).
_SECRET_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})

_Pairs = tuple[tuple[str, str], ...]


# ---------------------------------------------------------------------------------------------
# checks (validators) and normalisations (converters)
#
# Converters are named functions, not partials: the attrs mypy plugin reads the type of their
# first parameter as the type ``__init__`` accepts, and attrs does the same at run time.


def _is_number(value: object) -> TypeGuard[int | float]:
    # bool is an int, but heartbeat=True is a mistake, not one second.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    # `not value > 0` also refuses NaN, which compares false with everything.
    if value is not None and (not _is_number(value) or not value > 0):
        raise InvalidArgument(
            f"{attribute.name} must be a positive number of seconds or None, not {value!r}"
        )


def _limit(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"{attribute.name} must be an int >= 0 (0 = no limit), not {value!r}")


def _redirects(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"max_redirects must be an int >= 0 (0 = none), not {value!r}")


def _at_least_one(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"{attribute.name} must be an int >= 1, not {value!r}")


def _flag(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{attribute.name} must be True or False, not {value!r}")


def _optional_str(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{attribute.name} must be a str or None, not {value!r}")


def _to_path(value: str | os.PathLike[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and path:
            return path
    raise InvalidArgument(f"unix_socket must be a path (str or os.PathLike) or None, not {value!r}")


def _check_proxy(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if isinstance(value, str):
        parse_proxy(value)  # its own InvalidArgument, without the credentials
    elif value is not None and not isinstance(value, bool):
        raise InvalidArgument(
            f"proxy must be a proxy URL, True (the environment), False or None, "
            f"not {type(value).__name__}"
        )


def _repr_proxy(value: bool | str | None) -> str:
    if isinstance(value, str) and "@" in value:
        scheme, _, rest = value.partition("://")
        return repr(f"{scheme}://***@{rest.rpartition('@')[2]}")
    return repr(value)


def _to_proxy_headers(value: Headers | None) -> _Pairs:
    return _to_pairs("proxy_headers", value)


def _to_proxy_auth(value: BasicAuth | tuple[str, str] | None) -> BasicAuth | None:
    try:
        return _to_auth(value)
    except InvalidArgument as exc:
        raise InvalidArgument(f"proxy_{exc}") from None


def _check_logger(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if value is not None and not isinstance(value, (logging.Logger, logging.LoggerAdapter)):
        raise InvalidArgument(
            f"logger must be a logging.Logger, a logging.LoggerAdapter or None, "
            f"not {type(value).__name__}"
        )


def _check_ssl(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    # Also refused for ws:// URLs, where it is unused: a wrong value is a mistake either way.
    if not isinstance(value, (bool, _ssl.SSLContext)):
        raise InvalidArgument(f"ssl must be True, False or an ssl.SSLContext, not {value!r}")


def _check_http2(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if value is not True and value is not False and value != "require":
        raise InvalidArgument(f"http2 must be True, False or 'require', not {value!r}")


def _check_timeout(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    if not isinstance(value, ClientWSTimeout):
        raise InvalidArgument(f"timeout must be a ClientWSTimeout, not {type(value).__name__}")


def _check_compress(_: object, attribute: "attrs.Attribute[Any]", value: object) -> None:
    # RFC 7692 §7.1.2.2: client_max_window_bits is 8..15, and zlib cannot compress with 8.
    if not isinstance(value, int) or isinstance(value, bool) or value not in (0, *range(9, 16)):
        raise InvalidArgument(f"compress must be 0 (off) or 9..15, not {value!r}")


def _to_protocols(value: Sequence[str]) -> tuple[str, ...]:
    # A lone str is one subprotocol, not a sequence of one-letter ones.
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, (bytes, bytearray)):
        raise InvalidArgument(f"protocols must be a sequence of str, not {value!r}")
    protocols = tuple(items)
    for proto in protocols:
        if not isinstance(proto, str):
            raise InvalidArgument(f"protocols must be a sequence of str, not {value!r}")
    return protocols


def _to_pairs(name: str, value: object) -> _Pairs:
    """A mapping or an iterable of pairs, as a tuple of ``(str, str)`` pairs (reusable, unlike
    an iterator: a redirect sends the headers again)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items: Iterable[object] = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray)):
        items = value
    else:
        raise InvalidArgument(f"{name} must be a mapping or (name, value) pairs, not {value!r}")
    pairs = []
    for item in items:
        if not (
            isinstance(item, (tuple, list))
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise InvalidArgument(f"{name} must be (str, str) pairs, not {item!r}")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def _to_headers(value: Headers | None) -> _Pairs:
    return _to_pairs("headers", value)


def _to_params(value: Params | None) -> _Pairs:
    return _to_pairs("params", value)


def _to_auth(value: BasicAuth | tuple[str, str] | None) -> BasicAuth | None:
    if value is None or isinstance(value, BasicAuth):
        return value
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], str)
    ):
        return BasicAuth(value[0], value[1])  # its own check: no ":" in the login
    # Not the value itself: it may hold a password.
    raise InvalidArgument(
        f"auth must be a BasicAuth, a (login, password) tuple of str or None, "
        f"not {type(value).__name__}"
    )


def _repr_auth(value: BasicAuth | None) -> str:
    return "None" if value is None else f"BasicAuth(login={value.login!r}, password='***')"


def _repr_headers(value: _Pairs) -> str:
    shown = tuple((k, "***" if k.lower() in _SECRET_HEADERS else v) for k, v in value)
    return repr(shown)


# ---------------------------------------------------------------------------------------------
# the options


@final
@attrs.frozen(kw_only=True)
class ConnectOptions:
    """The options of :func:`open_ws` and :func:`connect_ws`, checked, as one frozen value.

    ``connect_ws(nursery, url, **options)`` builds one from its keywords before any I/O; an
    unusable value raises :exc:`InvalidArgument` naming the option, an unknown name raises
    ``TypeError``. The keywords are typed by :class:`WSOptions`. (``stream=``, a connection's
    own already-open stream rather than a reusable value, is a parameter of the two functions.)

    Attributes:
        protocols: subprotocols to offer, in order of preference (a lone ``str`` is one).
        headers: extra request headers, a mapping or ``(name, value)`` pairs; kept as a tuple
            of pairs. Names the opening handshake sets itself (``Upgrade``,
            ``Sec-WebSocket-Key``...) are refused.
        origin: the ``Origin`` header.
        params: query parameters appended to the URL's query, a mapping or ``(name, value)``
            pairs; kept as a tuple of pairs.
        auth: Basic credentials, a :class:`BasicAuth` or ``(login, password)`` (kept as a
            :class:`BasicAuth`); without it, those of the URL's ``user:pass@``, if any.
        ssl: for ``wss://``: ``True`` verifies the certificate and host name (the default),
            ``False`` verifies nothing, or an ``ssl.SSLContext`` to use as it is.
        server_hostname: the name to verify and send in SNI, if not the URL's host.
        unix_socket: connect to this Unix domain socket instead of the URL's host and port
            (which still give the ``Host`` header and, for ``wss://``, the TLS server name).
            A ``ws+unix://`` URL says the same in the URL.
        user_agent: the ``User-Agent`` header (default ``trio_ws/VERSION Python/X.Y``; a
            ``User-Agent`` in ``headers`` replaces it); ``None`` sends none.
        proxy: where to tunnel through: ``True`` (the default) reads the environment
            (``wss_proxy``/``ws_proxy``, then ``https_proxy``/``http_proxy``, then
            ``all_proxy``, with ``no_proxy``: see :doc:`howto/proxies`); a URL
            ``http://[user:pass@]host:port``, ``https://...``, ``socks5://``, ``socks5h://``,
            ``socks4://`` or ``socks4a://``; ``None`` or ``False`` connects directly. Unix
            sockets never use one. A refusal is a :exc:`WSProxyError`.
        proxy_auth: credentials for the proxy, a :class:`BasicAuth` or ``(login, password)``;
            they replace those of the proxy URL.
        proxy_headers: extra headers for an HTTP proxy's ``CONNECT`` request.
        max_redirects: how many redirects (301, 302, 303, 307, 308) of the opening handshake
            to follow, all within ``connect_timeout``; 0 follows none (a redirect is then a
            :exc:`WSServerHandshakeError` with its status and headers). Never from ``wss://``
            to ``ws://``; credentials (``auth``, the URL's, ``Authorization`` and ``Cookie``
            headers) only to the same origin. A loop or too many hops raise
            :exc:`WSRedirectError`.
        timeout: :class:`ClientWSTimeout`, the receive and close timeouts of the open connection.
        connect_timeout: seconds for DNS, TCP, TLS, the opening handshake and its redirects
            together;
            ``None`` waits for ever. Its expiry raises :exc:`ConnectTimeoutError`. It does not
            bound the session that follows.
        autoclose: answer the server's close frame at once (else the application calls
            :meth:`~ClientWebSocket.close` after receiving ``CLOSE``).
        autoping: answer pings and swallow pongs in the background (else both are delivered).
        heartbeat: send a ping after this many seconds without data from the server, and fail
            the connection with :exc:`ServerTimeoutError` if nothing arrives within half of it;
            ``None`` sends none.
        compress: 0 (off) or 9..15: offer permessage-deflate with that
            ``client_max_window_bits``.
        client_notakeover: offer ``client_no_context_takeover``.
        max_msg_size: the largest message accepted, in bytes after decompression; 0 = no limit.
            A bigger one fails the connection with close code 1009, refused as soon as a frame
            header announces it (uncompressed) or inflating passes the limit (compressed).
        max_fragments: the most frames one message may have (control frames between them are
            not counted); 0 = no limit. More fail the connection with close code 1009.
        decode_text: deliver ``TEXT`` messages as ``str`` (else ``bytes``).
        max_queue: received messages the application has not taken yet at which the reader
            stops reading (TCP then pushes back on the server); it reads again below half.
        max_queue_bytes: the same bound in payload bytes (whichever is reached first).
        write_limit: bytes queued and not yet written at which a send waits (backpressure);
            below it a send returns as soon as its message is queued.
        max_frame_size: a message bigger than this many bytes (after compression) goes out
            in frames of at most this size, so a pong or a ping never waits behind more than
            one frame; over TCP, the kernel then also holds only about this much unsent data
            (``TCP_NOTSENT_LOWAT`` where the system has it). 0 sends every message in one
            frame and leaves the socket as it is.
        http2: ``True`` runs the WebSocket over HTTP/2 (RFC 8441) where the server offers it:
            ALPN offers ``h2`` and ``http/1.1`` for ``wss://``, and ``ws://`` starts with the
            HTTP/2 preface (h2c with prior knowledge); a server that answers HTTP/1.1, or
            speaks HTTP/2 without ``SETTINGS_ENABLE_CONNECT_PROTOCOL=1``, gets an ordinary
            HTTP/1.1 upgrade instead. ``"require"`` refuses that fallback with a
            :exc:`WSServerHandshakeError`. ``False`` (the default) uses HTTP/1.1. Redirects
            are not followed over HTTP/2. See :doc:`howto/http2`.
        logger: where the connection's log records go (a ``logging.Logger`` or
            ``LoggerAdapter``); ``None`` uses ``logging.getLogger("trio_ws.client")``. See
            :doc:`logging`.
    """

    protocols: tuple[str, ...] = attrs.field(default=(), converter=_to_protocols)
    headers: _Pairs = attrs.field(default=(), converter=_to_headers, repr=_repr_headers)
    origin: str | None = attrs.field(default=None, validator=_optional_str)
    params: _Pairs = attrs.field(default=(), converter=_to_params)
    auth: BasicAuth | None = attrs.field(default=None, converter=_to_auth, repr=_repr_auth)
    ssl: bool | _ssl.SSLContext = attrs.field(default=True, validator=_check_ssl)
    server_hostname: str | None = attrs.field(default=None, validator=_optional_str)
    unix_socket: str | None = attrs.field(default=None, converter=_to_path)
    user_agent: str | None = attrs.field(default=USER_AGENT, validator=_optional_str)
    proxy: bool | str | None = attrs.field(default=True, validator=_check_proxy, repr=_repr_proxy)
    proxy_auth: BasicAuth | None = attrs.field(
        default=None, converter=_to_proxy_auth, repr=_repr_auth
    )
    proxy_headers: _Pairs = attrs.field(default=(), converter=_to_proxy_headers, repr=_repr_headers)
    max_redirects: int = attrs.field(default=10, validator=_redirects)
    timeout: ClientWSTimeout = attrs.field(
        default=DEFAULT_WS_CLIENT_TIMEOUT, validator=_check_timeout
    )
    connect_timeout: float | None = attrs.field(default=10.0, validator=_seconds)
    autoclose: bool = attrs.field(default=True, validator=_flag)
    autoping: bool = attrs.field(default=True, validator=_flag)
    heartbeat: float | None = attrs.field(default=None, validator=_seconds)
    compress: int = attrs.field(default=0, validator=_check_compress)
    client_notakeover: bool = attrs.field(default=False, validator=_flag)
    max_msg_size: int = attrs.field(default=4 * 1024 * 1024, validator=_limit)
    max_fragments: int = attrs.field(default=DEFAULT_MAX_FRAGMENTS, validator=_limit)
    decode_text: bool = attrs.field(default=True, validator=_flag)
    max_queue: int = attrs.field(default=DEFAULT_MAX_QUEUE, validator=_at_least_one)
    max_queue_bytes: int = attrs.field(default=DEFAULT_MAX_QUEUE_BYTES, validator=_at_least_one)
    write_limit: int = attrs.field(default=DEFAULT_WRITE_LIMIT, validator=_at_least_one)
    max_frame_size: int = attrs.field(default=DEFAULT_MAX_FRAME_SIZE, validator=_limit)
    http2: bool | Literal["require"] = attrs.field(default=False, validator=_check_http2)
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = attrs.field(
        default=None, validator=_check_logger
    )


class WSOptions(TypedDict, total=False):
    """The keyword options of :func:`open_ws` and :func:`connect_ws`, for type checkers.

    Each key is documented, with its default, as an attribute of :class:`ConnectOptions`; the
    types here are what a call may pass (``protocols`` any sequence, ``auth`` also a tuple...).
    Type the ``**options`` of your own wrappers with it (PEP 692) to have them checked too:

    .. code-block:: python

        from typing import Unpack

        async def subscribe(url: str, **options: Unpack[trio_ws.WSOptions]) -> None:
            options.setdefault("heartbeat", 15.0)
            async with trio_ws.open_ws(url, **options) as ws:
                ...
    """

    protocols: Sequence[str]
    headers: Headers | None
    origin: str | None
    params: Params | None
    auth: BasicAuth | tuple[str, str] | None
    ssl: bool | _ssl.SSLContext
    server_hostname: str | None
    unix_socket: str | os.PathLike[str] | None
    user_agent: str | None
    proxy: bool | str | None
    proxy_auth: BasicAuth | tuple[str, str] | None
    proxy_headers: Headers | None
    max_redirects: int
    timeout: ClientWSTimeout
    connect_timeout: float | None
    autoclose: bool
    autoping: bool
    heartbeat: float | None
    compress: int
    client_notakeover: bool
    max_msg_size: int
    max_fragments: int
    decode_text: bool
    max_queue: int
    max_queue_bytes: int
    write_limit: int
    max_frame_size: int
    http2: bool | Literal["require"]
    logger: logging.Logger | logging.LoggerAdapter[Any] | None


_NAMES: Final = frozenset(attrs.fields_dict(ConnectOptions))


def make_options(options: WSOptions) -> ConnectOptions:
    """Check and normalise the keywords of ``open_ws``/``connect_ws``, without I/O.

    Raises:
        TypeError: an unknown option name, as a misspelled keyword argument would.
        InvalidArgument: an unusable value, naming the option and the value.
    """
    unknown = sorted(options.keys() - _NAMES)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"open_ws()/connect_ws() got an unexpected keyword argument {name!r}{hint}")
    # Checking every option cost ~2 % of a connection (W4): the same hashable options give
    # the same frozen object. The types are part of the key (True == 1, 1 == 1.0).
    try:
        key = frozenset((name, type(value), value) for name, value in options.items())
        return _checked(key)
    except TypeError:  # an unhashable value (a headers dict...): no cache
        return ConnectOptions(**options)


@functools.lru_cache(maxsize=64)
def _checked(key: frozenset[tuple[str, type, Any]]) -> ConnectOptions:
    return ConnectOptions(**{name: value for name, _, value in key})
