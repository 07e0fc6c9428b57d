"""Parsing and validating WebSocket URLs into a frozen Target."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from trio_ws import BasicAuth, InvalidArgument, InvalidURL
from trio_ws._url import Target, parse_url, resolve_redirect


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("ws://example.com", Target("example.com", 80, "/", False)),
        ("wss://example.com", Target("example.com", 443, "/", True)),
        ("http://example.com/", Target("example.com", 80, "/", False)),
        ("https://example.com/", Target("example.com", 443, "/", True)),
        ("WSS://Example.COM/Path", Target("example.com", 443, "/Path", True)),
        ("ws://example.com:8080/a/b", Target("example.com", 8080, "/a/b", False)),
        ("wss://example.com:80/", Target("example.com", 80, "/", True)),
        ("ws://example.com:/", Target("example.com", 80, "/", False)),
        ("ws://example.com:65535/", Target("example.com", 65535, "/", False)),
        ("ws://127.0.0.1:9001/", Target("127.0.0.1", 9001, "/", False)),
        ("ws://[::1]/", Target("::1", 80, "/", False)),
        ("wss://[2001:DB8:0::1]:8443/x", Target("2001:db8::1", 8443, "/x", True)),
        ("ws://[::ffff:192.0.2.1]/", Target("::ffff:c000:201", 80, "/", False)),
        ("ws://bücher.example/", Target("xn--bcher-kva.example", 80, "/", False)),
        ("ws://BÜCHER.example/", Target("xn--bcher-kva.example", 80, "/", False)),
        ("ws://xn--bcher-kva.example/", Target("xn--bcher-kva.example", 80, "/", False)),
        ("ws://localhost?x=1", Target("localhost", 80, "/?x=1", False)),
    ],
)
def test_parse_url(url: str, target: Target) -> None:
    """Schemes map to secure or not, default ports apply, hosts are normalized."""
    assert parse_url(url) == target


@pytest.mark.parametrize(
    ("url", "resource"),
    [
        ("ws://h/chat", "/chat"),
        ("ws://h/a%20b", "/a%20b"),
        ("ws://h/ü", "/%C3%BC"),
        ("ws://h/a%2Fb", "/a%2Fb"),
        ('ws://h/<x>"{}|^`', "/%3Cx%3E%22%7B%7D%7C%5E%60"),
        ("ws://h/:@!$&'()*+,;=-._~", "/:@!$&'()*+,;=-._~"),
        ("ws://h/p?q=ü&r=a/b?c", "/p?q=%C3%BC&r=a/b?c"),
        ("ws://h/p?q=%26", "/p?q=%26"),
        ("ws://h/p?", "/p"),
        ("ws://h/p;params", "/p;params"),
    ],
)
def test_resource_is_quoted(url: str, resource: str) -> None:
    """Path and query are percent-encoded where needed; existing escapes are kept."""
    assert parse_url(url).resource == resource


@pytest.mark.parametrize(
    ("url", "params", "resource"),
    [
        ("ws://h/p", {"a": "1", "b": "x y"}, "/p?a=1&b=x+y"),
        ("ws://h/p?x=0", {"a": "1"}, "/p?x=0&a=1"),
        ("ws://h/p?x=0", [("a", "1"), ("a", "2")], "/p?x=0&a=1&a=2"),
        ("ws://h/p", [("k", "&=?#")], "/p?k=%26%3D%3F%23"),
        ("ws://h/p?x=0", {}, "/p?x=0"),
        ("ws://h/p", [], "/p"),
        ("ws://h/p", (("a", "ü"),), "/p?a=%C3%BC"),
    ],
)
def test_params_are_merged_into_the_query(url: str, params: Any, resource: str) -> None:
    """params (a mapping or pairs) are url-encoded and appended to the URL's own query."""
    assert parse_url(url, params).resource == resource


@pytest.mark.parametrize(
    ("url", "credentials"),
    [
        ("ws://user:pass@h/", BasicAuth("user", "pass")),
        ("ws://user@h/", BasicAuth("user", "")),
        ("ws://:secret@h/", BasicAuth("", "secret")),
        ("ws://us%40er:p%3Aa%20ss@h/", BasicAuth("us@er", "p:a ss")),
        ("ws://%C3%BC:%C3%A9@h/", BasicAuth("ü", "é")),
        ("ws://h/", None),
    ],
)
def test_credentials_are_percent_decoded(url: str, credentials: BasicAuth | None) -> None:
    """user:pass@ in the URL becomes BasicAuth, percent-decoded; they never reach the resource."""
    target = parse_url(url)
    assert target.credentials == credentials
    assert (target.host, target.resource) == ("h", "/")


def test_colon_in_decoded_user_name_is_an_invalid_url() -> None:
    """A user name that decodes to contain ':' makes the URL invalid."""
    with pytest.raises(InvalidURL):
        parse_url("ws://us%3Aer:pw@h/")


def test_ipv6_zone_id_is_percent_decoded() -> None:
    """A link-local address with a zone ID names the interface after '%25'."""
    assert parse_url("ws://[fe80::1%25eth0]/").host == "fe80::1%eth0"


@pytest.mark.parametrize(
    ("url", "host_header", "without_credentials"),
    [
        ("ws://h/", "h", "ws://h/"),
        ("ws://u:p@h:80/x?y", "h", "ws://h/x?y"),
        ("wss://h:443/", "h", "wss://h/"),
        ("ws://h:443/", "h:443", "ws://h:443/"),
        ("https://h:8443/", "h:8443", "wss://h:8443/"),
        ("ws://[::1]:9000/", "[::1]:9000", "ws://[::1]:9000/"),
        ("wss://[::1]/", "[::1]", "wss://[::1]/"),
    ],
)
def test_host_header_and_url(url: str, host_header: str, without_credentials: str) -> None:
    """host_header has the port only if not the default; url drops the credentials."""
    target = parse_url(url)
    assert (target.host_header, target.url) == (host_header, without_credentials)


def test_target_is_frozen() -> None:
    """A Target cannot be changed after parsing."""
    target = parse_url("ws://h/")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        target.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (b"ws://h/", "must be a str, not bytes"),
        (None, "must be a str, not NoneType"),
        ("ftp://h/", "unsupported URL scheme 'ftp'"),
        ("h/path", "unsupported URL scheme ''"),
        ("//h/path", "unsupported URL scheme ''"),
        ("ftp+unix://h/", "unsupported URL scheme"),
        ("ws+unix:///chat", "the socket's percent-encoded path as its host"),
        ("ws+unix://%2Ftmp%2Fs:80/chat", "the socket's percent-encoded path as its host"),
        ("ws://a..b/", "invalid host name"),
        ("ws://" + "a" * 64 + ".example/", "invalid host name"),
        ("ws://a\u200db.example/", "invalid host name"),
        ("ws:///path", "has no host"),
        ("ws://", "has no host"),
        ("ws://:80/", "has no host"),
        ("ws://user@/", "has no host"),
        ("ws://h/#frag", "must not contain a fragment"),
        ("ws://h/#", "must not contain a fragment"),
        ("ws://h:65536/", "invalid URL"),
        ("ws://h:99999/", "invalid URL"),
        ("ws://h:-1/", "invalid URL"),
        ("ws://h:abc/", "invalid URL"),
        ("ws://h:0/", "port 0 is not a valid port"),
        ("ws://[::1/", "invalid URL"),
        ("ws://[not-an-ip]/", "invalid URL"),
        ("ws://h/a b", "white space or control characters"),
        ("ws://h/\tb", "white space or control characters"),
        ("ws://h/\r\nHost: evil", "white space or control characters"),
        ("ws://h\x00.example/", "white space or control characters"),
        ("ws://h/\x7f", "white space or control characters"),
        (" ws://h/", "white space or control characters"),
        ("ws://ex%41mple.com/", "invalid host name"),
        ("ws://.example.com/", "invalid host name"),
        ("ws://a\\b/", "invalid host name"),
    ],
)
def test_invalid_urls_raise_invalid_url(url: Any, message: str) -> None:
    """Wrong type, scheme, host, port, a fragment or control characters raise InvalidURL."""
    with pytest.raises(InvalidURL, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_url(url)


def test_invalid_url_is_a_value_error() -> None:
    """InvalidURL is an InvalidArgument and a ValueError, with the cause chained."""
    with pytest.raises(ValueError, match="invalid URL") as info:
        parse_url("ws://h:99999/")
    assert isinstance(info.value, InvalidArgument)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        # IDNA 2008 (UTS 46), not Python's IDNA 2003 codec, which gives fass.de.
        ("ws://faß.de/", "xn--fa-hia.de"),
        ("ws://FASS.de/", "fass.de"),
        ("ws://ÖBB.at/", "xn--bb-eka.at"),
        ("ws://example.com./", "example.com."),
    ],
)
def test_international_host_names_use_idna_2008(url: str, host: str) -> None:
    assert parse_url(url).host == host


def test_unix_socket_urls() -> None:
    """ws+unix:// has the socket's percent-encoded path where the host would be."""
    target = parse_url("ws+unix://%2Ftmp%2Fapp.sock/chat?x=1")
    assert target == Target("localhost", 80, "/chat?x=1", False, None, "/tmp/app.sock")
    assert target.host_header == "localhost"
    assert target.url == "ws+unix://%2Ftmp%2Fapp.sock/chat?x=1"
    secure = parse_url("wss+unix://rel.sock")
    assert (secure.secure, secure.port, secure.unix_path, secure.resource) == (
        True,
        443,
        "rel.sock",
        "/",
    )


@pytest.mark.parametrize(
    ("base", "location", "url"),
    [
        ("ws://a.example/x/y?q", "/z", "ws://a.example/z"),
        ("ws://a.example/x/y", "z?w=1", "ws://a.example/x/z?w=1"),
        ("wss://a.example:8443/x", "//b.example/p", "wss://b.example/p"),
        ("ws://a.example/", "https://b.example/p", "wss://b.example/p"),
        ("ws://a.example/", " wss://b.example/p ", "wss://b.example/p"),
        ("ws+unix://%2Fs/x", "/y", "ws+unix://%2Fs/y"),
        ("ws+unix://%2Fs/x", "ws://localhost/y", "ws+unix://%2Fs/y"),
        ("ws+unix://%2Fs/x", "ws://other/y", "ws://other/y"),
    ],
)
def test_redirect_locations_resolve_against_the_current_url(
    base: str, location: str, url: str
) -> None:
    assert resolve_redirect(parse_url(base), location).url == url


def test_a_redirect_location_that_is_no_websocket_url_is_invalid() -> None:
    with pytest.raises(InvalidURL, match="unsupported URL scheme 'ftp'"):
        resolve_redirect(parse_url("ws://a/"), "ftp://b/")


def test_a_url_parsed_twice_is_parsed_once_and_params_do_not_stick() -> None:
    """Connections to one URL share its frozen Target; params make a new one each time."""
    url = "ws://example.com/feed?x=1"
    first = parse_url(url)
    assert parse_url(url) is first
    with_params = parse_url(url, {"token": "a b"})
    assert with_params.resource == "/feed?x=1&token=a+b"
    assert parse_url("ws://example.com/feed", [("token", "t")]).resource == "/feed?token=t"
    assert parse_url("ws://example.com/feed", {}).resource == "/feed"
    assert parse_url(url).resource == "/feed?x=1"
