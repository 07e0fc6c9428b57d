"""wsproto extensions that enforce trio_ws's limits: message size, fragments, bounded inflate.

Theory of operation
-------------------

wsproto (the framing layer under :class:`~trio_ws._protocol.ClientProtocol`) has no limits: it
streams every data frame's payload to its caller however big the header says it is, it
inflates a compressed frame in one ``decompress()`` call however far it expands, and it
reassembles as many fragments as the peer cares to send. It does call *extensions* at every
step of parsing a frame, in list order, and lets any of them fail the connection by returning
a :class:`~wsproto.frame_protocol.CloseReason`::

    frame_inbound_header(opcode, rsv, payload_len)   once per frame, before any payload
    frame_inbound_payload_data(data)                 per chunk of payload (the whole payload
                                                     at once for control frames)
    frame_inbound_complete(fin)                      once the frame's payload is all in; what
                                                     it returns is appended to the payload
    frame_outbound(opcode, rsv, data, fin)           per frame we send, in reverse list order

The core therefore installs two extensions of its own, always in this order:

1. :class:`MessageLimits`, internal (enabled, never offered, claims no RSV bit). It follows
   the message structure from the headers alone: a CONTINUATION without a message, or a new
   TEXT/BINARY inside one, is a protocol error (1002); more than ``max_fragments`` frames in
   one message is refused (1009); and for an *uncompressed* message, a header whose length
   would take the message past ``max_msg_size`` is refused (1009) before a byte of its
   payload is taken. Control frames (which may come between fragments) are not counted.

   It also takes over close-frame validation. wsproto refuses close codes it has no name for
   (1014 among them) and we cannot change that without patching it, so this extension keeps
   the CLOSE frame's payload to itself (wsproto sees an empty close frame, which it reports
   as code 1005), checks it against RFC 6455 §7.4 and publishes the code and reason in
   :attr:`MessageLimits.close`, where the core reads them.

2. :class:`ClientDeflate`, permessage-deflate (RFC 7692) for the client side, in place of
   wsproto's ``PerMessageDeflate``. Inflate is bounded: each ``decompress()`` call may
   produce at most what is left of ``max_msg_size`` plus one byte, so a 200 KB frame that
   would inflate to 1 GiB costs about ``max_msg_size`` of memory before it fails with 1009.
   Whether a message is compressed is decided by its first frame only, and control frames
   never touch that state (wsproto 1.3.2 resets it on a ping between two fragments).

Both extensions report *why* they failed the connection in their :attr:`error` attribute;
wsproto itself only says "error in extension". Neither imports trio or does I/O.
"""

from __future__ import annotations

import zlib
from typing import Final

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = [
    "DEFAULT_MAX_FRAGMENTS",
    "ClientDeflate",
    "MessageLimits",
    "is_valid_close_code",
]

#: Frames per message accepted by default (first frame and continuations; control frames
#: between them are not counted). The most a conformance test sends is 65,537: Autobahn cases
#: 9.3.1 and 9.4.1 send a 4 MiB message (our default ``max_msg_size``) in 64-byte fragments
#: plus an empty final one. Real servers fragment at kilobytes, if at all, and aiohttp and
#: websockets set no cap. Reassembly costs no memory per fragment (one growing buffer), so
#: the cap is what stops a server from keeping one message open forever with empty
#: continuation frames, at a round number well above any legitimate use.
DEFAULT_MAX_FRAGMENTS: Final = 100_000

# RFC 7692 §7.2.1/§7.2.2: a message's compressed data is a sync-flushed DEFLATE stream with
# this trailing empty stored block removed; the receiver appends it again before inflating.
_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"
_NO_RSV: Final = RsvBits(False, False, False)
_RSV1: Final = RsvBits(True, False, False)

_Proto = FrameDecoder | FrameProtocol


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 §7.4.1, §7.4.2, IANA registry).

    1000-1003 and 1007-1014 are registered; 1004 is reserved; 1005, 1006 and 1015 must never
    be sent; 1016-2999 are reserved for future RFCs; 3000-4999 are for libraries and
    applications.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class _Refusing(Extension):
    """An extension that can fail the connection and say why."""

    def __init__(self) -> None:
        #: Why this extension failed the connection, once it has.
        self.error: str | None = None

    def enabled(self) -> bool:
        return True

    def _refuse(self, code: CloseReason, why: str) -> CloseReason:
        self.error = why
        return code


class MessageLimits(_Refusing):
    """The core's internal extension: message structure, size and fragment limits, close frames.

    It must come first in the extension list, so it sees each header before any other
    extension acts on it, and the raw close payload.

    Args:
        max_msg_size: the largest uncompressed message accepted, in bytes; 0 = no limit.
            Compressed messages are bounded by :class:`ClientDeflate` on their inflated size.
        max_fragments: the most frames one message may have; 0 = no limit.
        deflate: permessage-deflate was negotiated, so RSV1 on a message's first frame means
            the message is compressed.
    """

    name = "trio-ws-limits"

    def __init__(self, *, max_msg_size: int, max_fragments: int, deflate: bool) -> None:
        super().__init__()
        self.max_msg_size = max_msg_size
        self.max_fragments = max_fragments
        self.deflate = deflate
        #: The code and reason of the server's close frame, once it has been validated
        #: (1005 and "" for a close frame without a code).
        self.close: tuple[int, str] | None = None
        self._opcode = Opcode.CONTINUATION  # of the frame being parsed
        self._in_message = False
        self._compressed = False
        self._fragments = 0
        self._announced = 0  # payload bytes of the current message, as the headers announce
        self._close_payload = bytearray()

    def offer(self) -> bool:
        return False  # internal: never offered, never negotiated

    def frame_inbound_header(
        self, proto: _Proto, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        self._opcode = opcode
        if opcode.iscontrol():
            self._close_payload.clear()
            return _NO_RSV
        if opcode is Opcode.CONTINUATION:
            if not self._in_message:
                return self._refuse(
                    CloseReason.PROTOCOL_ERROR, "a CONTINUATION frame outside a message"
                )
            self._fragments += 1
            if self.max_fragments and self._fragments > self.max_fragments:
                return self._refuse(
                    CloseReason.MESSAGE_TOO_BIG,
                    f"a message of more than {self.max_fragments} fragments "
                    f"(max_fragments={self.max_fragments})",
                )
        else:
            if self._in_message:
                # RFC 6455 §5.4: fragments of different messages are never interleaved.
                return self._refuse(
                    CloseReason.PROTOCOL_ERROR,
                    f"a {opcode.name} frame inside a fragmented message (expected CONTINUATION)",
                )
            self._in_message = True
            self._fragments = 1
            self._announced = 0
            self._compressed = self.deflate and rsv.rsv1
        self._announced += payload_length
        if not self._compressed and self.max_msg_size and self._announced > self.max_msg_size:
            return self._refuse(
                CloseReason.MESSAGE_TOO_BIG,
                f"a message of at least {self._announced} bytes exceeds "
                f"max_msg_size={self.max_msg_size}",
            )
        return _NO_RSV

    def frame_inbound_payload_data(self, proto: _Proto, data: bytes) -> bytes | CloseReason:
        if self._opcode is Opcode.CLOSE:
            self._close_payload += data
            return b""  # see the module docstring: wsproto sees an empty close frame
        return data

    def frame_inbound_complete(self, proto: _Proto, fin: bool) -> bytes | CloseReason | None:
        if self._opcode is Opcode.CLOSE:
            return self._check_close(bytes(self._close_payload))
        if fin and not self._opcode.iscontrol():
            self._in_message = False
        return None

    def _check_close(self, payload: bytes) -> CloseReason | None:
        # RFC 6455 §5.5.1: the body, if any, starts with a 2-byte code, then a UTF-8 reason.
        if not payload:
            self.close = (int(CloseReason.NO_STATUS_RCVD), "")  # RFC 6455 §7.1.5
            return None
        if len(payload) == 1:
            return self._refuse(CloseReason.PROTOCOL_ERROR, "a close frame with a 1-byte payload")
        code = int.from_bytes(payload[:2], "big")
        if not is_valid_close_code(code):
            return self._refuse(
                CloseReason.PROTOCOL_ERROR, f"close code {code} may not be sent (RFC 6455 §7.4)"
            )
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._refuse(
                CloseReason.INVALID_FRAME_PAYLOAD_DATA, f"a close reason that is not UTF-8: {exc}"
            )
        self.close = (code, reason)
        return None


class ClientDeflate(_Refusing):
    """permessage-deflate (RFC 7692), client side, with a bounded inflate.

    The parameters are the negotiated ones (the handshake validates the server's answer);
    ``server_*`` apply to what we receive, ``client_*`` to what we send.

    Args:
        client_no_context_takeover: start a fresh compressor for each message we send.
        client_max_window_bits: the LZ77 window of our compressor (9..15).
        server_no_context_takeover: the server starts afresh for each message, so we start a
            fresh decompressor for each message we receive.
        server_max_window_bits: the largest window the server may use (9..15); a message
            that refers further back fails with 1007.
        max_msg_size: the largest inflated message, in bytes; 0 = no limit. The core sets it.

    Raises:
        ValueError: window bits out of range.
    """

    name = "permessage-deflate"

    def __init__(
        self,
        *,
        client_no_context_takeover: bool = False,
        client_max_window_bits: int = 15,
        server_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        max_msg_size: int = 0,
    ) -> None:
        super().__init__()
        for bits in (client_max_window_bits, server_max_window_bits):
            # 8 is valid in RFC 7692 but zlib cannot honour it (it silently uses 9).
            if not 9 <= bits <= 15:
                raise ValueError(f"window bits must be from 9 to 15, not {bits}")
        self.client_no_context_takeover = client_no_context_takeover
        self.client_max_window_bits = client_max_window_bits
        self.server_no_context_takeover = server_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.max_msg_size = max_msg_size
        self._decompressor: zlib._Decompress | None = None
        self._compressor: zlib._Compress | None = None
        self._data_frame = False  # the frame being parsed is TEXT, BINARY or CONTINUATION
        self._inbound_compressed = False  # the message being received is compressed
        self._inflated = 0  # bytes inflated for that message
        self._stream_ended = False  # its data so far ends with a complete DEFLATE stream
        self._outbound_compressed = False  # the message being sent is compressed
        self._skip_next = False

    def offer(self) -> str:
        """The negotiated parameters, as they would appear after ``permessage-deflate;``."""
        params = [
            f"client_max_window_bits={self.client_max_window_bits}",
            f"server_max_window_bits={self.server_max_window_bits}",
        ]
        if self.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            params.append("server_no_context_takeover")
        return "; ".join(params)

    def __repr__(self) -> str:
        return f"<ClientDeflate {self.offer()}>"

    def send_next_uncompressed(self) -> None:
        """Send the next message we send without compression (RSV1 clear), then carry on.

        RFC 7692 §6: compression is decided per message. With context takeover the
        compressor's window is kept across it.
        """
        self._skip_next = True

    # ----------------------------------------------------------------------------------------
    # inbound

    def frame_inbound_header(
        self, proto: _Proto, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        self._data_frame = not opcode.iscontrol()
        if rsv.rsv1:
            # RFC 7692 §6: "An endpoint MUST NOT set the 'Per-Message Compressed' bit of
            # control frames and non-first fragments of a data message."
            if opcode.iscontrol():
                return self._refuse(CloseReason.PROTOCOL_ERROR, "RSV1 set on a control frame")
            if opcode is Opcode.CONTINUATION:
                return self._refuse(CloseReason.PROTOCOL_ERROR, "RSV1 set on a CONTINUATION frame")
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self._inbound_compressed = rsv.rsv1
            self._inflated = 0
            self._stream_ended = False
        return _RSV1

    def frame_inbound_payload_data(self, proto: _Proto, data: bytes) -> bytes | CloseReason:
        if not (self._data_frame and self._inbound_compressed):
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: _Proto, fin: bool) -> bytes | CloseReason | None:
        if not (fin and self._data_frame and self._inbound_compressed):
            return None
        self._inbound_compressed = False
        if self._stream_ended:
            # The message's data ended with a block with BFINAL set: the stream is complete,
            # and the tail (LEN and NLEN of an empty stored block whose header bits are in
            # the byte before) has nothing to complete.
            return None
        data = self._inflate(_DEFLATE_TAIL)
        if self.server_no_context_takeover:
            self._decompressor = None
        return data

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        if data:
            self._stream_ended = False
        parts: list[bytes] = []
        while True:
            if self._decompressor is None:
                self._decompressor = zlib.decompressobj(wbits=-self.server_max_window_bits)
            decompressor = self._decompressor
            # At most what is left of max_msg_size, plus one byte to tell "exactly at the
            # limit" from "over it". max_length=0 means no limit.
            budget = self.max_msg_size - self._inflated
            try:
                out = decompressor.decompress(data, budget + 1 if self.max_msg_size else 0)
            except zlib.error as exc:
                return self._refuse(
                    CloseReason.INVALID_FRAME_PAYLOAD_DATA, f"invalid compressed data: {exc}"
                )
            if self.max_msg_size and (decompressor.unconsumed_tail or len(out) > budget):
                return self._refuse(
                    CloseReason.MESSAGE_TOO_BIG,
                    f"a compressed message inflates past max_msg_size={self.max_msg_size}",
                )
            self._inflated += len(out)
            parts.append(out)
            if not decompressor.eof:
                break
            # A block with BFINAL set ended the DEFLATE stream: RFC 7692 §7.2.3.4 allows it
            # (for zlibs without a sync flush), and whatever follows starts a new stream.
            self._decompressor = None
            data = decompressor.unused_data
            if not data:
                self._stream_ended = True
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # ----------------------------------------------------------------------------------------
    # outbound

    def frame_outbound(
        self, proto: _Proto, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        if opcode.iscontrol():
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            self._outbound_compressed = not self._skip_next
            self._skip_next = False
            if self._outbound_compressed:
                rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        if not self._outbound_compressed:
            return rsv, data
        if self._compressor is None:
            self._compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.client_max_window_bits
            )
        out = self._compressor.compress(data)
        if fin:
            # RFC 7692 §7.2.1: flush, then drop the 0x00 0x00 0xff 0xff a sync flush ends with.
            out = (out + self._compressor.flush(zlib.Z_SYNC_FLUSH))[: -len(_DEFLATE_TAIL)]
            if self.client_no_context_takeover:
                self._compressor = None
        return rsv, out
