"""A scripted HTTP/2 server for the fault tests: h2 (server side) on a trio socket.

hypercorn behaves; this one does what a test tells it, when it tells it: answer an extended
CONNECT or not, send WebSocket frames, reset a stream, send GOAWAY, withhold
``SETTINGS_ENABLE_CONNECT_PROTOCOL``, limit concurrent streams, die. A connection that starts
with HTTP/1.1 instead of the HTTP/2 preface is handed to ``http1`` (a
:class:`~tests.servers.RawPeer` handler), so a fallback can be scripted too.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import trio

from .servers import OP_CLOSE, Frame, RawPeer, _unwrap_single, close_payload, frame

__all__ = ["H2Peer", "open_h2_server"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Peer:
    """The server end of one HTTP/2 connection, driven by a test's handler."""

    def __init__(
        self,
        stream: trio.SocketStream,
        *,
        connect_protocol: bool,
        max_streams: int | None,
        window: int | None = None,
    ) -> None:
        self.stream = stream
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        values = {h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(connect_protocol)}
        if max_streams is not None:
            values[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = max_streams
        if window is not None:
            values[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = window
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values=values)
        self.conn.initiate_connection()
        if window is not None:  # the connection's window too
            self.conn.increment_flow_control_window(window)
        self._requests_in, self._requests = trio.open_memory_channel[
            tuple[int, dict[bytes, bytes]]
        ](100)
        self.received: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        #: Streams the client reset, with the error code.
        self.resets: dict[int, int] = {}
        self._changed = trio.Event()
        self.closed = False
        self._lock = trio.Lock()  # the reader task and the test both write
        #: Read and drop everything (a server that hangs: no PING ACK, nothing).
        self.silent = False
        #: PINGs received from the client (h2 acknowledges each).
        self.pings = 0

    async def flush(self) -> None:
        async with self._lock:
            data = self.conn.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def kill(self) -> None:
        """Close the TCP connection at once, without GOAWAY."""
        await trio.aclose_forcefully(self.stream)

    async def run(self) -> None:
        """Read the client's frames until it closes (run in a task)."""
        await self.flush()
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                if self.silent:
                    continue
                for event in self.conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self.received[event.stream_id] = bytearray()
                        self._requests_in.send_nowait((event.stream_id, dict(event.headers)))
                    elif isinstance(event, h2.events.DataReceived):
                        self.received[event.stream_id] += event.data
                        self.conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        self.ended.add(event.stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        self.resets[event.stream_id] = int(event.error_code)
                    elif isinstance(event, h2.events.PingReceived):
                        self.pings += 1
                self._changed.set()
                self._changed = trio.Event()
                await self.flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.closed = True
        self._changed.set()

    async def next_request(self) -> tuple[int, dict[bytes, bytes]]:
        """The next request: its stream id and headers (pseudo-headers included)."""
        return await self._requests.receive()

    async def respond(self, stream_id: int, status: int = 200, body: bytes = b"") -> None:
        self.conn.send_headers(stream_id, [(b":status", str(status).encode())])
        if body or status != 200:
            self.conn.send_data(stream_id, body, end_stream=True)
        await self.flush()

    async def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """DATA frames of at most the client's frame size (the caller keeps to the window)."""
        size = self.conn.max_outbound_frame_size
        pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            self.conn.send_data(stream_id, piece, end_stream=end_stream and last)
        await self.flush()

    async def send_text(self, stream_id: int, text: str) -> None:
        await self.send(stream_id, frame(0x1, text.encode()))

    async def send_close(self, stream_id: int, code: int, end_stream: bool = True) -> None:
        await self.send(stream_id, frame(OP_CLOSE, close_payload(code)), end_stream=end_stream)

    async def reset(self, stream_id: int, code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        self.conn.reset_stream(stream_id, code)
        await self.flush()

    async def goaway(self, code: int = 0, last_stream_id: int | None = None) -> None:
        self.conn.close_connection(code, last_stream_id=last_stream_id)
        await self.flush()

    async def wait(self, done: Callable[[], bool]) -> None:
        while not done():
            await self._changed.wait()

    async def read_frame(self, stream_id: int) -> Frame:
        """The next (masked) WebSocket frame the client sent on the stream."""
        buffer = self.received[stream_id]

        def complete() -> bool:
            if len(buffer) < 2:
                return False
            n = buffer[1] & 0x7F
            start = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            if len(buffer) < start:
                return False
            if n == 126:
                n = struct.unpack("!H", buffer[2:4])[0]
            elif n == 127:
                n = struct.unpack("!Q", buffer[2:10])[0]
            return len(buffer) >= start + 4 + n

        await self.wait(complete)
        n = buffer[1] & 0x7F
        start = 2 + (2 if n == 126 else 8 if n == 127 else 0)
        if n == 126:
            n = struct.unpack("!H", buffer[2:4])[0]
        elif n == 127:
            n = struct.unpack("!Q", buffer[2:10])[0]
        key = buffer[start : start + 4]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(buffer[start + 4 : start + 4 + n]))
        result = Frame(
            fin=bool(buffer[0] & 0x80),
            rsv=(buffer[0] >> 4) & 0x7,
            opcode=buffer[0] & 0xF,
            masked=True,
            payload=payload,
        )
        del buffer[: start + 4 + n]
        return result


H2Handler = Callable[[H2Peer], Awaitable[object]]
H1Handler = Callable[[RawPeer], Awaitable[object]]


@asynccontextmanager
async def open_h2_server(
    handler: H2Handler,
    *,
    connect_protocol: bool = True,
    max_streams: int | None = None,
    http1: H1Handler | None = None,
) -> AsyncIterator[int]:
    """Serve h2c on 127.0.0.1 and yield the port. Each HTTP/2 connection runs ``handler(peer)``
    while the peer reads in the background; a connection that does not start with the
    HTTP/2 preface goes to ``http1`` (or is closed)."""

    async def serve(stream: trio.SocketStream) -> None:
        first = b""
        while len(first) < len(PREFACE) and PREFACE.startswith(first):
            data = await stream.receive_some(len(PREFACE) - len(first))
            if not data:
                return
            first += data
        if first != PREFACE:
            if http1 is not None:
                raw = RawPeer(stream)
                raw._buffer += first
                await http1(raw)
            return
        peer = H2Peer(stream, connect_protocol=connect_protocol, max_streams=max_streams)
        peer.conn.receive_data(first)  # the preface
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.run)
            await handler(peer)
            nursery.cancel_scope.cancel()

    with _unwrap_single():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
            yield listeners[0].socket.getsockname()[1]
            nursery.cancel_scope.cancel()
