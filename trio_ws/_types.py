"""Value types of the public API: message types, messages, close codes, timeouts, credentials."""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import attrs

from ._errors import InvalidArgument, WSDecodeError

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_WRITE_LIMIT",
    "DEFAULT_WS_CLIENT_TIMEOUT",
    "BasicAuth",
    "ClientWSTimeout",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
]


#: Defaults of the ``max_queue``, ``max_queue_bytes`` and ``write_limit`` options (the inbox
#: and the writer use them; the options module may not import those, which import trio).
DEFAULT_MAX_QUEUE: Final = 1024
DEFAULT_MAX_QUEUE_BYTES: Final = 1024 * 1024
DEFAULT_WRITE_LIMIT: Final = 64 * 1024
#: Default of the ``max_frame_size`` option: a bigger message goes out in frames of this size.
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024


class WSMsgType(enum.IntEnum):
    """The type of a :class:`WSMessage`.

    The first six are RFC 6455 opcodes; ``CLOSING``, ``CLOSED`` and ``ERROR`` describe the state
    of the connection and never appear on the wire.
    """

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    PING = 0x9
    PONG = 0xA
    CLOSE = 0x8
    CLOSING = 0x100
    CLOSED = 0x101
    ERROR = 0x102


class WSCloseCode(enum.IntEnum):
    """Close codes of RFC 6455 §7.4.1 and the IANA registry, with aiohttp's names."""

    OK = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL_CLOSURE = 1006
    INVALID_TEXT = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


class WSMessage(NamedTuple):
    """One message from :meth:`ClientWebSocket.receive`.

    ``data`` is ``str`` for TEXT (``bytes`` with ``decode_text=False``), ``bytes`` for BINARY,
    PING and PONG, the close code (``int``) for CLOSE, the exception for ERROR and ``None`` for
    CLOSING and CLOSED. ``extra`` is the close reason (``str``) for CLOSE, else ``None``.
    """

    type: WSMsgType
    data: Any
    extra: str | None

    def json(self, *, loads: Callable[[Any], Any] = json.loads) -> Any:
        """Decode ``data`` as JSON with ``loads``.

        Raises:
            WSDecodeError: ``loads`` raised a ``ValueError`` (invalid JSON); the original is
                the ``__cause__`` and this message the exception's ``msg``.
        """
        try:
            return loads(self.data)
        except ValueError as exc:
            raise WSDecodeError(f"a message that is not valid JSON: {exc}", self) from exc


#: The ``extra`` of a piece of a streamed message (``ClientWebSocket.receive_stream``) in the
#: receive queue: more pieces follow, or this is the last. A whole TEXT or BINARY message has
#: ``None`` there; these never reach the application.
CHUNK_MORE: Final = "more"
CHUNK_LAST: Final = "last"

WS_CLOSED_MESSAGE: Final = WSMessage(WSMsgType.CLOSED, None, None)
WS_CLOSING_MESSAGE: Final = WSMessage(WSMsgType.CLOSING, None, None)


def _check_timeout(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgument(f"{attribute.name} must be a positive number or None, not {value!r}")


@attrs.frozen
class ClientWSTimeout:
    """Timeouts of an open connection, in seconds; ``None`` disables one.

    Attributes:
        ws_receive: how long :meth:`ClientWebSocket.receive` waits for a message when it is not
            given a ``timeout`` of its own. Expiry raises :class:`WSTimeoutError` and leaves the
            connection usable.
        ws_close: one deadline for :meth:`ClientWebSocket.close`: sending our close frame and
            receiving the server's. After the server's close frame (or a protocol failure), the
            client also waits at most this long for the server to close TCP.
    """

    ws_receive: float | None = attrs.field(default=None, validator=_check_timeout)
    ws_close: float | None = attrs.field(default=10.0, validator=_check_timeout)


DEFAULT_WS_CLIENT_TIMEOUT: Final = ClientWSTimeout()


@attrs.frozen
class BasicAuth:
    """HTTP Basic credentials for the opening handshake (RFC 7617).

    Args:
        login: the user name; it must not contain ``:``.
        password: the password.
        encoding: how both are encoded before base64 (``latin1`` as aiohttp, or ``utf-8``).
    """

    login: str
    password: str = ""
    encoding: str = "latin1"

    def __attrs_post_init__(self) -> None:
        if ":" in self.login:
            raise InvalidArgument('a BasicAuth login must not contain ":"')

    def encode(self) -> str:
        """The ``Authorization`` header value."""
        creds = f"{self.login}:{self.password}".encode(self.encoding)
        return "Basic " + base64.b64encode(creds).decode("ascii")
