"""What a client offers in a WebSocket opening handshake, and the checks of what the server
chose from it, without I/O: shared by the HTTP/1.1 upgrade (:mod:`._handshake`) and the HTTP/2
extended CONNECT of RFC 8441 (:mod:`._h2handshake`).

Both send the same offer (``Sec-WebSocket-Version``, the subprotocols, permessage-deflate, the
caller's headers, each value checked before anything is sent) and check the answer the same
way: a subprotocol only from our offer, extensions only from our offer, RFC 7692 parameters
validated strictly. They differ in the request's framing and in the status that accepts the
WebSocket (101 against 200), which the subclasses own.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypedDict

import attrs

from ._deflate import ClientDeflate
from ._errors import InvalidArgument, WSServerHandshakeError
from ._types import BasicAuth
from ._url import Target
from ._version import __version__

__all__ = [
    "MAX_BODY_SIZE",
    "TOKEN",
    "USER_AGENT",
    "HandshakeResult",
    "Headers",
    "Offer",
    "OfferOptions",
    "check_header",
]

#: How much of a rejection's body is kept for :class:`WSServerHandshakeError`.
MAX_BODY_SIZE: Final = 64 * 1024

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class OfferOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Offer`, which its subclasses pass on unchanged."""

    protocols: Sequence[str]
    headers: Headers | None
    origin: str | None
    auth: BasicAuth | tuple[str, str] | None
    compress: int
    client_notakeover: bool
    user_agent: str | None


TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: a field value has no control characters but HTAB.
_BAD_VALUE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
#: Characters of a rejection's body shown in its error message.
_EXCERPT: Final = 200
#: The default ``User-Agent``: several servers and CDNs refuse requests without one.
USER_AGENT: Final = f"trio_ws/{__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"
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


@attrs.frozen
class HandshakeResult:
    """What a successful opening handshake negotiated."""

    subprotocol: str | None
    #: permessage-deflate, if the server accepted our offer.
    deflate: ClientDeflate | None
    headers: list[tuple[str, str]]
    #: Bytes that followed the response head: the first WebSocket frames.
    trailing_data: bytes


def check_header(name: str, value: str) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise InvalidArgument(f"header names and values must be str: {name!r}: {value!r}")
    if not TOKEN.fullmatch(name):
        raise InvalidArgument(f"invalid header name {name!r}")
    if _BAD_VALUE.search(value):
        raise InvalidArgument(
            f"header {name!r} has a value with CR, LF, NUL or another control character: {value!r}"
        )
    if not value.isascii():
        # RFC 9110 §5.5: field values are ASCII in practice (obs-text is for old servers'
        # Latin-1); raw UTF-8 would be read as something else on the other end.
        raise InvalidArgument(
            f"header {name!r} has a non-ASCII value {value!r}: encode it first "
            "(percent-encoding, or RFC 8187 for parameters)"
        )


def _excerpt(data: bytes) -> str:
    """A short, printable excerpt of ``data`` for an error message."""
    text = " ".join(_CONTROL.sub(" ", data[: _EXCERPT * 4].decode("utf-8", "replace")).split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _deflate_offer(compress: int, client_notakeover: bool) -> str:
    offer = "permessage-deflate"
    # RFC 7692 §7.1.2.2: with a value, we promise to compress with at most that window; without
    # one, we only say the server may limit our window. 15 is zlib's maximum, so say nothing.
    offer += f"; client_max_window_bits={compress}" if compress < 15 else "; client_max_window_bits"
    if client_notakeover:
        offer += "; client_no_context_takeover"
    return offer


class Offer:
    """What a client offers in an opening handshake, over HTTP/1.1 or HTTP/2 (RFC 8441), and
    the checks of what the server chose from it (RFC 6455 §4.1, RFC 7692), without I/O.

    The request's own framing (the upgrade's ``Host``, ``Upgrade``, ``Connection`` and key, or
    HTTP/2's pseudo-headers) belongs to the subclass; the fields here are common to both.

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

    Raises:
        InvalidArgument: a header with a control character or a non-ASCII value, one the
            handshake owns, an invalid subprotocol name, or ``compress`` out of range.
    """

    #: The status that accepts the WebSocket (101 over HTTP/1.1, 200 over HTTP/2).
    expected_status = 101

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
        user_agent: str | None = USER_AGENT,
    ) -> None:
        self.target = target
        if isinstance(protocols, str):
            protocols = [protocols]
        self.protocols = list(protocols)
        for proto in self.protocols:
            if not isinstance(proto, str) or not TOKEN.fullmatch(proto):
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
            check_header(name, value)
            if name.lower() in _RESERVED:
                raise InvalidArgument(f"the {name!r} header is set by the opening handshake")
        if origin is not None:
            check_header("Origin", origin)
        if user_agent is not None:
            check_header("User-Agent", user_agent)
        #: The lower-case names of the caller's own headers.
        self.names = names = {name.lower() for name, _ in extra}
        fields = [("Sec-WebSocket-Version", "13")]
        if self.protocols:
            fields.append(("Sec-WebSocket-Protocol", ", ".join(self.protocols)))
        if compress:
            fields.append(("Sec-WebSocket-Extensions", _deflate_offer(compress, client_notakeover)))
        if origin is not None and "origin" not in names:
            fields.append(("Origin", origin))
        if auth is not None and "authorization" not in names:
            fields.append(("Authorization", auth.encode()))
        if user_agent is not None and "user-agent" not in names:
            fields.append(("User-Agent", user_agent))
        #: The request fields of the offer, the caller's headers last (every value checked).
        self.fields = fields + extra
        self._status = 0
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}  # lower-case name -> values
        self._result: HandshakeResult | None = None
        self._error: WSServerHandshakeError | None = None

    @property
    def succeeded(self) -> bool:
        """The handshake is done and the upgrade was accepted."""
        return self._result is not None

    def response_head(self) -> tuple[int, str, list[tuple[str, str]]]:
        """The status, reason and headers of the response (so far), for the debug log."""
        return self._status, self._reason, self._headers

    def explain(self, why: str) -> None:
        """Add ``why`` (what the I/O layer knows of the cause) to the failure's message."""
        exc = self._error
        assert exc is not None, "explain() without a failure"
        self._error = WSServerHandshakeError(
            f"{exc} ({why})", status=exc.status, headers=exc.headers, body=exc.body
        )

    def result(self) -> HandshakeResult:
        """The negotiated connection.

        Raises:
            WSServerHandshakeError: the server did not accept the upgrade, or its response broke
                RFC 6455 §4.1 (RFC 8441 §5 over HTTP/2) or RFC 7692.
        """
        if self._error is not None:
            raise self._error
        assert self._result is not None, "result() before done"
        return self._result

    def _done(self) -> None:
        """The outcome is known: the subclass's phase ends."""
        raise NotImplementedError

    def _reject(self, message: str, body: bytes = b"") -> None:
        self._done()
        self._error = WSServerHandshakeError(
            f"WebSocket handshake with {self.target.url} failed: {message}",
            status=self._status,
            headers=self._headers,
            body=body,
        )

    def _rejection(self, body: bytes) -> None:
        """The server answered another status than :attr:`expected_status`."""
        reason = f" {self._reason}" if self._reason else ""
        message = f"the server answered {self._status}{reason}, not {self.expected_status}"
        excerpt = _excerpt(body)
        self._reject(f"{message}: {excerpt}" if excerpt else message, body)

    def _accept(self, trailing_data: bytes) -> None:
        """The status accepted the WebSocket: check the subprotocol and the extensions."""
        subprotocol = self._check_subprotocol()
        if self._error is not None:
            return
        deflate = self._check_extensions()
        if self._error is not None:
            return
        self._done()
        self._result = HandshakeResult(
            subprotocol=subprotocol,
            deflate=deflate,
            headers=self._headers,
            trailing_data=trailing_data,
        )

    def _values(self, name: str) -> list[str]:
        """The values of the response header ``name`` (lower case), in order."""
        return self._index.get(name, [])

    def _has_token(self, name: str, token: str) -> bool:
        return any(t.strip().lower() == token for v in self._values(name) for t in v.split(","))

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
                if key == "server_max_window_bits" and bits == 8:
                    # RFC 7692 allows 8; zlib cannot inflate with 8 but a window of 9 reads
                    # anything compressed with 8 (a bigger window is always safe to inflate).
                    bits = 9
                # We cannot *compress* with 8: zlib silently uses 9, which the server did not
                # allow.
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
