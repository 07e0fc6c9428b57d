"""permessage-deflate (RFC 7692) for the client core, with a bounded inflate.

Theory of operation
-------------------

:class:`ClientDeflate` is the negotiated extension: :mod:`trio_ws._handshake` builds it from the
server's answer, :class:`~trio_ws._assembler.Assembler` inflates received messages through it
and :class:`~trio_ws._protocol.ClientProtocol` compresses sent ones. It has two halves
that share nothing but the parameters:

* **inbound**: :meth:`~ClientDeflate.inflate` takes a compressed message's payload in the
  pieces the frame parser sees (any split, any number of frames) and
  :meth:`~ClientDeflate.end_message` completes it. Inflate is bounded: each ``decompress()``
  call may produce at most what is left of ``max_msg_size`` plus one byte, so a 200 KB frame
  that would inflate to 1 GiB costs about ``max_msg_size`` of memory before it fails with
  1009. Only the core decides whether a message is compressed (RSV1 on its first frame), so a
  control frame between two fragments cannot disturb the message's state (wsproto 1.3.2
  resets it).
* **outbound**: :meth:`~ClientDeflate.compress` turns a whole message into its compressed
  payload (RFC 7692 §7.2.1: sync flush, the trailing ``00 00 ff ff`` removed).

A violation is raised as :class:`~trio_ws._framing.ProtocolViolation` with its close code; the
core turns it into its failure. Nothing here imports trio or does I/O.
"""

from __future__ import annotations

import zlib
from typing import Final

from ._framing import INVALID_DATA, MESSAGE_TOO_BIG, ProtocolViolation

__all__ = ["ClientDeflate"]

# RFC 7692 §7.2.1/§7.2.2: a message's compressed data is a sync-flushed DEFLATE stream with
# this trailing empty stored block removed; the receiver appends it again before inflating.
_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"


class ClientDeflate:
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

    name: Final = "permessage-deflate"

    def __init__(
        self,
        *,
        client_no_context_takeover: bool = False,
        client_max_window_bits: int = 15,
        server_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        max_msg_size: int = 0,
    ) -> None:
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
        self._inflated = 0  # bytes inflated for the message being received
        self._stream_ended = False  # its data so far ends with a complete DEFLATE stream

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

    # ----------------------------------------------------------------------------------------
    # inbound

    def inflate(self, data: bytes | bytearray | memoryview, *, with_tail: bool = False) -> bytes:
        """Inflate the next piece of a compressed message's payload.

        ``with_tail``: ``data`` ends with the tail of :meth:`inflate_message`, to be dropped
        if the stream ended before it.

        Raises:
            ProtocolViolation: invalid compressed data (1007), or the message inflates past
                ``max_msg_size`` (1009).
        """
        if data:
            self._stream_ended = False
        parts: list[bytes] | None = None  # only if the stream ends inside (rare)
        max_msg_size = self.max_msg_size
        while True:
            decompressor = self._decompressor
            if decompressor is None:
                decompressor = self._decompressor = zlib.decompressobj(
                    wbits=-self.server_max_window_bits
                )
            # At most what is left of max_msg_size, plus one byte to tell "exactly at the
            # limit" from "over it". max_length=0 means no limit.
            budget = max_msg_size - self._inflated
            try:
                out = decompressor.decompress(data, budget + 1 if max_msg_size else 0)
            except zlib.error as exc:
                raise ProtocolViolation(INVALID_DATA, f"invalid compressed data: {exc}") from None
            if max_msg_size and (decompressor.unconsumed_tail or len(out) > budget):
                raise ProtocolViolation(
                    MESSAGE_TOO_BIG,
                    f"a compressed message inflates past max_msg_size={max_msg_size}",
                )
            self._inflated += len(out)
            if not decompressor.eof:
                if parts is None:
                    return out  # the usual case: one call
                parts.append(out)
                break
            if parts is None:
                parts = [out]
            else:
                parts.append(out)
            # A block with BFINAL set ended the DEFLATE stream: RFC 7692 §7.2.3.4 allows it
            # (for zlibs without a sync flush), and whatever follows starts a new stream.
            self._decompressor = None
            data = decompressor.unused_data
            if not data or (with_tail and data == _DEFLATE_TAIL):
                # Complete: the tail (LEN and NLEN of an empty stored block whose header
                # bits are in the byte before) has nothing to complete.
                self._stream_ended = True
                break
        return b"".join(parts)

    def end_message(self) -> bytes:
        """The compressed message's last frame is in: inflate what the tail completes.

        Raises:
            ProtocolViolation: as :meth:`inflate`.
        """
        if self._stream_ended:
            # The message's data ended with a block with BFINAL set: the stream is complete,
            # and the tail (LEN and NLEN of an empty stored block whose header bits are in
            # the byte before) has nothing to complete.
            self.reset_message()
            return b""
        return self._inflate_whole(_DEFLATE_TAIL)

    def inflate_message(self, payload: bytes) -> bytes:
        """A whole compressed message that arrived in one frame: one ``decompress`` call,
        with the tail appended (RFC 7692 §7.2.2), instead of :meth:`inflate` then
        :meth:`end_message` (two calls, the cost of a small message).

        If the payload already ended the DEFLATE stream (BFINAL), the tail is dropped, as
        :meth:`end_message` drops it.

        Raises:
            ProtocolViolation: as :meth:`inflate`.
        """
        budget = self.max_msg_size
        if not budget or self._inflated:
            return self._inflate_whole(payload + _DEFLATE_TAIL)
        # The usual case, flat (it is most of the cost of a small message besides zlib):
        # one decompress call that neither ends the stream nor passes the limit.
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = zlib.decompressobj(wbits=-self.server_max_window_bits)
            if not self.server_no_context_takeover:
                self._decompressor = decompressor  # else a new one for each message
        try:
            out = decompressor.decompress(payload + _DEFLATE_TAIL, budget + 1)
        except zlib.error as exc:
            raise ProtocolViolation(INVALID_DATA, f"invalid compressed data: {exc}") from None
        if decompressor.eof or decompressor.unconsumed_tail or len(out) > budget:
            return self._finish_whole(out, decompressor)
        return out

    def _inflate_whole(self, data: bytes) -> bytes:
        try:
            out = self.inflate(data, with_tail=True)
            if self.server_no_context_takeover:
                self._decompressor = None
            return out
        finally:
            self.reset_message()

    def _finish_whole(self, out: bytes, decompressor: zlib._Decompress) -> bytes:
        """:meth:`inflate_message` after a first call that passed the limit or ended the
        stream (BFINAL): raise, or go on with what followed the end of the stream."""
        max_msg_size = self.max_msg_size
        if decompressor.unconsumed_tail or len(out) > max_msg_size:
            raise ProtocolViolation(
                MESSAGE_TOO_BIG, f"a compressed message inflates past max_msg_size={max_msg_size}"
            )
        self._decompressor = None  # the stream ended; what follows starts a new one
        rest = decompressor.unused_data
        if not rest or rest == _DEFLATE_TAIL:
            return out
        self._inflated = len(out)
        return out + self._inflate_whole(rest)

    def reset_message(self) -> None:
        """Forget the message being received (the connection ended or failed)."""
        self._inflated = 0
        self._stream_ended = False

    # ----------------------------------------------------------------------------------------
    # outbound

    def compress(self, data: bytes | bytearray | memoryview, last: bool = True) -> bytes:
        """The compressed payload of one whole message (RFC 7692 §7.2.1), or of one fragment
        of a message sent in pieces (``last``: its final one)."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.client_max_window_bits
            )
        # Flush, then drop the 0x00 0x00 0xff 0xff a sync flush ends with (at the message's
        # end only: a fragment keeps it, a valid empty block the receiver inflates).
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if not last:
            self._compressor = compressor
            return out
        self._compressor = None if self.client_no_context_takeover else compressor
        return out[: -len(_DEFLATE_TAIL)]
