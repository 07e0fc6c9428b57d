"""Pongs never wait behind a big message: ``max_frame_size`` cuts it into frames, the writer
puts a pong after the frame in progress, and ``TCP_NOTSENT_LOWAT`` keeps the kernel from
holding the rest of the message ahead of it.

The slow link is real: a relay on loopback that reads from the client at a fixed rate (with a
small receive buffer, so TCP pushes back) and forwards to the websockets server, which pings
every 200 ms while the client uploads and reports how long each pong took. Without the three
pieces, the pong waits for most of the upload (a 4 MiB message at 2 MiB/s: seconds).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws._transport import limit_unsent

from .servers import open_websockets_server

#: Bytes per second the relay takes from the client.
RATE: Final = 2 * 1024 * 1024
#: The message uploaded: two seconds of the link.
SIZE: Final = 4 * 1024 * 1024
GUARD: Final = 30.0


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream, rate: float) -> None:
    """Copy ``source`` to ``sink``, at most ``rate`` bytes a second (``math.inf``: as fast as
    it comes); close ``sink``'s sending side at EOF."""
    due = trio.current_time()
    try:
        while data := await source.receive_some(16384):
            await sink.send_all(data)
            if rate != math.inf:
                due += len(data) / rate
                await trio.sleep_until(due)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(sink)


@asynccontextmanager
async def open_slow_link(upstream_port: int, rate: float) -> AsyncIterator[int]:
    """A relay to 127.0.0.1:``upstream_port`` that reads what the client sends at ``rate``
    bytes a second (a 16 KiB receive buffer, so the client's kernel feels it at once);
    yields the relay's port."""
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 16384)  # before listen()
    await sock.bind(("127.0.0.1", 0))
    sock.listen()
    listener = trio.SocketListener(sock)

    async def relay(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", upstream_port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, client, server, rate)
            nursery.start_soon(_pump, server, client, math.inf)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, relay, [listener])
        yield sock.getsockname()[1]
        nursery.cancel_scope.cancel()


async def test_every_pong_within_a_second_during_a_4_mib_upload() -> None:
    """The websockets server pings every 200 ms while the client sends 4 MiB over a 2 MiB/s
    link: every pong arrives within a second (in practice about a tenth of one)."""
    message = bytes(range(256)) * (SIZE // 256)
    async with (
        open_websockets_server(compression=False) as server,
        open_slow_link(server.port, RATE) as port,
    ):
        with trio.fail_after(GUARD):
            async with trio_ws.open_ws(f"ws://127.0.0.1:{port}/pings") as ws:
                await ws.send_bytes(message)
                report = json.loads(await ws.receive_str())
    assert report["size"] == SIZE
    latencies = report["latencies"]
    assert len(latencies) >= 5  # about 2 s of pinging at 5 a second
    assert None not in latencies
    assert max(latencies) < 1.0, latencies


async def test_the_kernel_bound_is_set_on_tcp_and_tls_only(
    nursery: trio.Nursery,
) -> None:
    """limit_unsent() sets TCP_NOTSENT_LOWAT on a TCP socket (under TLS too) and says False
    for what has no such bound."""
    if not hasattr(trio.socket, "TCP_NOTSENT_LOWAT"):
        pytest.skip("this system has no TCP_NOTSENT_LOWAT")
    async def idle(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    serve = partial(trio.serve_tcp, idle, 0, host="127.0.0.1")
    listeners = await nursery.start(serve)
    port = listeners[0].socket.getsockname()[1]
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    assert limit_unsent(tcp, 12345)
    option = trio.socket.TCP_NOTSENT_LOWAT
    assert tcp.socket.getsockopt(trio.socket.IPPROTO_TCP, option) == 12345
    tls = trio.SSLStream(tcp, trio_ws._transport.ssl_context(True), server_hostname="x")
    assert limit_unsent(tls, 4096)
    assert tcp.socket.getsockopt(trio.socket.IPPROTO_TCP, option) == 4096
    await tcp.aclose()
    memory, _ = trio.testing.memory_stream_pair()
    assert not limit_unsent(memory, 4096)
    left, right = trio.socket.socketpair()  # Unix sockets have no such option
    with left, right:
        assert not limit_unsent(trio.SocketStream(left), 4096)
