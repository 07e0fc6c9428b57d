"""Value types and the exception tree: messages, close codes, timeouts, credentials, errors."""

from __future__ import annotations

import copy
import json
import math
import pickle
from decimal import Decimal
from typing import Any

import attrs
import pytest

import trio_ws
from trio_ws import (
    DEFAULT_WS_CLIENT_TIMEOUT,
    BasicAuth,
    ClientWSTimeout,
    ConnectTimeoutError,
    InvalidArgument,
    InvalidURL,
    ServerTimeoutError,
    WSCloseCode,
    WSClosedError,
    WSConnectionError,
    WSError,
    WSMessage,
    WSMessageTypeError,
    WSMsgType,
    WSProtocolError,
    WSProxyError,
    WSRedirectError,
    WSServerHandshakeError,
    WSTimeoutError,
    WSTLSError,
)
from trio_ws._types import WS_CLOSED_MESSAGE, WS_CLOSING_MESSAGE

# ---------------------------------------------------------------------------------------------
# WSMsgType, WSCloseCode, WSMessage


def test_message_types_are_the_wire_opcodes_and_aiohttps_extras() -> None:
    """The wire types are RFC 6455 opcodes; CLOSING, CLOSED and ERROR are aiohttp's values."""
    assert {t.name: int(t) for t in WSMsgType} == {
        "CONTINUATION": 0x0,
        "TEXT": 0x1,
        "BINARY": 0x2,
        "PING": 0x9,
        "PONG": 0xA,
        "CLOSE": 0x8,
        "CLOSING": 0x100,
        "CLOSED": 0x101,
        "ERROR": 0x102,
    }


def test_close_codes_are_rfc_6455_with_aiohttps_names() -> None:
    """WSCloseCode has the sendable registered codes under aiohttp's names."""
    assert {c.name: int(c) for c in WSCloseCode} == {
        "OK": 1000,
        "GOING_AWAY": 1001,
        "PROTOCOL_ERROR": 1002,
        "UNSUPPORTED_DATA": 1003,
        "ABNORMAL_CLOSURE": 1006,
        "INVALID_TEXT": 1007,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "MANDATORY_EXTENSION": 1010,
        "INTERNAL_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_GATEWAY": 1014,
    }


def test_message_is_a_named_tuple() -> None:
    """WSMessage unpacks as (type, data, extra), like aiohttp's."""
    msg_type, data, extra = WSMessage(WSMsgType.CLOSE, 1000, "bye")
    assert (msg_type, data, extra) == (WSMsgType.CLOSE, 1000, "bye")
    assert WS_CLOSED_MESSAGE == (WSMsgType.CLOSED, None, None)
    assert WS_CLOSING_MESSAGE == (WSMsgType.CLOSING, None, None)


@pytest.mark.parametrize("data", ['{"a": [1, 2.5, null]}', b'{"a": [1, 2.5, null]}'])
def test_message_json_decodes_text_and_bytes(data: str | bytes) -> None:
    """json() decodes the data (str or UTF-8 bytes) with json.loads."""
    assert WSMessage(WSMsgType.TEXT, data, None).json() == {"a": [1, 2.5, None]}


def test_message_json_with_custom_loads() -> None:
    """json(loads=...) uses the given decoder."""
    msg = WSMessage(WSMsgType.TEXT, '{"x": 1.5}', None)
    assert msg.json(loads=lambda s: json.loads(s, parse_float=Decimal)) == {"x": Decimal("1.5")}


def test_message_json_raises_our_error_with_the_message() -> None:
    """Invalid JSON raises WSDecodeError (a ValueError) carrying the message, the decoder's
    error as its cause."""
    msg = WSMessage(WSMsgType.TEXT, "{", None)
    with pytest.raises(trio_ws.WSDecodeError) as info:
        msg.json()
    assert isinstance(info.value, ValueError)
    assert info.value.msg is msg
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


# ---------------------------------------------------------------------------------------------
# ClientWSTimeout


def test_timeout_defaults() -> None:
    """By default receive waits forever and the closing handshake gets 10 s."""
    assert (ClientWSTimeout().ws_receive, ClientWSTimeout().ws_close) == (None, 10.0)
    assert ClientWSTimeout() == DEFAULT_WS_CLIENT_TIMEOUT


@pytest.mark.parametrize(
    ("ws_receive", "ws_close"), [(None, None), (0.001, 1), (5, 2.5), (math.inf, None)]
)
def test_timeout_accepts_positive_numbers_and_none(ws_receive: Any, ws_close: Any) -> None:
    """Positive numbers and None are valid timeouts."""
    timeout = ClientWSTimeout(ws_receive=ws_receive, ws_close=ws_close)
    assert (timeout.ws_receive, timeout.ws_close) == (ws_receive, ws_close)


@pytest.mark.parametrize("field", ["ws_receive", "ws_close"])
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.nan, -math.inf])
def test_timeout_refuses_zero_negative_and_nan(field: str, value: float) -> None:
    """Zero, negative and NaN timeouts raise InvalidArgument naming the field."""
    with pytest.raises(InvalidArgument, match=f"{field} must be a positive number or None"):
        ClientWSTimeout(**{field: value})


def test_timeout_is_frozen_and_hashable() -> None:
    """ClientWSTimeout is an immutable value."""
    timeout = ClientWSTimeout(ws_receive=1.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        timeout.ws_close = 1.0  # type: ignore[misc]
    assert timeout == ClientWSTimeout(1.0, 10.0)
    assert hash(timeout) == hash(ClientWSTimeout(1.0, 10.0))
    assert attrs.evolve(timeout, ws_close=None) == ClientWSTimeout(1.0, None)


def test_timeout_validates_on_evolve() -> None:
    """attrs.evolve() re-runs the validation."""
    with pytest.raises(InvalidArgument):
        attrs.evolve(DEFAULT_WS_CLIENT_TIMEOUT, ws_close=0)


# ---------------------------------------------------------------------------------------------
# BasicAuth


@pytest.mark.parametrize(
    ("auth", "header"),
    [
        (BasicAuth("user", "pass"), "Basic dXNlcjpwYXNz"),
        (BasicAuth("user"), "Basic dXNlcjo="),
        (BasicAuth("", ""), "Basic Og=="),
        (BasicAuth("user", "p:a:ss"), "Basic dXNlcjpwOmE6c3M="),
        (BasicAuth("ü", "é"), "Basic /Drp"),
        (BasicAuth("ü", "é", encoding="utf-8"), "Basic w7w6w6k="),
    ],
)
def test_basic_auth_header(auth: BasicAuth, header: str) -> None:
    """encode() gives the RFC 7617 header value; latin1 by default, as aiohttp."""
    assert auth.encode() == header


def test_basic_auth_login_must_not_contain_colon() -> None:
    """A ':' in the login would shift it into the password: InvalidArgument."""
    with pytest.raises(InvalidArgument, match='must not contain ":"'):
        BasicAuth("a:b", "c")


def test_basic_auth_is_a_frozen_value() -> None:
    """BasicAuth compares by value and cannot be changed."""
    auth = BasicAuth("u", "p")
    assert auth == BasicAuth("u", "p", "latin1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        auth.login = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# the exception tree


@pytest.mark.parametrize(
    ("exc", "bases"),
    [
        (InvalidArgument, (WSError, ValueError)),
        (InvalidURL, (InvalidArgument, WSError, ValueError)),
        (WSConnectionError, (WSError, OSError)),
        (WSTLSError, (WSConnectionError, WSError, OSError)),
        (ConnectTimeoutError, (WSConnectionError, WSTimeoutError, OSError, TimeoutError)),
        (WSServerHandshakeError, (WSError,)),
        (WSTimeoutError, (WSError, TimeoutError)),
        (ServerTimeoutError, (WSTimeoutError, WSError, TimeoutError)),
        (WSProtocolError, (WSError,)),
        (WSMessageTypeError, (WSError, TypeError)),
        (WSClosedError, (WSError,)),
    ],
)
def test_exception_bases(exc: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    """Every error is a WSError and also the stdlib error a caller would look for."""
    assert all(issubclass(exc, base) for base in bases)
    assert issubclass(WSError, Exception)


@pytest.mark.parametrize(
    ("exc", "not_a"),
    [
        (WSServerHandshakeError, OSError),
        (WSProtocolError, OSError),
        (WSClosedError, OSError),
        (ServerTimeoutError, WSConnectionError),  # (TimeoutError itself is an OSError)
        (WSTimeoutError, WSConnectionError),
        (InvalidURL, OSError),
        (WSConnectionError, TimeoutError),
    ],
)
def test_exception_tree_has_no_extra_bases(exc: type[Exception], not_a: type[Exception]) -> None:
    """Errors that are not connection failures are not OSErrors (and vice versa)."""
    assert not issubclass(exc, not_a)


def test_handshake_error_attributes() -> None:
    """WSServerHandshakeError carries status, headers and body; defaults are empty."""
    bare = WSServerHandshakeError("nope")
    assert (str(bare), bare.status, bare.headers, bare.body) == ("nope", 0, [], b"")
    exc = WSServerHandshakeError("no", status=403, headers=[("A", "b")], body=b"x")
    assert (exc.status, exc.headers, exc.body) == (403, [("A", "b")], b"x")


def test_redirect_and_proxy_error_attributes() -> None:
    """WSRedirectError is a WSServerHandshakeError with the chain; WSProxyError a
    WSConnectionError with the proxy, its status and headers. Defaults are empty."""
    bare = WSRedirectError("r")
    assert isinstance(bare, WSServerHandshakeError)
    assert (bare.status, bare.headers, bare.body, bare.chain) == (0, [], b"", [])
    proxy = WSProxyError("p")
    assert isinstance(proxy, WSConnectionError)
    assert (proxy.proxy, proxy.status, proxy.headers) == ("", 0, [])


def test_handshake_errors_do_not_share_a_headers_list() -> None:
    """The default headers list is fresh for each error."""
    a, b = WSServerHandshakeError("a"), WSServerHandshakeError("b")
    a.headers.append(("X", "y"))
    assert b.headers == []


def test_protocol_error_and_message_type_error_attributes() -> None:
    """WSProtocolError has the close code; WSMessageTypeError the message, if any."""
    assert WSProtocolError("bad", 1007).code == 1007
    msg = WSMessage(WSMsgType.BINARY, b"x", None)
    assert WSMessageTypeError("wrong", msg).msg is msg
    assert WSMessageTypeError("wrong").msg is None


@pytest.mark.parametrize(
    "exc",
    [
        WSServerHandshakeError("no", status=403, headers=[("A", "b")], body=b"x"),
        WSMessageTypeError("wrong", WSMessage(WSMsgType.BINARY, b"x", None)),
        WSClosedError("closed"),
        InvalidURL("bad url"),
        WSRedirectError("loop", status=301, headers=[("Location", "/a")], chain=["ws://a/"]),
        WSProxyError("refused", proxy="http://p:3128", status=407, headers=[("A", "b")]),
    ],
)
def test_errors_survive_pickle_and_copy(exc: Exception) -> None:
    """Errors pickle and copy with their message and attributes (e.g. across threads)."""
    for clone in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
        assert type(clone) is type(exc)
        assert (str(clone), vars(clone)) == (str(exc), vars(exc))


def test_protocol_error_survives_pickle_and_copy() -> None:
    """A WSProtocolError pickles and copies with its close code."""
    exc = WSProtocolError("bad", 1002)
    for clone in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
        assert (type(clone), str(clone), clone.code) == (WSProtocolError, "bad", 1002)
