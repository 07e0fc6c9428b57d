"""Proxies without I/O: URLs, the environment table, no_proxy, the CONNECT and SOCKS exchanges.

The same exchanges against a real proxy (pproxy) are in ``test_proxies.py``.
"""

from __future__ import annotations

import base64

import pytest
from socksio import socks5

from trio_ws import BasicAuth, ConnectOptions, InvalidArgument, WSProxyError
from trio_ws._proxy import (
    HttpTunnel,
    Proxy,
    SocksTunnel,
    bypasses,
    environment_proxy,
    parse_proxy,
    proxy_for,
)
from trio_ws._url import parse_url

# ---------------------------------------------------------------------------------------------
# proxy URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.example:3128", Proxy("http", "proxy.example", 3128)),
        ("http://proxy.example", Proxy("http", "proxy.example", 80)),
        ("https://proxy.example/", Proxy("https", "proxy.example", 443)),
        ("socks5://127.0.0.1", Proxy("socks5", "127.0.0.1", 1080)),
        ("SOCKS5H://[::1]:9050", Proxy("socks5h", "::1", 9050)),
        ("socks4://p:1", Proxy("socks4", "p", 1)),
        ("socks4a://Prøxy.example:1", Proxy("socks4a", "xn--prxy-hra.example", 1)),
        (
            "http://us%40er:p%3Ass@p:8",
            Proxy("http", "p", 8, BasicAuth("us@er", "p:ss")),
        ),
    ],
)
def test_proxy_urls(url: str, expected: Proxy) -> None:
    assert parse_proxy(url) == expected


def test_proxy_auth_replaces_the_urls_credentials() -> None:
    proxy = parse_proxy("http://a:b@p:1", auth=BasicAuth("c", "d"))
    assert proxy.auth == BasicAuth("c", "d")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://user:secret@p", "unsupported proxy scheme 'ftp' in 'ftp://p'"),
        ("http://user:secret@", "a proxy URL is scheme://[user:pass@]host[:port], not 'http://'"),
        ("http://user:secret@p/path", "not 'http://p/path'"),
        ("http://user:secret@p?x", "not 'http://p?x'"),
        ("http://user:secret@p:99999", "invalid proxy URL 'http://p:99999'"),
        ("http://user:secret@a..b", "invalid host name"),
        ("user:secret@p:8080", "unsupported proxy scheme"),
        ("http://us%3Aer:secret@p", "invalid credentials in the proxy URL 'http://p'"),
        ("no scheme", "'<not a URL>'"),
    ],
)
def test_bad_proxy_urls_never_show_credentials(url: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_proxy(url)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_proxy_repr_and_url_hide_credentials() -> None:
    proxy = parse_proxy("socks5://user:secret@[::1]:1080")
    assert proxy.url == "socks5://[::1]:1080"
    assert "secret" not in repr(proxy)
    assert repr(proxy) == "Proxy('socks5://[::1]:1080', auth='***', headers=0)"
    assert repr(parse_proxy("http://p:1")) == "Proxy('http://p:1', auth=None, headers=0)"


def test_options_repr_hides_proxy_credentials() -> None:
    options = ConnectOptions(
        proxy="http://user:secret@p:3128",
        proxy_auth=("a", "secret"),
        proxy_headers={"Proxy-Authorization": "Basic secret", "X-A": "shown"},
    )
    text = repr(options)
    assert "secret" not in text
    assert "'http://***@p:3128'" in text
    assert "shown" in text
    assert "proxy=None" in repr(ConnectOptions(proxy=None))


# ---------------------------------------------------------------------------------------------
# the environment


WS = parse_url("ws://app.example:8080/x")
WSS = parse_url("wss://app.example/x")


@pytest.mark.parametrize(
    ("target", "environ", "expected"),
    [
        (WS, {}, None),
        (WS, {"ws_proxy": "http://a:1", "http_proxy": "http://b:1"}, "http://a:1"),
        (WS, {"WS_PROXY": "http://a:1", "http_proxy": "http://b:1"}, "http://a:1"),
        (WS, {"ws_proxy": "http://a:1", "WS_PROXY": "http://b:1"}, "http://a:1"),
        (WS, {"http_proxy": "http://b:1", "all_proxy": "socks5://c:1"}, "http://b:1"),
        # Upper-case HTTP_PROXY is ignored (a CGI request's Proxy: header can set it).
        (WS, {"HTTP_PROXY": "http://b:1"}, None),
        (WS, {"HTTP_PROXY": "http://b:1", "ALL_PROXY": "socks5h://c:1"}, "socks5h://c:1"),
        (WS, {"https_proxy": "http://s:1"}, None),
        (WSS, {"https_proxy": "http://s:1", "http_proxy": "http://b:1"}, "http://s:1"),
        (WSS, {"HTTPS_PROXY": "http://s:1"}, "http://s:1"),
        (WSS, {"wss_proxy": "http://w:1", "https_proxy": "http://s:1"}, "http://w:1"),
        (WSS, {"ws_proxy": "http://w:1"}, None),
        (WSS, {"all_proxy": "socks5://c:1"}, "socks5://c:1"),
        (WS, {"http_proxy": "  "}, None),
        (WS, {"http_proxy": "proxy.corp:3128"}, "http://proxy.corp:3128"),
        (WS, {"http_proxy": "http://b:1", "no_proxy": "app.example"}, None),
        (WS, {"http_proxy": "http://b:1", "NO_PROXY": "*"}, None),
        (WS, {"http_proxy": "http://b:1", "no_proxy": "other.example"}, "http://b:1"),
        (parse_url("ws+unix://%2Fs/"), {"all_proxy": "http://b:1"}, None),
    ],
)
def test_environment_table(target: object, environ: dict[str, str], expected: str | None) -> None:
    assert environment_proxy(target, environ) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "no_proxy", "bypassed"),
    [
        ("ws://app.example/", "app.example", True),
        ("ws://APP.example/", "app.EXAMPLE", True),
        ("ws://api.app.example/", "app.example", True),
        ("ws://api.app.example/", ".app.example", True),
        ("ws://app.example/", ".app.example", True),
        ("ws://myapp.example/", "app.example", False),
        ("ws://app.example./", "app.example", True),
        ("ws://app.example/", "app.example.", True),
        ("ws://app.example:8080/", "app.example:8080", True),
        ("ws://app.example:8081/", "app.example:8080", False),
        ("wss://app.example/", "app.example:443", True),
        ("ws://app.example/", "other, app.example", True),
        ("ws://app.example/", "other app.example", True),
        ("ws://app.example/", "other,,", False),
        ("ws://app.example/", ".", False),
        ("ws://app.example/", "10.0.0.0/8", False),
        ("ws://10.1.2.3/", "10.0.0.0/8", True),
        ("ws://11.1.2.3/", "10.0.0.0/8", False),
        ("ws://10.1.2.3/", "10.1.2.3", True),
        ("ws://10.1.2.3/", "app.example", False),
        ("ws://[::1]:9/", "::1/128", True),
        ("ws://[::1]:9/", "[::1]:9", True),
        ("ws://[::1]:9/", "[::1]:10", False),
        ("ws://[::1]/", "[::1]", True),
        ("ws://faß.de/", "FASS.de", False),
        ("ws://faß.de/", "faß.de", True),
        ("ws://app.example/", "a..b", False),
        ("ws://x.example/", "*", True),
    ],
)
def test_no_proxy_rules(url: str, no_proxy: str, bypassed: bool) -> None:
    assert bypasses(parse_url(url), no_proxy) is bypassed


def test_remote_dns() -> None:
    assert [parse_proxy(f"{s}://p").remote_dns for s in ("socks5", "socks4")] == [False, False]
    assert all(parse_proxy(f"{s}://p").remote_dns for s in ("http", "https", "socks5h", "socks4a"))


def test_proxy_for_the_setting() -> None:
    environ = {"http_proxy": "http://env:1"}
    assert proxy_for(WS, True, environ) == Proxy("http", "env", 1)
    assert proxy_for(WS, None, environ) is None
    assert proxy_for(WS, False, environ) is None
    assert proxy_for(WSS, True, environ) is None
    given = proxy_for(WS, "socks5h://p:2", environ, auth=BasicAuth("a", "b"), headers=(("X", "1"),))
    assert given == Proxy("socks5h", "p", 2, BasicAuth("a", "b"), (("X", "1"),))
    assert proxy_for(parse_url("ws+unix://%2Fs/"), "http://p:1", environ) is None


def test_a_bad_proxy_variable_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="unsupported proxy scheme 'ftp'"):
        proxy_for(WS, True, {"http_proxy": "ftp://x"})


# ---------------------------------------------------------------------------------------------
# HTTP CONNECT


def tunnel(**kw: object) -> HttpTunnel:
    proxy = Proxy("http", "proxy", 3128, kw.pop("auth", None), kw.pop("headers", ()))  # type: ignore[arg-type]
    return HttpTunnel(proxy, "app.example", 443, **kw)  # type: ignore[arg-type]


def test_connect_request() -> None:
    request = tunnel(
        auth=BasicAuth("u", "p"), headers=(("X-Trace", "1"), ("host", "ignored")), user_agent="ua"
    ).request_bytes()
    assert request == (
        b"CONNECT app.example:443 HTTP/1.1\r\nHost: app.example:443\r\n"
        b"Proxy-Authorization: Basic " + base64.b64encode(b"u:p") + b"\r\n"
        b"User-Agent: ua\r\nX-Trace: 1\r\n\r\n"
    )
    ipv6 = HttpTunnel(Proxy("http", "p", 1), "::1", 9)
    assert ipv6.request_bytes().startswith(b"CONNECT [::1]:9 HTTP/1.1\r\nHost: [::1]:9\r\n")


def test_connect_request_with_an_unusable_header() -> None:
    with pytest.raises(InvalidArgument, match="unusable proxy_headers"):
        tunnel(headers=(("X-A", "a\r\nb"),))


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_connect_established(chunk: int) -> None:
    http = tunnel()
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n"
    answer += b"Connection: close\r\n\r\n"
    for i in range(0, len(answer), chunk):
        assert not http.done
        http.receive_data(answer[i : i + chunk])
    assert http.done
    assert http.result() == b""
    http.receive_data(b"ignored")
    assert http.result() == b""


def test_bytes_after_the_answer_are_the_tunnels() -> None:
    http = tunnel()
    http.receive_data(b"HTTP/1.1 200 OK\r\n\r\nearly")
    assert http.result() == b"early"


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b'Proxy-Authenticate: Basic realm="x"\r\n\r\n',
            407,
            "refused the tunnel: 407 Proxy Authentication Required",
        ),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403, "refused the tunnel: 403"),
        (b"HTTP/1.1 502 \r\n\r\n", 502, "refused the tunnel: 502 ("),
        (b"SSH-2.0-OpenSSH\r\n\r\n", 0, "answered something that is not HTTP"),
        (b"", 0, "closed the connection before answering CONNECT"),
    ],
)
def test_connect_refused(answer: bytes, status: int, message: str) -> None:
    http = tunnel()
    http.receive_data(answer)
    if answer:
        assert http.done
    else:
        assert http.done  # EOF at once
    with pytest.raises(WSProxyError) as info:
        http.result()
    exc = info.value
    assert message in str(exc)
    assert str(exc).startswith("the proxy http://proxy:3128 ")
    assert str(exc).endswith("(tunnel to app.example:443)")
    assert (exc.proxy, exc.status) == ("http://proxy:3128", status)
    if status == 407:
        assert ("Proxy-Authenticate", 'Basic realm="x"') in exc.headers


def test_connect_closed_in_the_middle_of_the_answer() -> None:
    http = tunnel()
    http.receive_data(b"HTTP/1.1 200 OK\r\nX-A")
    assert not http.done
    http.receive_data(b"")
    with pytest.raises(WSProxyError, match="closed the connection before answering CONNECT"):
        http.result()


# ---------------------------------------------------------------------------------------------
# SOCKS


def socks(scheme: str, host: str = "10.0.0.1", auth: BasicAuth | None = None) -> SocksTunnel:
    return SocksTunnel(Proxy(scheme, "proxy", 1080, auth), host, 443)


def socks5_reply(code: int = 0, atyp: bytes = b"\x01\x7f\x00\x00\x01") -> bytes:
    return b"\x05" + bytes([code]) + b"\x00" + atyp + b"\x01\xbb"


def run(tunnel: SocksTunnel, answers: list[bytes], chunk: int = 1000) -> list[bytes]:
    """Play the proxy's ``answers``, ``chunk`` bytes at a time; return what the client sent
    before each answer."""
    sent = []
    for answer in answers:
        sent.append(tunnel.data_to_send())
        for i in range(0, max(len(answer), 1), chunk):
            tunnel.receive_data(answer[i : i + chunk])
    return sent


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_socks5_without_auth(chunk: int) -> None:
    tunnel = socks("socks5h", "app.example")
    sent = run(tunnel, [b"\x05\x00", socks5_reply()], chunk)
    assert sent[0] == b"\x05\x01\x00"
    assert sent[1] == b"\x05\x01\x00\x03\x0bapp.example\x01\xbb"
    assert tunnel.done
    assert tunnel.result() == b""


@pytest.mark.parametrize(
    "atyp",
    [b"\x01\x7f\x00\x00\x01", b"\x04" + bytes(16), b"\x03\x04abcd"],
    ids=["ipv4", "ipv6", "name"],
)
def test_socks5_replies_with_every_address_type(atyp: bytes) -> None:
    tunnel = socks("socks5", "::1")
    sent = run(tunnel, [b"\x05\x00", socks5_reply(0, atyp) + b"extra"])
    assert sent[1] == b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x01\xbb"
    assert tunnel.result() == b"extra"


def test_socks5_with_auth() -> None:
    tunnel = socks("socks5", auth=BasicAuth("user", "pw"))
    sent = run(tunnel, [b"\x05\x02", b"\x01\x00", socks5_reply()])
    assert sent == [
        b"\x05\x01\x02",
        b"\x01\x04user\x02pw",
        b"\x05\x01\x00\x01\x0a\x00\x00\x01\x01\xbb",
    ]
    assert tunnel.done
    assert tunnel.result() == b""


@pytest.mark.parametrize(
    ("auth", "answers", "status", "message"),
    [
        (None, [b"\x05\xff"], 0xFF, "accepts none of our authentication methods"),
        (None, [b"\x05\x02"], 0xFF, "requires a username and password"),
        (None, [b"\x05\x01"], 0, "chose an authentication method we did not offer"),
        (BasicAuth("u", "p"), [b"\x05\x02", b"\x01\x01"], 1, "refused the username and password"),
        (None, [b"\x05\x00", socks5_reply(5)], 5, "refused the tunnel: connection refused"),
        (None, [b"\x05\x00", socks5_reply(0x2A)], 0x2A, "refused the tunnel: 0x2a"),
        (None, [b"\x05\x00", b"\x05\x00\x00\x07\x00"], 0, "answered something that is not SOCKS"),
        (None, [b"\x04\x00"], 0, "answered something that is not SOCKS"),
        (BasicAuth("u", "p"), [b"\x05\x02", b"\x05\x00"], 0, "not SOCKS"),
        (None, [b"\x05\x00", b""], 0, "closed the connection during the SOCKS handshake"),
        (None, [b""], 0, "closed the connection during the SOCKS handshake"),
    ],
)
def test_socks5_refusals(
    auth: BasicAuth | None, answers: list[bytes], status: int, message: str
) -> None:
    tunnel = socks("socks5", auth=auth)
    run(tunnel, answers)
    assert tunnel.done
    with pytest.raises(WSProxyError) as info:
        tunnel.result()
    assert message in str(info.value)
    assert (info.value.status, info.value.proxy) == (status, "socks5://proxy:1080")
    tunnel.receive_data(b"ignored")


def test_socks4_and_socks4a() -> None:
    tunnel = socks("socks4", "10.0.0.1", BasicAuth("me", ""))
    sent = run(tunnel, [b"\x00\x5a" + bytes(6)], 3)
    assert sent == [b"\x04\x01\x01\xbb\x0a\x00\x00\x01me\x00"]
    tunnel = socks("socks4", "10.0.0.1")
    assert run(tunnel, [b"\x00\x5a" + bytes(6)]) == [b"\x04\x01\x01\xbb\x0a\x00\x00\x01\x00"]
    assert tunnel.result() == b""
    tunnel = socks("socks4a", "app.example")
    sent = run(tunnel, [b"\x00\x5a" + bytes(6)])
    assert sent == [b"\x04\x01\x01\xbb\x00\x00\x00\x01\x00app.example\x00"]
    assert tunnel.done


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        (b"\x00\x5b" + bytes(6), 0x5B, "refused the tunnel: request rejected or failed"),
        (b"\x00\x5d" + bytes(6), 0x5D, "refused by identd"),
        (b"\x04\x5c" + bytes(6), 0x5C, "identd"),
        (b"\x00\x42" + bytes(6), 0, "answered something that is not SOCKS"),
        (b"\x05\x5a" + bytes(6), 0, "answered something that is not SOCKS"),
    ],
)
def test_socks4_refusals(reply: bytes, status: int, message: str) -> None:
    tunnel = socks("socks4")
    run(tunnel, [reply])
    with pytest.raises(WSProxyError, match=message) as info:
        tunnel.result()
    assert info.value.status == status


def test_socks4_cannot_carry_a_name_or_an_ipv6_address() -> None:
    for host in ("app.example", "::1"):
        with pytest.raises(WSProxyError, match="SOCKS4 cannot carry the address"):
            socks("socks4", host)


def test_socksio_reply_codes_are_what_we_name() -> None:
    """Our table and socksio agree on the codes (a socksio upgrade would show here)."""
    assert socks5.SOCKS5ReplyCode.CONNECTION_REFUSED.value == b"\x05"
