"""Sending one message in pieces: ``ClientWebSocket.send_stream`` (a mixin of it).

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
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Final

from ._errors import InvalidArgument, WSMessageTypeError
from ._framing import BINARY, TEXT, compress_flag
from ._types import WSCloseCode

if TYPE_CHECKING:
    from ._protocol import ClientProtocol
    from ._writer import Writer

__all__ = ["Chunk", "Streaming"]

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


class Streaming:
    """The pieces-sending half of :class:`~trio_ws.ClientWebSocket` (a mixin)."""

    __slots__ = ()

    # Held by ClientWebSocket.
    _core: ClientProtocol
    _writer: Writer
    _debug: bool

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
