"""The sans-I/O client core: bytes in, messages out, one outbox of bytes to send.

Theory of operation
-------------------

:class:`ClientProtocol` wraps :class:`wsproto.connection.Connection` (the framing layer, after
the opening handshake) and adds everything wsproto leaves to its caller:

* message reassembly, with ``max_msg_size`` counted on the (decompressed) message bytes and
  a cap on fragments per message, both enforced inside wsproto's parser by the extensions of
  :mod:`trio_ws._extensions` (a header announcing too much is refused before its payload is
  read; inflate never produces more than the limit allows);
* the decisions of aiohttp's client: pings answered (autoping), the server's close frame
  echoed (autoclose), PING/PONG delivered only without autoping;
* close-code rules: which codes the server may send (all registered ones, 1014 included,
  which wsproto refuses: :class:`~trio_ws._extensions.MessageLimits` checks close frames in
  its place), what ends up as the connection's close code, which codes a caller may send, and
  what happens after a protocol failure.

It never does I/O and never imports trio. The I/O layer feeds it what it reads
(:meth:`receive_data`, :meth:`receive_eof`), gets finished :class:`WSMessage` objects back, and
writes :meth:`data_to_send` to the transport. Every frame, from any method, goes into one outbox
in the order the methods were called, so the wire order is the call order.

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

import enum
import io
from typing import Any, Final

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason

from ._errors import InvalidArgument, WSClosedError, WSProtocolError
from ._extensions import DEFAULT_MAX_FRAGMENTS, ClientDeflate, MessageLimits, is_valid_close_code
from ._types import WSCloseCode, WSMessage, WSMsgType

__all__ = ["DEFAULT_MAX_FRAGMENTS", "ClientProtocol", "check_close_code"]

_MAX_CONTROL_PAYLOAD: Final = 125


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
        extensions: the extensions the opening handshake negotiated: permessage-deflate must
            be a :class:`~trio_ws._extensions.ClientDeflate` (it is given ``max_msg_size``).
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
        TypeError: a permessage-deflate extension that is not ours (wsproto's has no bound on
            inflate).
    """

    def __init__(
        self,
        *,
        extensions: list[Extension] | None = None,
        max_msg_size: int = 4 * 1024 * 1024,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        autoping: bool = True,
        autoclose: bool = True,
        decode_text: bool = True,
        defer_failure_close: bool = False,
    ) -> None:
        extensions = list(extensions or ())
        self._deflate: ClientDeflate | None = None
        for ext in extensions:
            if isinstance(ext, ClientDeflate):
                self._deflate = ext
                ext.max_msg_size = max_msg_size
            elif ext.name == ClientDeflate.name:
                raise TypeError(
                    f"permessage-deflate must be a trio_ws ClientDeflate, not {type(ext).__name__}"
                )
        # First in the list: it sees every header before any other extension acts on it.
        self._limits = MessageLimits(
            max_msg_size=max_msg_size,
            max_fragments=max_fragments,
            deflate=self._deflate is not None,
        )
        self._conn = Connection(ConnectionType.CLIENT, extensions=[self._limits, *extensions])
        self._autoping = autoping
        self._autoclose = autoclose
        self._decode_text = decode_text
        self._defer_failure_close = defer_failure_close
        self._out: list[bytes] = []
        self._out_size = 0
        # The message being reassembled from fragments (wsproto also hands over a frame's
        # payload in pieces as it arrives). Appending to one buffer keeps the memory near the
        # message's size however small the pieces are; a list of pieces would cost ~50 bytes
        # of object overhead per piece.
        self._text: io.StringIO | None = None
        self._bytes: bytearray | None = None
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
        if not self._out:
            return b""
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        return data

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
        self._conn.receive_data(bytes(data))
        out: list[WSMessage] = []
        try:
            for event in self._conn.events():
                if isinstance(event, Message):
                    msg = self._on_data(event)
                    if msg is not None:
                        out.append(msg)
                elif isinstance(event, Ping):
                    if not self._autoping:
                        out.append(WSMessage(WSMsgType.PING, bytes(event.payload), None))
                    elif not self.local_closed:
                        self._append(self._conn.send(Pong(payload=event.payload)))
                elif isinstance(event, Pong):
                    if not self._autoping:
                        out.append(WSMessage(WSMsgType.PONG, bytes(event.payload), None))
                else:
                    assert isinstance(event, CloseConnection)
                    out.append(self._on_close(event))
                    break
        except Exception as exc:
            # wsproto reports violations as events; anything it raises instead is one too.
            out.append(self._fail(WSCloseCode.PROTOCOL_ERROR, f"invalid frame: {exc!r}"))
        return out

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

    def _on_data(self, event: Message[Any]) -> WSMessage | None:
        # Sizes and fragment counts were checked by MessageLimits and ClientDeflate before
        # wsproto produced this event.
        data = event.data
        if isinstance(data, str):
            if self._text is None:
                if event.message_finished:
                    return self._text_message(data)
                self._text = io.StringIO(newline="")
            self._text.write(data)
            if not event.message_finished:
                return None
            data = self._text.getvalue()
            self._text = None
            return self._text_message(data)
        if self._bytes is None:
            if event.message_finished:
                return WSMessage(WSMsgType.BINARY, bytes(data), None)
            self._bytes = bytearray()
        self._bytes += data
        if not event.message_finished:
            return None
        data = bytes(self._bytes)
        self._bytes = None
        return WSMessage(WSMsgType.BINARY, data, None)

    def _text_message(self, data: str) -> WSMessage:
        if self._decode_text:
            return WSMessage(WSMsgType.TEXT, data, None)
        return WSMessage(WSMsgType.TEXT, data.encode("utf-8"), None)

    def _drop_message(self) -> None:
        self._text = None
        self._bytes = None

    def _on_close(self, event: CloseConnection) -> WSMessage:
        if self._conn.state not in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED):
            # wsproto reports a parse failure as a CloseConnection event without a state change;
            # when one of our extensions caused it, it knows better than "error in extension".
            why = self._limits.error or (self._deflate.error if self._deflate else None)
            return self._fail(event.code, why or event.reason or "invalid frame")
        self.remote_closed = True
        self._drop_message()
        # MessageLimits took the close frame's payload and checked it (wsproto saw it empty).
        assert self._limits.close is not None
        code, reason = self._limits.close
        # Nothing before a close frame sets a close code: failure and EOF stop parsing.
        self.close_code = code
        self.close_reason = reason
        if self._autoclose and not self.local_closed:
            # RFC 6455 §5.5.1: "the endpoint MUST send a Close frame in response ... typically
            # echoing the status code it received". For 1005 (no code) wsproto sends an empty
            # close frame, but only when given its own enum member.
            self.local_closed = True
            echo = CloseReason.NO_STATUS_RCVD if code == CloseReason.NO_STATUS_RCVD else code
            self._append(self._conn.send(CloseConnection(code=echo)))
        return WSMessage(WSMsgType.CLOSE, code, reason)

    def _fail(self, code: int, reason: str) -> WSMessage:
        """The server violated the protocol: queue our close frame, stop parsing."""
        exc = WSProtocolError(f"the server violated the WebSocket protocol: {reason}", int(code))
        self.failure = exc
        self.close_code = int(code)
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
            self._append(self._conn.send(CloseConnection(code=self.failure.code)))
        return True

    # ----------------------------------------------------------------------------------------
    # output

    def _append(self, data: bytes | bytearray) -> None:
        self._out.append(bytes(data))
        self._out_size += len(data)

    def _check_open(self) -> None:
        if not self.is_open:
            raise WSClosedError("the WebSocket connection is closing or closed")

    def _uncompressed(self, compress: bool) -> None:
        if not compress and self._deflate is not None:
            self._deflate.send_next_uncompressed()

    def send_text(self, data: str, compress: bool = True) -> None:
        """Queue a TEXT message.

        ``compress=False`` sends it uncompressed (RSV1 clear) when permessage-deflate was
        negotiated; without it, every message is uncompressed anyway.
        """
        self._check_open()
        self._uncompressed(compress)
        self._append(self._conn.send(TextMessage(data=data)))

    def send_bytes(self, data: bytes | bytearray | memoryview, compress: bool = True) -> None:
        """Queue a BINARY message (``compress`` as for :meth:`send_text`)."""
        self._check_open()
        self._uncompressed(compress)
        self._append(self._conn.send(BytesMessage(data=bytes(data))))

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
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidArgument("a TEXT frame's payload must be UTF-8") from exc
            self.send_text(text, compress)
        elif kind is _Frame.BINARY:
            self.send_bytes(data, compress)
        elif kind is _Frame.PING:
            self.send_ping(data)
        else:
            self.send_pong(data)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a PING frame (payload at most 125 bytes)."""
        self._check_control(payload)
        self._append(self._conn.send(Ping(payload=bytes(payload))))

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited PONG frame (payload at most 125 bytes)."""
        self._check_control(payload)
        self._append(self._conn.send(Pong(payload=bytes(payload))))

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
        self._append(self._conn.send(CloseConnection(code=int(code), reason=reason or None)))
        return True
