"""The sans-I/O client core: bytes in, messages out, one outbox of bytes to send.

Theory of operation
-------------------

:class:`ClientProtocol` is the framing layer of RFC 6455 for the client, after the opening
handshake, with everything a caller needs on top of it:

* a frame parser that checks each header before it takes a byte of payload: reserved bits
  and opcodes, control-frame rules, unmasked frames only, minimal length encoding, message
  structure (no CONTINUATION outside a message, no new message inside one), ``max_msg_size``
  (a header announcing too much is refused) and a cap on fragments per message;
* message reassembly, UTF-8 validation that fails as soon as an invalid byte arrives, and
  permessage-deflate through :class:`~trio_ws._extensions.ClientDeflate`, whose inflate never
  produces more than ``max_msg_size`` allows;
* the decisions of aiohttp's client: pings answered (autoping), the server's close frame
  echoed (autoclose), PING/PONG delivered only without autoping;
* close-code rules: which codes the server may send (RFC 6455 §7.4, 1014 included), what ends
  up as the connection's close code, which codes a caller may send, and what happens after a
  protocol failure.

It never does I/O and never imports trio. The I/O layer feeds it what it reads
(:meth:`receive_data`, :meth:`receive_eof`), gets finished :class:`WSMessage` objects back, and
writes :meth:`data_to_send` to the transport. Every frame, from any method, goes into one outbox
in the order the methods were called, so the wire order is the call order.

Why not wsproto's framing: wsproto (1.3) parses a small frame in 5-6 µs and builds one in
4-5 µs, through an event object per frame and its extension hooks, and masks in pure Python
(1.2 ms per MiB). That alone made a 64-byte message cost more than the whole budget of a
fast client; this parser handles a complete small frame in one pass over the read buffer,
without intermediate objects. wsproto remains the server of :mod:`trio_ws.testing` and the
independent peer of the tests.

The parser has two states. *Between frames* it reads a header; if the whole frame is in the
buffer and it is a complete, uncompressed message (the common case) the message is built
straight from the buffer. Otherwise the frame's payload is *streamed*: each piece that
arrives is inflated (if compressed), UTF-8-checked (if text) and appended to the message
being reassembled, so memory stays near the message's size whatever the split. Bytes of an
incomplete header (at most 13) wait for the next read.

States, from the core's point of view (they combine; none is ever undone)::

    open ──send_close()──────────► local_closed ──┐
      │                                           ├─► both: closing handshake complete
      └──server close frame──────► remote_closed ─┘
      │
      └──protocol violation──────► failed: close frame with the violation's code queued,
                                   all further input dropped (RFC 6455 §7.1.7)
    any ──receive_eof()──────────► eof

After ``remote_closed`` or ``failed`` no more bytes are parsed: RFC 6455 §5.5.1 says nothing
follows a close frame, and after a violation the framing can no longer be trusted.
"""

from __future__ import annotations

import codecs
import enum
import io
from collections.abc import Sequence
from typing import Final

from ._errors import InvalidArgument, WSClosedError, WSProtocolError
from ._extensions import (
    DEFAULT_MAX_FRAGMENTS,
    INVALID_DATA,
    MESSAGE_TOO_BIG,
    PROTOCOL_ERROR,
    ClientDeflate,
    ProtocolViolation,
    is_valid_close_code,
)
from ._framing import build_frame
from ._types import WSCloseCode, WSMessage, WSMsgType

__all__ = ["DEFAULT_MAX_FRAGMENTS", "ClientProtocol", "check_close_code"]

_MAX_CONTROL_PAYLOAD: Final = 125
#: The close code of a close frame without one (RFC 6455 §7.1.5); never sent.
_NO_STATUS: Final = 1005

# Opcodes (RFC 6455 §5.2).
_CONTINUATION: Final = 0x0
_TEXT: Final = 0x1
_BINARY: Final = 0x2
_CLOSE: Final = 0x8
_PING: Final = 0x9
_PONG: Final = 0xA

_TEXT_TYPE: Final = WSMsgType.TEXT
_BINARY_TYPE: Final = WSMsgType.BINARY
# WSMessage is a NamedTuple; building it with tuple.__new__ skips a Python-level __new__ on
# the per-message path.
_tuple_new: Final = tuple.__new__
_Utf8Decoder: Final = codecs.getincrementaldecoder("utf-8")
#: Pieces of a BINARY message are kept as they are until the message is complete (then
#: joined: one copy) while they are at least this big, or while there are fewer than
#: _SMALL_PARTS of them; otherwise they are copied into one buffer. A piece costs ~40 bytes
#: of overhead, so this bounds the overhead at 1% plus a few hundred bytes.
_MIN_PART: Final = 4096
_SMALL_PARTS: Final = 16
#: take_outbox() writes pieces at least this big on their own instead of copying them.
_JOIN_LIMIT: Final = 64 * 1024


class _Frame(enum.IntEnum):
    """Opcodes a caller may ask :meth:`ClientProtocol.send_frame` for."""

    TEXT = WSMsgType.TEXT
    BINARY = WSMsgType.BINARY
    PING = WSMsgType.PING
    PONG = WSMsgType.PONG


def check_close_code(code: int) -> None:
    """Raise :class:`InvalidArgument` unless ``code`` may be sent in a close frame.

    RFC 6455 §7.4.1/§7.4.2: 1000-1003 and 1007-1014 are defined; 1004, 1005, 1006 and 1015
    must never be sent; 3000-4999 are for libraries and applications.
    """
    if not isinstance(code, int) or isinstance(code, bool):
        raise InvalidArgument(f"a close code must be an int, not {type(code).__name__}")
    if not is_valid_close_code(code):
        raise InvalidArgument(f"close code {code} may not be sent (RFC 6455 §7.4)")


class ClientProtocol:
    """The client side of an established WebSocket connection, without I/O.

    Args:
        extensions: the extensions the opening handshake negotiated: at most one
            :class:`~trio_ws._extensions.ClientDeflate` (it is given ``max_msg_size``).
        max_msg_size: the largest message accepted, in bytes after decompression; 0 = no limit.
            A bigger message fails the connection with close code 1009, as soon as a frame
            header announces it (uncompressed) or inflating it passes the limit (compressed).
        max_fragments: the most frames one message may have (control frames between them are
            not counted); 0 = no limit. More fail the connection with close code 1009.
        autoping: answer pings with pongs and swallow pongs, instead of delivering them.
        autoclose: answer the server's close frame at once.
        decode_text: deliver TEXT data as ``str`` (else as UTF-8 ``bytes``).
        defer_failure_close: after a violation, queue our close frame only when the I/O layer
            calls :meth:`commit_failure` (it does so once the application has seen the
            messages that arrived before the violation, which it may still answer); sending
            stays possible until then.

    Raises:
        TypeError: an extension that is not a :class:`~trio_ws._extensions.ClientDeflate`.
    """

    # Slots: thousands of idle connections are a use case (no __dict__ per instance).
    __slots__ = (
        "_autoclose",
        "_autoping",
        "_bytes",
        "_control_payload",
        "_decode_text",
        "_defer_failure_close",
        "_deflate",
        "_fragments",
        "_frame_fin",
        "_frame_left",
        "_frame_opcode",
        "_head",
        "_max_fragments",
        "_max_msg_size",
        "_msg_compressed",
        "_msg_opcode",
        "_msg_size",
        "_out",
        "_out_size",
        "_parts",
        "_text",
        "_utf8",
        "close_code",
        "close_reason",
        "eof",
        "failure",
        "local_closed",
        "remote_closed",
    )

    def __init__(
        self,
        *,
        extensions: Sequence[ClientDeflate] | None = None,
        max_msg_size: int = 4 * 1024 * 1024,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        autoping: bool = True,
        autoclose: bool = True,
        decode_text: bool = True,
        defer_failure_close: bool = False,
    ) -> None:
        self._deflate: ClientDeflate | None = None
        for ext in extensions or ():
            if not isinstance(ext, ClientDeflate) or self._deflate is not None:
                raise TypeError(
                    f"extensions: at most one trio_ws ClientDeflate, not {type(ext).__name__}"
                )
            self._deflate = ext
            ext.max_msg_size = max_msg_size
        self._max_msg_size = max_msg_size
        self._max_fragments = max_fragments
        self._autoping = autoping
        self._autoclose = autoclose
        self._decode_text = decode_text
        self._defer_failure_close = defer_failure_close
        self._out: list[bytes] = []
        self._out_size = 0

        # Parser state. _head: the bytes of an incomplete frame header. _frame_left: payload
        # bytes of the frame being streamed still to come (0 = between frames).
        self._head = b""
        self._frame_left = 0
        self._frame_opcode = 0
        self._frame_fin = False
        self._control_payload = bytearray()
        # The message being reassembled (_msg_opcode 0 = none). Appending to one buffer keeps
        # the memory near the message's size however small the pieces are; a list of pieces
        # would cost ~50 bytes of object overhead per piece.
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0  # payload bytes announced by the headers (uncompressed messages)
        self._fragments = 0
        self._bytes: bytearray | None = None
        # A BINARY message arriving in big pieces is kept as the pieces and joined once at the
        # end (one copy instead of two); a small piece switches to _bytes (see _add_binary).
        self._parts: list[bytes] | None = None
        self._text: io.StringIO | None = None
        self._utf8: codecs.IncrementalDecoder | None = None

        #: Our close frame is in the outbox (or already sent).
        self.local_closed = False
        #: The server's close frame has arrived.
        self.remote_closed = False
        #: The transport reached end of file.
        self.eof = False
        #: The server violated the protocol; set once, never cleared.
        self.failure: WSProtocolError | None = None
        #: The connection's close code once known (the server's, ours after a violation,
        #: 1006 after EOF without a close frame).
        self.close_code: int | None = None
        #: The server's close reason, if it sent one.
        self.close_reason: str | None = None

    # ----------------------------------------------------------------------------------------
    # state

    @property
    def is_open(self) -> bool:
        """``True`` while data messages may still be sent."""
        if self.failure is not None and not self._defer_failure_close:
            return False
        return not (self.local_closed or self.remote_closed or self.eof)

    @property
    def handshake_complete(self) -> bool:
        """Both close frames have been exchanged (or the connection failed or hit EOF)."""
        return (self.local_closed and self.remote_closed) or self.eof

    @property
    def outbox_size(self) -> int:
        """Bytes waiting in the outbox."""
        return self._out_size

    def data_to_send(self) -> bytes:
        """Take everything in the outbox, oldest first."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_size = 0
        return data

    def take_outbox(self) -> list[bytes]:
        """Take everything in the outbox as pieces to write in order, oldest first.

        Small pieces are joined; a piece of 64 KiB or more stays on its own, so a big
        payload is written as it is instead of copied into one buffer with its header.
        """
        out = self._out
        if len(out) < 2 or self._out_size < _JOIN_LIMIT:
            data = self.data_to_send()
            return [data] if data else []
        pieces: list[bytes] = []
        run: list[bytes] = []
        for piece in out:
            if len(piece) >= _JOIN_LIMIT:
                if run:
                    pieces.append(run[0] if len(run) == 1 else b"".join(run))
                    run = []
                pieces.append(piece)
            else:
                run.append(piece)
        if run:
            pieces.append(run[0] if len(run) == 1 else b"".join(run))
        out.clear()
        self._out_size = 0
        return pieces

    # ----------------------------------------------------------------------------------------
    # input

    def receive_data(self, data: bytes | bytearray) -> list[WSMessage]:
        """Feed bytes read from the transport; return the messages they complete.

        Returns messages of type TEXT, BINARY, PING and PONG (only without autoping), CLOSE (the
        server's close frame: data is the code, extra the reason) and ERROR (the server violated
        the protocol: data is the :class:`WSProtocolError`, also kept in :attr:`failure`).
        Bytes that arrive after a close frame or a violation are dropped.
        """
        if self.remote_closed or self.failure is not None or self.eof or not data:
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
        max_msg_size = self._max_msg_size
        deflate = self._deflate
        while pos < n:
            if self._frame_left:
                # Streaming the payload of a frame that did not fit in one read.
                take = min(self._frame_left, n - pos)
                self._frame_left -= take
                pos += take
                if self._frame_payload(buf[pos - take : pos], out):
                    return
                continue
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
            if b1 & 0x80:
                # RFC 6455 §5.1: "A client MUST close a connection if it detects a masked frame."
                raise ProtocolViolation(PROTOCOL_ERROR, "a masked frame from the server")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            end = start + length
            if fin and 0 < opcode < 3 and self._msg_opcode == 0:
                rsv = b0 & 0x70
                if rsv == 0:
                    # The common case: a whole uncompressed message in one frame.
                    if max_msg_size and length > max_msg_size:
                        raise self._too_big(length)
                    if end <= n:
                        pos = end
                        if opcode == _BINARY:
                            out.append(_tuple_new(WSMessage, (_BINARY_TYPE, buf[start:end], None)))
                        else:
                            out.append(self._text_message(buf[start:end]))
                        continue
                elif rsv == 0x40 and end <= n and deflate is not None:
                    # A whole compressed message in one frame.
                    pos = end
                    payload = deflate.inflate(buf[start:end]) + deflate.end_message()
                    if opcode == _BINARY:
                        out.append(_tuple_new(WSMessage, (_BINARY_TYPE, payload, None)))
                    else:
                        out.append(self._text_message(payload))
                    continue
            self._check_header(b0, opcode, length)
            pos = start
            self._frame_opcode = opcode
            self._frame_fin = bool(fin)
            self._frame_left = length
            if not length and self._frame_payload(b"", out):
                return
        if pos < n:
            self._head = buf[pos:]

    def _check_header(self, b0: int, opcode: int, length: int) -> None:
        """Check a frame header the fast path did not take; start or continue a message."""
        rsv = b0 & 0x70
        if rsv & 0x30:
            raise ProtocolViolation(PROTOCOL_ERROR, "RSV2 or RSV3 set (no extension uses them)")
        if opcode >= _CLOSE:
            if opcode > _PONG:
                raise ProtocolViolation(PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
            if rsv:
                # RFC 7692 §6: never on control frames.
                raise ProtocolViolation(PROTOCOL_ERROR, "RSV1 set on a control frame")
            if not b0 & 0x80:
                raise ProtocolViolation(PROTOCOL_ERROR, "a fragmented control frame")
            if length > _MAX_CONTROL_PAYLOAD:
                raise ProtocolViolation(
                    PROTOCOL_ERROR, f"a control frame with a {length}-byte payload"
                )
            self._control_payload.clear()
            return
        if opcode == _CONTINUATION:
            if not self._msg_opcode:
                raise ProtocolViolation(PROTOCOL_ERROR, "a CONTINUATION frame outside a message")
            if rsv:
                raise ProtocolViolation(PROTOCOL_ERROR, "RSV1 set on a CONTINUATION frame")
            self._fragments += 1
            if self._max_fragments and self._fragments > self._max_fragments:
                raise ProtocolViolation(
                    MESSAGE_TOO_BIG,
                    f"a message of more than {self._max_fragments} fragments "
                    f"(max_fragments={self._max_fragments})",
                )
        elif opcode > _BINARY:
            raise ProtocolViolation(PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
        else:
            if self._msg_opcode:
                # RFC 6455 §5.4: fragments of different messages are never interleaved.
                name = "TEXT" if opcode == _TEXT else "BINARY"
                raise ProtocolViolation(
                    PROTOCOL_ERROR,
                    f"a {name} frame inside a fragmented message (expected CONTINUATION)",
                )
            if rsv and self._deflate is None:
                raise ProtocolViolation(PROTOCOL_ERROR, "RSV1 set without permessage-deflate")
            self._msg_opcode = opcode
            self._msg_compressed = bool(rsv)
            self._msg_size = 0
            self._fragments = 1
            if opcode == _TEXT:
                self._utf8 = _Utf8Decoder()
                if self._decode_text:
                    self._text = io.StringIO(newline="")
                else:
                    self._bytes = bytearray()
            else:
                self._parts = []
        if not self._msg_compressed:
            self._msg_size += length
            if self._max_msg_size and self._msg_size > self._max_msg_size:
                raise self._too_big(self._msg_size)

    def _too_big(self, size: int) -> ProtocolViolation:
        return ProtocolViolation(
            MESSAGE_TOO_BIG,
            f"a message of at least {size} bytes exceeds max_msg_size={self._max_msg_size}",
        )

    def _frame_payload(self, data: bytes, out: list[WSMessage]) -> bool:
        """A piece of the current frame's payload; returns ``True`` if parsing must stop."""
        opcode = self._frame_opcode
        last = not self._frame_left
        if opcode >= _CLOSE:
            self._control_payload += data
            if last:
                return self._control(opcode, bytes(self._control_payload), out)
            return False
        deflate = self._deflate
        if self._msg_compressed and deflate is not None:
            data = deflate.inflate(data)
            if last and self._frame_fin:
                data += deflate.end_message()
        end = last and self._frame_fin
        if self._msg_opcode == _TEXT:
            assert self._utf8 is not None
            try:
                text = self._utf8.decode(data, end)
            except UnicodeDecodeError as exc:
                raise ProtocolViolation(
                    INVALID_DATA, f"a TEXT message that is not UTF-8: {exc}"
                ) from None
            if self._text is not None:
                self._text.write(text)
            else:
                assert self._bytes is not None
                self._bytes += data
            if end:
                if self._text is not None:
                    value: str | bytes = self._text.getvalue()
                else:
                    assert self._bytes is not None
                    value = bytes(self._bytes)
                self._end_message()
                out.append(_tuple_new(WSMessage, (_TEXT_TYPE, value, None)))
        else:
            parts = self._parts
            if parts is not None and (len(data) >= _MIN_PART or len(parts) < _SMALL_PARTS):
                parts.append(data)
            else:
                if parts is not None:
                    self._bytes = bytearray(b"".join(parts))
                    parts = self._parts = None
                assert self._bytes is not None
                self._bytes += data
            if end:
                if parts is not None:
                    value = b"".join(parts)
                else:
                    assert self._bytes is not None
                    value = bytes(self._bytes)
                self._end_message()
                out.append(_tuple_new(WSMessage, (_BINARY_TYPE, value, None)))
        return False

    def _text_message(self, payload: bytes) -> WSMessage:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation(
                INVALID_DATA, f"a TEXT message that is not UTF-8: {exc}"
            ) from None
        if self._decode_text:
            return _tuple_new(WSMessage, (_TEXT_TYPE, text, None))
        return _tuple_new(WSMessage, (_TEXT_TYPE, payload, None))

    def _end_message(self) -> None:
        self._msg_opcode = 0
        self._msg_compressed = False
        self._bytes = None
        self._parts = None
        self._text = None
        self._utf8 = None

    def _drop_message(self) -> None:
        self._end_message()
        self._frame_left = 0
        self._head = b""
        if self._deflate is not None:
            self._deflate.reset_message()

    def _control(self, opcode: int, payload: bytes, out: list[WSMessage]) -> bool:
        """A whole control frame; returns ``True`` for a close frame (parsing stops)."""
        if opcode == _PING:
            if not self._autoping:
                out.append(WSMessage(WSMsgType.PING, payload, None))
            elif not self.local_closed:
                self._out_size += build_frame(self._out, _PONG, payload)
            return False
        if opcode == _PONG:
            if not self._autoping:
                out.append(WSMessage(WSMsgType.PONG, payload, None))
            return False
        out.append(self._on_close(payload))
        return True

    def receive_eof(self) -> list[WSMessage]:
        """The transport ended. Returns nothing: EOF is a state, not a message.

        RFC 6455 §7.1.5: without a close frame, the close code is 1006.
        """
        if not self.eof:
            self.eof = True
            self._drop_message()
            if self.close_code is None:
                self.close_code = WSCloseCode.ABNORMAL_CLOSURE
        return []

    def _on_close(self, payload: bytes) -> WSMessage:
        # RFC 6455 §5.5.1: the body, if any, starts with a 2-byte code, then a UTF-8 reason.
        if not payload:
            code, reason = _NO_STATUS, ""  # RFC 6455 §7.1.5
        elif len(payload) == 1:
            raise ProtocolViolation(PROTOCOL_ERROR, "a close frame with a 1-byte payload")
        else:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                raise ProtocolViolation(
                    PROTOCOL_ERROR, f"close code {code} may not be sent (RFC 6455 §7.4)"
                )
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolViolation(
                    INVALID_DATA, f"a close reason that is not UTF-8: {exc}"
                ) from None
        self.remote_closed = True
        self._drop_message()
        # Nothing before a close frame sets a close code: failure and EOF stop parsing.
        self.close_code = code
        self.close_reason = reason
        if self._autoclose and not self.local_closed:
            # RFC 6455 §5.5.1: "the endpoint MUST send a Close frame in response ... typically
            # echoing the status code it received". For 1005 (no code), an empty close frame.
            self.local_closed = True
            self._append_close(code, "")
        return WSMessage(WSMsgType.CLOSE, code, reason)

    def _fail(self, code: int, reason: str) -> WSMessage:
        """The server violated the protocol: queue our close frame, stop parsing."""
        exc = WSProtocolError(f"the server violated the WebSocket protocol: {reason}", code)
        self.failure = exc
        self.close_code = code
        self._drop_message()
        if not self._defer_failure_close:
            self.commit_failure()
        return WSMessage(WSMsgType.ERROR, exc, None)

    def commit_failure(self) -> bool:
        """Queue the close frame for the recorded violation, if not done yet.

        Returns ``True`` if this call queued it. RFC 6455 §7.1.7: "Fail the WebSocket
        Connection" — send a close frame with the violation's code, then close.
        """
        if self.failure is None or self.local_closed:
            return False
        self.local_closed = True
        if not self.eof:
            self._append_close(self.failure.code, "")
        return True

    # ----------------------------------------------------------------------------------------
    # output

    def _append_close(self, code: int, reason: str) -> None:
        payload = b"" if code == _NO_STATUS else code.to_bytes(2, "big")
        self._out_size += build_frame(self._out, _CLOSE, payload + reason.encode("utf-8"))

    def _check_open(self) -> None:
        if not self.is_open:
            raise WSClosedError("the WebSocket connection is closing or closed")

    def _send_message(
        self, opcode: int, payload: bytes | bytearray | memoryview, compress: bool
    ) -> None:
        deflate = self._deflate
        if compress and deflate is not None:
            self._out_size += build_frame(self._out, opcode, deflate.compress(payload), True)
        else:
            self._out_size += build_frame(self._out, opcode, payload)

    def send_text(self, data: str, compress: bool = True) -> None:
        """Queue a TEXT message.

        ``compress=False`` sends it uncompressed (RSV1 clear) when permessage-deflate was
        negotiated; without it, every message is uncompressed anyway.
        """
        self._check_open()
        self._send_message(_TEXT, data.encode("utf-8"), compress)

    def send_bytes(self, data: bytes | bytearray | memoryview, compress: bool = True) -> None:
        """Queue a BINARY message (``compress`` as for :meth:`send_text`)."""
        self._check_open()
        self._send_message(_BINARY, data, compress)

    def send_frame(self, data: bytes, opcode: int, compress: bool = True) -> None:
        """Queue one frame with ``opcode`` (TEXT, BINARY, PING or PONG) and ``data`` as payload.

        ``compress`` applies to TEXT and BINARY, as for :meth:`send_text`.

        Raises:
            InvalidArgument: another opcode (use :meth:`send_close` for CLOSE), a TEXT payload
                that is not UTF-8, or a control payload over 125 bytes.
        """
        try:
            kind = _Frame(opcode)
        except ValueError:
            raise InvalidArgument(
                f"send_frame() cannot send opcode {opcode!r}: use TEXT, BINARY, PING or PONG "
                "(close() sends CLOSE)"
            ) from None
        if kind is _Frame.TEXT:
            try:
                bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidArgument("a TEXT frame's payload must be UTF-8") from exc
            self._check_open()
            self._send_message(_TEXT, data, compress)
        elif kind is _Frame.BINARY:
            self.send_bytes(data, compress)
        elif kind is _Frame.PING:
            self.send_ping(data)
        else:
            self.send_pong(data)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a PING frame (payload at most 125 bytes)."""
        self._check_control(payload)
        self._out_size += build_frame(self._out, _PING, payload)

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited PONG frame (payload at most 125 bytes)."""
        self._check_control(payload)
        self._out_size += build_frame(self._out, _PONG, payload)

    def _check_control(self, payload: bytes) -> None:
        if len(payload) > _MAX_CONTROL_PAYLOAD:
            raise InvalidArgument("a control frame's payload is at most 125 bytes (RFC 6455 §5.5)")
        self._check_open()

    def send_close(self, code: int = WSCloseCode.OK, reason: str = "") -> bool:
        """Queue our close frame. Returns ``False`` if one was already queued or sent.

        Raises:
            InvalidArgument: a code that may not be sent, or a reason over 123 UTF-8 bytes.
        """
        check_close_code(code)
        if len(reason.encode("utf-8")) > _MAX_CONTROL_PAYLOAD - 2:
            raise InvalidArgument("a close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5)")
        if self.local_closed:
            return False
        self.local_closed = True
        if self.eof:
            return True  # nobody to tell; the caller still closes the transport
        self._append_close(int(code), reason)
        return True
