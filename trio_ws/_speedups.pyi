from collections.abc import Callable
from typing import Any

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes, /) -> bytes: ...
def mask_frame(
    head: bytes, data: bytes | bytearray | memoryview, mask: bytes, /
) -> bytes: ...
def scan_messages(
    buf: bytes,
    pos: int,
    out: list[Any],
    inflate: Callable[[bytes], bytes] | None,
    max_msg_size: int,
    msg_type: type[tuple[Any, ...]],
    text_kind: object,
    binary_kind: object,
    /,
) -> tuple[int, int, bytes | None]: ...

inflate_linked: int
