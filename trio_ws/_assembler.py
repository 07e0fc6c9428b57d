"""One message being reassembled from its frames: inflate, UTF-8, size and fragment limits.

Theory of operation
-------------------

The frame parser of :class:`~trio_ws._protocol.ClientProtocol` decodes headers and hands the
payload of data frames here, in whatever pieces the reads cut it into. :class:`Assembler`
holds the one message that is open (RFC 6455 §5.4: fragments of different messages are never
interleaved, so there is at most one) and decides everything that depends on it:

* **structure**: a CONTINUATION frame needs an open message, a TEXT or BINARY frame needs
  none (the parser has already applied the stateless header rules of
  :func:`~trio_ws._framing.check_header`);
* **limits**: ``max_msg_size`` counts the lengths the headers announce, so a frame that would
  pass the limit is refused before its payload is buffered; a compressed message is bounded
  by the inflate itself (the :attr:`~trio_ws._deflate.ClientDeflate.inflater` never produces
  more than the limit allows). ``max_fragments`` caps the frames per message;
* **content**: each piece is inflated (if the message is compressed) and appended to one
  buffer; TEXT is checked by an incremental UTF-8 decoder, so an invalid byte fails the
  connection (1007) when it arrives, not when the message ends.

Buffers: TEXT goes into a :class:`io.StringIO` (or a bytearray with ``decode_text=False``).
BINARY pieces are kept as they are while they are big (joined once at the end: one copy) and
copied into one bytearray once small pieces would make the per-piece overhead matter, so
memory stays near the message's size however the payload is split.

**The sink.** An uncompressed BINARY frame of at least :data:`SINK_MIN` bytes that goes on in
later reads gets one buffer of its announced length (:meth:`Assembler.open_sink`), which the
parser fills (:meth:`Assembler.fill`) and the I/O layer may read into directly
(:meth:`Assembler.sink_view`, :meth:`Assembler.filled`). So a big message costs no buffer per
read and no list of pieces (1 MiB messages: 1,000 reads instead of 2,500 for 300 of them, and
30 % less CPU while the heap is steady; whether glibc reuses the freed blocks or trims the
heap and faults them in again is still up to its heuristics). The memory is bounded as
before: the header was checked against ``max_msg_size`` first.

The common case never comes here piece by piece: a whole message in one frame, all in the
read buffer, is built by the parser straight from that buffer (inflated in one call if it is
compressed), and a TEXT one is only checked by :meth:`Assembler.whole_text`.

**Streaming.** While :attr:`Assembler.stream_next` is set, the next message to start is
*streamed*: instead of one message at its end, every piece :meth:`Assembler.feed` gets comes
out at once, inflated and (TEXT) decoded, as a :class:`~trio_ws._types.WSMessage` whose
``extra`` is :data:`~trio_ws._types.CHUNK_MORE` (or :data:`~trio_ws._types.CHUNK_LAST` on the
last). The incremental UTF-8 decoder keeps a character cut between frames for the next piece,
so text pieces never split one. A message streamed from its start gets no sink and no buffer:
nothing of it is held here. :meth:`Assembler.stream_open` streams the message already open,
handing over what it has so far (a sink already open is kept, since the I/O layer may be
reading into it, and what fills it comes out piece by piece). Limits apply as to any
message. The parser's whole-message fast path clears :attr:`~Assembler.stream_next` itself
(that message is the next one, delivered whole).

A violation is raised as :class:`~trio_ws._framing.ProtocolViolation`. No I/O, no trio.
"""

from __future__ import annotations

import codecs
import io
from typing import Final

from ._deflate import ClientDeflate, Inflater
from ._framing import (
    BINARY,
    INVALID_DATA,
    MESSAGE_TOO_BIG,
    PROTOCOL_ERROR,
    TEXT,
    ProtocolViolation,
)
from ._types import CHUNK_LAST, CHUNK_MORE, WSMessage, WSMsgType

__all__ = ["DEFAULT_MAX_FRAGMENTS", "Assembler"]

#: Frames per message accepted by default (first frame and continuations; control frames
#: between them are not counted). The most a conformance test sends is 65,537: Autobahn cases
#: 9.3.1 and 9.4.1 send a 4 MiB message (our default ``max_msg_size``) in 64-byte fragments
#: plus an empty final one. Real servers fragment at kilobytes, if at all, and aiohttp and
#: websockets set no cap. Reassembly costs no memory per fragment (one growing buffer), so
#: the cap is what stops a server from keeping one message open forever with empty
#: continuation frames, at a round number well above any legitimate use.
DEFAULT_MAX_FRAGMENTS: Final = 100_000

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
#: Frames of at least this many bytes that span reads get a sink (see the module docstring):
#: one read buffer of the I/O layer (128 KiB), so a frame the first read holds whole is never
#: given one.
SINK_MIN: Final = 128 * 1024


def _not_utf8(what: str, exc: UnicodeDecodeError) -> ProtocolViolation:
    # RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that
    # the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the
    # WebSocket Connection_" (with 1007, §7.4.1).
    return ProtocolViolation(INVALID_DATA, f"{what} that is not UTF-8: {exc}")


class Assembler:
    """The message being reassembled from data frames, with its limits.

    Args:
        deflate: the negotiated permessage-deflate, if any; it is given ``max_msg_size``.
        max_msg_size: the largest message accepted, in bytes after decompression; 0 = no limit.
        max_fragments: the most frames one message may have; 0 = no limit.
        decode_text: deliver TEXT data as ``str`` (else as UTF-8 ``bytes``).
    """

    # Slots: one per connection, and thousands of idle connections are a use case.
    __slots__ = (
        "_bytes",
        "_compressed",
        "_fragments",
        "_inflater",
        "_max_fragments",
        "_parts",
        "_sink",
        "_sink_pos",
        "_size",
        "_streamed",
        "_text",
        "_utf8",
        "decode_text",
        "max_msg_size",
        "opcode",
        "stream_next",
    )

    def __init__(
        self,
        *,
        deflate: ClientDeflate | None = None,
        max_msg_size: int = 4 * 1024 * 1024,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        decode_text: bool = True,
    ) -> None:
        # The receiving half of permessage-deflate is all this room uses of it.
        self._inflater: Inflater | None = None
        if deflate is not None:
            self._inflater = deflate.inflater
            self._inflater.max_msg_size = max_msg_size
        #: The largest message accepted (read by the parser's fast path).
        self.max_msg_size = max_msg_size
        self._max_fragments = max_fragments
        #: Deliver TEXT as ``str`` (read by the parser's fast path too).
        self.decode_text = decode_text
        #: The opcode of the message being reassembled (TEXT or BINARY), 0 between messages.
        self.opcode = 0
        self._compressed = False
        self._size = 0  # payload bytes announced by the headers (uncompressed messages)
        self._fragments = 0
        # Appending to one buffer keeps the memory near the message's size however small the
        # pieces are; a list of pieces would cost ~50 bytes of object overhead per piece.
        self._bytes: bytearray | None = None
        # A BINARY message arriving in big pieces is kept as the pieces and joined once at the
        # end (one copy instead of two); a small piece switches to _bytes (see feed()).
        self._parts: list[bytes | bytearray] | None = None
        self._text: io.StringIO | None = None
        self._utf8: codecs.IncrementalDecoder | None = None
        # The payload of the current big frame (see the module docstring) and how much of it
        # has arrived.
        self._sink: bytearray | None = None
        self._sink_pos = 0
        #: Stream the next message that starts (see the module docstring).
        self.stream_next = False
        self._streamed = False  # the open message is streamed

    # ----------------------------------------------------------------------------------------
    # whole messages (one frame, all in the read buffer)

    def too_big(self, size: int) -> ProtocolViolation:
        """The violation for a message of at least ``size`` bytes (1009)."""
        return ProtocolViolation(
            MESSAGE_TOO_BIG,
            f"a message of at least {size} bytes exceeds max_msg_size={self.max_msg_size}",
        )

    def whole_text(self, payload: bytes) -> WSMessage:
        """A TEXT message that arrived whole and uncompressed in one frame.

        Raises:
            ProtocolViolation: the payload is not UTF-8 (1007).
        """
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8("a TEXT message", exc) from None
        if self.decode_text:
            return _tuple_new(WSMessage, (_TEXT_TYPE, text, None))
        return _tuple_new(WSMessage, (_TEXT_TYPE, payload, None))

    # ----------------------------------------------------------------------------------------
    # messages in pieces

    def start(self, opcode: int, compressed: bool, length: int) -> None:
        """The header of a message's first frame (TEXT or BINARY, RSV1 = ``compressed``).

        Raises:
            ProtocolViolation: a message is already open, RSV1 without permessage-deflate
                (1002), or ``length`` alone passes ``max_msg_size`` (1009).
        """
        if self.opcode:
            # RFC 6455 §5.4: "fragments of one message MUST NOT be interleaved between the
            # fragments of another message".
            name = "TEXT" if opcode == TEXT else "BINARY"
            raise ProtocolViolation(
                PROTOCOL_ERROR,
                f"a {name} frame inside a fragmented message (expected CONTINUATION)",
            )
        if compressed and self._inflater is None:
            # RFC 6455 §5.2: RSV1 "MUST be 0 unless an extension is negotiated".
            raise ProtocolViolation(PROTOCOL_ERROR, "RSV1 set without permessage-deflate")
        self.opcode = opcode
        self._compressed = compressed
        self._fragments = 1
        if self.stream_next:
            self.stream_next = False
            self._streamed = True
            if opcode == TEXT:
                self._utf8 = _Utf8Decoder()
        elif opcode == TEXT:
            self._utf8 = _Utf8Decoder()
            if self.decode_text:
                self._text = io.StringIO(newline="")
            else:
                self._bytes = bytearray()
        else:
            self._parts = []
        # A compressed message is bounded by the inflate, which knows the real size.
        if not compressed:
            self._size = length
            if self.max_msg_size and length > self.max_msg_size:
                raise self.too_big(length)

    def next_fragment(self, length: int) -> None:
        """The header of a CONTINUATION frame.

        Raises:
            ProtocolViolation: no message is open (1002), or the message passes
                ``max_fragments`` or ``max_msg_size`` (1009).
        """
        if not self.opcode:
            raise ProtocolViolation(PROTOCOL_ERROR, "a CONTINUATION frame outside a message")
        self._fragments += 1
        if self._max_fragments and self._fragments > self._max_fragments:
            raise ProtocolViolation(
                MESSAGE_TOO_BIG,
                f"a message of more than {self._max_fragments} fragments "
                f"(max_fragments={self._max_fragments})",
            )
        if not self._compressed:
            self._size += length
            if self.max_msg_size and self._size > self.max_msg_size:
                raise self.too_big(self._size)

    def open_sink(self, length: int) -> bool:
        """A frame of the open message whose ``length``-byte payload spans reads begins.
        Returns ``True`` if its payload goes into a sink (then give it with :meth:`fill` or
        :meth:`filled`, never :meth:`feed`)."""
        if self.opcode != BINARY or self._compressed or length < SINK_MIN or self._streamed:
            return False
        self._sink = bytearray(length)
        self._sink_pos = 0
        return True

    @property
    def sinking(self) -> bool:
        """A sink is open."""
        return self._sink is not None

    def sink_view(self) -> memoryview | None:
        """The part of the sink still to fill, or ``None`` without a sink."""
        if self._sink is None:
            return None
        return memoryview(self._sink)[self._sink_pos :]

    def fill(self, data: bytes | memoryview, end: bool) -> WSMessage | None:
        """Copy the next piece of the frame into the sink; as :meth:`filled`."""
        assert self._sink is not None
        pos = self._sink_pos
        self._sink[pos : pos + len(data)] = data
        return self.filled(len(data), end)

    def filled(self, size: int, end: bool) -> WSMessage | None:
        """``size`` more bytes of the sink were filled (by :meth:`fill` or by a read into
        :meth:`sink_view`); ``end``: the frame is the message's last. Returns the message
        once the sink is full and ``end`` completes it."""
        sink = self._sink
        assert sink is not None
        start = self._sink_pos
        pos = self._sink_pos = start + size
        if self._streamed:
            # A message streamed once its frame's sink was open (stream_open()).
            done = pos >= len(sink)
            if done:
                self._sink = None
            return self._chunk(memoryview(sink)[start:pos], end and done)
        if pos < len(sink):
            return None
        self._sink = None
        return self.feed(sink, end)

    def feed(self, data: bytes | bytearray, end: bool) -> WSMessage | None:
        """A piece of the open message's payload; ``end``: the last piece of its last frame.

        Returns:
            The message once ``end`` completes it, else ``None``.

        Raises:
            ProtocolViolation: as :meth:`~trio_ws._deflate.PyInflater.inflate`, or TEXT
                that is not UTF-8 (1007), as soon as the invalid byte arrives.
        """
        inflater = self._inflater
        if self._compressed and inflater is not None:
            data = inflater.inflate(data)
            if end:
                data += inflater.end_message()
        if self._streamed:
            return self._chunk(data, end)
        if self.opcode == TEXT:
            text = self._text_of(data, end)
            if self._text is not None:
                self._text.write(text)
            else:
                assert self._bytes is not None
                self._bytes += data
            if not end:
                return None
            if self._text is not None:
                value: str | bytes = self._text.getvalue()
            else:
                assert self._bytes is not None
                value = bytes(self._bytes)
            self._end()
            return _tuple_new(WSMessage, (_TEXT_TYPE, value, None))
        parts = self._parts
        if parts is not None and (len(data) >= _MIN_PART or len(parts) < _SMALL_PARTS):
            parts.append(data)
        else:
            if parts is not None:
                self._bytes = bytearray(b"".join(parts))
                parts = self._parts = None
            assert self._bytes is not None
            self._bytes += data
        if not end:
            return None
        if parts is not None:
            value = b"".join(parts)
        else:
            assert self._bytes is not None
            value = bytes(self._bytes)
        self._end()
        return _tuple_new(WSMessage, (_BINARY_TYPE, value, None))

    def _text_of(self, data: bytes | bytearray | memoryview, end: bool) -> str:
        """The next piece of the TEXT message's text (a character cut by ``data``'s end waits
        for the next piece, unless ``end``).

        Raises:
            ProtocolViolation: the bytes are not UTF-8 (1007).
        """
        assert self._utf8 is not None
        try:
            return self._utf8.decode(data, end)
        except UnicodeDecodeError as exc:
            raise _not_utf8("a TEXT message", exc) from None

    def _chunk(self, data: bytes | bytearray | memoryview, end: bool) -> WSMessage | None:
        """A piece of a streamed message, as it goes to the receive queue (``None`` for an
        empty piece that is not the last)."""
        chunk: str | bytes
        if self.opcode == TEXT:
            text = self._text_of(data, end)
            chunk = text if self.decode_text else bytes(data)
            kind = _TEXT_TYPE
        else:
            chunk = bytes(data)
            kind = _BINARY_TYPE
        if end:
            self._end()
            return _tuple_new(WSMessage, (kind, chunk, CHUNK_LAST))
        if not chunk:
            return None
        return _tuple_new(WSMessage, (kind, chunk, CHUNK_MORE))

    def stream_open(self) -> WSMessage | None:
        """Stream the message that is open, if any and not streamed yet: what it holds so far
        comes out as its first piece (``None`` if nothing yet). Without an open message, the
        next one will be streamed (:attr:`stream_next`)."""
        if not self.opcode:
            self.stream_next = True
            return None
        if self._streamed:
            # A stream left early is still arriving: the one after it is the next.
            self.stream_next = True
            return None
        self._streamed = True
        chunk: str | bytes
        if self._text is not None:
            chunk = self._text.getvalue()
            kind = _TEXT_TYPE
        elif self.opcode == TEXT:
            assert self._bytes is not None
            chunk = bytes(self._bytes)
            kind = _TEXT_TYPE
        else:
            parts: list[bytes | bytearray | memoryview] = list(self._parts or ())
            if self._bytes is not None:
                parts.append(self._bytes)
            if self._sink is not None:
                # The reader may be reading into it: the sink stays, and what fills it from
                # now on comes out piece by piece (filled()).
                parts.append(memoryview(self._sink)[: self._sink_pos])
            chunk = b"".join(parts)
            kind = _BINARY_TYPE
        self._text = None
        self._bytes = None
        self._parts = None
        if not chunk:
            return None
        return _tuple_new(WSMessage, (kind, chunk, CHUNK_MORE))

    def _end(self) -> None:
        self.opcode = 0
        self._streamed = False
        self._compressed = False
        self._bytes = None
        self._parts = None
        self._text = None
        self._utf8 = None
        self._sink = None

    def reset(self) -> None:
        """Forget the open message, if any (the connection ended or failed)."""
        self._end()
        if self._inflater is not None:
            self._inflater.reset_message()
