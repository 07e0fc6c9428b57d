"""Interop: WebSockets over HTTP/2 with Node's own ``http2`` module (``enableConnectProtocol``).

``tests/node/h2_ws_server.js`` runs Node's HTTP/2 server, over TLS (ALPN h2) and h2c, and
echoes WebSocket frames with a few lines of its own: an HTTP/2 stack and a framing that share
nothing with trio_ws, h2 or wsproto. Skipped where ``node`` is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import pytest
import trio
import trustme

import trio_ws
from trio_ws import WSMsgType, WSServerHandshakeError

from .h2servers import client_context

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

SCRIPT: Final = Path(__file__).parent / "node" / "h2_ws_server.js"
GUARD: Final = 10.0


@asynccontextmanager
async def open_node_h2_server(cert_file: Path | None) -> AsyncIterator[str]:
    """Run the Node server for the block; yields its base URL (``ws://`` or ``wss://``)."""
    cmd = ["node", str(SCRIPT)] + ([str(cert_file)] if cert_file is not None else [])
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(GUARD):
            while not line.endswith(b"\n"):
                data = await process.stdout.receive_some(1024)
                if not data:
                    raise RuntimeError(f"the Node server did not start: {line!r}")
                line += data
        port = json.loads(line)["port"]
        scheme = "wss" if cert_file is not None else "ws"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nodeh2") / "localhost.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.fixture(params=["tls", "h2c"])
async def node(
    request: pytest.FixtureRequest, cert_file: Path, ca: trustme.CA
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The Node server's base URL and the client's TLS options for it."""
    tls = request.param == "tls"
    async with open_node_h2_server(cert_file if tls else None) as url:
        options = {"ssl": client_context(ca), "server_hostname": "localhost"} if tls else {}
        yield url, options


async def test_echo_with_node(node: tuple[str, dict[str, Any]]) -> None:
    """Text, binary (large: flow control both ways), a fragmented send and a ping echo with
    Node; the close handshake completes with our code."""
    url, options = node
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(f"{url}/echo", http2="require", **options) as ws:
            assert ws.get_extra_info("http_version") == "2"
            await ws.send_str("héllo")
            assert await ws.receive_str() == "héllo"
            await ws.send_bytes(b"\x07" * 1_000_000)
            assert await ws.receive_bytes() == b"\x07" * 1_000_000
            assert await ws.ping(b"p") >= 0
            await ws.close(code=4002)
    assert ws.close_code == 4002


async def test_session_with_node(node: tuple[str, dict[str, Any]]) -> None:
    """Twenty WebSockets on one session with Node, concurrently, with a subprotocol."""
    url, options = node
    with trio.fail_after(GUARD):
        async with trio_ws.open_session(url, http2="require", **options) as session:

            async def one(i: int) -> None:
                async with session.open_ws(f"/ws/{i}", protocols=["p1"]) as ws:
                    assert ws.protocol == "p1"
                    await ws.send_str(str(i))
                    assert await ws.receive_str() == str(i)

            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(one, i)


async def test_node_refusal(node: tuple[str, dict[str, Any]]) -> None:
    """Node's 403 is a WSServerHandshakeError with its status and body."""
    url, options = node
    with trio.fail_after(GUARD), pytest.raises(WSServerHandshakeError) as info:
        async with trio_ws.open_ws(f"{url}/reject", http2=True, **options):
            pass
    assert (info.value.status, info.value.body) == (403, b"no entry")


async def test_close_when_node_ends_the_stream(node: tuple[str, dict[str, Any]]) -> None:
    """Node answers our close frame and ends the stream (END_STREAM): close() returns True
    promptly, and receive() then gives CLOSED."""
    url, options = node
    with trio.fail_after(GUARD):
        async with trio_ws.open_ws(f"{url}/echo", http2="require", **options) as ws:
            start = trio.current_time()
            assert await ws.close() is True
            assert trio.current_time() - start < 5.0
            assert (await ws.receive()).type is WSMsgType.CLOSED
    assert ws.close_code == 1000
