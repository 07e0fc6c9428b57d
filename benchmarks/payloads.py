"""The messages the benchmarks exchange, built the same way by the server and the clients."""

from __future__ import annotations

import json
import random
from typing import Final

#: W1's message: 16 bytes of ASCII text.
TEXT16: Final = "0123456789abcdef"

#: How many distinct JSON documents the server cycles through (W6). Distinct, so that the
#: compressor sees changing numbers as in a real feed, not one message repeated.
JSON_VARIETY: Final = 64


def binary(size: int) -> bytes:
    """``size`` bytes that are not all alike (a repeated 251-byte ramp)."""
    ramp = bytes(range(251))
    return (ramp * (size // len(ramp) + 1))[:size]


def text(size: int) -> str:
    """``size`` characters of ASCII text, so also ``size`` bytes in UTF-8."""
    return "".join(chr(0x20 + b % 95) for b in binary(size))


def json_documents(size: int, count: int = JSON_VARIETY) -> list[str]:
    """``count`` market-data-like JSON documents of exactly ``size`` ASCII bytes each.

    Each is an order-book update with random prices and sizes (fixed seed), padded with a
    ``"pad"`` field to the exact size, so a client can check the bytes it received.
    """
    rng = random.Random(6455)
    docs = []
    for seq in range(count):
        levels: list[list[float]] = []
        body: dict[str, object] = {"type": "book", "symbol": "BTC-USD", "seq": seq, "pad": ""}
        while True:
            body["bids"] = levels[0::2]
            body["asks"] = levels[1::2]
            encoded = json.dumps(body, separators=(",", ":"))
            if len(encoded) + 40 > size:
                break
            price = round(60_000 + rng.uniform(-500, 500), 2)
            levels.append([price, round(rng.uniform(0.001, 5), 4)])
        body["pad"] = "x" * max(0, size - len(encoded))
        encoded = json.dumps(body, separators=(",", ":"))
        if len(encoded) != size:
            raise ValueError(f"a JSON document of {size} bytes cannot be built")
        docs.append(encoded)
    return docs
