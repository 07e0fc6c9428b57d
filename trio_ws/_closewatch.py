"""Where a close frame ends in a byte stream of WebSocket frames, without I/O.

Why: over HTTP/1.1 a WebSocket ends with the close handshake and then the server closing TCP
(RFC 6455 §7.1.1, so the client holds no TIME_WAIT); the connection layer waits for that EOF.
Over HTTP/2 (RFC 8441 §5.1 maps TCP's orderly close to END_STREAM) there is no TIME_WAIT to
spare anyone, and servers differ: hypercorn ends the stream after a close it initiated but
not after answering ours. So the HTTP/2 stream adapter watches both directions with a
:class:`CloseWatch` each and, once both close frames have passed, ends the stream itself: the
connection layer then sees EOF right after the server's close frame, as from a prompt server.

The watch reads frame headers only (RFC 6455 §5.2: opcode, payload length, mask), skipping
payloads; it never changes a byte.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CloseWatch"]

_CLOSE: Final = 0x8


class CloseWatch:
    """Follows the frames of one direction; :attr:`closed` once a close frame has passed."""

    __slots__ = ("_closing", "_header", "_skip", "closed")

    def __init__(self) -> None:
        self._header = b""  # a frame header not yet complete (at most 14 bytes)
        self._skip = 0  # payload bytes of the current frame still to pass
        self._closing = False  # the current frame is a close frame
        #: A whole close frame has passed.
        self.closed = False

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        """Watch ``data``; returns how many of its bytes belong up to the end of the first
        close frame (``len(data)`` if none ends in it, or if one ended earlier)."""
        view = memoryview(data)
        size = len(view)
        pos = 0
        while pos < size and not self.closed:
            if self._skip:
                step = min(self._skip, size - pos)
                self._skip -= step
                pos += step
            else:
                need = self._header_size() or 2
                take = min(need - len(self._header), size - pos)
                self._header += bytes(view[pos : pos + take])
                pos += take
                full = self._header_size()
                if not full or len(self._header) < full:
                    continue
                self._start_frame()
            if self._closing and not self._skip and not self._header:
                self.closed = True
                return pos
        return size

    def _header_size(self) -> int:
        """The size of the frame header being read, 0 while its first two bytes are not in."""
        header = self._header
        if len(header) < 2:
            return 0
        length = header[1] & 0x7F
        extended = 2 if length == 126 else 8 if length == 127 else 0
        return 2 + extended + (4 if header[1] & 0x80 else 0)

    def _start_frame(self) -> None:
        header = self._header
        length = header[1] & 0x7F
        if length == 126:
            length = int.from_bytes(header[2:4], "big")
        elif length == 127:
            length = int.from_bytes(header[2:10], "big")
        self._closing = header[0] & 0x0F == _CLOSE
        self._skip = length
        self._header = b""
