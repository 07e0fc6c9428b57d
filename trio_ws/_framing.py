"""The frame codec (RFC 6455 §5): opcodes, header rules, close-code rules, building frames.

Theory of operation
-------------------

Everything here is a rule about one frame, true whatever the connection's state: which
opcodes and reserved bits exist, what a control frame may look like, which close codes may
travel in a close frame, and how a client frame is laid out and masked. What depends on the
state (is a message open? how big is it so far?) lives in :mod:`trio_ws._assembler`, and
the parser that applies both to the bytes read lives in :mod:`trio_ws._protocol`, which
inlines the length decoding because it is the per-frame hot path.

A broken rule is raised as :class:`ProtocolViolation` with the close code that fails the
connection (1002, 1007 or 1009); the core turns it into its failure. A caller's mistake (a
close code it may not send) is :class:`~trio_ws.InvalidArgument` instead.

Sending: :func:`build_frame` appends a masked frame to the outbox, as one piece (header, key
and masked payload in one buffer, so every boundary between pieces is one between frames: the
writer puts a pong there). The payload mask is the
costly part of sending a big message: XOR with a 4-byte key, byte by byte. :func:`apply_mask`
(and :func:`mask_frame`, which writes the header, key and masked payload into one new buffer)
is the C loop of :mod:`trio_ws._speedups` when that extension was built at install time (it
needs a C compiler, and ``TRIO_WS_NO_EXTENSIONS`` unset), and a pure-Python fallback
otherwise, which does the XOR on Python ints: one C-level operation on the whole payload, a
few microseconds for small messages, about 4 ms per MiB. The mask key comes from a function
the caller may replace (tests inject fixed keys); by default it is ``os.urandom``, one call
per frame.

Nothing here does I/O or imports trio.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any, Final

from ._errors import InvalidArgument, WSMessageTypeError

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "INVALID_DATA",
    "MAX_CONTROL_PAYLOAD",
    "MESSAGE_TOO_BIG",
    "NO_STATUS",
    "PING",
    "PONG",
    "PREVIEW",
    "PROTOCOL_ERROR",
    "TEXT",
    "MaskSource",
    "ProtocolViolation",
    "Trace",
    "apply_mask",
    "build_frame",
    "check_close_code",
    "check_header",
    "close_reason",
    "compress_flag",
    "control_payload",
    "frame_opcode",
    "has_speedups",
    "is_valid_close_code",
    "mask_frame",
    "parse_close",
    "scan_messages",
]

# Opcodes (RFC 6455 §5.2). 0x3-0x7 and 0xB-0xF are reserved.
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

#: RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD: Final = 125

#: The close codes a violation fails the connection with (RFC 6455 §7.4.1).
PROTOCOL_ERROR: Final = 1002
INVALID_DATA: Final = 1007
MESSAGE_TOO_BIG: Final = 1009

#: ``mask_source(4) -> bytes``: where mask keys come from.
MaskSource = Callable[[int], bytes]

_TWO: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")

_MASKED: Final = 0x80
_FIN: Final = 0x80


class ProtocolViolation(Exception):
    """The server broke the protocol: ``code`` is the close code to fail the connection with.

    Internal: the core turns it into a :class:`~trio_ws.WSProtocolError`.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# close codes


#: How many payload bytes a :data:`Trace` keeps (for a DEBUG log line).
PREVIEW: Final = 48
#: A frame as the debug log shows it: direction (``"<"`` received, ``">"`` sent), opcode,
#: FIN, RSV1, payload length, the first :data:`PREVIEW` bytes of the payload.
Trace = tuple[str, int, bool, bool, int, bytes]

#: The close code of a close frame without one (RFC 6455 §7.1.5); never sent as a code.
NO_STATUS: Final = 1005


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 §7.4.1, §7.4.2, IANA registry).

    1000-1003 and 1007-1014 are registered; 1004 is reserved; 1005, 1006 and 1015 must never
    be sent; 1016-2999 are reserved for future RFCs; 3000-4999 are for libraries and
    applications.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def check_close_code(code: int) -> None:
    """Raise :class:`~trio_ws.InvalidArgument` unless ``code`` may be sent in a close frame.

    RFC 6455 §7.4.1/§7.4.2: 1000-1003 and 1007-1014 are defined; 1004, 1005, 1006 and 1015
    must never be sent; 3000-4999 are for libraries and applications.
    """
    if not isinstance(code, int) or isinstance(code, bool):
        raise InvalidArgument(f"a close code must be an int, not {type(code).__name__}")
    if not is_valid_close_code(code):
        raise InvalidArgument(f"close code {code} may not be sent (RFC 6455 §7.4)")


def parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of the server's close frame (``payload`` is its whole body).

    Raises:
        ProtocolViolation: a 1-byte body or a code that may not be sent (1002), a reason that
            is not UTF-8 (1007).
    """
    # RFC 6455 §5.5.1: the body, if any, starts with a 2-byte code, then a UTF-8 reason.
    if not payload:
        return NO_STATUS, ""  # RFC 6455 §7.1.5
    if len(payload) == 1:
        raise ProtocolViolation(PROTOCOL_ERROR, "a close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolViolation(
            PROTOCOL_ERROR, f"close code {code} may not be sent (RFC 6455 §7.4)"
        )
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolViolation(INVALID_DATA, f"a close reason that is not UTF-8: {exc}") from None


# ---------------------------------------------------------------------------------------------
# receiving


def close_reason(message: bytes | bytearray | memoryview | str) -> str:
    """``close(message=)`` as text, checked before anything is sent (RFC 6455 §5.5.1: UTF-8,
    and at most 123 bytes so that the code fits in a control frame's 125).

    Raises:
        InvalidArgument: not UTF-8, or too long.
        WSMessageTypeError: neither ``str`` nor bytes-like.
    """
    if isinstance(message, str):
        reason = message
        encoded = control_payload("close reason", message)
    elif isinstance(message, (bytes, bytearray, memoryview)):
        encoded = bytes(message)
        try:
            reason = encoded.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument("a close reason must be UTF-8 (RFC 6455 §5.5.1)") from exc
    else:
        raise WSMessageTypeError(f"a close reason is str or bytes, not {type(message).__name__}")
    if len(encoded) > MAX_CONTROL_PAYLOAD - 2:
        raise InvalidArgument("a close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5)")
    return reason


def control_payload(what: str, message: bytes | bytearray | memoryview | str) -> bytes:
    """A ping, pong or close payload as bytes (``str`` is UTF-8 encoded).

    Raises:
        InvalidArgument: a ``str`` that cannot be encoded (a lone surrogate).
        WSMessageTypeError: neither ``str`` nor bytes-like.
    """
    if isinstance(message, str):
        try:
            return message.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(f"a {what} that cannot be encoded as UTF-8") from exc
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise WSMessageTypeError(f"a {what} payload is bytes or str, not {type(message).__name__}")


_SENDABLE: Final = frozenset({TEXT, BINARY, PING, PONG})


def frame_opcode(opcode: object, data: bytes) -> int:
    """The opcode a caller of ``send_frame`` asked for, checked: TEXT (with a UTF-8 payload),
    BINARY, PING or PONG.

    Raises:
        InvalidArgument: another opcode (close() sends CLOSE), or a TEXT payload that is not
            UTF-8.
    """
    if not isinstance(opcode, int) or isinstance(opcode, bool) or opcode not in _SENDABLE:
        raise InvalidArgument(
            f"send_frame() cannot send opcode {opcode!r}: use TEXT, BINARY, PING or PONG "
            "(close() sends CLOSE)"
        )
    if opcode == TEXT:
        try:
            bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument("a TEXT frame's payload must be UTF-8") from exc
    return int(opcode)


def compress_flag(compress: int | None) -> bool:
    """``send_*(compress=)``: ``None`` follows the negotiation (RSV1 as negotiated), ``0``
    sends this message uncompressed.

    Raises:
        InvalidArgument: any other value.
    """
    if compress is None:
        return True
    if compress == 0:
        return False
    raise InvalidArgument(
        f"compress must be None (as negotiated) or 0 (this message uncompressed), not {compress!r}"
    )


def check_header(b0: int, opcode: int, length: int) -> None:
    """Apply the rules of one frame header that hold whatever the connection's state.

    ``b0`` is the header's first byte (FIN, RSV1-3, opcode), ``length`` the decoded payload
    length. The parser calls this for every frame its fast path does not take; the fast path
    (a final TEXT or BINARY frame) needs none of these checks but RSV, which it makes itself.

    Raises:
        ProtocolViolation: RSV2 or RSV3 set, a reserved opcode, RSV1 on a control or
            CONTINUATION frame, a fragmented control frame, or a control payload over 125
            bytes (all 1002).
    """
    if b0 & 0x30:
        # RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that defines meanings";
        # permessage-deflate defines RSV1 only.
        raise ProtocolViolation(PROTOCOL_ERROR, "RSV2 or RSV3 set (no extension uses them)")
    if BINARY < opcode < CLOSE or opcode > PONG:
        raise ProtocolViolation(PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
    if opcode >= CLOSE:
        if b0 & 0x40:
            # RFC 7692 §6: "An endpoint MUST NOT set the RSV1 bit of control frames".
            raise ProtocolViolation(PROTOCOL_ERROR, "RSV1 set on a control frame")
        if not b0 & 0x80:
            # RFC 6455 §5.5: "Control frames themselves MUST NOT be fragmented."
            raise ProtocolViolation(PROTOCOL_ERROR, "a fragmented control frame")
        if length > MAX_CONTROL_PAYLOAD:
            raise ProtocolViolation(PROTOCOL_ERROR, f"a control frame with a {length}-byte payload")
    elif opcode == CONTINUATION and b0 & 0x40:
        # RFC 7692 §6.1: RSV1 marks a compressed message on its first frame only.
        raise ProtocolViolation(PROTOCOL_ERROR, "RSV1 set on a CONTINUATION frame")


# ---------------------------------------------------------------------------------------------
# sending


def _apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """``data`` XOR ``mask`` repeated (RFC 6455 §5.3), on Python ints."""
    n = len(data)
    if not n:
        return b""
    key = (mask * ((n + 3) >> 2))[:n]
    value = int.from_bytes(data, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(n, "little")


def _mask_frame_python(head: bytes, data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """``head``, ``mask``, then ``data`` XOR ``mask`` repeated, as one buffer."""
    return head + mask + _apply_mask_python(data, mask)


#: ``scan_messages`` of :mod:`trio_ws._speedups` (see there and ``ClientProtocol._parse``).
ScanMessages = Callable[
    [bytes, int, list[Any], Callable[[bytes], bytes] | None, int, type[tuple[Any, ...]], object,
     object],
    tuple[int, int, bytes | None],
]
_Speedups = tuple[
    Callable[[bytes | bytearray | memoryview, bytes], bytes],
    Callable[[bytes, bytes | bytearray | memoryview, bytes], bytes],
    ScanMessages,
]


def _load_speedups() -> _Speedups | None:
    if os.environ.get("TRIO_WS_NO_EXTENSIONS"):
        return None
    try:
        # An extension built from an older source lacks a function: then none is used.
        from ._speedups import apply_mask as c_apply_mask
        from ._speedups import mask_frame as c_mask_frame
        from ._speedups import scan_messages as c_scan_messages
    except ImportError:
        return None
    return c_apply_mask, c_mask_frame, c_scan_messages


_speedups = _load_speedups()
#: Whether the C mask of :mod:`trio_ws._speedups` is in use.
has_speedups: Final = _speedups is not None
#: ``apply_mask(data, mask) -> bytes``: the payload XOR the 4-byte mask repeated.
apply_mask: Final = _speedups[0] if _speedups is not None else _apply_mask_python
#: ``mask_frame(head, data, mask) -> bytes``: ``head + mask + apply_mask(data, mask)`` in one
#: buffer (in C without the intermediate copy).
mask_frame: Final = _speedups[1] if _speedups is not None else _mask_frame_python
#: The parser's common case in C, or ``None`` (the parser then does it in Python).
scan_messages: Final = _speedups[2] if _speedups is not None else None


def build_frame(
    out: list[bytes],
    opcode: int,
    payload: bytes | bytearray | memoryview,
    rsv1: bool = False,
    mask_source: MaskSource = os.urandom,
    fin: bool = True,
) -> int:
    """Append one masked frame with ``opcode`` and ``payload`` to ``out``, as one piece
    (``fin``: the last frame of its message, as every frame is but a fragmented message's).

    RFC 6455 §5.3: the key is "derived from a strong source of entropy", fresh for every
    frame; ``mask_source(4)`` gives it, one call per frame (``os.urandom``, a CSPRNG, unless
    a test injects fixed keys).

    Returns:
        The number of bytes appended.
    """
    n = len(payload)
    first = (_FIN if fin else 0) | opcode | (0x40 if rsv1 else 0)
    if n < 126:
        header = _TWO.pack(first, _MASKED | n)
    elif n < 0x10000:
        header = _MEDIUM.pack(first, _MASKED | 126, n)
    else:
        header = _LONG.pack(first, _MASKED | 127, n)
    mask = mask_source(4)
    out.append(mask_frame(header, payload, mask) if n else header + mask)
    return len(header) + 4 + n
