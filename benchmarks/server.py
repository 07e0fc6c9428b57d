"""The benchmark server: the ``websockets`` package's asyncio server, in its own process.

    python -m benchmarks.server [--port P] [--deflate-port Q] [--no-uvloop]

It binds 127.0.0.1 only, on two ports (0, the default, picks a free one): the first without
compression, the second with permessage-deflate (for W6). When both listen it prints one line,
``{"event": "ready", "port": P, "deflate_port": Q, "pid": ..., "loop": ...}``, and then serves
until it is terminated. It runs on uvloop when that is importable (and not ``--no-uvloop``).

Paths, the same on both ports:

* ``/echo``: send every message back unchanged.
* ``/push?n=N&size=S&type=binary|text|json``: wait for the client's first message, then send N
  messages of S bytes as fast as the connection takes them, then close with 1000. With
  ``&warm=W``, first send W messages after the client's first message, then the N after its
  second one: the client starts its clock before asking for the N, so that nothing it read
  ahead during the warm-up counts as timed work (clients buffer from 16 to 1024 messages
  ahead). ``binary``
  sends BINARY messages, ``text`` and ``json`` TEXT ones; ``json`` cycles through 64 distinct
  JSON documents of exactly S bytes (what W6 compresses). Frames are built once and written in
  batches (see ``_push_prebuilt``), so that pushing costs the server far less than receiving
  costs any client; for that the deflate port compresses each message on its own.

Both directions allow messages of up to 64 MiB, and the server sends no keep-alive pings, so
that nothing but the workload crosses the wire while a client is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode

if __package__ in {None, ""}:  # run as a script: python benchmarks/server.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import payloads

MAX_SIZE: Final = 64 * 1024 * 1024
#: Write buffer high-water mark: large enough that a push rarely waits for ``drain()``.
WRITE_LIMIT: Final = 4 * 1024 * 1024
#: Bytes of pre-built frames the push writes at a time.
BATCH_BYTES: Final = 256 * 1024
#: The deflate port's permessage-deflate: websockets' defaults, except that the server
#: compresses each message on its own (``server_no_context_takeover``, RFC 7692 §7.1.1.1: a
#: server may ask for it even if the client's offer did not). So its frames can be built once
#: (see ``_push_prebuilt``); clients still inflate every message, with a fresh context.
DEFLATE: Final = ServerPerMessageDeflateFactory(
    server_no_context_takeover=True,
    server_max_window_bits=12,
    client_max_window_bits=12,
    compress_settings={"memLevel": 5},
)


async def handler(ws: ServerConnection) -> None:
    """Serve one connection according to its path."""
    assert ws.request is not None
    url = urlsplit(ws.request.path)
    try:
        if url.path == "/push":
            await push(ws, parse_qs(url.query))
        else:
            async for message in ws:
                await ws.send(message)
    except ConnectionClosed:
        pass


async def push(ws: ServerConnection, query: dict[str, list[str]]) -> None:
    """Send ``n`` messages after the client's first one (``warm``, then ``n``), then close."""
    n = int(query.get("n", ["1"])[0])
    size = int(query.get("size", ["64"])[0])
    kind = query.get("type", ["binary"])[0]
    messages: Sequence[str | bytes]
    if kind == "binary":
        messages = [payloads.binary(size)]
    elif kind == "text":
        messages = [payloads.text(size)]
    elif kind == "json":
        messages = payloads.json_documents(size)
    else:
        await ws.close(1008, f"unknown type {kind!r}")
        return
    warm = int(query.get("warm", ["0"])[0])
    for count in (warm, n) if warm else (n,):
        await ws.recv()
        if all(_stateless(ext) for ext in ws.protocol.extensions):
            await _push_prebuilt(ws, messages, count)
        else:  # a frame depends on the ones before it: let websockets build each
            send, variety = ws.send, len(messages)
            for i in range(count):
                await send(messages[i % variety])
    await ws.close(1000)


def _stateless(extension: Extension) -> bool:
    """Whether ``extension`` encodes each message on its own, so a frame can be reused."""
    return isinstance(extension, PerMessageDeflate) and extension.local_no_context_takeover


async def _push_prebuilt(ws: ServerConnection, messages: Sequence[str | bytes], n: int) -> None:
    """Send ``n`` messages cycling through ``messages``, each serialized once, in batches.

    ``send()`` costs the server a few microseconds per message (tens with compression), which
    would cap W3-64 and W6 near the rate of the fastest client: the table would measure the
    server. Here no frame depends on the ones before it (a server does not mask; the deflate
    port compresses each message on its own), so each message's frame is built once with
    websockets' own serializer and extensions, and the frames are written straight to the
    transport in batches of about ``BATCH_BYTES``, waiting on the connection's flow control
    (``drain()``) after each. The close that follows goes through the protocol as usual.
    """
    frames = [
        Frame(
            Opcode.BINARY if isinstance(m, bytes) else Opcode.TEXT,
            m if isinstance(m, bytes) else m.encode(),
        ).serialize(mask=False, extensions=ws.protocol.extensions)
        for m in messages
    ]
    cycle = b"".join(frames)
    cycles_per_batch = max(1, BATCH_BYTES // len(cycle))
    batch, per_batch = cycle * cycles_per_batch, len(frames) * cycles_per_batch
    full, rest = divmod(n, per_batch)
    write, drain = ws.transport.write, ws.drain
    for _ in range(full):
        write(batch)
        await drain()
    write(b"".join(frames[i % len(frames)] for i in range(rest)))
    await drain()


def _raise_fd_limit() -> None:
    """W5 holds a thousand connections or more open at once: allow as many files as we may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve(port: int, deflate: bool) -> Server:
    """A server on ``127.0.0.1:port`` with the settings every benchmark expects."""
    return serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        extensions=[DEFLATE] if deflate else None,
        max_size=MAX_SIZE,
        ping_interval=None,
        write_limit=WRITE_LIMIT,
        # W5 opens 50 handshakes at once: a long accept queue keeps a burst of SYNs from
        # being dropped and retried a second later.
        backlog=1024,
    )


async def serve_forever(port: int, deflate_port: int, loop_name: str) -> None:
    """Listen on both ports, say so on stdout, then serve until the process is terminated."""
    async with _serve(port, False) as plain, _serve(deflate_port, True) as deflate:
        ports = [s.getsockname()[1] for s in (*plain.sockets, *deflate.sockets)]
        ready = {"event": "ready", "port": ports[0], "deflate_port": ports[1]}
        print(json.dumps({**ready, "pid": os.getpid(), "loop": loop_name}), flush=True)
        await asyncio.Future()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="trio_ws benchmark server (loopback only).")
    parser.add_argument("--port", type=int, default=0, help="plain port (default: a free one)")
    parser.add_argument("--deflate-port", type=int, default=0, help="permessage-deflate port")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    run, loop_name = asyncio.run, "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            run, loop_name = uvloop.run, "uvloop"
    run(serve_forever(args.port, args.deflate_port, loop_name))


if __name__ == "__main__":
    main()
