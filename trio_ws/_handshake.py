"""The opening handshake, without I/O: the request bytes and a strict, bounded response check.

The request is built, and the response parsed, by h11 (RFC 9112), bounded here: the response
head must end within :data:`MAX_HEAD_SIZE` bytes and have at most :data:`MAX_HEADERS` header
lines. On top of it, RFC 6455 §4.1's checks of the server's answer:

* status 101, ``Upgrade: websocket``, ``Connection: upgrade``, exactly one correct
  ``Sec-WebSocket-Accept``;
* a subprotocol only from our offer, extensions only from our offer, with RFC 7692 parameters
  validated strictly;
* for any other status, the body is collected up to :data:`MAX_BODY_SIZE` for the error (whose
  message quotes the start of it), except that a redirect we follow ends at its head.

Why h11 rather than our own parser: one parser for every HTTP exchange of the connect phase
(the upgrade and a proxy's CONNECT), with its line rules (a bare LF ends a line, so a value
can never hide a second header; obs-fold is unfolded) and body framing (chunked, length,
until EOF), which a home-made parser got wrong twice. The usual answer, a plain 101 head, is
read by the strict subset parser of :mod:`._fasthead` instead (h11 cost ~9 % of a connection's
CPU); every other head, and every head it declines, goes to h11 (a differential test holds the
two to the same results).

Header values that the caller passes are checked for control characters and non-ASCII before
anything is sent.

The key and the accept token (RFC 6455 §4.1, §4.2.2) are computed here, not taken from wsproto:
no module of the client imports wsproto, which stays the independent peer of the tests and the
engine of :mod:`trio_ws.testing`.
"""

from __future__ import annotations

import ast
import base64
import enum
import hashlib
import os
import re
import sys
from collections.abc import Iterable
from typing import Final, Unpack

import attrs
import h11

from ._fasthead import might_switch, switching_head
from ._offer import (
    MAX_BODY_SIZE,
    USER_AGENT,
    HandshakeResult,
    Headers,
    Offer,
    OfferOptions,
)
from ._url import Target

__all__ = [
    "MAX_BODY_SIZE",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "REDIRECT_STATUSES",
    "USER_AGENT",
    "ClientHandshake",
    "HandshakeResult",
    "Headers",
    "Negotiated",
    "Offer",
    "accept_token",
    "generate_key",
]

#: The largest response head (status line and headers) accepted.
MAX_HEAD_SIZE: Final = 64 * 1024
#: The most header lines accepted in a response.
MAX_HEADERS: Final = 128
#: The largest head the fast path waits for before h11 reads it (a 101 head is ~200 bytes).
_FAST_LIMIT: Final = 4096
#: RFC 6455 §1.3: the GUID the server appends to our key before hashing it.
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_H11_LINE: Final = re.compile(r"illegal (status|header) line: bytearray\((b'.*'|b\".*\")\)", re.S)
#: The statuses of a redirect (RFC 9110 §15.4) that the client follows.
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
#: What h11 is told of our request (see ClientHandshake.__init__).
_UPGRADE_REQUEST: Final = h11.Request(
    method="GET",
    target="/",
    headers=[("Host", "_"), ("Upgrade", "websocket"), ("Connection", "Upgrade")],
)
_END: Final = h11.EndOfMessage()


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


class _Phase(enum.Enum):
    HEAD = enum.auto()
    BODY = enum.auto()
    SWITCHED = enum.auto()  # a 101 head was read; its headers are checked next
    DONE = enum.auto()


class ClientHandshake(Offer):
    """Build the HTTP/1.1 upgrade request and check the response, without I/O.

    The response is parsed by h11 (bounded: the head must end within :data:`MAX_HEAD_SIZE`
    bytes, :data:`MAX_HEADERS` header lines at most), and checked here against RFC 6455 §4.1
    and RFC 7692.

    Args:
        target: where the request goes.
        protocols: subprotocols to offer, in order of preference.
        headers: extra request headers (a ``Host``, ``Origin``, ``Authorization`` or
            ``User-Agent`` among them replaces ours).
        origin: the ``Origin`` header, if any.
        auth: Basic credentials (else those of the URL, if any).
        compress: 0, or 9..15 to offer permessage-deflate with that ``client_max_window_bits``.
        client_notakeover: offer ``client_no_context_takeover``.
        user_agent: the ``User-Agent`` header; ``None`` sends none.
        follow_redirects: a 3xx response with a ``Location`` ends the handshake at its head,
            with :attr:`redirect` set (no wait for its body).

    Raises:
        InvalidArgument: as :class:`Offer`.
    """

    def __init__(
        self,
        target: Target,
        *,
        follow_redirects: bool = False,
        **offer: Unpack[OfferOptions],
    ) -> None:
        super().__init__(target, **offer)
        self.key = generate_key()
        fields = [] if "host" in self.names else [("Host", target.host_header)]
        fields += [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key.decode("ascii")),
        ]
        fields += self.fields
        # The request's bytes are ours (every value checked above: a token name, no control
        # character, ASCII); h11 is told its shape, a GET that proposes an upgrade, with a
        # fixed event, which is all its state machine reads. Building and validating an
        # h11.Request per connection cost 20 µs of the 550 µs of a connection (W4).
        self._request = (
            f"GET {target.resource} HTTP/1.1\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in fields)
            + "\r\n"
        ).encode("ascii")
        # The usual 101 head is read by _fasthead; h11 is made for any other (see there).
        self._fast: bytearray | None = bytearray()  # what came, while the fast path may read it
        self._h11: h11.Connection | None = None

        self._follow_redirects = follow_redirects
        self._phase = _Phase.HEAD
        self._head_room = MAX_HEAD_SIZE  # bytes the head may still take
        self._first = b""  # the first bytes received (to recognise a TLS answer)
        self._body = bytearray()
        #: The ``Location`` of a redirect (only with ``follow_redirects``), else ``None``.
        self.redirect: str | None = None

    def _done(self) -> None:
        self._phase = _Phase.DONE

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
        if self._phase is _Phase.DONE or not data:
            return
        if not self._first:
            self._first = bytes(data[:4])
        fast = self._fast
        if fast is not None:
            fast += data
            end = fast.find(b"\r\n\r\n")
            if end < 0 and len(fast) <= _FAST_LIMIT and might_switch(fast):
                return  # the head goes on
            self._fast = None
            parsed = switching_head(fast[: end + 4]) if 0 <= end <= MAX_HEAD_SIZE - 4 else None
            if parsed is None:
                data = bytes(fast)  # h11 reads all of it, as if it had come at once
            else:
                self._take_head(101, *parsed)
                if not self.done:
                    self._phase = _Phase.SWITCHED
                    self._check_upgrade(bytes(fast[end + 4 :]))
                return
        conn = self._h11
        if conn is None:
            conn = self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_SIZE)
            conn.send(_UPGRADE_REQUEST)
            conn.send(_END)
        rest = b""
        if self._phase is _Phase.HEAD:
            # The head must end within MAX_HEAD_SIZE bytes: h11 gets no more until it has.
            room = self._head_room
            if len(data) > room:
                data, rest = data[:room], bytes(data[room:])
            self._head_room -= len(data)
        conn.receive_data(bytes(data))
        self._next_events()
        if self._phase is _Phase.HEAD and (rest or not self._head_room):
            self._reject(f"the response head exceeds {MAX_HEAD_SIZE} bytes")
            return
        if rest and not self.done:
            conn.receive_data(rest)
            self._next_events()
        if self._phase is _Phase.SWITCHED:
            self._check_upgrade(conn.trailing_data[0])

    def receive_eof(self) -> None:
        """The server closed the connection."""
        if self._phase is _Phase.HEAD:
            what = "an incomplete response" if self._first else "no response"
            # A TLS-only server hangs up on plain HTTP, often without a word.
            hint = "" if self._first or self.target.secure else " (a TLS server? use wss://)"
            self._reject(
                f"the server closed the connection after {what} to the upgrade request{hint}"
            )
        elif self._phase is _Phase.BODY:
            assert self._h11 is not None  # only h11 reads a body
            self._h11.receive_data(b"")
            self._next_events()
            self.finish_body()

    def finish_body(self) -> None:
        """Stop waiting for more of a rejection's body (the I/O layer's grace time ran out)."""
        if self._phase is _Phase.BODY:
            self._finish_rejection()

    def _next_events(self) -> None:
        """Take h11's events until it needs data or the handshake's outcome is known."""
        conn = self._h11
        assert conn is not None
        while self._phase is _Phase.HEAD or self._phase is _Phase.BODY:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._phase is _Phase.BODY:
                    self._finish_rejection()  # a broken body: show what arrived
                else:
                    self._reject(self._invalid(exc))
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                self._phase = _Phase.SWITCHED
                return
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self._take_head(event.status_code, event.reason, event.headers.raw_items())
                continue  # 100 Continue, 103 Early Hints: the answer is still to come
            if isinstance(event, h11.Response):
                self._take_head(event.status_code, event.reason, event.headers.raw_items())
                if not self.done:
                    self._phase = _Phase.BODY
                    if self._follow_redirects and event.status_code in REDIRECT_STATUSES:
                        self._take_redirect()
                continue
            if isinstance(event, h11.Data):
                self._body += event.data[: MAX_BODY_SIZE - len(self._body)]
                if len(self._body) >= MAX_BODY_SIZE:
                    self._finish_rejection()
                continue
            self._finish_rejection()  # EndOfMessage or ConnectionClosed
            return

    def _invalid(self, exc: h11.RemoteProtocolError) -> str:
        first = self._first
        if len(first) >= 2 and first[0] in (0x15, 0x16) and first[1] == 0x03:
            # A TLS record (alert or handshake) where an HTTP status line should be.
            return "the server answered with TLS, not HTTP: use a wss:// URL"
        # h11 says "illegal status line: bytearray(b'...')": quote the line as text.
        match = _H11_LINE.fullmatch(str(exc))
        if match is not None:
            kind, line = match.group(1), ast.literal_eval(match.group(2)).decode("latin-1")
            return f"invalid {'HTTP status' if kind == 'status' else 'header'} line {line[:100]!r}"
        return f"invalid HTTP response: {exc}"

    def _take_head(
        self, status: int, reason: bytes, raw_items: Iterable[tuple[bytes, bytes]]
    ) -> None:
        self._status = status
        self._reason = reason.decode("latin-1")
        # RFC 9112 §2.2: a head is parsed as octets; obs-text in field values is ISO-8859-1.
        # Interned: idle connections are many, and most of their headers are the same strings
        # (CPython frees an interned string with its last reference).
        intern = sys.intern
        headers = self._headers = []
        index = self._index = {}
        for raw_name, raw_value in raw_items:
            name = intern(raw_name.decode("latin-1"))
            value = intern(raw_value.decode("latin-1"))
            headers.append((name, value))
            index.setdefault(name.lower(), []).append(value)
        if len(headers) > MAX_HEADERS:
            self._reject(f"the response has more than {MAX_HEADERS} headers")

    def _take_redirect(self) -> None:
        locations = self._values("location")
        if len(locations) == 1 and locations[0]:
            self.redirect = locations[0]
            self._finish_rejection()

    def _finish_rejection(self) -> None:
        self._rejection(bytes(self._body))

    def _check_upgrade(self, trailing_data: bytes) -> None:
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
        self._accept(trailing_data)


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
    #: The URL connected to (after redirects), without credentials.
    url: str = ""
    #: When the connection opened (``trio.current_time()``).
    opened_at: float = 0.0

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        flat = iter(self.headers)
        return list(zip(flat, flat, strict=True))
