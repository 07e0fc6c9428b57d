"""What a :class:`~trio_ws.ClientWebSocket` tells about itself: its state, close code,
negotiated parameters and transport, its id and URL, ping round trips, statistics, and its
log records (the theory is in :mod:`trio_ws._monitor`).

A mixin of ``ClientWebSocket``, which holds the attributes declared here (in its slots); it
keeps the connection's other module about sending, receiving and closing.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Final

import trio

from ._errors import WSTimeoutError
from ._framing import control_payload
from ._monitor import Pings, WSStatistics, describe_frame, format_id, log_extra, redact
from ._protocol import ClientProtocol, WSState
from ._transport import extra_info

if TYPE_CHECKING:
    from ._handshake import Negotiated
    from ._inbox import Inbox
    from ._types import ClientWSTimeout
    from ._writer import Writer

__all__ = ["Logger", "Observed"]

Logger = logging.Logger | logging.LoggerAdapter[Any]
_DEBUG: Final = logging.DEBUG
#: Close codes that end a connection abnormally (logged at WARNING).
_ABNORMAL: Final = frozenset({1002, 1003, 1006, 1007, 1008, 1009, 1010, 1011, 1014, 1015})


class Observed:
    """The observing half of :class:`~trio_ws.ClientWebSocket` (a mixin)."""

    # What this half keeps (ClientWebSocket sets them in its __init__).
    __slots__ = ("_closed_by", "_debug", "_log", "_pings", "_serial")
    _serial: int  # the connection's number (its id is formatted when asked for)
    _log: Logger
    _debug: bool  # DEBUG is on for _log (asked once per read batch)
    _pings: Pings | None  # made by the first ping
    _closed_by: str | None  # "us" or "the server": who sent a close frame first

    # Held by ClientWebSocket.
    _core: ClientProtocol
    _inbox: Inbox
    _writer: Writer
    _negotiated: Negotiated
    _timeout: ClientWSTimeout
    _stream: trio.abc.Stream

    # ----------------------------------------------------------------------------------------
    # state and negotiated parameters

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` was called or the connection ended or failed.

        With ``autoclose=False``, the server's close frame alone does not make it ``True``:
        the application answers it with :meth:`close`.
        """
        return self._core.closed

    @property
    def close_code(self) -> int | None:
        """The close code of the connection, or ``None`` while it is open.

        The server's code, ours after a protocol violation, or 1006 after an abnormal end (EOF
        without a close frame, heartbeat timeout, broken transport).
        """
        return self._core.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason that came with :attr:`close_code` (``""`` if none); ``None`` while open."""
        return self._core.close_reason

    @property
    def state(self) -> WSState:
        """Where the connection is in its lifecycle, a :class:`WSState`.

        ``OPEN``, ``CLOSING`` after our close frame, ``CLOSE_RECEIVED`` after the server's
        without autoclose, ``FAILING`` between a protocol violation and its close frame, then
        ``CLOSED``.
        """
        return self._core.state

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server chose, or ``None``."""
        return self._negotiated.subprotocol

    @property
    def compress(self) -> int:
        """The negotiated permessage-deflate window bits for our messages, or 0 if off."""
        return self._negotiated.compress

    @property
    def client_notakeover(self) -> bool:
        """Whether ``client_no_context_takeover`` was negotiated."""
        return self._negotiated.client_notakeover

    def exception(self) -> BaseException | None:
        """The failure that ended the connection, or ``None``.

        A :class:`WSProtocolError` (the server broke the protocol), :class:`ServerTimeoutError`
        (heartbeat), :class:`WSTimeoutError` (the closing handshake timed out) or
        :class:`WSConnectionError` (the transport broke, or a user-supplied stream failed).
        """
        return self._core.failure

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport and handshake details by name.

        ``peername``, ``sockname``, ``socket`` (the trio socket), ``ssl_object`` (the
        ``trio.SSLStream``, which forwards the ``SSLObject`` methods), ``peercert``,
        ``cipher``, ``response_headers`` (the upgrade response's headers, a list of
        ``(name, value)`` pairs), ``subprotocol`` (as :attr:`protocol`); ``default`` when the
        connection has no such thing.
        """
        if name == "response_headers":
            return self._negotiated.response_headers
        if name == "subprotocol":
            return self._negotiated.subprotocol
        return extra_info(self._stream, name, default)

    # ----------------------------------------------------------------------------------------
    # identity, round trips, statistics

    @property
    def id(self) -> str:
        """A short id of this connection, unique in the process (``"3fa1-17"``); every log
        record of the connection carries it."""
        return format_id(self._serial)

    @property
    def url(self) -> str:
        """The URL connected to, without credentials; after redirects, the last one."""
        return self._negotiated.url

    @property
    def latency(self) -> float | None:
        """The round-trip time of the last ping answered (:meth:`ping`'s or the heartbeat's),
        in seconds; ``None`` before the first."""
        return self._pings.latency if self._pings is not None else None

    def statistics(self) -> WSStatistics:
        """A snapshot of the connection's counters: see :class:`WSStatistics`."""
        core, outbox, inbox, pings = self._core, self._core.outbox, self._inbox, self._pings
        headers = self._negotiated.response_headers
        extensions = [v for k, v in headers if k.lower() == "sec-websocket-extensions"]
        return WSStatistics(
            messages_in=inbox.messages_in,
            messages_out=outbox.messages,
            payload_bytes_in=inbox.payload_in,
            payload_bytes_out=outbox.payload_bytes,
            wire_bytes_in=core.bytes_in,
            wire_bytes_out=self._writer.written,
            frames_in=core.frames_in,
            frames_out=outbox.messages + outbox.other_frames,
            pings_sent=pings.sent if pings is not None else 0,
            pongs_received=pings.pongs if pings is not None else 0,
            queue_messages=inbox.queued_messages,
            queue_bytes=inbox.queued_bytes,
            outbox_bytes=self._writer.backlog,
            reader_paused=inbox.paused_seconds,
            latency=self.latency,
            subprotocol=self._negotiated.subprotocol,
            extensions=", ".join(extensions),
            age=trio.current_time() - self._negotiated.opened_at,
        )

    async def ping(self, message: bytes | str = b"", *, timeout: float | None = None) -> float:
        """Send a PING frame and wait for its PONG; return the round-trip time in seconds.

        (aiohttp's ``ping()`` returns ``None`` without waiting; code that ignores the result
        works unchanged.) A pong answers its ping and every earlier one (RFC 6455 §5.5.3 lets
        a server answer only the latest). The time is also kept in :attr:`latency`.

        Args:
            message: the payload, at most 125 bytes (``str`` is UTF-8 encoded).
            timeout: seconds to wait for the pong; ``None`` waits ``ws_close`` of the
                connection's :class:`ClientWSTimeout` (for ever if that is ``None``).

        Raises:
            WSTimeoutError: no pong within ``timeout``; the connection stays usable (a late
                pong still updates :attr:`latency`).
            WSClosedError: the connection is closed, or ended before the pong came.
            InvalidArgument: a payload over 125 bytes.

        Cancellation: a cancelled ping queued its frame whole or not at all, and the
        connection stays usable.
        """
        payload = control_payload("ping", message)
        pings = self._tracked_pings()
        ping = pings.add(payload, trio.current_time(), wait=True)
        try:
            await self._writer.send_control(self._core.send_ping, payload)
        except BaseException:
            pings.forget(ping)
            raise
        if self._debug:
            self._log_trace()
        limit = timeout if timeout is not None else self._timeout.ws_close
        assert ping.answered is not None
        with trio.move_on_after(math.inf if limit is None else limit):
            await ping.answered.wait()
        if ping.rtt is not None:
            return ping.rtt
        if ping.answered.is_set():
            raise self._core.closed_error()  # the connection ended first
        raise WSTimeoutError(f"no pong within {limit} s")

    def __repr__(self) -> str:
        code = self._core.close_code
        tail = "" if code is None else f" code={code}"
        return f"<ClientWebSocket {self.id} {self.url} {self._core.state.name}{tail}>"

    # ----------------------------------------------------------------------------------------
    # hooks of the reader, the heartbeat and the close (the connection's module calls them)

    def _tracked_pings(self) -> Pings:
        pings = self._pings
        if pings is None:
            pings = self._pings = Pings()
        if self._core.pongs is None:
            self._core.pongs = []
        return pings

    def _heartbeat_ping(self) -> None:
        """The heartbeat's ping was queued: time its answer too."""
        self._tracked_pings().add(b"", trio.current_time(), wait=False)
        if self._debug:
            self._log.debug(
                "[%s] heartbeat: the server was silent, ping", self.id, extra=self._extra()
            )

    def _took_pongs(self) -> None:
        """The reader's batch had pongs (``core.pongs`` is not empty)."""
        core, pings = self._core, self._pings
        assert core.pongs is not None
        now = trio.current_time()
        for payload in core.pongs:
            rtt = pings.pong(payload, now) if pings is not None else None
            if self._debug and rtt is not None:
                self._log.debug(
                    "[%s] pong: round trip %.3f ms", self.id, rtt * 1e3, extra=self._extra()
                )
        core.pongs.clear()
        if pings is None or not pings.waiting:
            core.pongs = None  # idle connections are many: no list while no ping waits

    def _observe(self, before: WSState) -> None:
        """After a read batch: is DEBUG on (asked once per batch), and if so log the frames
        traced and a change of state since ``before``."""
        debug = self._log.isEnabledFor(_DEBUG)
        if debug is not self._debug:
            self._debug = debug
            self._core.trace = self._core.outbox.trace = [] if debug else None
        if debug:
            self._log_trace()
            if self._core.state is not before:
                self._log.debug(
                    "[%s] state %s -> %s",
                    self.id,
                    before.name,
                    self._core.state.name,
                    extra=self._extra(),
                )

    def _log_trace(self) -> None:
        trace = self._core.trace
        if trace:
            extra = self._extra()
            for frame in trace:
                self._log.debug("[%s] %s", self.id, describe_frame(frame), extra=extra)
            trace.clear()

    def _log_paused(self, paused: bool) -> None:
        inbox = self._inbox
        if paused:
            self._log.debug(
                "[%s] reader paused: %d messages (%d bytes) not taken yet",
                self.id,
                inbox.queued_messages,
                inbox.queued_bytes,
                extra=self._extra(),
            )
        else:
            self._log.debug("[%s] reader resumed", self.id, extra=self._extra())

    def _log_closed(self) -> None:
        """The connection ended (once, when its transport is closed)."""
        core = self._core
        if self._pings is not None:
            self._pings.close()
        if self._debug:
            self._log_trace()
        code, failure = core.close_code, core.failure
        level = logging.WARNING if code in _ABNORMAL or failure is not None else logging.INFO
        if not self._log.isEnabledFor(level):
            return
        reason = f" reason {core.close_reason!r}" if core.close_reason else ""
        cause = f": {failure}" if failure is not None else ""
        self._log.log(
            level,
            "[%s] closed with code %s%s, closed by %s, after %.3f s%s",
            self.id,
            code,
            reason,
            self._closed_by or "the transport",
            trio.current_time() - self._negotiated.opened_at,
            cause,
            extra=self._extra(),
        )

    def _extra(self) -> dict[str, Any]:
        return log_extra(self.id, self._negotiated.url)


def log_opened(
    log: Logger, ws_id: str, negotiated: Negotiated, took: float, *, http2: bool = False
) -> None:
    """INFO: the connection is open (with the handshake at DEBUG); ``http2``: on an HTTP/2
    stream."""
    if log.isEnabledFor(logging.INFO):
        headers = negotiated.response_headers
        extensions = [v for k, v in headers if k.lower() == "sec-websocket-extensions"]
        log.info(
            "[%s] connected to %s%s (subprotocol %r, extensions %r) in %.1f ms",
            ws_id,
            negotiated.url,
            " over HTTP/2" if http2 else "",
            negotiated.subprotocol,
            ", ".join(extensions),
            took * 1e3,
            extra=log_extra(ws_id, negotiated.url),
        )


def log_handshake(
    log: Logger,
    ws_id: str,
    url: str,
    request: bytes,
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    *,
    http_version: str = "1.1",
) -> None:
    """DEBUG: the request sent and the response head received (credentials redacted), over
    HTTP ``http_version`` (``"1.1"`` or ``"2"``)."""
    if not log.isEnabledFor(_DEBUG):
        return
    extra = log_extra(ws_id, url)
    line, *fields = request.decode("latin-1").split("\r\n")
    log.debug("[%s] > %s", ws_id, line, extra=extra)
    pairs = [field.partition(": ")[::2] for field in fields if field]
    for name, value in redact(pairs):
        log.debug("[%s] > %s: %s", ws_id, name, value, extra=extra)
    head = f"HTTP/{http_version} {status} {reason}".rstrip()  # HTTP/2 has no reason phrase
    log.debug("[%s] < %s", ws_id, head, extra=extra)
    for name, value in redact(headers):
        log.debug("[%s] < %s: %s", ws_id, name, value, extra=extra)
