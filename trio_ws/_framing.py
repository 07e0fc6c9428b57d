"""Building client frames (RFC 6455 §5.2, §5.3): header, fresh mask, masked payload. No I/O.

The payload mask is the costly part of sending a big message: XOR with a 4-byte key, byte by
byte. :func:`apply_mask` is the C loop of :mod:`trio_ws._speedups` when that extension was
built at install time (it needs a C compiler, and ``TRIO_WS_NO_EXTENSIONS`` unset), and a
pure-Python fallback otherwise, which does the XOR on Python ints: one C-level operation on
the whole payload, a few microseconds for small messages, about 4 ms per MiB.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Final

__all__ = ["apply_mask", "build_frame", "has_speedups"]

_TWO: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")

_MASKED: Final = 0x80
_FIN: Final = 0x80


def _apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """``data`` XOR ``mask`` repeated (RFC 6455 §5.3), on Python ints."""
    n = len(data)
    if not n:
        return b""
    key = (mask * ((n + 3) >> 2))[:n]
    value = int.from_bytes(data, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(n, "little")


def _load_speedups() -> Callable[[bytes | bytearray | memoryview, bytes], bytes] | None:
    if os.environ.get("TRIO_WS_NO_EXTENSIONS"):
        return None
    try:
        from ._speedups import apply_mask as c_apply_mask
    except ImportError:
        return None
    return c_apply_mask


_c_apply_mask = _load_speedups()
#: Whether the C mask of :mod:`trio_ws._speedups` is in use.
has_speedups: Final = _c_apply_mask is not None
#: ``apply_mask(data, mask) -> bytes``: the payload XOR the 4-byte mask repeated.
apply_mask: Final = _c_apply_mask if _c_apply_mask is not None else _apply_mask_python


def build_frame(
    out: list[bytes], opcode: int, payload: bytes | bytearray | memoryview, rsv1: bool = False
) -> int:
    """Append one final, masked frame with ``opcode`` and ``payload`` to ``out``.

    Returns the number of bytes appended. The mask comes from ``os.urandom`` (a CSPRNG), fresh
    for every frame (RFC 6455 §5.3).
    """
    n = len(payload)
    first = _FIN | opcode | (0x40 if rsv1 else 0)
    if n < 126:
        header = _TWO.pack(first, _MASKED | n)
    elif n < 0x10000:
        header = _MEDIUM.pack(first, _MASKED | 126, n)
    else:
        header = _LONG.pack(first, _MASKED | 127, n)
    mask = os.urandom(4)
    out.append(header + mask)
    if n:
        out.append(apply_mask(payload, mask))
    return len(header) + 4 + n
