"""Parse and validate WebSocket URLs (RFC 6455 §3) into a frozen :class:`Target`."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

import attrs
import idna

from ._errors import InvalidArgument, InvalidURL
from ._types import BasicAuth

__all__ = ["Target", "normalize_host", "parse_url", "resolve_redirect"]

_SCHEMES: Final = {"ws": False, "wss": True, "http": False, "https": True}
#: ``ws+unix://%2Fpath%2Fto%2Fsocket/resource``: the socket's path, percent-encoded, as the host.
_UNIX_SCHEMES: Final = {f"{scheme}+unix": secure for scheme, secure in _SCHEMES.items()}
# RFC 3986 pchar plus "/" and "?" and "%" (already-escaped octets are kept as they are).
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE: Final = _PATH_SAFE + "?"

Params = Mapping[str, str] | Iterable[tuple[str, str]]


@attrs.frozen
class Target:
    """Where to connect and what to ask for.

    Attributes:
        host: the host name (IDNA-encoded, lower case) or IP address, without brackets.
        port: the TCP port.
        resource: path and query for the request line, never empty.
        secure: ``True`` for ``wss://`` (and ``https://``).
        credentials: Basic credentials from ``user:pass@`` in the URL, if any.
        unix_path: the Unix domain socket to connect to instead of ``host:port`` (from a
            ``ws+unix://`` URL or the ``unix_socket`` option); ``host`` is then only the
            ``Host`` header and the TLS server name.
    """

    host: str
    port: int
    resource: str
    secure: bool
    credentials: BasicAuth | None = None
    unix_path: str | None = None

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == (443 if self.secure else 80):
            return host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL without credentials, as used in messages and ``Origin``-free logs."""
        scheme = "wss" if self.secure else "ws"
        if self.unix_path is not None:
            return f"{scheme}+unix://{quote(self.unix_path, safe='')}{self.resource}"
        return f"{scheme}://{self.host_header}{self.resource}"

    @property
    def origin(self) -> tuple[bool, str, int, str | None]:
        """What a redirect must keep for credentials to follow it (RFC 6454 §4, plus the
        socket): scheme, host, port, Unix socket path."""
        return (self.secure, self.host, self.port, self.unix_path)


_CONTROL_OR_SPACE: Final = re.compile(r"[\x00-\x20\x7f]")


def parse_url(url: str, params: Params | None = None) -> Target:
    """Parse ``url`` and append ``params`` to its query.

    ``ws://`` and ``wss://`` are the WebSocket schemes; ``http://`` and ``https://`` are accepted
    as their equivalents, as aiohttp does.

    Raises:
        InvalidURL: the URL is not a string, has another scheme, no host, a port out of range,
            a fragment (RFC 6455 §3: "Fragment identifiers ... MUST NOT be used") or control
            characters.
    """
    if not isinstance(url, str):
        raise InvalidURL(f"the URL must be a str, not {type(url).__name__}")
    target = _parse(url)
    if params is not None:
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        extra = urlencode(items)
        if extra:
            # The path is quoted with "?" escaped: a "?" in the resource starts the query.
            sep = "&" if "?" in target.resource else "?"
            target = attrs.evolve(target, resource=f"{target.resource}{sep}{extra}")
    return target


# Applications open many connections to a few URLs: the parsed Target (frozen) is kept.
@functools.lru_cache(maxsize=128)
def _parse(url: str) -> Target:
    if _CONTROL_OR_SPACE.search(url):
        raise InvalidURL(f"the URL contains white space or control characters: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    unix_path = None
    if scheme in _UNIX_SCHEMES:
        secure = _UNIX_SCHEMES[scheme]
        unix_path = unquote(parts.netloc)
        if not unix_path or port is not None or parts.username is not None:
            raise InvalidURL(
                f"a {scheme}:// URL has the socket's percent-encoded path as its host, "
                f"e.g. {scheme}://%2Frun%2Fapp.sock/path, not {url!r}"
            )
        host = "localhost"
    elif scheme in _SCHEMES:
        secure = _SCHEMES[scheme]
        host = parts.hostname or ""
        if not host:
            raise InvalidURL(f"the URL has no host: {url!r}")
        host = normalize_host(host, url)
    else:
        raise InvalidURL(
            f"unsupported URL scheme {parts.scheme!r} in {url!r}: use ws://, wss:// "
            "(or ws+unix://, wss+unix://)"
        )
    if "#" in url:
        raise InvalidURL(f"a WebSocket URL must not contain a fragment: {url!r}")
    if port is None:
        port = 443 if secure else 80
    elif port == 0:
        raise InvalidURL(f"port 0 is not a valid port: {url!r}")

    # With a host, urlsplit's path is empty or starts with "/".
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query = quote(parts.query, safe=_QUERY_SAFE)
    resource = f"{path}?{query}" if query else path

    credentials = None
    if parts.username is not None or parts.password is not None:
        try:
            credentials = BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
        except InvalidArgument as exc:
            raise InvalidURL(f"invalid credentials in {url!r}: {exc}") from exc
    return Target(
        host=host,
        port=port,
        resource=resource,
        secure=secure,
        credentials=credentials,
        unix_path=unix_path,
    )


def resolve_redirect(target: Target, location: str) -> Target:
    """The target a redirect's ``Location`` points to, relative to ``target`` (RFC 9110
    §10.2.2). ``http(s)://`` is read as ``ws(s)://``. A redirect to the same origin keeps the
    Unix socket.

    Raises:
        InvalidURL: the location is not a usable WebSocket URL.
    """
    base = target.url if target.unix_path is None else (
        f"{'wss' if target.secure else 'ws'}://{target.host_header}{target.resource}"
    )
    try:
        joined = urljoin(base, location.strip())
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise InvalidURL(f"invalid URL {location!r}: {exc}") from None
    new = parse_url(joined)
    if target.unix_path is not None and new.unix_path is None:
        same = (new.secure, new.host, new.port) == (target.secure, target.host, target.port)
        if same:
            new = attrs.evolve(new, unix_path=target.unix_path)
    return new


def normalize_host(host: str, url: str) -> str:
    try:
        # RFC 6874: a zone id in a URL is percent-encoded ("fe80::1%25eth0").
        return str(ipaddress.ip_address(host.replace("%25", "%")))
    except ValueError:
        pass
    if host.isascii():
        ascii_host = host.lower()
    else:
        # IDNA 2008 with the UTS 46 mapping, as browsers and curl resolve names (Python's own
        # "idna" codec is IDNA 2003, which maps "faß.de" to "fass.de", another domain).
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidURL(f"invalid host name {host!r} in {url!r}: {exc}") from None
    labels = ascii_host[:-1].split(".") if ascii_host.endswith(".") else ascii_host.split(".")
    if (
        any(c in ascii_host for c in "[]@/\\?#%")
        or len(ascii_host) > 253
        or not all(0 < len(label) <= 63 for label in labels)
    ):
        raise InvalidURL(f"invalid host name {host!r} in {url!r}")
    return ascii_host
