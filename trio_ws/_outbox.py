"""The output side of the sans-I/O core: our frames, queued in order until the I/O layer takes them.

Theory of operation
-------------------

:class:`Outbox` is where every byte the client sends waits: a list of pieces (a frame header
with its mask key, then the masked payload) and their total size. It owns how our frames are
made, from :func:`~trio_ws._framing.build_frame` with the injected mask source (``os.urandom``
unless a test fixes the keys) and the negotiated permessage-deflate when a message asks for
compression, and how the queue is handed over: all at once (:meth:`Outbox.take`), or as pieces
to write in order (:meth:`Outbox.take_pieces`), where small pieces are joined into one buffer
and a payload of 64 KiB or more stays on its own, so a big message is written as it is instead
of copied next to its header.

It knows nothing of the connection's lifecycle: whether a frame may be sent now (OPEN,
CLOSING, ...) is decided by :class:`~trio_ws._protocol.ClientProtocol`, which owns one outbox
and feeds it from its ``send_*`` methods, its automatic pongs and close frames. So the outbox
is in call order, and the wire order is the order of those calls. Nor does it check a caller's
arguments (payload sizes, close codes): the core does that before it changes state.

Nothing here does I/O or imports trio.
"""

from __future__ import annotations

from typing import Final, final

from ._deflate import ClientDeflate
from ._framing import CLOSE, CONTINUATION, NO_STATUS, PREVIEW, MaskSource, Trace, build_frame

__all__ = ["JOIN_LIMIT", "NO_STATUS", "Outbox"]

#: :meth:`Outbox.take_pieces` hands over pieces at least this big on their own instead of
#: copying them.
JOIN_LIMIT: Final = 64 * 1024


@final
class Outbox:
    """The frames the client sends, in the order they were queued.

    Args:
        mask_source: ``mask_source(4)`` gives the mask key of each frame (RFC 6455 §5.3).
        deflate: the negotiated permessage-deflate, used for a message queued with
            ``compress=True``; ``None`` sends every message uncompressed.
    """

    __slots__ = (
        "_deflate",
        "_mask_source",
        "messages",
        "other_frames",
        "payload_bytes",
        "pieces",
        "size",
        "trace",
    )

    def __init__(self, mask_source: MaskSource, deflate: ClientDeflate | None = None) -> None:
        self._mask_source = mask_source
        self._deflate = deflate
        #: The queued bytes, oldest first: each frame's header and mask key, then its payload.
        self.pieces: list[bytes] = []
        #: The number of bytes in :attr:`pieces`.
        self.size = 0
        #: Data messages queued so far, the other frames (control frames, and the fragments
        #: after a message's first), and the data messages' payload bytes (uncompressed).
        self.messages = 0
        self.other_frames = 0
        self.payload_bytes = 0
        #: While a list: each frame queued, as a :data:`~trio_ws._framing.Trace` (the I/O
        #: layer logs them at DEBUG).
        self.trace: list[Trace] | None = None

    def message(
        self, opcode: int, payload: bytes | bytearray | memoryview, compress: bool = True
    ) -> None:
        """Queue a data message (TEXT or BINARY) as one frame; compressed (RSV1 set) when
        ``compress`` and permessage-deflate was negotiated."""
        self.messages += 1
        self.payload_bytes += len(payload)
        deflate = self._deflate
        if self.trace is not None:
            flag = compress and deflate is not None
            self.trace.append((">", opcode, True, flag, len(payload), bytes(payload[:PREVIEW])))
        if compress and deflate is not None:
            self.size += build_frame(
                self.pieces, opcode, deflate.compress(payload), True, self._mask_source
            )
        else:
            self.size += build_frame(self.pieces, opcode, payload, False, self._mask_source)

    def fragment(
        self,
        opcode: int,
        payload: bytes | bytearray | memoryview,
        compress: bool,
        *,
        first: bool,
        last: bool,
    ) -> None:
        """Queue one frame of a message sent in pieces: ``opcode`` (TEXT or BINARY) on the
        first, CONTINUATION after, FIN on the last; compressed as one message (RSV1 on the
        first) when ``compress`` and permessage-deflate was negotiated."""
        if first:
            self.messages += 1
        else:
            self.other_frames += 1
        self.payload_bytes += len(payload)
        deflate = self._deflate
        compressed = compress and deflate is not None
        if deflate is not None and compressed:
            payload = deflate.compress(payload, last)
        frame_opcode = opcode if first else CONTINUATION
        if self.trace is not None:
            flag = compressed and first
            self.trace.append(
                (">", frame_opcode, last, flag, len(payload), bytes(payload[:PREVIEW]))
            )
        self.size += build_frame(
            self.pieces, frame_opcode, payload, compressed and first, self._mask_source, last
        )

    def control(self, opcode: int, payload: bytes) -> None:
        """Queue a control frame (PING or PONG); the caller checked its size."""
        self.other_frames += 1
        if self.trace is not None:
            self.trace.append((">", opcode, True, False, len(payload), payload))
        self.size += build_frame(self.pieces, opcode, payload, False, self._mask_source)

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame: the code in 2 bytes, then the reason in UTF-8 (RFC 6455
        §5.5.1); :data:`NO_STATUS` gives an empty close frame."""
        self.other_frames += 1
        payload = b"" if code == NO_STATUS else code.to_bytes(2, "big")
        if self.trace is not None:
            self.trace.append((">", CLOSE, True, False, len(payload), payload))
        self.size += build_frame(
            self.pieces, CLOSE, payload + reason.encode("utf-8"), False, self._mask_source
        )

    def take(self) -> bytes:
        """Take everything queued as one buffer, oldest first (``b""`` when empty)."""
        out = self.pieces
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.size = 0
        return data

    def take_pieces(self) -> list[bytes]:
        """Take everything queued as pieces to write in order, oldest first.

        Small pieces are joined; a piece of :data:`JOIN_LIMIT` (64 KiB) or more stays on its
        own, so a big payload is written as it is instead of copied into one buffer with its
        header.
        """
        out = self.pieces
        if len(out) < 2 or self.size < JOIN_LIMIT:
            data = self.take()
            return [data] if data else []
        pieces: list[bytes] = []
        run: list[bytes] = []
        for piece in out:
            if len(piece) >= JOIN_LIMIT:
                # Only payloads are this big, and each follows its own header: run is never
                # empty here.
                pieces.append(run[0] if len(run) == 1 else b"".join(run))
                run = []
                pieces.append(piece)
            else:
                run.append(piece)
        if run:
            pieces.append(run[0] if len(run) == 1 else b"".join(run))
        out.clear()
        self.size = 0
        return pieces
