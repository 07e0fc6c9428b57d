"""The README's first example runs as written, against the echo server that `trio-ws serve`
runs (here started in the test, on a free port substituted for the example's 8765)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import trio

from trio_ws.testing import open_test_server

README = Path(__file__).parent.parent / "README.md"
#: The URL the example connects to (`trio-ws serve --port 8765`).
EXAMPLE_URL = "ws://127.0.0.1:8765/"


def first_python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match is not None, "the README has no python example"
    return match.group(1)


async def test_the_readme_example_runs_as_written() -> None:
    code = first_python_block(README.read_text(encoding="utf-8"))
    assert EXAMPLE_URL in code
    async with open_test_server() as server:
        with trio.fail_after(20):
            result = await trio.run_process(
                [sys.executable, "-c", code.replace(EXAMPLE_URL, server.url)],
                capture_stdout=True,
                capture_stderr=True,
            )
    assert result.stderr == b""
    assert result.stdout.decode().splitlines() == [
        'text: {"op": "subscribe", "channel": "ticks"}',
        "closed with code 1000 failure: None",
    ]
