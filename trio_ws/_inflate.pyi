from collections.abc import Callable

ZLIB_VERSION: str

class Inflater:
    max_msg_size: int
    def __init__(
        self,
        wbits: int,
        no_context_takeover: bool,
        max_msg_size: int,
        violation: Callable[[int, str], Exception],
        invalid_code: int,
        too_big_code: int,
    ) -> None: ...
    @property
    def inflated(self) -> int: ...
    def inflate(
        self, data: bytes | bytearray | memoryview, *, with_tail: bool = False
    ) -> bytes: ...
    def end_message(self) -> bytes: ...
    def inflate_message(self, payload: bytes | bytearray | memoryview) -> bytes: ...
    def reset_message(self) -> None: ...
    def __call__(self, payload: bytes | bytearray | memoryview, /) -> bytes: ...
