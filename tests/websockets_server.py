"""An independent WebSocket server for the interop tests: the ``websockets`` package on asyncio.

Started as a subprocess by :func:`tests.servers.open_websockets_server`, never imported by the
tests. It binds 127.0.0.1 on a free port, prints ``{"event": "ready", "port": N}`` and then, each
time a connection has fully closed, ``{"event": "closed", "path": ..., "code": ..., ...}`` where
``code`` and ``reason`` are what the *client* sent in its close frame (1006 if it sent none).
One JSON object per line on stdout.

Paths:

* ``/echo`` (and anything not listed below): send every message back unchanged.
* ``/info``: first send a TEXT message with the negotiated subprotocol and extensions as JSON,
  then echo.
* ``/close/<code>``: close at once with ``<code>`` and the reason ``"bye"``.
* ``/send/<n>``: send ``n`` TEXT messages ``"0"``, ``"1"``, ... then close with 1000.
* ``/big/<n>``: send a BINARY message of ``n`` bytes, then echo.
* ``/fragments``: send ``"fragmented"`` as a TEXT message in three frames and ``b"bytes"`` as
  a BINARY message in two, then echo.
* ``/ping``: send a ping with payload ``b"srv"``, wait for its pong, send ``"pong received"``,
  then echo.

* ``/headers``: first send a TEXT message with the request's headers as JSON pairs, then echo.
* ``/pings``: ping every 200 ms until a message arrives, then answer with a TEXT message
  ``{"size": <its length>, "latencies": [<seconds from each ping to its pong>, ...]}``
  (``null`` for a ping unanswered 5 s after the message), then echo.

Options: ``--subprotocol NAME`` (repeatable, in order of preference), ``--no-compression``,
``--certfile PEM --keyfile PEM`` (serve ``wss://``), ``--require-client-cert CA_PEM`` (TLS 1.3
only, and the client must present a certificate from that CA), ``--unix PATH`` (listen on that Unix
socket instead, with ``unix_serve``; the ready record has ``port`` 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from typing import Any

from websockets.asyncio.server import ServerConnection, serve, unix_serve
from websockets.exceptions import ConnectionClosed


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


async def time_pongs(ws: ServerConnection) -> dict[str, Any]:
    """Ping every 200 ms while the client sends a message; how long each pong took."""
    loop = asyncio.get_running_loop()
    latencies: list[float | None] = []

    async def wait_pong(index: int, sent: float, waiter: asyncio.Future[float]) -> None:
        await waiter
        latencies[index] = loop.time() - sent

    async def pinger() -> None:
        while True:
            await asyncio.sleep(0.2)
            latencies.append(None)
            sent = loop.time()
            waiter = await ws.ping()
            waiters.append(asyncio.create_task(wait_pong(len(latencies) - 1, sent, waiter)))

    waiters: list[asyncio.Task[None]] = []
    pinging = asyncio.create_task(pinger())
    message = await ws.recv()
    pinging.cancel()
    if waiters:
        await asyncio.wait(waiters, timeout=5)
    return {"size": len(message), "latencies": latencies}


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    try:
        if path.startswith("/close/"):
            await ws.close(int(path.split("/")[2]), "bye")
        elif path.startswith("/send/"):
            for i in range(int(path.split("/")[2])):
                await ws.send(str(i))
            await ws.close(1000)
        else:
            if path.startswith("/big/"):
                await ws.send(b"x" * int(path.split("/")[2]))
            elif path == "/fragments":
                await ws.send(["frag", "men", "ted"])
                await ws.send([b"by", b"tes"])
            elif path == "/ping":
                await (await ws.ping(b"srv"))
                await ws.send("pong received")
            elif path == "/headers":
                assert ws.request is not None
                await ws.send(json.dumps(list(ws.request.headers.raw_items())))
            elif path == "/pings":
                await ws.send(json.dumps(await time_pongs(ws)))
            elif path == "/info":
                extensions = [ext.name for ext in ws.protocol.extensions]
                await ws.send(json.dumps({"subprotocol": ws.subprotocol, "extensions": extensions}))
            async for message in ws:
                await ws.send(message)
    except ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        emit(event="closed", path=path, code=ws.close_code, reason=ws.close_reason)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subprotocol", action="append", default=[])
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--unix")
    parser.add_argument("--require-client-cert")
    args = parser.parse_args()
    context = None
    if args.certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile, args.keyfile)
        if args.require_client_cert:
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.require_client_cert)
    options: dict[str, Any] = {
        "subprotocols": args.subprotocol or None,
        "compression": None if args.no_compression else "deflate",
        "ssl": context,
        "max_size": None,
        "ping_interval": None,
    }
    if args.unix:
        async with unix_serve(handler, args.unix, **options) as server:
            emit(event="ready", port=0)
            await server.serve_forever()
    else:
        async with serve(handler, "127.0.0.1", 0, **options) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            emit(event="ready", port=port)
            await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
