"""Messages in pieces: ``ClientWebSocket.send_stream`` and ``receive_stream`` (a mixin).

Sending
-------

A message whose parts are produced over time (a file read in chunks, rows of a query, an
encoder's output) goes out as one fragmented message (RFC 6455 §5.4): the first frame is TEXT
or BINARY, the others CONTINUATION, the last has FIN. The writer lock is held for the whole
message, so no other data message interleaves; the frames the reader queues on its own (a
pong, the echo of a close frame) go out between the fragments, which the RFC allows, so a
ping is answered while a long message is being sent. With permessage-deflate the pieces are
compressed as one message (RSV1 on the first frame).

A message that was started cannot be taken back: if the chunks' iterator raises, a chunk is of
the wrong type, or the send is cancelled after the first fragment went out, the connection is
closed with code 1011 ("message cut short") and the exception propagates. Before the first
fragment, nothing was sent and the connection stays usable.

Receiving
---------

``receive_stream()`` asks the core to deliver the next message in pieces
(:meth:`~trio_ws._protocol.ClientProtocol.stream_message`) when nothing is queued ahead of
it; the pieces go through the receive queue like messages (so backpressure and the cancel
safety of :class:`~trio_ws._inbox.Inbox` apply), marked by their ``extra``
(:data:`~trio_ws._types.CHUNK_MORE`, :data:`~trio_ws._types.CHUNK_LAST`). A message that was
already queued whole, or arrives whole in one read, is a stream of one piece.

Nothing is lost on the way out of a stream. :class:`_Pieces`, made on the first
``receive_stream()`` (an idle connection without it pays one ``None`` slot), keeps:

* the pieces that a block left early still has coming: dropped as they arrive
  (``leftover``), which is what leaving early means;
* a message whose stream was asked for but whose ``receive_stream()`` was cancelled or timed
  out before taking its first piece: ``receive()`` joins its pieces into one message
  (``partial`` keeps them across a cancelled ``receive()``), and another ``receive_stream()``
  streams it;
* PING and PONG (``autoping=False``), CLOSE and ERROR met between the pieces: ``held`` for
  the next ``receive()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, final

from ._errors import InvalidArgument, WSMessageTypeError
from ._framing import BINARY, TEXT, compress_flag
from ._types import (
    CHUNK_LAST,
    CHUNK_MORE,
    ClientWSTimeout,
    WSCloseCode,
    WSMessage,
    WSMsgType,
)

if TYPE_CHECKING:
    from ._inbox import Inbox
    from ._protocol import ClientProtocol
    from ._writer import Writer

__all__ = ["Chunk", "MessageStream", "Streaming"]

Chunk = str | bytes | bytearray | memoryview
_CUT_SHORT: Final = "message cut short"
_END: Final = object()


async def _next_chunk(
    chunks: Iterator[object] | AsyncIterator[object],
) -> object:
    """The next chunk, or :data:`_END`."""
    if isinstance(chunks, AsyncIterator):
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            return _END
    return next(chunks, _END)


def _payload(chunk: object, expected: int) -> tuple[bytes | bytearray | memoryview, int]:
    """The chunk's bytes and opcode (TEXT for ``str``); ``expected``: the first chunk's, or
    0 for the first."""
    if expected and isinstance(chunk, str) != (expected == TEXT):
        raise WSMessageTypeError("send_stream() got both str and bytes chunks")
    if isinstance(chunk, str):
        try:
            return chunk.encode("utf-8"), TEXT
        except UnicodeEncodeError as exc:
            raise InvalidArgument(f"a text chunk that cannot be encoded as UTF-8: {exc}") from exc
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return chunk, BINARY
    raise WSMessageTypeError(f"send_stream() takes str or bytes chunks, not {type(chunk).__name__}")


_DATA: Final = (WSMsgType.TEXT, WSMsgType.BINARY)
#: Met between the pieces of a stream: the stream ends with an error, the message stays for
#: ``receive()``.
_ENDS: Final = (WSMsgType.CLOSE, WSMsgType.ERROR)


def _join(pieces: list[str | bytes]) -> str | bytes:
    if pieces and isinstance(pieces[0], str):
        return "".join(pieces)  # type: ignore[arg-type]
    return b"".join(pieces)  # type: ignore[arg-type]


@final
class _Pieces:
    """What a connection that streams messages keeps between calls (module docstring)."""

    __slots__ = ("held", "leftover", "open", "partial", "partial_type")

    def __init__(self) -> None:
        self.open = False  # a receive_stream() block is open
        self.leftover = False  # drop pieces until the last of the message left early
        self.partial: list[str | bytes] | None = None  # a message being joined by receive()
        self.partial_type = WSMsgType.BINARY
        self.held: deque[WSMessage] = deque()  # messages a stream met, for receive()

    async def get(self, inbox: Inbox, timeout: float | None) -> WSMessage:
        """``receive()``'s next message: held ones first, pieces of an orphan stream joined,
        those of a stream left early dropped."""
        if self.open:
            raise RuntimeError("receive() while a receive_stream() block is open")
        if self.held:
            return self.held.popleft()
        while True:
            msg = await inbox.get(timeout)
            extra = msg.extra
            if extra is None or msg.type not in _DATA:
                if self.partial is not None and msg.type in _ENDS:
                    self.partial = None  # the message was cut by the end
                return msg
            if self.leftover:
                self.leftover = extra is not CHUNK_LAST
                continue
            if self.partial is None:
                self.partial = []
                self.partial_type = msg.type
            self.partial.append(msg.data)
            if extra is CHUNK_LAST:
                data = _join(self.partial)
                self.partial = None
                return WSMessage(msg.type, data, None)


@final
class MessageStream:
    """One message as it arrives, piece by piece: what :meth:`ClientWebSocket.receive_stream`
    returns. Use it as ``async with ws.receive_stream() as stream:``, then
    ``async for piece in stream:``.

    Each piece is ``str`` for TEXT (never a split character; ``bytes`` with
    ``decode_text=False``) and ``bytes`` for BINARY, as the server's frames and our reads cut
    the message, decompressed when permessage-deflate is on.
    """

    __slots__ = ("_core", "_done", "_first", "_inbox", "_pieces", "_timeout", "type")

    def __init__(
        self, inbox: Inbox, core: ClientProtocol, pieces: _Pieces, timeout: float | None
    ) -> None:
        self._inbox = inbox
        self._core = core
        self._pieces = pieces
        self._timeout = timeout
        self._first: str | bytes | None = None
        self._done = False
        #: The message's type: ``WSMsgType.TEXT`` or ``WSMsgType.BINARY`` (known once the
        #: block is entered).
        self.type = WSMsgType.BINARY

    async def __aenter__(self) -> MessageStream:
        pieces = self._pieces
        if pieces.open:
            raise RuntimeError("another receive_stream() block is open")
        inbox, core = self._inbox, self._core
        asked = False
        try:
            while True:
                if pieces.held:
                    msg = pieces.held.popleft()
                elif pieces.partial is not None:
                    # A stream nobody took, half joined by a cancelled receive(): go on from it.
                    msg = WSMessage(pieces.partial_type, _join(pieces.partial), CHUNK_MORE)
                    pieces.partial = None
                else:
                    if not asked and not inbox.queued_messages:
                        asked = True
                        msg_or_none = core.stream_message()
                        if msg_or_none is not None:
                            msg = msg_or_none
                            break
                    msg = await inbox.get(self._timeout)
                    if pieces.leftover and msg.extra is not None and msg.type in _DATA:
                        pieces.leftover = msg.extra is not CHUNK_LAST
                        continue
                break
            if msg.type not in _DATA:
                raise WSMessageTypeError(  # noqa: TRY301 - the except clause only cleans up
                    f"received {msg.type.name} {msg.data!r}, not TEXT or BINARY", msg
                )
        except BaseException:
            if asked:
                core.unstream_message()  # the next message is whole again, if not started
            raise
        self.type = msg.type
        self._first = msg.data or None
        self._done = msg.extra is not CHUNK_MORE
        pieces.open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pieces.open = False
        if not self._done:
            self._done = True
            self._pieces.leftover = True  # the rest of the message is dropped as it arrives

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> str | bytes:
        """The next piece.

        Raises:
            WSTimeoutError: no piece within the timeout; the stream goes on.
            WSClosedError: the connection closed or failed before the message ended.
        """
        first = self._first
        if first is not None:
            self._first = None
            return first
        while not self._done:
            msg = await self._inbox.get(self._timeout)
            extra = msg.extra
            if msg.type in _DATA and extra is not None:
                self._done = extra is CHUNK_LAST
                if msg.data:
                    return msg.data  # type: ignore[no-any-return]
                continue
            self._done = True
            if msg.type in _ENDS:
                self._pieces.held.append(msg)  # receive() still gets it
            elif msg.type is WSMsgType.PING or msg.type is WSMsgType.PONG:
                self._pieces.held.append(msg)
                self._done = False
                continue
            raise self._core.closed_error()
        raise StopAsyncIteration


class Streaming:
    """The pieces half of :class:`~trio_ws.ClientWebSocket` (a mixin)."""

    __slots__ = ()

    # Held by ClientWebSocket.
    _core: ClientProtocol
    _writer: Writer
    _inbox: Inbox
    _timeout: ClientWSTimeout
    _rx: _Pieces | None
    _debug: bool

    def receive_stream(self, *, timeout: float | None = None) -> MessageStream:
        """Receive the next message piece by piece, as it arrives, without holding it whole.

        .. code-block:: python

            async with ws.receive_stream() as stream:
                print(stream.type)  # WSMsgType.TEXT or WSMsgType.BINARY
                async for piece in stream:
                    output.write(piece)

        Entering the block waits for the message to begin; each piece arrives as the
        server's frames and the reads bring it (decompressed, and ``str`` for TEXT, never
        splitting a character). ``max_msg_size`` applies as to any message. A message that
        was already queued whole comes as one piece.

        Leaving the block before the end drops the rest of the message as it arrives; the
        connection stays usable and the next message is received as usual. While the block is
        open, :meth:`receive` raises ``RuntimeError``.

        Args:
            timeout: seconds to wait for the message to begin, and then for each piece;
                ``None`` uses ``ClientWSTimeout.ws_receive``.

        Raises:
            WSMessageTypeError: (entering) the next message is not TEXT or BINARY (CLOSE,
                ERROR, CLOSED, or PING/PONG with ``autoping=False``); it is in the
                exception's ``msg``.
            WSTimeoutError: nothing arrived within the timeout; nothing was lost.
            WSClosedError: (iterating) the connection closed or failed before the message
                ended; ``receive()`` then returns the CLOSE or ERROR.

        Cancellation: a cancelled wait takes nothing. If the message had begun to stream
        when entering was cancelled, the next ``receive()`` returns it whole (or the next
        ``receive_stream()`` streams it).
        """
        pieces = self._rx
        if pieces is None:
            # The slot is ClientWebSocket's: two bases with slots of their own cannot mix.
            pieces = self._rx = _Pieces()  # type: ignore[misc]
        limit = timeout if timeout is not None else self._timeout.ws_receive
        return MessageStream(self._inbox, self._core, pieces, limit)

    _log_trace: Callable[[], None]  # (Observed's)

    async def send_stream(
        self,
        chunks: Iterable[Chunk] | AsyncIterable[Chunk],
        compress: int | None = None,
    ) -> None:
        """Send one message made of ``chunks`` (an iterable or async iterable), each sent as
        it comes as one fragment: TEXT if they are ``str``, BINARY if bytes-like (no chunks:
        an empty BINARY message).

        No other data message goes out before this one ends; the pongs and the close frames
        the connection sends on its own may go between its fragments.

        Args:
            chunks: the pieces, all ``str`` or all bytes-like.
            compress: as for :meth:`send_str`.

        Raises:
            WSMessageTypeError: a chunk that is neither, or of the other kind than the first.
            InvalidArgument: a ``str`` chunk that cannot be encoded as UTF-8.
            WSClosedError: the connection is closing, closed or broken.

        Cancellation, or an exception from ``chunks``: before the first fragment, nothing was
        sent; after it, the message cannot be completed and the connection is closed with
        code 1011; the exception propagates either way.
        """
        flag = compress is None or compress_flag(compress)
        core, writer = self._core, self._writer
        opcode = 0
        async with writer.exclusive():
            try:
                it = aiter(chunks) if isinstance(chunks, AsyncIterable) else iter(chunks)
                while (chunk := await _next_chunk(it)) is not _END:
                    payload, kind = _payload(chunk, opcode)
                    await writer.send_held(
                        core.send_fragment, kind, payload, flag, not opcode, False
                    )
                    opcode = kind
                    if self._debug:
                        self._log_trace()
                await writer.send_held(core.send_fragment, opcode or BINARY, b"", flag, not opcode)
            except BaseException:
                if opcode and core.send_close(WSCloseCode.INTERNAL_ERROR, _CUT_SHORT):
                    writer.flush()  # the message was started: the connection cannot go on
                raise
        if self._debug:
            self._log_trace()
