"""The opening handshake, without I/O: the request bytes and a strict, bounded response parser.

RFC 6455 §4.1 lists what a client must check in the server's response; wsproto's own client
handshake (on h11) checks less and bounds nothing, so trio_ws parses the response head itself:

* at most :data:`MAX_HEAD_SIZE` bytes and :data:`MAX_HEADERS` header lines, no obsolete line
  folding, ASCII only;
* status 101, ``Upgrade: websocket``, ``Connection: upgrade``, exactly one correct
  ``Sec-WebSocket-Accept``;
* a subprotocol only from our offer, extensions only from our offer, with RFC 7692 parameters
  validated strictly;
* for any other status, the body is collected up to :data:`MAX_BODY_SIZE` for the error.

Header values that the caller passes are checked for CR, LF and NUL before anything is sent.

The key and the accept token (RFC 6455 §4.1, §4.2.2) are computed here, not taken from wsproto:
no module of the client imports wsproto, which stays the independent peer of the tests and the
engine of :mod:`trio_ws.testing`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from ._deflate import ClientDeflate
from ._errors import InvalidArgument, WSServerHandshakeError
from ._types import BasicAuth
from ._url import Target

__all__ = [
    "MAX_BODY_SIZE",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "ClientHandshake",
    "HandshakeResult",
    "Headers",
    "Negotiated",
    "accept_token",
    "generate_key",
]

#: The largest response head (status line and headers) accepted.
MAX_HEAD_SIZE: Final = 64 * 1024
#: The most header lines accepted in a response.
MAX_HEADERS: Final = 128
#: How much of a rejection's body is kept for :class:`WSServerHandshakeError`.
MAX_BODY_SIZE: Final = 64 * 1024

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

#: RFC 6455 §1.3: the GUID the server appends to our key before hashing it.
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE: Final = re.compile(r"HTTP/1\.[01] ([0-9]{3})(?: (.*))?")
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")
# Headers the handshake owns; a caller who sets them would break it.
_RESERVED: Final = frozenset(
    {
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    }
)


def generate_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``.

    RFC 6455 §4.1: "a randomly selected 16-byte value that has been base64-encoded ... MUST
    be selected randomly for each connection"; ``os.urandom`` is a CSPRNG.
    """
    return base64.b64encode(os.urandom(16))


def accept_token(key: bytes) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with (RFC 6455 §4.2.2).

    The base64 of the SHA-1 of the key, as sent, followed by the GUID of RFC 6455 §1.3.
    """
    # SHA-1 here is the RFC's fixed derivation, not a security choice.
    digest = hashlib.sha1(key + _ACCEPT_GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


@attrs.frozen
class HandshakeResult:
    """What a successful opening handshake negotiated."""

    subprotocol: str | None
    #: permessage-deflate, if the server accepted our offer.
    deflate: ClientDeflate | None
    headers: list[tuple[str, str]]
    #: Bytes that followed the response head: the first WebSocket frames.
    trailing_data: bytes


class _Phase(enum.Enum):
    HEAD = enum.auto()
    BODY = enum.auto()
    DONE = enum.auto()


def _check_header(name: str, value: str) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise InvalidArgument(f"header names and values must be str: {name!r}: {value!r}")
    if not _TOKEN.fullmatch(name):
        raise InvalidArgument(f"invalid header name {name!r}")
    if _BAD_VALUE.search(value):
        raise InvalidArgument(f"header {name!r} has a value with CR, LF or NUL: {value!r}")


def _deflate_offer(compress: int, client_notakeover: bool) -> str:
    offer = "permessage-deflate"
    # RFC 7692 §7.1.2.2: with a value, we promise to compress with at most that window; without
    # one, we only say the server may limit our window. 15 is zlib's maximum, so say nothing.
    offer += f"; client_max_window_bits={compress}" if compress < 15 else "; client_max_window_bits"
    if client_notakeover:
        offer += "; client_no_context_takeover"
    return offer


class ClientHandshake:
    """Build the upgrade request and check the response, without I/O.

    Args:
        target: where the request goes.
        protocols: subprotocols to offer, in order of preference.
        headers: extra request headers.
        origin: the ``Origin`` header, if any.
        auth: Basic credentials (else those of the URL, if any).
        compress: 0, or 9..15 to offer permessage-deflate with that ``client_max_window_bits``.
        client_notakeover: offer ``client_no_context_takeover``.

    Raises:
        InvalidArgument: a header with CR/LF/NUL, one the handshake owns, an invalid
            subprotocol name, or ``compress`` out of range.
    """

    def __init__(
        self,
        target: Target,
        *,
        protocols: Sequence[str] = (),
        headers: Headers | None = None,
        origin: str | None = None,
        auth: BasicAuth | tuple[str, str] | None = None,
        compress: int = 0,
        client_notakeover: bool = False,
    ) -> None:
        self.target = target
        self.key = generate_key()
        if isinstance(protocols, str):
            protocols = [protocols]
        self.protocols = list(protocols)
        for proto in self.protocols:
            if not isinstance(proto, str) or not _TOKEN.fullmatch(proto):
                raise InvalidArgument(f"invalid subprotocol name {proto!r}")
        if (
            isinstance(compress, bool)
            or not isinstance(compress, int)
            or (compress != 0 and not 9 <= compress <= 15)
        ):
            raise InvalidArgument(f"compress must be 0 (off) or 9..15, not {compress!r}")
        self.compress = compress
        self.client_notakeover = client_notakeover
        if isinstance(auth, tuple):
            auth = BasicAuth(*auth)
        if auth is None:
            auth = target.credentials
        extra = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        for name, value in extra:
            _check_header(name, value)
            if name.lower() in _RESERVED:
                raise InvalidArgument(f"the {name!r} header is set by the opening handshake")
        if origin is not None:
            _check_header("Origin", origin)
        names = {name.lower() for name, _ in extra}
        lines = [f"GET {target.resource} HTTP/1.1"]
        if "host" not in names:
            lines.append(f"Host: {target.host_header}")
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key.decode('ascii')}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.protocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(self.protocols)}")
        if compress:
            lines.append(f"Sec-WebSocket-Extensions: {_deflate_offer(compress, client_notakeover)}")
        if origin is not None and "origin" not in names:
            lines.append(f"Origin: {origin}")
        if auth is not None and "authorization" not in names:
            lines.append(f"Authorization: {auth.encode()}")
        lines += [f"{name}: {value}" for name, value in extra]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

        self._buffer = bytearray()
        self._phase = _Phase.HEAD
        self._status = 0
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._body_wanted: int | None = None  # None: until EOF
        self._chunked = False
        self._result: HandshakeResult | None = None
        self._error: WSServerHandshakeError | None = None

    def request_bytes(self) -> bytes:
        """The upgrade request to send."""
        return self._request

    @property
    def done(self) -> bool:
        """The response has been read as far as needed: call :meth:`result`."""
        return self._phase is _Phase.DONE

    @property
    def in_body(self) -> bool:
        """A rejection's head has been read and its body is being collected."""
        return self._phase is _Phase.BODY

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes of the response."""
        if self._phase is _Phase.DONE:
            return
        self._buffer += data
        if self._phase is _Phase.HEAD:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_SIZE:
                    self._reject(f"the response head exceeds {MAX_HEAD_SIZE} bytes")
                return
            if end + 4 > MAX_HEAD_SIZE:
                self._reject(f"the response head exceeds {MAX_HEAD_SIZE} bytes")
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._parse_head(head)
        if self._phase is _Phase.BODY:
            self._check_body()

    def receive_eof(self) -> None:
        """The server closed the connection."""
        if self._phase is _Phase.HEAD:
            what = "an incomplete response" if self._buffer else "no response"
            self._reject(f"the server closed the connection after {what} to the upgrade request")
        elif self._phase is _Phase.BODY:
            self._finish_rejection()

    def finish_body(self) -> None:
        """Stop waiting for more of a rejection's body (the I/O layer's grace time ran out)."""
        if self._phase is _Phase.BODY:
            self._finish_rejection()

    def result(self) -> HandshakeResult:
        """The negotiated connection.

        Raises:
            WSServerHandshakeError: the server did not accept the upgrade, or its response broke
                RFC 6455 §4.1 or RFC 7692.
        """
        if self._error is not None:
            raise self._error
        assert self._result is not None, "result() before done"
        return self._result

    # ----------------------------------------------------------------------------------------

    def _reject(self, message: str, body: bytes = b"") -> None:
        self._phase = _Phase.DONE
        self._error = WSServerHandshakeError(
            f"WebSocket handshake with {self.target.url} failed: {message}",
            status=self._status,
            headers=self._headers,
            body=body,
        )

    def _parse_head(self, head: bytes) -> None:
        # RFC 9112 §2.2: a head is parsed as octets; obs-text in field values is ISO-8859-1.
        lines = head.decode("latin-1").split("\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            self._reject(f"invalid HTTP status line {lines[0][:100]!r}")
            return
        self._status = int(match.group(1))
        self._reason = match.group(2) or ""
        if len(lines) - 1 > MAX_HEADERS:
            self._reject(f"the response has more than {MAX_HEADERS} headers")
            return
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN.fullmatch(name):
                self._reject(f"invalid header line {line[:100]!r}")
                return
            # Interned: idle connections are many, and most of their headers are the same
            # strings (CPython frees an interned string with its last reference).
            self._headers.append((sys.intern(name), sys.intern(value.strip(" \t"))))
        if self._status == 101:
            self._check_upgrade()
            return
        # A rejection: keep (a bounded amount of) the body for the error.
        self._phase = _Phase.BODY
        lengths = self._values("content-length")
        if self._has_token("transfer-encoding", "chunked"):
            self._chunked = True
        elif lengths:
            length = lengths[0].strip()
            self._body_wanted = min(int(length), MAX_BODY_SIZE) if length.isdigit() else 0
        elif self._status in (204, 304) or 100 <= self._status < 200:
            self._body_wanted = 0

    def _check_body(self) -> None:
        if self._chunked:
            if b"\r\n0\r\n" in self._buffer or self._buffer.startswith(b"0\r\n"):
                self._finish_rejection()
        elif self._body_wanted is not None and len(self._buffer) >= self._body_wanted:
            self._finish_rejection()
        if self._phase is _Phase.BODY and len(self._buffer) >= MAX_BODY_SIZE:
            self._finish_rejection()

    def _finish_rejection(self) -> None:
        body = bytes(self._buffer[:MAX_BODY_SIZE])
        if self._chunked:
            body = _dechunk(body)
        elif self._body_wanted is not None:
            body = body[: self._body_wanted]
        reason = f" {self._reason}" if self._reason else ""
        self._reject(f"the server answered {self._status}{reason}, not 101", body)

    def _values(self, name: str) -> list[str]:
        return [v for n, v in self._headers if n.lower() == name]

    def _has_token(self, name: str, token: str) -> bool:
        return any(t.strip().lower() == token for v in self._values(name) for t in v.split(","))

    def _check_upgrade(self) -> None:
        upgrade = self._values("upgrade")
        if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
            self._reject(f"expected 'Upgrade: websocket', got {upgrade!r}")
            return
        if not self._has_token("connection", "upgrade"):
            self._reject(f"expected 'Connection: upgrade', got {self._values('connection')!r}")
            return
        accept = self._values("sec-websocket-accept")
        expected = accept_token(self.key)
        if accept != [expected]:
            self._reject(f"wrong Sec-WebSocket-Accept {accept!r} (expected {expected!r})")
            return
        subprotocol = self._check_subprotocol()
        if self._error is not None:
            return
        deflate = self._check_extensions()
        if self._error is not None:
            return
        self._phase = _Phase.DONE
        self._result = HandshakeResult(
            subprotocol=subprotocol,
            deflate=deflate,
            headers=self._headers,
            trailing_data=bytes(self._buffer),
        )
        self._buffer.clear()

    def _check_subprotocol(self) -> str | None:
        values = [p.strip() for v in self._values("sec-websocket-protocol") for p in v.split(",")]
        if not values:
            return None
        if len(values) > 1 or values[0] not in self.protocols:
            # RFC 6455 §4.1 item 6: a subprotocol not from our offer fails the connection.
            self._reject(f"the server chose subprotocol {values!r}; we offered {self.protocols!r}")
            return None
        return values[0]

    def _check_extensions(self) -> ClientDeflate | None:
        values = self._values("sec-websocket-extensions")
        accepted = [e.strip() for v in values for e in v.split(",") if e.strip()]
        if not accepted:
            return None
        if not self.compress:
            self._reject(f"the server accepted extensions we did not offer: {accepted!r}")
            return None
        if len(accepted) > 1:
            self._reject(f"the server accepted more than one extension: {accepted!r}")
            return None
        name, _, params = accepted[0].partition(";")
        if name.strip().lower() != "permessage-deflate":
            self._reject(f"the server accepted an extension we did not offer: {accepted[0]!r}")
            return None
        try:
            ext = self._deflate(params)
        except ValueError as exc:
            self._reject(f"invalid permessage-deflate response {accepted[0]!r}: {exc}")
            return None
        return ext

    def _deflate(self, params: str) -> ClientDeflate:
        """Validate the server's permessage-deflate parameters (RFC 7692 §7.1).

        The extension is ours, not wsproto's ``PerMessageDeflate``: its inflate is bounded by
        ``max_msg_size``, which the protocol core sets.
        """
        seen: dict[str, int | None] = {}
        for raw in params.split(";"):
            param = raw.strip()
            if not param:
                if raw:
                    raise ValueError("empty parameter")
                continue
            key, eq, value = (s.strip() for s in param.partition("="))
            key = key.lower()
            if key in seen:
                raise ValueError(f"duplicate parameter {key}")
            value = value.strip('"')
            if key in ("server_no_context_takeover", "client_no_context_takeover"):
                if eq:
                    raise ValueError(f"{key} takes no value")
                seen[key] = None
            elif key in ("server_max_window_bits", "client_max_window_bits"):
                if not re.fullmatch(r"[1-9][0-9]?", value):
                    raise ValueError(f"{key} needs a value from 9 to 15")
                bits = int(value)
                # 8 is legal in RFC 7692 but zlib cannot honour it (it silently uses 9).
                if not 9 <= bits <= 15:
                    raise ValueError(f"{key}={bits} is out of range (9 to 15)")
                if key == "client_max_window_bits" and bits > self.compress:
                    raise ValueError(f"client_max_window_bits={bits} exceeds our offer")
                seen[key] = bits
            else:
                raise ValueError(f"unknown parameter {key!r}")
        return ClientDeflate(
            client_no_context_takeover=self.client_notakeover
            or "client_no_context_takeover" in seen,
            client_max_window_bits=seen.get("client_max_window_bits") or self.compress,
            server_no_context_takeover="server_no_context_takeover" in seen,
            server_max_window_bits=seen.get("server_max_window_bits") or 15,
        )


def _dechunk(body: bytes) -> bytes:
    """Decode a chunked body as far as it is well-formed (it is only shown in an error)."""
    out = bytearray()
    rest = body
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            break
        if not sep or size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def _flatten(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(item for pair in pairs for item in pair)


@attrs.frozen
class Negotiated:
    """What the opening handshake agreed on.

    The response headers are kept as one flat tuple ``(name, value, name, value, ...)``: one
    object per connection instead of one more per header (idle connections are many).
    """

    subprotocol: str | None
    compress: int
    client_notakeover: bool
    headers: tuple[str, ...] = attrs.field(converter=_flatten)

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        flat = iter(self.headers)
        return list(zip(flat, flat, strict=True))
