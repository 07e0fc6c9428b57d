"""Parse and validate WebSocket URLs (RFC 6455 §3) into a frozen :class:`Target`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote, unquote, urlencode, urlsplit

import attrs

from ._errors import InvalidArgument, InvalidURL
from ._types import BasicAuth

__all__ = ["Target", "parse_url"]

_SCHEMES: Final = {"ws": False, "wss": True, "http": False, "https": True}
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
    """

    host: str
    port: int
    resource: str
    secure: bool
    credentials: BasicAuth | None = None

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
        return f"{scheme}://{self.host_header}{self.resource}"


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
    if _CONTROL_OR_SPACE.search(url):
        raise InvalidURL(f"the URL contains white space or control characters: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidURL(f"unsupported URL scheme {parts.scheme!r} in {url!r}: use ws:// or wss://")
    secure = _SCHEMES[scheme]
    if "#" in url:
        raise InvalidURL(f"a WebSocket URL must not contain a fragment: {url!r}")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"the URL has no host: {url!r}")
    host = _normalize_host(host, url)
    if port is None:
        port = 443 if secure else 80
    elif port == 0:
        raise InvalidURL(f"port 0 is not a valid port: {url!r}")

    # With a host, urlsplit's path is empty or starts with "/".
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query = quote(parts.query, safe=_QUERY_SAFE)
    if params is not None:
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        extra = urlencode(items)
        query = f"{query}&{extra}" if query and extra else query or extra
    resource = f"{path}?{query}" if query else path

    credentials = None
    if parts.username is not None or parts.password is not None:
        try:
            credentials = BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
        except InvalidArgument as exc:
            raise InvalidURL(f"invalid credentials in {url!r}: {exc}") from exc
    return Target(host=host, port=port, resource=resource, secure=secure, credentials=credentials)


def _normalize_host(host: str, url: str) -> str:
    try:
        # RFC 6874: a zone id in a URL is percent-encoded ("fe80::1%25eth0").
        return str(ipaddress.ip_address(host.replace("%25", "%")))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL(f"invalid host name {host!r} in {url!r}") from exc
    if any(c in ascii_host for c in "[]@/\\?#%") or ascii_host.startswith("."):
        raise InvalidURL(f"invalid host name {host!r} in {url!r}")
    return ascii_host.lower()
