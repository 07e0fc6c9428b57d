"""Loopback servers for the tests: hand-made misbehaving peers and an independent real server.

* :func:`open_raw_server` runs ``handler(stream)`` for each TCP connection on 127.0.0.1; the
  handler drives the bytes itself, usually through :class:`RawPeer` (read the upgrade request,
  answer it, send frames built with :func:`frame`, read and unmask the client's frames). That is
  how a test scripts a server that breaks the protocol on purpose, which no real server does.
* :func:`open_websockets_server` runs ``tests/websockets_server.py`` (the ``websockets``
  package on asyncio) in a subprocess: a peer that shares no code with trio_ws or wsproto. It
  reports the close code each connection received, so tests can assert what the client sent.

Both leave their ``async with`` with the body's exception unchanged, not wrapped in an
``ExceptionGroup``, and stop everything they started (the subprocess is killed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio
from wsproto.utilities import generate_accept_token

__all__ = [
    "Frame",
    "RawPeer",
    "Request",
    "WebsocketsServer",
    "close_payload",
    "frame",
    "open_raw_server",
    "open_websockets_server",
    "refused_port",
]

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

#: Bound on waiting for the subprocess to say it is listening.
READY_TIMEOUT: Final = 10.0
SCRIPT: Final = Path(__file__).with_name("websockets_server.py")


@contextmanager
def _unwrap_single() -> Iterator[None]:
    """Let a lone exception out of a nursery as itself, with its cause and context untouched."""
    inner: BaseException | None = None
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        inner = group.exceptions[0]
    if inner is not None:
        raise inner  # outside the except block, so Python does not touch __context__


# --------------------------------------------------------------------------------------------
# frames


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = False,
    mask_key: bytes = b"\x37\xfa\x21\x3d",
) -> bytes:
    """One WebSocket frame, exactly as told (``rsv`` is the 3-bit RSV1..RSV3 field)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if masked:
        head += mask_key
        payload = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame."""
    return struct.pack("!H", code) + reason.encode("utf-8")


@attrs.frozen
class Frame:
    """A frame read from the client, unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The code of a close frame (``None`` if it has none)."""
        assert self.opcode == OP_CLOSE, self
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        assert self.opcode == OP_CLOSE, self
        return self.payload[2:].decode("utf-8")


@attrs.frozen
class Request:
    """The client's upgrade request."""

    request_line: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None

    @property
    def accept_token(self) -> str:
        """The correct ``Sec-WebSocket-Accept`` for this request."""
        key = self.header("Sec-WebSocket-Key")
        assert key is not None, self
        return generate_accept_token(key.encode("ascii")).decode("ascii")


# --------------------------------------------------------------------------------------------
# raw server


class RawPeer:
    """The server end of one TCP connection, driven byte by byte by a test's handler."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = bytearray()
        self.eof = False
        #: The client reset the connection instead of closing it cleanly.
        self.reset = False
        self.request: Request | None = None

    async def _fill(self) -> bool:
        """Read more bytes into the buffer; ``False`` at end of input."""
        if self.eof:
            return False
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
            self.reset = True
        if not data:
            self.eof = True
            return False
        self._buffer += data
        return True

    async def _read_exactly(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            if not await self._fill():
                return None
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def read_request(self) -> Request:
        """Read the upgrade request head (up to the blank line)."""
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if not await self._fill():
                raise AssertionError(f"EOF before the end of the request: {self._buffer!r}")
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        pairs = (line.partition(":") for line in lines[1:])
        headers = [(name.strip(), value.strip()) for name, _, value in pairs]
        self.request = Request(lines[0], headers)
        return self.request

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def accept(
        self,
        *,
        accept: str | None = None,
        upgrade: str | None = "websocket",
        connection: str | None = "Upgrade",
        headers: Iterable[tuple[str, str]] = (),
        then: bytes = b"",
    ) -> Request:
        """Read the request and answer 101; each standard header can be changed or left out
        (``None``). ``then`` is sent in the same write as the response."""
        request = await self.read_request()
        lines = ["HTTP/1.1 101 Switching Protocols"]
        if upgrade is not None:
            lines.append(f"Upgrade: {upgrade}")
        if connection is not None:
            lines.append(f"Connection: {connection}")
        lines.append(f"Sec-WebSocket-Accept: {accept or request.accept_token}")
        lines += [f"{name}: {value}" for name, value in headers]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + then)
        return request

    async def read_frame(self) -> Frame | None:
        """The client's next frame, unmasked; ``None`` at end of input."""
        head = await self._read_exactly(2)
        if head is None:
            return None
        n = head[1] & 0x7F
        if n == 126:
            ext = await self._read_exactly(2)
            assert ext is not None
            n = struct.unpack("!H", ext)[0]
        elif n == 127:
            ext = await self._read_exactly(8)
            assert ext is not None
            n = struct.unpack("!Q", ext)[0]
        masked = bool(head[1] & 0x80)
        key = await self._read_exactly(4) if masked else b"\0\0\0\0"
        payload = await self._read_exactly(n)
        assert key is not None, "EOF inside a frame"
        assert payload is not None, "EOF inside a frame"
        return Frame(
            fin=bool(head[0] & 0x80),
            rsv=(head[0] >> 4) & 0x7,
            opcode=head[0] & 0xF,
            masked=masked,
            payload=bytes(b ^ key[i % 4] for i, b in enumerate(payload)),
        )

    async def read_close(self) -> Frame | None:
        """Skip data frames until the client's close frame; ``None`` if EOF came first."""
        while (f := await self.read_frame()) is not None:
            if f.opcode == OP_CLOSE:
                return f
        return None

    async def wait_eof(self) -> bytes:
        """Read until the client closes TCP; return what arrived meanwhile."""
        while await self._fill():
            pass
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


Handler = Callable[[trio.SocketStream], Awaitable[object]]


@asynccontextmanager
async def open_raw_server(handler: Handler) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1 and yield the port; stop serving on exit.

    Each connection's stream is closed when its handler returns. An exception in a handler
    cancels the body and is raised from the ``async with``.
    """
    with _unwrap_single():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
            yield listeners[0].socket.getsockname()[1]
            nursery.cancel_scope.cancel()


def refused_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but never listening, then closed: nobody answers
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# the websockets server, in a subprocess


class WebsocketsServer:
    """A running ``tests/websockets_server.py``."""

    def __init__(self, process: trio.Process, scheme: str) -> None:
        self.process = process
        self.scheme = scheme
        self.port = 0
        #: Every record the server printed, in order.
        self.records: list[dict[str, Any]] = []
        self._changed = trio.Event()
        self._buffer = bytearray()

    def url(self, path: str = "/echo", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def _next_record(self) -> dict[str, Any] | None:
        assert self.process.stdout is not None
        while (end := self._buffer.find(b"\n")) < 0:
            data = await self.process.stdout.receive_some(65536)
            if not data:
                return None
            self._buffer += data
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        record: dict[str, Any] = json.loads(line)
        return record

    async def _wait_ready(self) -> None:
        record = await self._next_record()
        if record is None or record.get("event") != "ready":
            raise RuntimeError(f"the websockets server did not start: {record!r}")
        self.port = record["port"]

    async def _read_records(self) -> None:
        while (record := await self._next_record()) is not None:
            self.records.append(record)
            self._changed.set()
            self._changed = trio.Event()

    async def closed(self, path: str) -> dict[str, Any]:
        """Wait until a connection to ``path`` has closed; its record (``code``, ``reason``)."""
        while True:
            for record in self.records:
                if record["event"] == "closed" and record["path"] == path:
                    return record
            await self._changed.wait()


@asynccontextmanager
async def open_websockets_server(
    *,
    subprotocols: Iterable[str] = (),
    compression: bool = True,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    unix_path: str | Path | None = None,
    require_client_cert: str | Path | None = None,
) -> AsyncIterator[WebsocketsServer]:
    """Run the ``websockets`` server in a subprocess for the duration of the block.

    Waits (bounded by :data:`READY_TIMEOUT`) until it listens; kills it on exit.
    """
    cmd = [sys.executable, "-u", str(SCRIPT)]
    for name in subprotocols:
        cmd += ["--subprotocol", name]
    if not compression:
        cmd.append("--no-compression")
    if certfile is not None:
        cmd += ["--certfile", str(certfile), "--keyfile", str(keyfile or certfile)]
    if unix_path is not None:
        cmd += ["--unix", str(unix_path)]
    if require_client_cert is not None:
        cmd += ["--require-client-cert", str(require_client_cert)]
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
    try:
        server = WebsocketsServer(process, "wss" if certfile is not None else "ws")
        with trio.fail_after(READY_TIMEOUT):
            await server._wait_ready()
        with _unwrap_single():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server._read_records)
                yield server
                nursery.cancel_scope.cancel()
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()


# --------------------------------------------------------------------------------------------
# Node's ws server, in a subprocess (where Node and the ws package are installed)

NODE_SCRIPT: Final = Path(__file__).parent / "node" / "ws_server.js"


def node_modules() -> Path | None:
    """Where the ``ws`` package is: ``$TRIO_WS_NODE_MODULES``, the cache ``.ci/run`` installs
    it into, or ``tests/node/node_modules``; ``None`` if nowhere (or no ``node``)."""
    if shutil.which("node") is None:
        return None
    candidates = [
        os.environ.get("TRIO_WS_NODE_MODULES"),
        Path.home() / ".cache" / "trio-ws-node" / "node_modules",
        Path(__file__).parent / "node" / "node_modules",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "ws" / "package.json").is_file():
            return Path(candidate)
    return None


@asynccontextmanager
async def open_node_ws_server(
    *, server_max_window_bits: int | None = None
) -> AsyncIterator[WebsocketsServer]:
    """Run ``tests/node/ws_server.js`` for the duration of the block (skip the test if Node
    or its ws package is missing: ``.ci/run`` installs it)."""
    modules = node_modules()
    if modules is None:
        pytest.skip("Node.js with the ws package is not installed (.ci/run installs it)")
    cmd = ["node", str(NODE_SCRIPT)]
    if server_max_window_bits is not None:
        cmd += ["--server-max-window-bits", str(server_max_window_bits)]
    env = dict(os.environ, NODE_PATH=str(modules))
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, env=env)
    try:
        server = WebsocketsServer(process, "ws")
        with trio.fail_after(READY_TIMEOUT):
            await server._wait_ready()
        yield server
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()
