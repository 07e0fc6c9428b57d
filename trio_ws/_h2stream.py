"""One HTTP/2 stream as a ``trio.abc.Stream``: the transport of one WebSocket over HTTP/2.

The session (:mod:`._h2session`, whose docstring has the theory of operation) owns the
connection and the h2 state; a stream keeps what is its own: the DATA received and not yet
taken, its flow-control credit to give back, and where the close frames of both directions
are (:mod:`._closewatch`), which decide when it ends.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Final, final

import h2.exceptions
import trio

from ._closewatch import CloseWatch

if TYPE_CHECKING:
    from ._h2session import H2Session

__all__ = ["READ_SIZE", "STREAM_WINDOW", "H2Stream"]

#: Bytes asked of the socket per read, and given by ``receive_some`` without ``max_bytes``.
READ_SIZE: Final = 64 * 1024
#: Our receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE): what the server may send one
#: WebSocket ahead of its application.
STREAM_WINDOW: Final = 256 * 1024


@final
class H2Stream(trio.abc.Stream):
    """One HTTP/2 stream as a ``trio.abc.Stream``: the transport of one WebSocket.

    Made by :meth:`H2Session.open_stream`; flow control and failures are described in
    :mod:`._h2session`.
    """

    # Slots, a queue and an event only while needed: idle WebSockets are many.
    __slots__ = (
        "_broken",
        "_chunks",
        "_close_sent",
        "_closed",
        "_ended",
        "_readable",
        "_sending",
        "_unacked",
        "_upgraded",
        "_watch_in",
        "_watch_out",
        "owner",
        "response",
        "session",
        "stream_id",
    )

    def __init__(self, session: H2Session, stream_id: int) -> None:
        #: The session (HTTP/2 connection) the stream belongs to.
        self.session = session
        self.stream_id = stream_id
        # A deque only while data waits: an empty one costs 600 bytes per idle WebSocket.
        self._chunks: collections.deque[bytes] | None = None
        #: The response's header block, once it arrived.
        self.response: list[tuple[bytes, bytes]] | None = None
        self._ended = False  # the server sent END_STREAM
        self._broken: BaseException | None = None
        self._closed = False
        self._unacked = 0  # bytes consumed whose stream window was not given back yet
        self._readable: trio.Event | None = None  # made by a reader that waits
        self._sending = False
        # The close frames of both directions (see _closewatch: the end of the stream).
        self._watch_in = CloseWatch()
        self._watch_out = CloseWatch()
        self._close_sent = False  # our close frame is queued in h2, whole
        self._upgraded = False  # the stream carries WebSocket frames (see upgraded())
        #: What runs on this stream (the WebSocket), for the session's close.
        self.owner: object = None

    # --- called by the session (reader task) -----------------------------------------------

    def _wake(self) -> None:
        if self._readable is not None:
            self._readable.set()
            self._readable = None

    def _headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        # h2 reports one final response per stream (a later header block is trailers).
        self.response = headers
        self._wake()

    def _data(self, data: bytes, flow_length: int) -> None:
        if self._watch_in.closed:
            return  # nothing may follow the server's close frame (RFC 6455 §5.5.1)
        if data:
            if self._chunks is None:
                self._chunks = collections.deque()
            self._chunks.append(data)
        # Padding counts against the window but is never consumed: give it back at once.
        self._give_back(flow_length - len(data))
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _break(self, exc: BaseException) -> None:
        if self._broken is None:
            self._broken = exc
        self._wake()

    # --- trio.abc.Stream -------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """The server ended its side of the stream."""
        return self._ended

    @property
    def finished(self) -> bool:
        """Both close frames have passed: the WebSocket is over, the stream may end."""
        return self._watch_in.closed and self._close_sent

    @property
    def _at_end(self) -> bool:
        """``receive_some`` gives EOF: the close handshake is over, or the server ended the
        stream, except between its close frame and ours (the server's END_STREAM often comes
        with its close frame: EOF then would end the connection before our answer is out,
        which over TCP cannot happen, the server closing only after our answer)."""
        return self.finished or (self._ended and not self._watch_in.closed)

    def _raise_broken(self) -> None:
        exc = self._broken
        assert exc is not None
        raise trio.BrokenResourceError(f"HTTP/2 stream {self.stream_id}: {exc}") from exc

    async def wait_response(self) -> list[tuple[bytes, bytes]]:
        """The response's header block.

        A stream never ends without one: h2 reports the response before END_STREAM, and
        refuses DATA or END_STREAM before a final response as a protocol error (the session
        fails, and so does this call).

        Raises:
            trio.BrokenResourceError: the stream was reset or the session failed first.
        """
        while self.response is None:
            if self._broken is not None:
                self._raise_broken()
            event = self._readable = trio.Event()
            await event.wait()
        await trio.lowlevel.checkpoint()
        return self.response

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Buffered DATA of the stream (at most ``max_bytes``); ``b""`` (EOF) once the close
        frames of both sides have passed, or after END_STREAM (but not between the server's
        close frame and ours).

        Raises:
            trio.BrokenResourceError: the stream was reset or the session failed.
            trio.ClosedResourceError: the stream was closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        limit = max_bytes if max_bytes is not None else READ_SIZE
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the HTTP/2 stream was closed")
            if self._chunks:  # None or empty: nothing waits
                data = self._take(limit)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
            if self._broken is not None:
                self._raise_broken()
            if self._at_end:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return b""
            event = self._readable = trio.Event()
            await event.wait()

    def _take(self, limit: int) -> bytes:
        chunks = self._chunks
        assert chunks is not None
        first = chunks[0]
        if len(first) > limit:
            chunks[0] = first[limit:]
            data = first[:limit]
        else:
            parts = [chunks.popleft()]
            size = len(first)
            while chunks and size + len(chunks[0]) <= limit:
                size += len(chunks[0])
                parts.append(chunks.popleft())
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._give_back(len(data))
        watch = self._watch_in
        if self._upgraded and not watch.closed:
            # WebSocket frames (not a rejection's body): nothing may follow the server's
            # close frame (RFC 6455 §5.5.1); what did is dropped.
            size = watch.feed(data)
            if watch.closed:
                data = data[:size]
                chunks.clear()
        if not chunks:
            self._chunks = None
        return data

    def upgraded(self) -> None:
        """The handshake accepted the WebSocket: from here the stream carries its frames."""
        self._upgraded = True

    def _give_back(self, consumed: int) -> None:
        """The application consumed ``consumed`` bytes: reopen the stream's window by them,
        in batches of a quarter window (one WINDOW_UPDATE per batch, not per read)."""
        self._unacked += consumed
        if self._unacked >= STREAM_WINDOW // 4 and not self._ended and self._broken is None:
            self.session._window_update(self.stream_id, self._unacked)
            self._unacked = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` as DATA frames within the flow-control windows.

        Waits for WINDOW_UPDATE while the windows are spent, and while the session writer's
        backlog is above ``WRITE_HIGH``. Cancelled while waiting, part of ``data`` may have been
        queued (as with a socket).

        Raises:
            trio.BrokenResourceError: the stream was reset or the session failed.
            trio.ClosedResourceError: the stream was closed.
            trio.BusyResourceError: another task is in ``send_all``.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this HTTP/2 stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            session = self.session
            view = memoryview(data).cast("B")
            closing = False
            if not self._watch_out.closed:
                self._watch_out.feed(view)
                closing = self._watch_out.closed
            while view:
                self._check_sendable()
                try:
                    size = session._send_window(self.stream_id)
                    if size > 0:
                        session._send_data(self.stream_id, bytes(view[:size]))
                except h2.exceptions.ProtocolError as exc:
                    self._break(session._broken_by(exc))
                    continue  # raised by _check_sendable
                if size <= 0:
                    await session._wait_changed()
                    continue
                view = view[size:]
            if closing:
                # Our close frame is queued whole: the stream may end after it.
                self._close_sent = True
                self._wake()
            await session._wait_drained()
            self._check_sendable()
        finally:
            self._sending = False

    def _check_sendable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the HTTP/2 stream was closed")
        if self._broken is not None:
            self._raise_broken()

    async def wait_send_all_might_not_block(self) -> None:
        """Return at once (a send waits inside ``send_all``)."""
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close the stream without waiting: END_STREAM after the server's, else RST_STREAM."""
        if not self._closed:
            self._closed = True
            self.session._closed_stream(self)
            self._wake()
        await trio.lowlevel.checkpoint()
