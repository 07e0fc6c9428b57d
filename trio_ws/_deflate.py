"""permessage-deflate (RFC 7692) for the client core, with a bounded inflate.

Theory of operation
-------------------

:class:`ClientDeflate` is the negotiated extension: :mod:`trio_ws._handshake` builds it from the
server's answer, :class:`~trio_ws._assembler.Assembler` inflates received messages through it
and :class:`~trio_ws._protocol.ClientProtocol` compresses sent ones. It has two halves
that share nothing but the parameters:

* **inbound**: its :attr:`~ClientDeflate.inflater` takes a compressed message's payload in the
  pieces the frame parser sees (any split, any number of frames) with
  :meth:`~PyInflater.inflate`, and :meth:`~PyInflater.end_message` completes it; a message
  that came in one frame takes one :meth:`~PyInflater.inflate_message` call. Inflate is
  bounded: zlib is never given room for more than what is left of ``max_msg_size`` plus one
  byte, so a 200 KB frame that would inflate to 1 GiB costs about ``max_msg_size`` of memory
  before it fails with 1009. Only the core decides whether a message is compressed (RSV1 on
  its first frame), so a control frame between two fragments cannot disturb the message's
  state (wsproto 1.3.2 resets it). The inflater is ``trio_ws._inflate.Inflater`` (zlib
  itself, in C: no intermediate buffers, and the parser's C loop calls it without going
  through Python) where that optional extension was built, else :class:`PyInflater` (the
  zlib module); both behave the same (``tests/test_inflate.py`` compares them).
* **outbound**: :meth:`~ClientDeflate.compress` turns a whole message into its compressed
  payload (RFC 7692 §7.2.1: sync flush, the trailing ``00 00 ff ff`` removed).

A violation is raised as :class:`~trio_ws._framing.ProtocolViolation` with its close code; the
core turns it into its failure. Nothing here imports trio or does I/O.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from typing import Final, Protocol

from ._framing import INVALID_DATA, MESSAGE_TOO_BIG, ProtocolViolation

__all__ = ["ClientDeflate", "Inflater", "PyInflater", "inflater_class"]

# RFC 7692 §7.2.1/§7.2.2: a message's compressed data is a sync-flushed DEFLATE stream with
# this trailing empty stored block removed; the receiver appends it again before inflating.
_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"


class Inflater(Protocol):
    """The receiving half of permessage-deflate: :class:`PyInflater`, or the C
    ``trio_ws._inflate.Inflater`` built on zlib itself, which behaves the same.

    Constructed as ``Inflater(wbits, no_context_takeover, max_msg_size, violation,
    invalid_code, too_big_code)``: a violation is raised as ``violation(code, reason)``.
    Calling it is :meth:`inflate_message`.
    """

    max_msg_size: int

    @property
    def inflated(self) -> int: ...
    def inflate(
        self, data: bytes | bytearray | memoryview, *, with_tail: bool = False
    ) -> bytes: ...
    def end_message(self) -> bytes: ...
    def inflate_message(self, payload: bytes) -> bytes: ...
    def reset_message(self) -> None: ...
    def __call__(self, payload: bytes, /) -> bytes: ...


class PyInflater:
    """The receiving half of permessage-deflate on the zlib module (see :class:`Inflater`).

    Args:
        wbits: the largest window the server may use (9..15); a message that refers further
            back fails with ``invalid_code``.
        no_context_takeover: the server starts afresh for each message, so a fresh
            decompressor inflates each one.
        max_msg_size: the largest inflated message, in bytes; 0 = no limit.
        violation: makes the exception to raise: ``violation(code, reason)``.
        invalid_code: the close code of invalid compressed data (1007).
        too_big_code: the close code of a message that inflates past ``max_msg_size`` (1009).
    """

    def __init__(
        self,
        wbits: int,
        no_context_takeover: bool,
        max_msg_size: int,
        violation: Callable[[int, str], Exception],
        invalid_code: int,
        too_big_code: int,
    ) -> None:
        if not 9 <= wbits <= 15:
            raise ValueError(f"window bits must be from 9 to 15, not {wbits}")
        if max_msg_size < 0:
            raise ValueError("max_msg_size must be 0 (no limit) or more")
        self.wbits = wbits
        self.no_context_takeover = no_context_takeover
        self.max_msg_size = max_msg_size
        self._violation = violation
        self._invalid_code = invalid_code
        self._too_big_code = too_big_code
        self._decompressor: zlib._Decompress | None = None
        self._inflated = 0  # bytes inflated for the message being received
        self._stream_ended = False  # its data so far ends with a complete DEFLATE stream

    @property
    def inflated(self) -> int:
        """Bytes inflated so far for the message being received."""
        return self._inflated

    def _invalid(self, exc: zlib.error) -> Exception:
        return self._violation(self._invalid_code, f"invalid compressed data: {exc}")

    def _too_big(self) -> Exception:
        return self._violation(
            self._too_big_code,
            f"a compressed message inflates past max_msg_size={self.max_msg_size}",
        )

    def inflate(self, data: bytes | bytearray | memoryview, *, with_tail: bool = False) -> bytes:
        """Inflate the next piece of a compressed message's payload.

        ``with_tail``: ``data`` ends with the tail of :meth:`inflate_message`, to be dropped
        if the stream ended before it.

        Raises:
            Exception: ``violation(invalid_code, ...)``: invalid compressed data; or
                ``violation(too_big_code, ...)``: the message inflates past ``max_msg_size``.
        """
        if data:
            self._stream_ended = False
        parts: list[bytes] | None = None  # only if the stream ends inside (rare)
        max_msg_size = self.max_msg_size
        while True:
            decompressor = self._decompressor
            if decompressor is None:
                decompressor = self._decompressor = zlib.decompressobj(wbits=-self.wbits)
            # At most what is left of max_msg_size, plus one byte to tell "exactly at the
            # limit" from "over it". max_length=0 means no limit.
            budget = max_msg_size - self._inflated
            try:
                out = decompressor.decompress(data, budget + 1 if max_msg_size else 0)
            except zlib.error as exc:
                raise self._invalid(exc) from None
            if max_msg_size and (decompressor.unconsumed_tail or len(out) > budget):
                raise self._too_big()
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
            Exception: as :meth:`inflate`.
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
            Exception: as :meth:`inflate`.
        """
        budget = self.max_msg_size
        if not budget or self._inflated:
            return self._inflate_whole(payload + _DEFLATE_TAIL)
        # The usual case, flat (it is most of the cost of a small message besides zlib):
        # one decompress call that neither ends the stream nor passes the limit.
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = zlib.decompressobj(wbits=-self.wbits)
            if not self.no_context_takeover:
                self._decompressor = decompressor  # else a new one for each message
        elif self.no_context_takeover:
            # One left by a message in pieces: this message is its last.
            self._decompressor = None
        try:
            out = decompressor.decompress(payload + _DEFLATE_TAIL, budget + 1)
        except zlib.error as exc:
            raise self._invalid(exc) from None
        if decompressor.eof or decompressor.unconsumed_tail or len(out) > budget:
            return self._finish_whole(out, decompressor)
        return out

    def _inflate_whole(self, data: bytes) -> bytes:
        try:
            out = self.inflate(data, with_tail=True)
            if self.no_context_takeover:
                self._decompressor = None
            return out
        finally:
            self.reset_message()

    def _finish_whole(self, out: bytes, decompressor: zlib._Decompress) -> bytes:
        """:meth:`inflate_message` after a first call that passed the limit or ended the
        stream (BFINAL): raise, or go on with what followed the end of the stream."""
        max_msg_size = self.max_msg_size
        if decompressor.unconsumed_tail or len(out) > max_msg_size:
            raise self._too_big()
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

    def __call__(self, payload: bytes) -> bytes:
        """:meth:`inflate_message` (the parser's C loop calls an inflater)."""
        return self.inflate_message(payload)


#: How an :class:`Inflater` is made: ``(wbits, no_context_takeover, max_msg_size, violation,
#: invalid_code, too_big_code)``.
InflaterClass = Callable[[int, bool, int, Callable[[int, str], Exception], int, int], Inflater]


def _load_inflater() -> InflaterClass | None:
    if os.environ.get("TRIO_WS_NO_EXTENSIONS"):
        return None
    try:
        from ._inflate import Inflater as CInflater
    except ImportError:
        return None
    return CInflater


#: The inflater class :class:`ClientDeflate` uses: the C one where it was built.
inflater_class: InflaterClass = _load_inflater() or PyInflater


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
        max_msg_size: the largest inflated message, in bytes; 0 = no limit (the core sets it
            on :attr:`inflater`, which does all the receiving).

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
        #: The inbound half (see :class:`Inflater`): the assembler feeds it a message's pieces,
        #: the parser calls it for a message in one frame.
        self.inflater: Inflater = inflater_class(
            server_max_window_bits,
            server_no_context_takeover,
            max_msg_size,
            ProtocolViolation,
            INVALID_DATA,
            MESSAGE_TOO_BIG,
        )
        self._compressor: zlib._Compress | None = None

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
