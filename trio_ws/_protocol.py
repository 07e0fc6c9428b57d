"""The sans-I/O client core: bytes in, messages out, one outbox of bytes to send.

Theory of operation
-------------------

:class:`ClientProtocol` is the framing layer of RFC 6455 for the client, after the opening
handshake, with everything a caller needs on top of it:

* a frame parser that checks each header before it takes a byte of payload: reserved bits
  and opcodes, control-frame rules, unmasked frames only, minimal length encoding, message
  structure (no CONTINUATION outside a message, no new message inside one), ``max_msg_size``
  (a header announcing too much is refused) and a cap on fragments per message;
* message reassembly in :class:`~trio_ws._assembler.Assembler`: UTF-8 validation that fails
  as soon as an invalid byte arrives, permessage-deflate through
  :class:`~trio_ws._deflate.ClientDeflate`, whose inflate never produces more than
  ``max_msg_size`` allows, and the size and fragment limits;
* aiohttp's decisions: pings answered (autoping), the server's close frame echoed
  (autoclose), PING/PONG delivered only without autoping; the close code after a close or a
  failure (which codes may be sent: :mod:`trio_ws._framing`).

The rooms: :mod:`trio_ws._framing` (one frame's rules), :mod:`trio_ws._assembler` (the message
being reassembled), :mod:`trio_ws._outbox` (our frames), and this module: the parser, the
connection's state, and the ``send_*`` methods that check it before they feed the outbox.

No I/O, no trio. The I/O layer feeds it what it reads (:meth:`receive_data`,
:meth:`receive_eof`), gets :class:`WSMessage` objects back (or the pieces of one it asked to
stream: :meth:`stream_message`), and writes what the one :class:`~trio_ws._outbox.Outbox`
holds: data and close frames in call order, pings and pongs ahead of them. Why not wsproto's
framing: see ``docs/internals.rst``.

The parser has two states. *Between frames* it reads a header; whole messages in one frame
each, all in the buffer (the common case), are built straight from it, by the C loop
``scan_messages`` of :mod:`trio_ws._speedups` where built, else in Python. Otherwise the
header goes through :func:`~trio_ws._framing.check_header` and the assembler; only a frame
that goes on in the next read is *streamed* (a big BINARY frame into a sink the I/O layer may
read into: :meth:`ClientProtocol.receive_buffer`). An incomplete header waits for more.

**The one lifecycle** lives here: :attr:`ClientProtocol.state`, ``close_code``,
``close_reason`` and ``failure``; the I/O layer asks and keeps no copy, and reports what only
it sees: :meth:`~ClientProtocol.receive_eof` (the transport ended) and
:meth:`~ClientProtocol.fail` (it broke, the heartbeat or the closing handshake timed out)::

    OPEN ──send_close()─────────────────────► CLOSING ──server close frame──► CLOSED
      │                                                                          ▲
      ├──server close frame, autoclose (echo queued)────────────────────────────┤
      ├──server close frame, no autoclose──► CLOSE_RECEIVED ──send_close()──────┤
      └──violation (deferred)──► FAILING ──commit_failure() (close frame queued)─┤
    OPEN / CLOSING ──violation, not deferred, or fail(exc)──────────────────────┤
    any ──receive_eof()─────────────────────────────────────────────────────────┘

Only OPEN and CLOSING parse input: RFC 6455 §5.5.1 says nothing follows a close frame, and
after a violation the framing can no longer be trusted. Data may be sent in OPEN and in
FAILING (the application may still answer the messages that arrived before a violation,
until its close frame goes out). The first failure wins; once the server's close frame has
arrived, what breaks afterwards is not a failure.
"""

from __future__ import annotations

import enum
import os
from typing import Final

from ._assembler import DEFAULT_MAX_FRAGMENTS, Assembler
from ._deflate import ClientDeflate
from ._errors import InvalidArgument, WSClosedError, WSProtocolError
from ._framing import (
    BINARY,
    CLOSE,
    CONTINUATION,
    MAX_CONTROL_PAYLOAD,
    PING,
    PONG,
    PREVIEW,
    PROTOCOL_ERROR,
    TEXT,
    MaskSource,
    ProtocolViolation,
    Trace,
    check_close_code,
    check_header,
    frame_opcode,
    parse_close,
    scan_messages,
)
from ._outbox import Outbox
from ._types import WSCloseCode, WSMessage, WSMsgType

__all__ = ["DEFAULT_MAX_FRAGMENTS", "ClientProtocol", "WSState"]

_BINARY_TYPE: Final = WSMsgType.BINARY
_TEXT_TYPE: Final = WSMsgType.TEXT
# WSMessage is a NamedTuple; building it with tuple.__new__ skips a Python-level __new__ on
# the per-message path.
_tuple_new: Final = tuple.__new__


class WSState(enum.Enum):
    """Where a connection is in its lifecycle (``ClientWebSocket.state``; the moves between
    the states are drawn in :doc:`/internals`)."""

    #: Both directions are open.
    OPEN = "open"
    #: The server's close frame arrived; ours is not sent yet (``autoclose=False``).
    CLOSE_RECEIVED = "close received"
    #: Our close frame is queued; the server's has not arrived yet.
    CLOSING = "closing"
    #: The server broke the protocol; our close frame waits until the application takes the
    #: ERROR (or ``ws_close`` passes).
    FAILING = "failing"
    #: No frame is parsed or sent any more: the closing handshake is complete, the
    #: connection failed, or the transport ended.
    CLOSED = "closed"


_OPEN: Final = WSState.OPEN
_CLOSING: Final = WSState.CLOSING
_FAILING: Final = WSState.FAILING
_CLOSED: Final = WSState.CLOSED


class ClientProtocol:
    """The client side of an established WebSocket connection, without I/O.

    Args:
        deflate: the permessage-deflate the opening handshake negotiated, if any (it is
            given ``max_msg_size``).
        max_msg_size: the largest message accepted, after decompression (0 = no limit); a
            bigger one fails with 1009 once a header announces it or the inflate passes it.
        max_fragments: frames per message, control frames not counted (0 = no limit); more
            fail with 1009.
        autoping: answer pings with pongs and swallow pongs, instead of delivering them.
        autoclose: answer the server's close frame at once.
        decode_text: deliver TEXT data as ``str`` (else as UTF-8 ``bytes``).
        defer_failure_close: after a violation, queue our close frame only at
            :meth:`commit_failure` (the I/O layer calls it once the application has seen the
            messages before the violation, which it may still answer).
        mask_source: ``mask_source(4)`` gives each frame's mask key: ``os.urandom`` (RFC 6455
            §10.3's CSPRNG) unless a test injects keys.
        max_frame_size: a message with more payload bytes than this (after compression)
            goes out in frames of at most this size; 0 = every message in one frame.

    Raises:
        TypeError: ``deflate`` is not a :class:`~trio_ws._deflate.ClientDeflate`.
    """

    # Slots: thousands of idle connections are a use case (no __dict__ per instance).
    __slots__ = (
        "_assembler", "_autoclose", "_autoping", "_control_payload", "_defer_failure_close",
        "_deflate", "_frame_fin", "_frame_left", "_frame_opcode", "_head", "bytes_in",
        "close_code", "close_reason", "failure", "frames_in", "outbox", "pongs", "state", "trace",
    )

    def __init__(
        self,
        *,
        deflate: ClientDeflate | None = None,
        max_msg_size: int = 4 * 1024 * 1024,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        autoping: bool = True,
        autoclose: bool = True,
        decode_text: bool = True,
        defer_failure_close: bool = False,
        mask_source: MaskSource = os.urandom,
        max_frame_size: int = 0,
    ) -> None:
        if deflate is not None and not isinstance(deflate, ClientDeflate):
            # wsproto's PerMessageDeflate looks alike but its inflate is unbounded.
            raise TypeError(f"deflate: a trio_ws ClientDeflate, not {type(deflate).__name__}")
        self._deflate = deflate
        self._assembler = Assembler(
            deflate=deflate,
            max_msg_size=max_msg_size,
            max_fragments=max_fragments,
            decode_text=decode_text,
        )
        self._autoping = autoping
        self._autoclose = autoclose
        self._defer_failure_close = defer_failure_close
        #: Our frames wait here (the send methods check the state, then feed it); the I/O
        #: layer reads its ``size`` and counters and takes from it.
        self.outbox = Outbox(mask_source, deflate, max_frame_size)

        # Parser state. _head: the bytes of an incomplete frame header. _frame_left: payload
        # bytes of the frame being streamed still to come (0 = between frames).
        self._head = b""
        self._frame_left = 0
        self._frame_opcode = 0
        self._frame_fin = False
        self._control_payload = b""  # a control frame that spans reads (at most 125 bytes)
        self.bytes_in = 0  #: bytes received (the wire's)
        self.frames_in = 0  #: frames received
        #: While a list: each frame received, as a :data:`~trio_ws._framing.Trace` (the I/O
        #: layer logs them at DEBUG; the outbox has the same for the frames sent).
        self.trace: list[Trace] | None = None
        #: While a list: the payload of each pong received (the I/O layer matches them to its
        #: pings), with or without autoping.
        self.pongs: list[bytes] | None = None

        #: Where the connection is; see :class:`WSState`.
        self.state = WSState.OPEN
        #: What ended the connection: the :class:`WSProtocolError` of the server's violation,
        #: or what the I/O layer reported with :meth:`fail`. Set once, never cleared.
        self.failure: BaseException | None = None
        #: The connection's close code once known: the server's, ours after a violation, 1006
        #: after an abnormal end (EOF without a close frame, a failure).
        self.close_code: int | None = None
        #: The reason that came with :attr:`close_code` (``""`` when none).
        self.close_reason: str | None = None

    # ----------------------------------------------------------------------------------------
    # state

    @property
    def can_send(self) -> bool:
        """Data messages may be sent: OPEN, or FAILING before its close frame went out."""
        state = self.state
        return state is _OPEN or state is _FAILING

    @property
    def input_done(self) -> bool:
        """Nothing more will be parsed: the server's close frame, a violation, or the end."""
        state = self.state
        return state is not _OPEN and state is not _CLOSING

    @property
    def closed(self) -> bool:
        """Our side is closing or closed, or the connection failed or ended (everything but
        OPEN and CLOSE_RECEIVED): ``ClientWebSocket.closed``."""
        state = self.state
        return state is not _OPEN and state is not WSState.CLOSE_RECEIVED

    def closed_error(self) -> WSClosedError:
        """The :class:`WSClosedError` for a send that may not happen now (with the failure, if
        any, as its cause)."""
        code, reason = self.close_code, self.close_reason
        if code is None:
            text = "the WebSocket connection is closing"
        else:
            text = f"the WebSocket connection is closed (code {code}"
            text += f", reason {reason!r})" if reason else ")"
        err = WSClosedError(text, code, reason)
        err.__cause__ = self.failure
        return err

    def fail(self, exc: BaseException, code: int = WSCloseCode.ABNORMAL_CLOSURE) -> bool:
        """The I/O layer saw the connection break (``exc``): it is CLOSED with ``code``.

        Returns ``True`` if ``exc`` was recorded as the :attr:`failure`: only while OPEN or
        CLOSING (after the server's close frame the session had ended; the first failure wins).
        """
        state = self.state
        if state is _CLOSED:
            return False
        self.state = _CLOSED
        self._drop_message()
        if state is not _OPEN and state is not _CLOSING:
            return False
        self.failure = exc
        self.close_code = code
        self.close_reason = ""
        return True

    def data_to_send(self) -> bytes:
        """Take everything in the outbox, oldest first."""
        return self.outbox.take()

    # ----------------------------------------------------------------------------------------
    # input

    def receive_data(self, data: bytes | bytearray) -> list[WSMessage]:
        """Feed bytes read from the transport; return the messages they complete.

        Returns messages of type TEXT, BINARY, PING and PONG (only without autoping), CLOSE (the
        server's close frame: data is the code, extra the reason) and ERROR (the server violated
        the protocol: data is the :class:`WSProtocolError`, also kept in :attr:`failure`).
        Bytes that arrive after a close frame or a violation are dropped.
        """
        self.bytes_in += len(data)
        state = self.state
        if (state is not _OPEN and state is not _CLOSING) or not data:
            return []
        out: list[WSMessage] = []
        try:
            self._parse(bytes(data) if not self._head else self._head + data, out)
        except ProtocolViolation as exc:
            out.append(self._fail(exc.code, exc.reason))
        return out

    def _parse(self, buf: bytes, out: list[WSMessage]) -> None:
        """Parse ``buf`` into ``out``; stop after a close frame, raise on a violation."""
        n = len(buf)
        pos = 0
        self._head = b""
        asm = self._assembler
        max_msg_size = asm.max_msg_size
        decode_text = asm.decode_text
        deflate = self._deflate
        trace = self.trace
        frames = self.frames_in
        # Only the I/O layer sets it, never during a parse: a local suffices.
        stream_next = asm.stream_next
        scan = scan_messages if trace is None and decode_text else None
        inflate = deflate.inflater if deflate is not None else None
        scan_args = (inflate, max_msg_size, WSMessage, _TEXT_TYPE, _BINARY_TYPE)
        try:
            while pos < n:
                if self._frame_left:
                    # Streaming the payload of a frame that did not fit in one read.
                    take = min(self._frame_left, n - pos)
                    self._frame_left -= take
                    pos += take
                    if asm.sinking:
                        last = not self._frame_left and self._frame_fin
                        if msg := asm.fill(memoryview(buf)[pos - take : pos], last):
                            out.append(msg)
                    elif self._frame_payload(buf[pos - take : pos], out):
                        return
                    continue
                if scan is not None and not asm.opcode and not stream_next:
                    # As the common case below, as many frames as it can (see _speedups.c).
                    before = len(out)
                    try:
                        pos, count, bad = scan(buf, pos, out, *scan_args)
                    except ProtocolViolation:  # from inflate: its frame counts too
                        frames += len(out) - before + 1
                        raise
                    frames += count
                    if bad is not None:
                        asm.whole_text(bad)  # raises the violation (1007)
                # A frame header (RFC 6455 §5.2): 2 bytes, then 0, 2 or 8 bytes of length.
                if n - pos < 2:
                    break
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                if length < 126:
                    start = pos + 2
                elif length == 126:
                    if n - pos < 4:
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    start = pos + 4
                    if length < 126:
                        # RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the
                        # length".
                        raise ProtocolViolation(
                            PROTOCOL_ERROR, "a frame length in 2 bytes when 1 would do"
                        )
                else:
                    if n - pos < 10:
                        break
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    start = pos + 10
                    if length >> 63:
                        raise ProtocolViolation(
                            PROTOCOL_ERROR, "a 64-bit frame length with the top bit set"
                        )
                    if length < 0x10000:
                        raise ProtocolViolation(
                            PROTOCOL_ERROR, "a frame length in 8 bytes when 2 would do"
                        )
                frames += 1
                if b1 & 0x80:
                    # RFC 6455 §5.1: "A client MUST close a connection if it detects a masked
                    # frame."
                    raise ProtocolViolation(PROTOCOL_ERROR, "a masked frame from the server")
                opcode = b0 & 0x0F
                fin = b0 & 0x80
                end = start + length
                # A final TEXT or BINARY frame outside a fragmented message is a whole message;
                # its header needs no rule but RSV (RSV1 without deflate fails the long way).
                if fin and 0 < opcode < 3 and asm.opcode == 0:
                    rsv = b0 & 0x70
                    if rsv == 0 and max_msg_size and length > max_msg_size:
                        raise asm.too_big(length)  # (a compressed one is bounded by the inflate)
                    if end <= n and (rsv == 0 or (rsv == 0x40 and inflate is not None)):
                        # The common case: a whole message in one frame, all in the buffer.
                        pos = end
                        data = buf[start:end]
                        if trace is not None:
                            trace.append(("<", opcode, True, rsv != 0, length, data[:PREVIEW]))
                        if rsv and inflate is not None:
                            data = inflate(data)
                        if opcode == BINARY:
                            out.append(_tuple_new(WSMessage, (_BINARY_TYPE, data, None)))
                        elif decode_text:
                            try:
                                out.append(_tuple_new(WSMessage, (_TEXT_TYPE, data.decode(), None)))
                            except UnicodeDecodeError:
                                out.append(asm.whole_text(data))  # raises the violation (1007)
                        else:
                            out.append(asm.whole_text(data))
                        if stream_next:
                            asm.stream_next = stream_next = False  # this one was the next
                        continue
                if trace is not None:
                    preview = buf[start : min(end, n, start + PREVIEW)]
                    trace.append(("<", opcode, bool(fin), bool(b0 & 0x40), length, preview))
                check_header(b0, opcode, length)
                if opcode >= CLOSE:
                    if end <= n:
                        # A whole control frame in the buffer, as pings almost always are: no
                        # copy into _control_payload.
                        pos = end
                        if self._control(opcode, buf[start:end], out):
                            return
                        continue
                    self._control_payload = b""
                else:
                    if opcode == CONTINUATION:
                        asm.next_fragment(length)
                    else:
                        asm.start(opcode, bool(b0 & 0x40), length)
                    if end <= n:
                        # A whole fragment in the buffer: one piece for the assembler.
                        pos = end
                        msg = asm.feed(buf[start:end], bool(fin))
                        if msg is not None:
                            out.append(msg)
                        continue
                # The frame goes on in the next read: stream its payload (into a sink if big).
                pos = start
                if opcode < CLOSE:
                    asm.open_sink(length)
                self._frame_opcode = opcode
                self._frame_fin = bool(fin)
                self._frame_left = length
            if pos < n:
                self._head = buf[pos:]
        finally:
            self.frames_in = frames

    def stream_message(self) -> WSMessage | None:
        """Deliver the next message in pieces: see ``Assembler.stream_open``."""
        return self._assembler.stream_open()

    def unstream_message(self) -> None:
        """Take back :meth:`stream_message` if the message has not started yet."""
        self._assembler.stream_next = False

    def receive_buffer(self) -> memoryview | None:
        """Where the next read may go directly (the rest of a big frame, see the assembler;
        then :meth:`received_into`); ``None``: read as usual, :meth:`receive_data`."""
        return self._assembler.sink_view()

    def received_into(self, size: int) -> list[WSMessage]:
        """``size`` bytes (> 0) were read into :meth:`receive_buffer`; as :meth:`receive_data`."""
        self.bytes_in += size
        self._frame_left -= size
        msg = self._assembler.filled(size, not self._frame_left and self._frame_fin)
        return [] if msg is None else [msg]

    def _frame_payload(self, data: bytes, out: list[WSMessage]) -> bool:
        """A piece of the current frame's payload; returns ``True`` if parsing must stop."""
        opcode = self._frame_opcode
        last = not self._frame_left
        if opcode >= CLOSE:
            self._control_payload += data
            if last:
                return self._control(opcode, self._control_payload, out)
            return False
        msg = self._assembler.feed(data, last and self._frame_fin)
        if msg is not None:
            out.append(msg)
        return False

    def _drop_message(self) -> None:
        self._assembler.reset()
        self._frame_left = 0
        self._head = b""

    def _control(self, opcode: int, payload: bytes, out: list[WSMessage]) -> bool:
        """A whole control frame; returns ``True`` for a close frame (parsing stops)."""
        if opcode == PING:
            if not self._autoping:
                out.append(WSMessage(WSMsgType.PING, payload, None))
            elif self.state is _OPEN:  # no pong after our close frame (RFC 6455 §5.5.1)
                self.outbox.control(PONG, payload)
            return False
        if opcode == PONG:
            if self.pongs is not None:
                self.pongs.append(payload)
            if not self._autoping:
                out.append(WSMessage(WSMsgType.PONG, payload, None))
            return False
        out.append(self._on_close(payload))
        return True

    def receive_eof(self) -> list[WSMessage]:
        """The transport ended. Returns nothing: EOF is a state, not a message.

        RFC 6455 §7.1.5: without a close frame, the close code is 1006.
        """
        if self.state is not _CLOSED:
            self.state = _CLOSED
            self._drop_message()
        if self.close_code is None:
            self.close_code = WSCloseCode.ABNORMAL_CLOSURE
            self.close_reason = ""
        return []

    def _on_close(self, payload: bytes) -> WSMessage:
        code, reason = parse_close(payload)
        self._drop_message()
        # Nothing before a close frame sets a close code: failure and EOF stop parsing.
        self.close_code = code
        self.close_reason = reason
        if self.state is _CLOSING:
            self.state = _CLOSED  # the closing handshake is complete
        elif self._autoclose:
            # RFC 6455 §5.5.1: "the endpoint MUST send a Close frame in response ... typically
            # echoing the status code it received". For 1005 (no code), an empty close frame.
            self.state = _CLOSED
            self.outbox.close(code)
        else:
            self.state = WSState.CLOSE_RECEIVED
        return WSMessage(WSMsgType.CLOSE, code, reason)

    def _fail(self, code: int, reason: str) -> WSMessage:
        """The server violated the protocol: queue our close frame, stop parsing."""
        exc = WSProtocolError(f"the server violated the WebSocket protocol: {reason}", code)
        self.failure = exc
        self.close_code = code
        self.close_reason = ""
        self._drop_message()
        if self.state is _CLOSING:
            self.state = _CLOSED  # our close frame is out already
        else:
            self.state = _FAILING
            if not self._defer_failure_close:
                self.commit_failure()
        return WSMessage(WSMsgType.ERROR, exc, None)

    def commit_failure(self) -> bool:
        """Queue the close frame for the recorded violation, if not done yet.

        Returns ``True`` if this call queued it. RFC 6455 §7.1.7: "Fail the WebSocket
        Connection" — send a close frame with the violation's code, then close.
        """
        if self.state is not _FAILING:
            return False
        self.state = _CLOSED
        assert isinstance(self.failure, WSProtocolError)
        self.outbox.close(self.failure.code)
        return True

    # ----------------------------------------------------------------------------------------
    # output: the lifecycle check, then the outbox

    def _check_open(self) -> None:
        # can_send's rule, inlined: this runs on every send, and two identity tests cost a
        # third of a property call or a set lookup (30 against 90 ns, measured).
        state = self.state
        if state is not _OPEN and state is not _FAILING:
            raise self.closed_error()

    def send_text(self, data: str, compress: bool = True) -> None:
        """Queue a TEXT message.

        ``compress=False`` sends it uncompressed (RSV1 clear) when permessage-deflate was
        negotiated; without it, every message is uncompressed anyway.
        """
        self._check_open()
        try:
            payload = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(f"a text that cannot be encoded as UTF-8: {exc}") from exc
        self.outbox.message(TEXT, payload, compress)

    def send_fragment(
        self,
        opcode: int,
        payload: bytes | bytearray | memoryview,
        compress: bool = True,
        first: bool = True,
        last: bool = True,
    ) -> None:
        """Queue a message or one of its fragments; a TEXT payload is not checked."""
        self._check_open()
        self.outbox.fragment(opcode, payload, compress, first=first, last=last)

    def send_bytes(self, data: bytes | bytearray | memoryview, compress: bool = True) -> None:
        """Queue a BINARY message (``compress`` as for :meth:`send_text`)."""
        self._check_open()
        self.outbox.message(BINARY, data, compress)

    def send_frame(self, data: bytes, opcode: int, compress: bool = True) -> None:
        """Queue one frame with ``opcode`` (TEXT, BINARY, PING or PONG) and ``data`` as payload.

        ``compress`` applies to TEXT and BINARY, as for :meth:`send_text`.

        Raises:
            InvalidArgument: as :func:`~trio_ws._framing.frame_opcode`, or a control payload
                over 125 bytes.
        """
        opcode = frame_opcode(opcode, data)
        if opcode >= CLOSE:
            self._check_control(data)
            self.outbox.control(opcode, data)
        else:
            self._check_open()
            self.outbox.message(opcode, data, compress)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a PING frame (payload at most 125 bytes)."""
        self._check_control(payload)
        self.outbox.control(PING, payload)

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited PONG frame (payload at most 125 bytes)."""
        self._check_control(payload)
        self.outbox.control(PONG, payload)

    def _check_control(self, payload: bytes) -> None:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise InvalidArgument("a control frame's payload is at most 125 bytes (RFC 6455 §5.5)")
        self._check_open()

    def send_close(self, code: int = WSCloseCode.OK, reason: str = "") -> bool:
        """Queue our close frame: OPEN becomes CLOSING, CLOSE_RECEIVED becomes CLOSED, and
        FAILING sends the violation's close frame instead (it has its own code).

        Returns ``False`` if our close frame was already queued or the connection ended.

        Raises:
            InvalidArgument: a code that may not be sent, or a reason over 123 UTF-8 bytes.
        """
        check_close_code(code)
        try:
            size = len(reason.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidArgument("a close reason that cannot be encoded as UTF-8") from exc
        if size > MAX_CONTROL_PAYLOAD - 2:
            raise InvalidArgument("a close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5)")
        state = self.state
        if state is _FAILING:
            return self.commit_failure()
        if state is _OPEN:
            self.state = _CLOSING
        elif state is WSState.CLOSE_RECEIVED:
            self.state = _CLOSED
        else:
            return False
        self.outbox.close(int(code), reason)
        return True
