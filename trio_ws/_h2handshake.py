"""The opening handshake over HTTP/2 (RFC 8441), without I/O: request headers in, response
headers and body out.

RFC 8441 §4-5: the WebSocket is a stream opened by an *extended CONNECT*: ``:method CONNECT``,
``:protocol websocket``, ``:scheme``, ``:path`` and ``:authority``, with
``sec-websocket-version: 13``, the subprotocols and extensions as on HTTP/1.1; success is a
``200`` (any 2xx, RFC 9113 §8.5, but servers send 200), with no key and no accept token (the
stream itself proves the server understood). What the server chose from the offer is checked
exactly as on HTTP/1.1, by :class:`~trio_ws._offer.Offer`. Any other status is a
:exc:`WSServerHandshakeError` with the status, the headers and the start of the body.

h2 parses the frames and HPACK; this class sees header lists (bytes pairs, as
``header_encoding=None`` gives them) and DATA. A 3xx is a rejection here, with its status and
headers; ``open_ws`` follows it from there (``_client._h2_location``) with the redirect policy
of HTTP/1.1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final, Unpack

from ._offer import MAX_BODY_SIZE, Offer, OfferOptions
from ._url import Target

__all__ = ["MAX_RESPONSE_HEADERS", "H2Handshake"]

#: The most header fields accepted in a response (as ``MAX_HEADERS`` on HTTP/1.1).
MAX_RESPONSE_HEADERS: Final = 128
#: RFC 9113 §8.2.2: connection-specific fields must not appear in an HTTP/2 message; the
#: caller's headers that name one are left out of the request (they mean nothing on a stream).
_CONNECTION_SPECIFIC: Final = frozenset({"keep-alive", "proxy-connection", "te", "host"})


class H2Handshake(Offer):
    """Build the extended CONNECT of RFC 8441 and check the server's answer, without I/O.

    Args:
        target: where the request goes (its scheme gives ``:scheme``, its resource ``:path``,
            its host and port ``:authority``; a ``Host`` among ``headers`` replaces it).
        protocols, headers, origin, auth, compress, client_notakeover, user_agent: as for
            :class:`~trio_ws._offer.Offer`.

    Raises:
        InvalidArgument: as :class:`~trio_ws._offer.Offer`.
    """

    expected_status = 200

    def __init__(self, target: Target, **offer: Unpack[OfferOptions]) -> None:
        super().__init__(target, **offer)
        authority = target.host_header
        for name, value in self.fields:
            if name.lower() == "host":
                authority = value  # RFC 9113 §8.3.1: :authority takes the place of Host
        self._request = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https" if target.secure else b"http"),
            (b":path", target.resource.encode("ascii")),
            (b":authority", authority.encode("ascii")),
        ]
        # RFC 9113 §8.2: field names are lower case on HTTP/2.
        self._request += [
            (name.lower().encode("ascii"), value.encode("ascii"))
            for name, value in self.fields
            if name.lower() not in _CONNECTION_SPECIFIC
        ]
        self._head_done = False
        self._finished = False
        self._body = bytearray()

    def request_headers(self) -> list[tuple[bytes, bytes]]:
        """The header list of the extended CONNECT, pseudo-headers first."""
        return self._request

    @property
    def done(self) -> bool:
        """The outcome is known: call :meth:`result`."""
        return self._finished

    @property
    def in_body(self) -> bool:
        """A rejection's head has been read and its body is being collected."""
        return self._head_done and not self._finished

    def receive_headers(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        """The response's header block (informational 1xx blocks are not passed here)."""
        if self._head_done:
            return
        self._head_done = True
        intern = sys.intern
        status = b""
        for raw_name, raw_value in headers:
            if raw_name == b":status":
                status = raw_value
            elif not raw_name.startswith(b":"):
                name = intern(raw_name.decode("latin-1"))
                value = intern(raw_value.decode("latin-1"))
                self._headers.append((name, value))
                self._index.setdefault(name.lower(), []).append(value)
        self._status = int(status) if status.isdigit() else 0
        if len(self._headers) > MAX_RESPONSE_HEADERS:
            self._reject(f"the response has more than {MAX_RESPONSE_HEADERS} headers")
        elif not 100 <= self._status <= 599:
            self._reject(f"invalid :status {status!r}")
        elif 200 <= self._status < 300:
            # RFC 8441 §5: a 2xx accepts; there is no key to check. The stream's DATA that
            # follows is the WebSocket's.
            self._accept(b"")

    def receive_data(self, data: bytes | bytearray) -> None:
        """Bytes of a rejection's body (ignored once the outcome is known)."""
        if self._finished or not self._head_done:
            return
        self._body += data[: MAX_BODY_SIZE - len(self._body)]
        if len(self._body) >= MAX_BODY_SIZE:
            self.finish_body()

    def receive_eof(self) -> None:
        """The stream ended (END_STREAM) or was reset before the outcome was known."""
        if self._finished:
            return
        if not self._head_done:
            self._reject("the server ended the stream without a response")
            return
        self.finish_body()

    def finish_body(self) -> None:
        """Stop waiting for more of a rejection's body (the I/O layer's grace ran out)."""
        if self.in_body:
            self._rejection(bytes(self._body))

    def _done(self) -> None:
        self._finished = True
