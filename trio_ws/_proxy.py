"""Proxies, without I/O: which proxy a connection uses, and the handshakes of its tunnel.

Theory of operation
-------------------

**Which proxy.** ``proxy=`` is a proxy URL, ``None``/``False`` (none), or ``True`` (the
default): the environment, read as curl and requests read it, per target (a redirect to
another host asks again):

=================  ============================================================================
URL scheme         variables, first set wins (each name in lower case first, then upper case)
=================  ============================================================================
``ws://``          ``ws_proxy``, ``http_proxy`` (lower case only, as curl: ``HTTP_PROXY``
                   can be set by a CGI request's ``Proxy:`` header), ``all_proxy``
``wss://``         ``wss_proxy``, ``https_proxy``, ``all_proxy``
=================  ============================================================================

``no_proxy`` (or ``NO_PROXY``) then exempts a target: a comma- or space-separated list of
``*`` (everything), host names (``example.com`` also covers its subdomains; a leading dot is
ignored), ``host:port`` (that port only), IP addresses and CIDR blocks (``10.0.0.0/8``,
``::1/128``). Names are compared case-insensitively, after IDNA. A Unix-socket target never
uses a proxy.

**Proxy URLs.** ``http://[user:pass@]host[:port]`` (HTTP ``CONNECT``, ``Proxy-Authorization:
Basic``), ``https://`` (the same, over TLS to the proxy), ``socks5://`` (the client resolves
the name), ``socks5h://`` (the proxy resolves it), ``socks4://`` (client-side DNS, IPv4 only)
and ``socks4a://`` (the proxy resolves). Default ports: 80, 443, and 1080 for SOCKS.
Credentials come from the URL or ``proxy_auth=`` (which wins); they never appear in a repr or
an error message.

**Tunnels.** :class:`HttpTunnel` is the ``CONNECT`` exchange on h11 (like the upgrade
itself): a 2xx opens the tunnel; anything else, an early close or a response that is not HTTP
is a :exc:`~trio_ws.WSProxyError` with the proxy's status and headers. :class:`SocksTunnel`
drives socksio (a sans-I/O SOCKS library, the one httpx's SOCKS support uses) through SOCKS 5
and 5h, and packs SOCKS 4 and 4a itself (9 bytes and a name; socksio 1.0 refuses the empty
user id those servers expect). socksio parses a reply only when given all of it, so this
module frames the replies (their lengths are in their first bytes). The I/O layer
(``_transport``) connects to the proxy, writes what these classes produce, feeds them what it
reads, and resolves names for ``socks4://`` and ``socks5://``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote, urlsplit

import attrs
import h11
from socksio import socks5
from socksio.exceptions import ProtocolError as SocksProtocolError

from ._errors import InvalidArgument, InvalidURL, WSProxyError
from ._types import BasicAuth
from ._url import Target, normalize_host

__all__ = [
    "HttpTunnel",
    "Proxy",
    "SocksTunnel",
    "bypasses",
    "environment_proxy",
    "parse_proxy",
    "proxy_for",
]

_DEFAULT_PORTS: Final = {
    "http": 80,
    "https": 443,
    "socks5": 1080,
    "socks5h": 1080,
    "socks4": 1080,
    "socks4a": 1080,
}
#: The most a CONNECT response head may take (as the upgrade's).
_MAX_HEAD: Final = 64 * 1024

Pairs = tuple[tuple[str, str], ...]


@attrs.frozen(repr=False)
class Proxy:
    """A proxy to tunnel through.

    Attributes:
        scheme: ``http``, ``https``, ``socks5``, ``socks5h``, ``socks4`` or ``socks4a``.
        host: the proxy's host name (IDNA) or IP address.
        port: the proxy's port.
        auth: credentials for the proxy (HTTP Basic; SOCKS5 username and password; SOCKS4
            sends the login as its user id).
        headers: extra headers of an HTTP proxy's ``CONNECT`` request.
    """

    scheme: str
    host: str
    port: int
    auth: BasicAuth | None = None
    headers: Pairs = ()

    @property
    def url(self) -> str:
        """The proxy's URL without credentials, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def remote_dns(self) -> bool:
        """The proxy resolves the target's name (else the client must)."""
        return self.scheme not in ("socks5", "socks4")

    def __repr__(self) -> str:
        auth = "None" if self.auth is None else "'***'"
        return f"Proxy({self.url!r}, auth={auth}, headers={len(self.headers)})"


def _redacted(url: str) -> str:
    """``url`` without its user information, for an error message."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else "<not a URL>"


def parse_proxy(url: str, *, auth: BasicAuth | None = None, headers: Pairs = ()) -> Proxy:
    """Read a proxy URL; ``auth`` replaces credentials in it.

    Raises:
        InvalidArgument: not a proxy URL of a supported scheme; the message never shows
            the credentials.
    """
    shown = _redacted(url)
    try:
        parts = urlsplit(url)
        port = parts.port
        raw_host = parts.hostname
    except ValueError:
        raise InvalidArgument(f"invalid proxy URL {shown!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidArgument(
            f"unsupported proxy scheme {parts.scheme!r} in {shown!r}: use http, https, socks5, "
            "socks5h, socks4 or socks4a"
        )
    if not raw_host or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(f"a proxy URL is scheme://[user:pass@]host[:port], not {shown!r}")
    try:
        host = normalize_host(raw_host, shown)
    except InvalidURL as exc:
        raise InvalidArgument(str(exc)) from None
    if auth is None and (parts.username or parts.password):
        try:
            auth = BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
        except InvalidArgument:
            raise InvalidArgument(f"invalid credentials in the proxy URL {shown!r}") from None
    return Proxy(scheme, host, port or _DEFAULT_PORTS[scheme], auth, headers)


def _variable(environ: Mapping[str, str], name: str, *, upper: bool = True) -> str | None:
    for key in (name, name.upper()) if upper else (name,):
        value = environ.get(key, "").strip()
        if value:
            return value
    return None


def environment_proxy(target: Target, environ: Mapping[str, str]) -> str | None:
    """The proxy URL the environment gives ``target`` (see the module docstring)."""
    if target.unix_path is not None:
        return None
    if target.secure:
        candidates = [("wss_proxy", True), ("https_proxy", True), ("all_proxy", True)]
    else:
        candidates = [("ws_proxy", True), ("http_proxy", False), ("all_proxy", True)]
    for name, upper in candidates:
        url = _variable(environ, name, upper=upper)
        if url is not None:
            no_proxy = _variable(environ, "no_proxy")
            if no_proxy is not None and bypasses(target, no_proxy):
                return None
            return url if "://" in url else f"http://{url}"  # curl's default scheme
    return None


def bypasses(target: Target, no_proxy: str) -> bool:
    """Whether an entry of ``no_proxy`` exempts ``target``."""
    host = target.host.rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        address = None
    for raw in no_proxy.replace(",", " ").split():
        entry = raw.strip().lower()
        if entry == "*":
            return True
        port = None
        if entry.startswith("["):  # [v6]:port
            name, _, rest = entry[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else None
            entry = name
        elif entry.count(":") == 1:
            entry, _, port = entry.partition(":")
        if port is not None and port != str(target.port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").rstrip(".")
        if not entry:
            continue
        try:
            entry = normalize_host(entry, no_proxy)
        except InvalidURL:
            continue
        if host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_for(
    target: Target,
    setting: bool | str | None,
    environ: Mapping[str, str],
    *,
    auth: BasicAuth | None = None,
    headers: Pairs = (),
) -> Proxy | None:
    """The proxy for ``target`` under the ``proxy=`` setting, or ``None``.

    Raises:
        InvalidArgument: the URL (given or from the environment) is unusable.
    """
    if setting is None or setting is False or target.unix_path is not None:
        return None
    url = environment_proxy(target, environ) if setting is True else setting
    if url is None:
        return None
    return parse_proxy(url, auth=auth, headers=headers)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpTunnel:
    """An HTTP ``CONNECT`` exchange with ``proxy`` for ``host:port``, on h11.

    Feed it what the proxy sends until :attr:`done`; then :meth:`result` gives the bytes that
    followed the proxy's answer (the tunnel's first bytes) or raises
    :exc:`~trio_ws.WSProxyError`.
    """

    def __init__(
        self, proxy: Proxy, host: str, port: int, *, user_agent: str | None = None
    ) -> None:
        self.proxy = proxy
        self._where = _authority(host, port)
        fields: list[tuple[str, str]] = [("Host", self._where)]
        if proxy.auth is not None:
            fields.append(("Proxy-Authorization", proxy.auth.encode()))
        if user_agent is not None:
            fields.append(("User-Agent", user_agent))
        names = {name.lower() for name, _ in fields}
        fields += [(k, v) for k, v in proxy.headers if k.lower() not in names]
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        try:
            request = h11.Request(method="CONNECT", target=self._where, headers=fields)
            self._request = self._h11.send(request) or b""
        except h11.LocalProtocolError as exc:
            raise InvalidArgument(f"unusable proxy_headers: {exc}") from None
        self.done = False
        self._error: WSProxyError | None = None
        self._trailing = b""

    def request_bytes(self) -> bytes:
        """The ``CONNECT`` request to send."""
        return self._request

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the proxy (``b""``: it closed the connection)."""
        if self.done:
            return
        self._h11.receive_data(bytes(data))
        try:
            event = self._h11.next_event()
            while isinstance(event, h11.InformationalResponse):
                event = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            if data:
                self._fail(f"answered something that is not HTTP ({exc})")
            else:
                self._fail("closed the connection before answering CONNECT")
            return
        if isinstance(event, h11.Response):
            headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
            ]
            if 200 <= event.status_code < 300:
                self.done = True
                self._trailing = self._h11.trailing_data[0]
                return
            reason = event.reason.decode("latin-1")
            self._fail(
                f"refused the tunnel: {event.status_code} {reason}".rstrip(),
                event.status_code,
                headers,
            )
        # Else h11 needs more of the answer.

    def result(self) -> bytes:
        """The bytes that followed the proxy's 2xx answer.

        Raises:
            WSProxyError: the proxy refused, closed early or answered garbage.
        """
        if self._error is not None:
            raise self._error
        assert self.done, "result() before done"
        return self._trailing

    def _fail(
        self, what: str, status: int = 0, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.done = True
        self._error = WSProxyError(
            f"the proxy {self.proxy.url} {what} (tunnel to {self._where})",
            proxy=self.proxy.url,
            status=status,
            headers=headers,
        )


_SOCKS5_ERRORS: Final = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}
_SOCKS4_CODES: Final = {
    0x5A: "request granted",
    0x5B: "request rejected or failed",
    0x5C: "the proxy cannot reach the client's identd",
    0x5D: "the user id was refused by identd",
}


class SocksTunnel:
    """A SOCKS 4, 4a, 5 or 5h ``CONNECT`` exchange with ``proxy`` for ``host:port``, on
    socksio. ``host`` is an IP address unless the proxy resolves names
    (:attr:`Proxy.remote_dns`).

    Write :meth:`data_to_send` and feed what the proxy sends until :attr:`done`; then
    :meth:`result` returns or raises :exc:`~trio_ws.WSProxyError`.
    """

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self.proxy = proxy
        self._where = _authority(host, port)
        self._address = (host, port)
        self._buffer = bytearray()
        self.done = False
        self._error: WSProxyError | None = None
        self._out = b""
        auth = proxy.auth
        if proxy.scheme.startswith("socks4"):
            # Packed here, not by socksio: socksio 1.0 refuses the empty user id that
            # SOCKS4 servers expect by default.
            self._socks5: socks5.SOCKS5Connection | None = None
            user_id = (auth.login if auth is not None else "").encode("utf-8")
            if proxy.scheme == "socks4a":
                address, name = b"\x00\x00\x00\x01", host.encode("ascii") + b"\x00"
            else:
                try:
                    address, name = ipaddress.IPv4Address(host).packed, b""
                except ValueError:
                    raise WSProxyError(
                        f"SOCKS4 cannot carry the address {self._where} (IPv4 only): use "
                        "socks4a:// or socks5h://",
                        proxy=proxy.url,
                    ) from None
            self._out = b"\x04\x01" + port.to_bytes(2, "big") + address + user_id + b"\x00" + name
            self._stage = "socks4"
            return
        self._socks5 = socks5.SOCKS5Connection()
        methods = [socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED]
        if auth is not None:
            methods = [socks5.SOCKS5AuthMethod.USERNAME_PASSWORD]
        self._socks5.send(socks5.SOCKS5AuthMethodsRequest(methods))
        self._stage = "method"

    def data_to_send(self) -> bytes:
        """What to write to the proxy now (may be empty)."""
        out = self._out
        self._out = b""
        if self._socks5 is not None:
            out += self._socks5.data_to_send()
        return out

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the proxy (``b""``: it closed the connection)."""
        if self.done:
            return
        if not data:
            self._fail("closed the connection during the SOCKS handshake (refused?)")
            return
        self._buffer += data
        try:
            while not self.done and self._step():
                pass
        except (SocksProtocolError, ValueError, IndexError):
            self._fail("answered something that is not SOCKS")

    def result(self) -> bytes:
        """Bytes that followed the proxy's last reply (the tunnel's first bytes).

        Raises:
            WSProxyError: the proxy refused, closed early or answered garbage.
        """
        if self._error is not None:
            raise self._error
        assert self.done, "result() before done"
        return bytes(self._buffer)

    # ----------------------------------------------------------------------------------------

    def _take(self, size: int) -> bytes | None:
        if len(self._buffer) < size:
            return None
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _step(self) -> bool:
        """Handle one complete reply if it has arrived; ``True`` if one was handled."""
        stage = self._stage
        if stage == "socks4":
            reply = self._take(8)
            if reply is None:
                return False
            if reply[0] not in (0, 4) or reply[1] not in _SOCKS4_CODES:
                raise SocksProtocolError("not a SOCKS4 reply")
            if reply[1] == 0x5A:  # request granted
                self.done = True
            else:
                self._fail(f"refused the tunnel: {_SOCKS4_CODES[reply[1]]}", reply[1])
            return True
        conn = self._socks5
        assert conn is not None
        if stage in ("method", "password"):
            reply = self._take(2)
            if reply is None:
                return False
            if reply[0] != (5 if stage == "method" else 1):
                raise SocksProtocolError("wrong version")
            if stage == "method":
                if reply[1] == 0xFF:
                    self._fail("accepts none of our authentication methods", 0xFF)
                    return True
                method = conn.receive_data(reply)
                assert isinstance(method, socks5.SOCKS5AuthReply)
                if method.method is socks5.SOCKS5AuthMethod.USERNAME_PASSWORD:
                    auth = self.proxy.auth
                    if auth is None:
                        self._fail("requires a username and password", 0xFF)
                        return True
                    conn.send(
                        socks5.SOCKS5UsernamePasswordRequest(
                            auth.login.encode(), auth.password.encode()
                        )
                    )
                    self._stage = "password"
                    return True
                if method.method is not socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED:
                    self._fail("chose an authentication method we did not offer")
                    return True
            elif not conn.receive_data(reply).success:  # type: ignore[union-attr]
                self._fail("refused the username and password", 0x01)
                return True
            conn.send(
                socks5.SOCKS5CommandRequest.from_address(
                    socks5.SOCKS5Command.CONNECT, self._address
                )
            )
            self._stage = "connect"
            return True
        # The CONNECT reply: VER REP RSV ATYP, the bound address, 2 bytes of port.
        if len(self._buffer) < 5:
            return False
        atyp = self._buffer[3]
        size = {1: 4, 4: 16}.get(atyp, 1 + self._buffer[4] if atyp == 3 else -1)
        if size < 0:
            raise SocksProtocolError("unknown address type")
        reply = self._take(4 + size + 2)
        if reply is None:
            return False
        status = reply[1]
        if status:
            self._fail(f"refused the tunnel: {_SOCKS5_ERRORS.get(status, hex(status))}", status)
            return True
        conn.receive_data(reply)  # checks the rest of the reply
        self.done = True
        return True

    def _fail(self, what: str, status: int = 0) -> None:
        self.done = True
        self._error = WSProxyError(
            f"the proxy {self.proxy.url} {what} (tunnel to {self._where})",
            proxy=self.proxy.url,
            status=status,
        )
