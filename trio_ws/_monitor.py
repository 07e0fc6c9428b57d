"""Seeing inside a connection: its logger, its id, ping round trips, statistics.

Theory of operation
-------------------

**Logging.** Records go to the ``trio_ws.client`` logger, or the ``logger=`` of the
connection (a ``Logger`` or ``LoggerAdapter``). Each message starts with the connection's
:attr:`~trio_ws.ClientWebSocket.id` in brackets, and each record carries ``ws_id`` and
``ws_url`` as ``extra`` fields, so a handler can pick out one connection. What is logged at
each level is listed in ``docs/logging.rst``. Off costs nothing per message: the reader asks
the logger once per read batch whether DEBUG is on (``isEnabledFor``, which the logging module
caches) and keeps the answer in one boolean; frames are traced (by the core, into a list the
reader drains) only while it is ``True``. Credentials never reach a record: the values of
``Authorization``, ``Proxy-Authorization``, ``Cookie`` and ``Set-Cookie`` are replaced by
``***`` and URLs are shown without ``user:pass@``.

**Pings.** :class:`Pings` holds our pings that wait for their pong: ``ping()``'s and the
heartbeat's. The core hands the payload of every pong it receives to the reader, which gives
it to :meth:`Pings.pong`: the oldest ping with that payload, and every ping before it, are
answered (RFC 6455 §5.5.3 lets a server answer only the latest of several pings), and their
round-trip times computed; the answered ping's becomes :attr:`Pings.latency`. A pong that
matches nothing is ignored. At most :data:`MAX_PENDING` pings wait; beyond that the oldest is
forgotten (its ``ping()`` waits out its timeout).

**Statistics.** Counters live where the bytes pass (the core counts frames and bytes in, the
outbox messages, frames and payload bytes out, the writer wire bytes out, the inbox messages
and payload bytes delivered and the time the reader waited for space); :class:`WSStatistics`
is a frozen snapshot of them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterable
from typing import Any, Final, final

import attrs
import trio

from ._framing import Trace

__all__ = [
    "LOGGER",
    "MAX_PENDING",
    "Pings",
    "WSStatistics",
    "describe_frame",
    "format_id",
    "new_serial",
    "redact",
]

#: The logger of every connection that has no ``logger=`` of its own.
LOGGER: Final = logging.getLogger("trio_ws.client")
# A library's loggers stay silent until the application configures logging: without a handler
# anywhere, Python would print WARNING records on stderr ("last resort"), e.g. one for every
# abnormal close (the logging HOWTO's advice for libraries).
logging.getLogger("trio_ws").addHandler(logging.NullHandler())
#: Our pings that may wait for a pong at once; more drop the oldest.
MAX_PENDING: Final = 32
#: Header values no log record shows.
_SECRET: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_OPCODES: Final = {
    0x0: "CONT",
    0x1: "TEXT",
    0x2: "BINARY",
    0x8: "CLOSE",
    0x9: "PING",
    0xA: "PONG",
}
# Ids: a random prefix per process (two processes' logs stay apart), then a counter.
_RUN: Final = os.urandom(2).hex()
_SERIAL: Final = itertools.count(1)


def new_serial() -> int:
    """The next connection number of this process (kept instead of its id string: idle
    connections are many)."""
    return next(_SERIAL)


def format_id(serial: int) -> str:
    """The id of connection ``serial``: unique in this process, unlikely to repeat in another
    (a random prefix per process)."""
    return f"{_RUN}-{serial}"


def redact(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the values of credential headers replaced by ``***``."""
    return [(name, "***" if name.lower() in _SECRET else value) for name, value in headers]


def describe_frame(trace: Trace) -> str:
    """One frame as a log line: ``< TEXT fin 5 bytes 'hello'`` (``<`` received, ``>`` sent)."""
    direction, opcode, fin, rsv1, length, preview = trace
    name = _OPCODES.get(opcode, f"opcode {opcode:#x}")
    flags = ("fin" if fin else "more") + (" rsv1" if rsv1 else "")
    more = "…" if length > len(preview) else ""
    return f"{direction} {name} {flags} {length} bytes {bytes(preview)!r}{more}"


@final
class _Ping:
    __slots__ = ("answered", "payload", "rtt", "sent_at")

    def __init__(self, payload: bytes, sent_at: float) -> None:
        self.payload = payload
        self.sent_at = sent_at
        self.rtt: float | None = None
        self.answered: trio.Event | None = None


@final
class Pings:
    """Our pings waiting for a pong (see the module docstring)."""

    __slots__ = ("_pending", "latency", "pongs", "sent")

    def __init__(self) -> None:
        self._pending: list[_Ping] = []
        #: The round-trip time of the last ping answered, in seconds.
        self.latency: float | None = None
        #: Pings sent through :meth:`add`, and pongs that answered one.
        self.sent = 0
        self.pongs = 0

    @property
    def waiting(self) -> bool:
        """Some ping waits for its pong."""
        return bool(self._pending)

    def add(self, payload: bytes, now: float, *, wait: bool) -> _Ping:
        """A ping with ``payload`` goes out at ``now``; ``wait``: someone awaits its answer."""
        ping = _Ping(payload, now)
        if wait:
            ping.answered = trio.Event()
        self._pending.append(ping)
        self.sent += 1
        if len(self._pending) > MAX_PENDING:
            del self._pending[0]  # its ping() waits out its timeout
        return ping

    def forget(self, ping: _Ping) -> None:
        """The ping was not sent after all."""
        with contextlib.suppress(ValueError):  # (dropped or answered meanwhile)
            self._pending.remove(ping)
            self.sent -= 1

    def pong(self, payload: bytes, now: float) -> float | None:
        """A pong with ``payload`` arrived at ``now``; the round-trip time of the ping it
        answers, or ``None`` if it answers none of ours."""
        pending = self._pending
        end = next((i + 1 for i, ping in enumerate(pending) if ping.payload == payload), 0)
        if not end:
            return None
        answered = pending[:end]
        del pending[:end]
        self.pongs += 1
        for ping in answered:  # the pong answers every ping before it too
            ping.rtt = now - ping.sent_at
            self._finish(ping)
        self.latency = rtt = answered[-1].rtt
        return rtt

    def close(self) -> None:
        """The connection ended: wake every waiting ``ping()`` (it sees no answer)."""
        for ping in self._pending:
            self._finish(ping)
        self._pending.clear()

    @staticmethod
    def _finish(ping: _Ping) -> None:
        if ping.answered is not None:
            ping.answered.set()


@attrs.frozen(kw_only=True)
class WSStatistics:
    """A snapshot of one connection's counters, from :meth:`ClientWebSocket.statistics`.

    "Wire" bytes are the frames' (headers included, compressed if permessage-deflate is on);
    "payload" bytes are the messages' own (after inflating, before compressing), so the two
    show the compression ratio.

    Attributes:
        messages_in: TEXT and BINARY messages delivered to the application.
        messages_out: TEXT and BINARY messages sent.
        payload_bytes_in: the payload bytes of ``messages_in``.
        payload_bytes_out: the payload bytes of ``messages_out``.
        wire_bytes_in: bytes read from the transport.
        wire_bytes_out: bytes written to the transport.
        frames_in: frames received, control frames included.
        frames_out: frames queued to send, control frames included.
        pings_sent: pings sent (by :meth:`~ClientWebSocket.ping` and the heartbeat).
        pongs_received: pongs received (answers and unsolicited ones).
        queue_messages: messages received and not taken by the application yet.
        queue_bytes: their payload bytes.
        outbox_bytes: bytes queued to send and not written yet.
        reader_paused: seconds the reader spent waiting for the application to take
            messages (the queue was full), in total.
        latency: the last measured ping round-trip time in seconds, or ``None``.
        subprotocol: the negotiated subprotocol, or ``None``.
        extensions: the negotiated extensions, as the server's header said them (``""`` if
            none).
        age: seconds since the connection opened.
    """

    messages_in: int
    messages_out: int
    payload_bytes_in: int
    payload_bytes_out: int
    wire_bytes_in: int
    wire_bytes_out: int
    frames_in: int
    frames_out: int
    pings_sent: int
    pongs_received: int
    queue_messages: int
    queue_bytes: int
    outbox_bytes: int
    reader_paused: float
    latency: float | None
    subprotocol: str | None
    extensions: str
    age: float


def log_extra(ws_id: str, url: str) -> dict[str, Any]:
    """The ``extra`` fields of a connection's log records."""
    return {"ws_id": ws_id, "ws_url": url}
