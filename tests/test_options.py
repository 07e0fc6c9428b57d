"""The options of open_ws/connect_ws: one frozen ConnectOptions, one WSOptions TypedDict.

The first tests hold the places an option is written in to each other (the class fields, the
TypedDict keys, the docstring, the public signatures), so that they cannot drift apart. The
rest check each option's check and normalisation without I/O.
"""

from __future__ import annotations

import inspect
import math
import pathlib
import re
import ssl
import sys
import typing
from typing import Any, Unpack

import attrs
import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import BasicAuth, ClientWSTimeout, ConnectOptions, InvalidArgument, WSOptions
from trio_ws._options import make_options

from .servers import refused_port

FIELDS = [field.name for field in attrs.fields(ConnectOptions)]


# ---------------------------------------------------------------------------------------------
# the places an option is written in agree


def test_typeddict_keys_are_the_fields_in_the_same_order() -> None:
    """WSOptions has exactly ConnectOptions' fields as keys, in the same order."""
    assert list(typing.get_type_hints(WSOptions)) == FIELDS
    assert WSOptions.__required_keys__ == frozenset()


@pytest.mark.parametrize("name", FIELDS)
def test_typeddict_type_is_what_the_class_accepts(name: str) -> None:
    """A key's type in WSOptions is what ConnectOptions() accepts for it (a converter's input)."""
    accepted = inspect.signature(ConnectOptions).parameters[name]
    assert accepted.kind is inspect.Parameter.KEYWORD_ONLY
    assert typing.get_type_hints(WSOptions)[name] == accepted.annotation


@pytest.mark.parametrize("name", FIELDS)
def test_every_default_is_accepted_again(name: str) -> None:
    """A field's (normalised) value is a valid input: attrs.evolve round-trips the defaults."""
    options = ConnectOptions()
    assert attrs.evolve(options, **{name: getattr(options, name)}) == options


def test_docstring_documents_every_option_once_in_order() -> None:
    """The Attributes section of ConnectOptions names exactly its fields, in order."""
    doc = inspect.getdoc(ConnectOptions)
    assert doc is not None
    section = doc.split("Attributes:\n", 1)[1]
    assert re.findall(r"^    (\w+): ", section, flags=re.MULTILINE) == FIELDS


@pytest.mark.parametrize(
    ("function", "named"),
    [
        pytest.param(trio_ws.open_ws, ["url", "stream"], id="open_ws"),
        pytest.param(trio_ws.connect_ws, ["nursery", "url", "stream"], id="connect_ws"),
    ],
)
def test_public_functions_take_the_options_only_as_typed_kwargs(
    function: Any, named: list[str]
) -> None:
    """open_ws/connect_ws spell no option out in their code: only
    ``**options: Unpack[WSOptions]`` (their ``__signature__`` is generated, see below)."""
    code = function.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    assert [*names, code.co_varnames[len(names)]] == [*named, "options"]
    assert code.co_flags & inspect.CO_VARKEYWORDS
    hints = typing.get_type_hints(function)
    assert hints["options"] == Unpack[WSOptions]


@pytest.mark.parametrize(
    ("function", "named"),
    [
        pytest.param(trio_ws.open_ws, ["url", "stream"], id="open_ws"),
        pytest.param(trio_ws.connect_ws, ["nursery", "url", "stream"], id="connect_ws"),
    ],
)
def test_signatures_show_every_option_with_its_default(function: Any, named: list[str]) -> None:
    """help(), inspect.signature() and tools that read it see each option by name, as a
    keyword-only parameter with the default and type of ConnectOptions."""
    params = inspect.signature(function).parameters
    fields = attrs.fields(ConnectOptions)
    assert list(params) == [*named, *(field.name for field in fields)]
    defaults = ConnectOptions()
    for field in fields:
        param = params[field.name]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY
        assert param.default == getattr(defaults, field.name)
        assert param.annotation == field.type


def test_defaults() -> None:
    """The defaults are those DESIGN §1 and aiohttp promise."""
    options = ConnectOptions()
    assert attrs.asdict(options, recurse=False) == {
        "protocols": (),
        "headers": (),
        "origin": None,
        "params": (),
        "auth": None,
        "ssl": True,
        "server_hostname": None,
        "unix_socket": None,
        "user_agent": f"trio_ws/{trio_ws.__version__} Python/{sys.version_info.major}"
        f".{sys.version_info.minor}",
        "proxy": True,
        "proxy_auth": None,
        "proxy_headers": (),
        "max_redirects": 10,
        "timeout": trio_ws.DEFAULT_WS_CLIENT_TIMEOUT,
        "connect_timeout": 10.0,
        "autoclose": True,
        "autoping": True,
        "heartbeat": None,
        "compress": 0,
        "client_notakeover": False,
        "max_msg_size": 4 * 1024 * 1024,
        "max_fragments": 100_000,
        "decode_text": True,
        "max_queue": 1024,
        "max_queue_bytes": 1024 * 1024,
        "write_limit": 64 * 1024,
        "max_frame_size": 64 * 1024,
        "http2": False,
        "logger": None,
    }


def test_unix_socket_takes_a_path_like() -> None:
    assert ConnectOptions(unix_socket=pathlib.Path("/run/app.sock")).unix_socket == "/run/app.sock"


def test_options_are_frozen() -> None:
    """A ConnectOptions cannot be changed, only evolved (which checks again)."""
    options = ConnectOptions(heartbeat=5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.heartbeat = 6  # type: ignore[misc]
    with pytest.raises(InvalidArgument, match="heartbeat"):
        attrs.evolve(options, heartbeat=-1)


# ---------------------------------------------------------------------------------------------
# normalisation


def test_protocols_become_a_tuple_and_a_lone_str_is_one() -> None:
    """protocols= is kept as a tuple; a lone str is one subprotocol, not its letters."""
    assert ConnectOptions(protocols=["chat", "v2"]).protocols == ("chat", "v2")
    assert ConnectOptions(protocols="chat").protocols == ("chat",)


@pytest.mark.parametrize("name", ["headers", "params"])
def test_pairs_become_a_reusable_tuple(name: str) -> None:
    """A mapping, a list or a one-shot iterator of pairs is kept as a tuple of pairs."""
    expected = (("A", "1"), ("b", "2"))
    values: list[Any] = [{"A": "1", "b": "2"}, [("A", "1"), ["b", "2"]], iter(expected), None]
    built = [getattr(ConnectOptions(**{name: value}), name) for value in values]
    assert built == [expected, expected, expected, ()]


def test_auth_tuple_becomes_basic_auth() -> None:
    """auth=(login, password) is kept as a BasicAuth, with its own check of the login."""
    assert ConnectOptions(auth=("user", "pw")).auth == BasicAuth("user", "pw")
    with pytest.raises(InvalidArgument, match="must not contain"):
        ConnectOptions(auth=("a:b", "pw"))


def test_repr_hides_credentials() -> None:
    """The repr shows neither the password nor Authorization/Cookie header values (§5)."""
    text = repr(
        ConnectOptions(
            auth=("user", "s3cret"),
            headers={"Authorization": "Bearer t0ken", "cookie": "id=c00kie", "X-Other": "shown"},
        )
    )
    assert "user" in text
    assert "shown" in text
    for secret in ("s3cret", "t0ken", "c00kie"):
        assert secret not in text


# ---------------------------------------------------------------------------------------------
# checks


SECONDS = "must be a positive number of seconds or None, not"
LIMIT = "must be an int >= 0 (0 = no limit), not"
COMPRESS = "compress must be 0 (off) or 9..15, not"
SSL = "ssl must be True, False or an ssl.SSLContext, not"
FLAG = "must be True or False, not"
PAIRS = "must be a mapping or (name, value) pairs, not"
PROTOCOLS = "protocols must be a sequence of str, not"
AUTH = "auth must be a BasicAuth, a (login, password) tuple of str or None, not"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"connect_timeout": 0}, f"connect_timeout {SECONDS} 0"),
        ({"connect_timeout": -1.5}, f"connect_timeout {SECONDS} -1.5"),
        ({"connect_timeout": math.nan}, f"connect_timeout {SECONDS} nan"),
        ({"connect_timeout": True}, f"connect_timeout {SECONDS} True"),
        ({"connect_timeout": "10"}, f"connect_timeout {SECONDS} '10'"),
        ({"heartbeat": math.nan}, f"heartbeat {SECONDS} nan"),
        ({"heartbeat": 0}, f"heartbeat {SECONDS} 0"),
        ({"heartbeat": False}, f"heartbeat {SECONDS} False"),
        ({"max_msg_size": -1}, f"max_msg_size {LIMIT} -1"),
        ({"max_msg_size": 1.5}, f"max_msg_size {LIMIT} 1.5"),
        ({"max_msg_size": True}, f"max_msg_size {LIMIT} True"),
        ({"max_fragments": -1}, f"max_fragments {LIMIT} -1"),
        ({"max_fragments": None}, f"max_fragments {LIMIT} None"),
        ({"compress": 8}, f"{COMPRESS} 8"),
        ({"compress": 16}, f"{COMPRESS} 16"),
        ({"compress": True}, f"{COMPRESS} True"),
        ({"compress": 15.0}, f"{COMPRESS} 15.0"),
        ({"ssl": "yes"}, f"{SSL} 'yes'"),
        ({"ssl": None}, f"{SSL} None"),
        ({"timeout": 10}, "timeout must be a ClientWSTimeout, not int"),
        ({"timeout": None}, "timeout must be a ClientWSTimeout, not NoneType"),
        ({"autoclose": 1}, f"autoclose {FLAG} 1"),
        ({"autoping": None}, f"autoping {FLAG} None"),
        ({"client_notakeover": "yes"}, f"client_notakeover {FLAG} 'yes'"),
        ({"decode_text": 0}, f"decode_text {FLAG} 0"),
        ({"origin": b"http://a"}, "origin must be a str or None, not b'http://a'"),
        ({"server_hostname": 1}, "server_hostname must be a str or None, not 1"),
        ({"protocols": ["chat", 1]}, f"{PROTOCOLS} ['chat', 1]"),
        ({"protocols": b"chat"}, f"{PROTOCOLS} b'chat'"),
        ({"protocols": None}, f"{PROTOCOLS} None"),
        ({"headers": "X-A: 1"}, f"headers {PAIRS} 'X-A: 1'"),
        (
            {"headers": [("X-A", "1", "2")]},
            "headers must be (str, str) pairs, not ('X-A', '1', '2')",
        ),
        ({"headers": {"X-A": 1}}, "headers must be (str, str) pairs, not ('X-A', 1)"),
        ({"headers": {b"X-A": "1"}}, "headers must be (str, str) pairs, not (b'X-A', '1')"),
        ({"params": 1}, f"params {PAIRS} 1"),
        ({"params": [("a", None)]}, "params must be (str, str) pairs, not ('a', None)"),
        ({"auth": "user:pass"}, f"{AUTH} str"),
        ({"auth": ("user",)}, f"{AUTH} tuple"),
        ({"user_agent": 1}, "user_agent must be a str or None, not 1"),
        ({"max_queue": 0}, "max_queue must be an int >= 1, not 0"),
        ({"max_queue_bytes": 1.5}, "max_queue_bytes must be an int >= 1, not 1.5"),
        ({"write_limit": True}, "write_limit must be an int >= 1, not True"),
        (
            {"logger": "trio_ws"},
            "logger must be a logging.Logger, a logging.LoggerAdapter or None, not str",
        ),
        (
            {"proxy": 1},
            "proxy must be a proxy URL, True (the environment), False or None, not int",
        ),
        (
            {"proxy": "ftp://u:secret@p:21"},
            "unsupported proxy scheme 'ftp' in 'ftp://p:21': use http, https, socks5, socks5h, "
            "socks4 or socks4a",
        ),
        ({"proxy_auth": "u:p"}, f"proxy_{AUTH} str"),
        ({"proxy_headers": "X: 1"}, f"proxy_headers {PAIRS} 'X: 1'"),
        ({"max_redirects": -1}, "max_redirects must be an int >= 0 (0 = none), not -1"),
        ({"max_redirects": True}, "max_redirects must be an int >= 0 (0 = none), not True"),
        ({"unix_socket": ""}, "unix_socket must be a path (str or os.PathLike) or None, not ''"),
        ({"unix_socket": 3}, "unix_socket must be a path (str or os.PathLike) or None, not 3"),
        (
            {"unix_socket": b"/s"},
            "unix_socket must be a path (str or os.PathLike) or None, not b'/s'",
        ),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_bad_value_raises_invalid_argument_naming_option_and_value(
    options: dict[str, Any], message: str
) -> None:
    """An unusable value raises InvalidArgument (a ValueError) naming the option and value."""
    with pytest.raises(InvalidArgument) as info:
        ConnectOptions(**options)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == message


def test_bad_auth_message_hides_the_value() -> None:
    """A wrongly shaped auth= is refused without echoing what may be a password."""
    with pytest.raises(InvalidArgument) as info:
        ConnectOptions(auth=["user", "s3cret"])  # type: ignore[arg-type]
    assert "s3cret" not in str(info.value)
    assert "list" in str(info.value)


@pytest.mark.parametrize(
    "options",
    [
        {"connect_timeout": None, "heartbeat": None},
        {"connect_timeout": 0.001, "heartbeat": 1},
        {"max_msg_size": 0, "max_fragments": 0},
        {"compress": 9, "client_notakeover": True},
        {"compress": 15},
        {"ssl": False},
        {"ssl": ssl.create_default_context()},
        {"timeout": ClientWSTimeout(ws_receive=1)},
        {"auth": BasicAuth("u", "p", encoding="utf-8")},
        {"protocols": ()},
    ],
    ids=repr,
)
def test_good_values_are_kept(options: dict[str, Any]) -> None:
    """Usable values pass unchanged."""
    built = ConnectOptions(**options)
    assert {name: getattr(built, name) for name in options} == options


# ---------------------------------------------------------------------------------------------
# through open_ws / connect_ws, before any I/O


async def test_unknown_option_raises_type_error_naming_it() -> None:
    """A misspelled option raises TypeError naming it, with a suggestion, before connecting."""
    bad: dict[str, Any] = {"protocol": ["chat"]}
    with (
        trio.fail_after(5),
        pytest.raises(TypeError, match=r"'protocol'; did you mean 'protocols'"),
    ):
        async with trio_ws.open_ws(f"ws://127.0.0.1:{refused_port()}/", **bad):
            pass  # pragma: no cover
    async with trio.open_nursery() as nursery:
        with pytest.raises(TypeError, match=r"unexpected keyword argument 'x_y_z'$"):
            await trio_ws.connect_ws(nursery, "ws://127.0.0.1/", x_y_z=1)  # type: ignore[call-arg]


async def test_stream_that_is_not_a_stream_raises_invalid_argument() -> None:
    """stream= (a parameter of its own, not an option) must be a trio.abc.Stream."""
    async with trio.open_nursery() as nursery:
        with pytest.raises(
            InvalidArgument, match=r"^stream must be a trio.abc.Stream or None, not 1$"
        ):
            await trio_ws.connect_ws(nursery, "ws://t/", stream=1)  # type: ignore[arg-type]


async def test_bad_option_with_a_stream_sends_nothing_and_leaves_it_open() -> None:
    """A bad option is refused before the first byte: the given stream sees no request."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        with pytest.raises(InvalidArgument, match="heartbeat"):
            await trio_ws.connect_ws(nursery, "ws://t/", stream=client_stream, heartbeat=-1)
    with trio.move_on_after(0) as scope:
        await server_stream.receive_some()
    assert scope.cancelled_caught


def test_the_same_options_are_checked_once() -> None:
    """Hashable options give one shared frozen object; the value's type is part of the key;
    options with an unhashable value are checked every time."""
    first = make_options({"heartbeat": 5, "max_msg_size": 1024})
    assert make_options({"max_msg_size": 1024, "heartbeat": 5}) is first
    assert make_options({"heartbeat": 5.0, "max_msg_size": 1024}) is not first
    with_dict = make_options({"headers": {"X-A": "1"}})
    assert make_options({"headers": {"X-A": "1"}}) is not with_dict
    assert make_options({"headers": {"X-A": "1"}}) == with_dict
