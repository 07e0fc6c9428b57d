"""The output side of the sans-I/O core: our frames, queued in order until the I/O layer takes them.

Theory of operation
-------------------

:class:`Outbox` is where every byte the client sends waits: a list of pieces (a frame header
with its mask key, then the masked payload) and their total size. It owns how our frames are
made, from :func:`~trio_ws._framing.build_frame` with the injected mask source (``os.urandom``
unless a test fixes the keys) and the negotiated permessage-deflate when a message asks for
compression, and how the queue is handed over: all at once (:meth:`Outbox.take`), or as pieces
to write in order (:meth:`Outbox.take_pieces`), where small frames are joined into one buffer
and a frame of 64 KiB or more stays on its own, so a big message is written as it is instead
of copied again.

Every piece is one frame or several whole ones, so a boundary between pieces is one between
frames. A message bigger than ``max_frame_size`` goes out as several frames of at most that
payload (RFC 6455 §5.4), and PING and PONG frames wait apart, in :attr:`Outbox.urgent`: they go
out first from a take, and the writer puts them between the frames it is already writing
(:meth:`Outbox.take_urgent`), so a pong never waits behind more than one data frame. Close
frames keep their place after the data queued before them.

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
        max_frame_size: a message with a bigger payload (compressed, if it is) goes out in
            frames of at most this many payload bytes; 0: every message in one frame.
    """

    __slots__ = (
        "_deflate",
        "_mask_source",
        "max_frame_size",
        "messages",
        "other_frames",
        "payload_bytes",
        "pieces",
        "size",
        "trace",
        "urgent",
    )

    def __init__(
        self,
        mask_source: MaskSource,
        deflate: ClientDeflate | None = None,
        max_frame_size: int = 0,
    ) -> None:
        self._mask_source = mask_source
        self._deflate = deflate
        self.max_frame_size = max_frame_size
        #: The queued frames, oldest first, each one piece (header, mask key, masked payload).
        self.pieces: list[bytes] = []
        #: PING and PONG frames, to go out before :attr:`pieces` (``None`` while there are
        #: none: no list per idle connection).
        self.urgent: list[bytes] | None = None
        #: The number of bytes in :attr:`pieces` and :attr:`urgent`.
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
        """Queue a data message (TEXT or BINARY): one frame, or frames of ``max_frame_size``
        for a bigger one; compressed (RSV1 set) when ``compress`` and permessage-deflate was
        negotiated."""
        self.messages += 1
        size = len(payload)
        self.payload_bytes += size
        deflate = self._deflate
        rsv1 = compress and deflate is not None
        wire = deflate.compress(payload) if deflate is not None and rsv1 else payload
        limit = self.max_frame_size
        split = limit and len(wire) > limit
        if self.trace is not None:
            self.trace.append((">", opcode, not split, rsv1, size, bytes(payload[:PREVIEW])))
        if split:
            self._frames(opcode, wire, rsv1, True, True)
        else:
            self.size += build_frame(self.pieces, opcode, wire, rsv1, self._mask_source)

    def _frames(
        self,
        opcode: int,
        payload: bytes | bytearray | memoryview,
        rsv1: bool,
        first: bool,
        last: bool,
    ) -> None:
        """Queue ``payload`` as frames of at most ``max_frame_size`` bytes: ``opcode`` and
        ``rsv1`` on the first if ``first`` (else CONTINUATION), FIN on the last if ``last``.
        The caller counted and traced the first."""
        limit = self.max_frame_size
        view = memoryview(payload)
        end = len(view)
        start = 0
        while True:
            stop = min(start + limit, end)
            final = stop == end
            self.size += build_frame(
                self.pieces,
                opcode if first else CONTINUATION,
                view[start:stop],
                rsv1 and first,
                self._mask_source,
                last and final,
            )
            if final:
                return
            first = False
            start = stop
            self.other_frames += 1
            if self.trace is not None:
                size = min(limit, end - stop)
                preview = bytes(view[stop : stop + min(size, PREVIEW)])
                fin = last and stop + size == end
                self.trace.append((">", CONTINUATION, fin, False, size, preview))

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
        limit = self.max_frame_size
        split = limit and len(payload) > limit
        if self.trace is not None:
            flag = compressed and first
            size = min(len(payload), limit) if split else len(payload)
            self.trace.append(
                (">", frame_opcode, last and not split, flag, size, bytes(payload[:PREVIEW]))
            )
        if split:
            self._frames(opcode, payload, compressed, first, last)
        else:
            self.size += build_frame(
                self.pieces, frame_opcode, payload, compressed and first, self._mask_source, last
            )

    def control(self, opcode: int, payload: bytes) -> None:
        """Queue a control frame (PING or PONG) in :attr:`urgent`; the caller checked its
        size."""
        self.other_frames += 1
        if self.trace is not None:
            self.trace.append((">", opcode, True, False, len(payload), payload))
        urgent = self.urgent
        if urgent is None:
            urgent = self.urgent = []
        self.size += build_frame(urgent, opcode, payload, False, self._mask_source)

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
        """Take everything queued as one buffer: :attr:`urgent` first, then the other frames
        oldest first (``b""`` when empty)."""
        out = self.pieces
        if self.urgent is not None:
            out[:0] = self.urgent
            self.urgent = None
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.size = 0
        return data

    def take_urgent(self) -> bytes:
        """Take the PING and PONG frames waiting in :attr:`urgent` as one buffer (``b""``
        when none): the writer puts them at the next boundary between frames."""
        urgent = self.urgent
        if urgent is None:
            return b""
        self.urgent = None
        data = urgent[0] if len(urgent) == 1 else b"".join(urgent)
        self.size -= len(data)
        return data

    def take_pieces(self) -> list[bytes]:
        """Take everything queued as pieces to write in order: :attr:`urgent` first, then the
        other frames oldest first.

        Small frames are joined; a frame of :data:`JOIN_LIMIT` (64 KiB) or more stays on its
        own, so a big message is written as it is instead of copied into one buffer.
        """
        out = self.pieces
        if self.urgent is not None:
            out[:0] = self.urgent
            self.urgent = None
        if len(out) < 2 or self.size < JOIN_LIMIT:
            data = self.take()
            return [data] if data else []
        pieces: list[bytes] = []
        run: list[bytes] = []
        for piece in out:
            if len(piece) >= JOIN_LIMIT:
                if run:
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
