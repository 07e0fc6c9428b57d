"""trio_ws: a Trio-native, structured-concurrency WebSocket client with aiohttp's API."""

from ._client import connect_ws as connect_ws
from ._client import open_ws as open_ws
from ._connection import ClientWebSocket as ClientWebSocket
from ._errors import ConnectTimeoutError as ConnectTimeoutError
from ._errors import InvalidArgument as InvalidArgument
from ._errors import InvalidURL as InvalidURL
from ._errors import ProxyTimeoutError as ProxyTimeoutError
from ._errors import ServerTimeoutError as ServerTimeoutError
from ._errors import WSClosedError as WSClosedError
from ._errors import WSConnectionError as WSConnectionError
from ._errors import WSDecodeError as WSDecodeError
from ._errors import WSError as WSError
from ._errors import WSMessageTypeError as WSMessageTypeError
from ._errors import WSProtocolError as WSProtocolError
from ._errors import WSProxyError as WSProxyError
from ._errors import WSRedirectError as WSRedirectError
from ._errors import WSServerHandshakeError as WSServerHandshakeError
from ._errors import WSTimeoutError as WSTimeoutError
from ._errors import WSTLSError as WSTLSError
from ._monitor import WSStatistics as WSStatistics
from ._options import ConnectOptions as ConnectOptions
from ._options import WSOptions as WSOptions
from ._protocol import WSState as WSState
from ._reconnect import Backoff as Backoff
from ._reconnect import is_retryable as is_retryable
from ._reconnect import reconnecting as reconnecting
from ._session import WSSession as WSSession
from ._session import open_session as open_session
from ._streaming import MessageStream as MessageStream
from ._types import DEFAULT_WS_CLIENT_TIMEOUT as DEFAULT_WS_CLIENT_TIMEOUT
from ._types import BasicAuth as BasicAuth
from ._types import ClientWSTimeout as ClientWSTimeout
from ._types import WSCloseCode as WSCloseCode
from ._types import WSMessage as WSMessage
from ._types import WSMsgType as WSMsgType
from ._version import __version__ as __version__

__all__ = [
    "DEFAULT_WS_CLIENT_TIMEOUT",
    "Backoff",
    "BasicAuth",
    "ClientWSTimeout",
    "ClientWebSocket",
    "ConnectOptions",
    "ConnectTimeoutError",
    "InvalidArgument",
    "InvalidURL",
    "MessageStream",
    "ProxyTimeoutError",
    "ServerTimeoutError",
    "WSCloseCode",
    "WSClosedError",
    "WSConnectionError",
    "WSDecodeError",
    "WSError",
    "WSMessage",
    "WSMessageTypeError",
    "WSMsgType",
    "WSOptions",
    "WSProtocolError",
    "WSProxyError",
    "WSRedirectError",
    "WSServerHandshakeError",
    "WSSession",
    "WSState",
    "WSStatistics",
    "WSTLSError",
    "WSTimeoutError",
    "connect_ws",
    "is_retryable",
    "open_session",
    "open_ws",
    "reconnecting",
]

# Public names say they live in trio_ws (repr, docs, pickling), not in private modules.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = "trio_ws"
del _name, _obj
