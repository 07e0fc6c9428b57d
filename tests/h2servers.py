"""HTTP/2 servers for the RFC 8441 tests: hypercorn serving an ASGI app, in this process.

hypercorn (h11 + h2 + wsproto) announces ``SETTINGS_ENABLE_CONNECT_PROTOCOL=1`` and accepts an
extended CONNECT with ``:protocol websocket`` on every HTTP/2 connection: over TLS when ALPN
selects ``h2``, and over cleartext when the client starts with the HTTP/2 preface (h2c with
prior knowledge). ``alpn=("http/1.1",)`` makes it a TLS server that only speaks HTTP/1.1.

The ASGI app, by path:

* ``/echo``: accepts (choosing the first offered subprotocol, if any) and echoes every
  message until the client closes;
* ``/reject``: refuses the WebSocket with ``403`` and a body;
* ``/close/CODE``: accepts, sends ``"bye"`` and closes with ``CODE``;
* ``/flood/N``: accepts and sends ``N`` binary messages of 16 KiB, then echoes;
* ``/headers``: accepts and sends the request headers it saw, as JSON, then echoes.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import h2.events
import h2.exceptions
import trio
from hypercorn.config import Config
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.trio import serve

Scope = dict[str, Any]
Message = dict[str, Any]


async def echo_app(scope: Scope, receive: Any, send: Any) -> None:
    """The ASGI app described in the module docstring."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not here"})
        return
    path: str = scope["path"]
    connect = await receive()
    assert connect["type"] == "websocket.connect"
    if path == "/reject":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"go away"})
        return
    offered: list[str] = scope.get("subprotocols") or []
    accept: Message = {"type": "websocket.accept"}
    if offered:
        accept["subprotocol"] = offered[0]
    await send(accept)
    if path.startswith("/close/"):
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": int(path.rsplit("/", 1)[1])})
        return
    if path.startswith("/flood/"):
        for _ in range(int(path.rsplit("/", 1)[1])):
            await send({"type": "websocket.send", "bytes": b"\x01" * 16384})
    if path == "/headers":
        seen = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        seen["http_version"] = scope["http_version"]
        await send({"type": "websocket.send", "text": json.dumps(seen)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


_handle_events = H2Protocol._handle_events


async def _tolerant_handle_events(self: H2Protocol, events: list[h2.events.Event]) -> None:
    """hypercorn 0.18 forgets a WebSocket's stream as soon as the close handshake is done on
    its side, and a DATA frame on it (the client's answer to the server's close frame, which
    RFC 6455 §5.5.1 requires) raises KeyError and ends the whole HTTP/2 connection; under the
    trio worker it ends the server. The test server drops such DATA (returning its flow-control
    credit), as a server that keeps the stream until the client is done would ignore it."""
    kept = []
    for event in events:
        if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
            with suppress(h2.exceptions.StreamClosedError):
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            continue
        kept.append(event)
    await _handle_events(self, kept)


H2Protocol._handle_events = _tolerant_handle_events  # type: ignore[method-assign]


class Hypercorn:
    """A running hypercorn server."""

    def __init__(self, scheme: str, port: int) -> None:
        self.scheme = scheme
        self.port = port

    def url(self, path: str = "/echo", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


@asynccontextmanager
async def open_hypercorn(
    *,
    cert_file: Path | None = None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    unix_path: Path | None = None,
    ping_interval: float | None = None,
) -> AsyncIterator[Hypercorn]:
    """Serve :func:`echo_app` with hypercorn on 127.0.0.1 (a free port) for the block, or on
    the Unix socket ``unix_path`` (then the port is 0).

    With ``cert_file`` (key and chain in one PEM file) it serves TLS with ``alpn``; without,
    cleartext HTTP/1.1 and h2c with prior knowledge. ``ping_interval``: hypercorn pings every
    WebSocket that often (its ``websocket_ping_interval``).
    """
    config = Config()
    # Port 0: the kernel picks a free port (no race); serve() reports the bound address.
    config.bind = [f"unix:{unix_path}" if unix_path is not None else "127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.1
    config.websocket_ping_interval = ping_interval
    if cert_file is not None:
        config.certfile = str(cert_file)
        config.keyfile = str(cert_file)
        config.alpn_protocols = list(alpn)
    async with trio.open_nursery() as nursery:
        shutdown = trio.Event()
        binds = await nursery.start(
            partial(serve, echo_app, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]
        )
        port = int(binds[0].rsplit(":", 1)[1]) if unix_path is None else 0
        try:
            yield Hypercorn("wss" if cert_file is not None else "ws", port)
        finally:
            nursery.cancel_scope.cancel()


def client_context(ca: Any) -> ssl.SSLContext:
    """A verifying client context that trusts the trustme ``ca``."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx
