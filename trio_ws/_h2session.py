"""One HTTP/2 connection carrying WebSockets (RFC 8441): the session.

Theory of operation
-------------------

An :class:`H2Session` owns one byte stream (TCP, or TLS where ALPN chose ``h2``), one
``h2.connection.H2Connection`` (python-hyper's sans-I/O HTTP/2: frames, HPACK, flow-control
bookkeeping; we write no framing of our own) and two tasks (three with a heartbeat), run by
:meth:`H2Session.run`:

* **the reader**, the only caller of ``receive_some`` on the socket: it feeds h2 and hands
  each event to its stream (headers, DATA, END_STREAM, RST_STREAM), or to the session
  (SETTINGS, WINDOW_UPDATE, GOAWAY);
* **the writer**, the only caller of ``send_all`` on the socket: it sends what h2 has queued
  (``data_to_send()``) whenever anyone queued something. Everybody else only queues frames
  into h2, synchronously, and wakes it: nothing but the writer ever waits on the socket, so a
  cancelled WebSocket send can never cut a frame of the shared connection in half;
* **the heartbeat** (with ``heartbeat=H``): a PING after H seconds without a byte from the
  server; nothing within H/2 fails the session with ``ServerTimeoutError``.

Each WebSocket runs on one HTTP/2 stream, presented to the connection layer as a
``trio.abc.Stream`` (:class:`~trio_ws._h2stream.H2Stream`, in its own module), so
:class:`~trio_ws.ClientWebSocket`, its reader and heartbeat tasks and the protocol core run on
it unchanged:

* ``send_all`` queues DATA within the stream's and the connection's send windows, waiting for
  the server's WINDOW_UPDATE when they are spent, then waits while the writer's backlog is
  above :data:`WRITE_HIGH` (backpressure from the socket);
* ``receive_some`` takes buffered DATA. **Flow control per WebSocket**: the stream's window is
  given back (WINDOW_UPDATE on the stream) only as the application consumes the data, so a
  WebSocket whose application stops reading stops its server after :data:`STREAM_WINDOW` bytes;
  the *connection's* window is given back as DATA arrives (what is buffered is already bounded
  by the streams' windows), so one stalled WebSocket never stalls the others;
* ``receive_some`` gives EOF once both close frames have passed (:mod:`._closewatch`): no
  TIME_WAIT to spare anyone on a stream, and servers need not END_STREAM after answering;
* ``aclose`` ends the stream with END_STREAM when the server has ended its side,
  RST_STREAM (NO_ERROR) after a close handshake it has not, RST_STREAM (CANCEL) otherwise. It
  never waits.

Failures: a stream reset by the server breaks that stream only (its ``receive_some`` and
``send_all`` raise ``trio.BrokenResourceError``, so its WebSocket closes with 1006 and the
cause); a GOAWAY, a broken socket, an HTTP/2 protocol error, a failed heartbeat or the
session's end break every stream with the cause. (RFC 9113 §6.8 would let the streams a
GOAWAY without error covers finish, but h2 sends no frame after receiving one.) Opening a
stream waits while ``SETTINGS_MAX_CONCURRENT_STREAMS`` streams are open (the caller bounds it
with its connect deadline).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, final

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import trio

from ._errors import ServerTimeoutError, WSConnectionError, WSError
from ._h2stream import READ_SIZE, STREAM_WINDOW, H2Stream

__all__ = ["READ_SIZE", "STREAM_WINDOW", "WRITE_HIGH", "H2Session", "H2Stream"]

#: Our receive window for the whole connection.
CONNECTION_WINDOW: Final = 16 * 1024 * 1024
#: Bytes queued for the socket above which a WebSocket's send waits for the writer.
WRITE_HIGH: Final = 256 * 1024
#: HTTP/2's default initial window (RFC 9113 §6.9.2).
_DEFAULT_WINDOW: Final = 65535


@final
class H2Session:
    """One HTTP/2 client connection and its WebSocket streams (see the module docstring).

    Args:
        stream: the connected byte stream (TLS with ALPN ``h2``, or TCP for h2c).
        where: the server, for messages.
        single: end the session (GOAWAY, close the socket) when its last stream closes (a
            session made for one ``open_ws(url, http2=True)``).
        heartbeat: after this many seconds without a byte from the server, send a PING; if
            nothing arrives within half of it, the session fails with
            :exc:`ServerTimeoutError` (every stream breaks with it). ``None``: no PING.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        where: str,
        single: bool = False,
        heartbeat: float | None = None,
    ) -> None:
        self.stream = stream
        self.where = where
        #: End the session when its last stream closes (``single``); the connect phase turns
        #: it off while it follows a redirect on the same session.
        self.single = single
        self._heartbeat = heartbeat
        self._last_rx = trio.current_time()
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        conn = self._h2 = h2.connection.H2Connection(config=config)
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            },
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self._streams: dict[int, H2Stream] = {}
        self._settings = trio.Event()
        self._changed = trio.Event()
        self._wakeup = trio.Event()
        self._drained = trio.Event()
        self._queued = 0  # bytes given to h2 since the writer last took its buffer
        self._in_flight = 0  # bytes of the writer's current send_all
        self._unacked = 0  # connection-level bytes received, window not yet given back
        self._failure: BaseException | None = None
        self._goaway = False
        self._stopping = False
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self._pings: dict[bytes, trio.Event] = {}  # opaque data -> set by its PING ACK
        self._ping_serial = 0

    # --- state --------------------------------------------------------------------------------

    @property
    def failure(self) -> BaseException | None:
        """Why the session ended, if it did."""
        return self._failure

    @property
    def usable(self) -> bool:
        """New streams may be opened."""
        return self._failure is None and not self._goaway and not self._stopping

    @property
    def owners(self) -> list[object]:
        """What runs on the open streams (their WebSockets)."""
        return [s.owner for s in self._streams.values() if s.owner is not None]

    # --- the tasks ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the reader and the writer until the session ends; then close the socket and
        break the streams still open. Cancellation ends the session the same way."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guarded, self._reader_task)
                    nursery.start_soon(self._guarded, self._writer_task)
                    if self._heartbeat is not None:
                        nursery.start_soon(self._guarded, self._heartbeat_task)
        finally:
            self._fail(WSConnectionError(f"the HTTP/2 session with {self.where} was closed"))
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)
            self._done.set()

    async def _guarded(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run ``task``; a bug in it ends the session (every stream breaks with it) instead of
        raising into the nursery, which may be the application's."""
        try:
            await task()
        except Exception as exc:
            bug = WSError(f"internal error in the trio_ws HTTP/2 session: {exc!r}")
            bug.__cause__ = exc
            self._fail(bug)

    def _broke(self, exc: trio.BrokenResourceError | trio.ClosedResourceError) -> None:
        """The socket failed under the reader or the writer: every stream breaks with it."""
        error = WSConnectionError(f"the HTTP/2 connection to {self.where} broke: {exc}")
        error.__cause__ = exc
        self._fail(error)

    async def _reader_task(self) -> None:
        conn = self._h2
        try:
            while True:
                data = await self.stream.receive_some(READ_SIZE)
                self._last_rx = trio.current_time()
                if not data:
                    self._fail(WSConnectionError(f"{self.where} closed the HTTP/2 connection"))
                    return
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    # h2 queued a GOAWAY with the error's code; the writer may still send it.
                    error = WSConnectionError(f"HTTP/2 protocol error from {self.where}: {exc}")
                    error.__cause__ = exc
                    self._stop_after(error)
                    return
                for event in events:
                    self._event(event)
                self._wake_writer()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._broke(exc)

    async def _writer_task(self) -> None:
        conn = self._h2
        try:
            while True:
                data = conn.data_to_send()
                if data:
                    self._in_flight = len(data)
                    self._queued = 0
                    await self.stream.send_all(data)
                    self._in_flight = 0
                    self._drained.set()
                    self._drained = trio.Event()
                    continue
                if self._stopping:
                    self._scope.cancel()  # everything is out: the reader may stop too
                    return
                await self._wakeup.wait()
                self._wakeup = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._broke(exc)

    async def _heartbeat_task(self) -> None:
        """PING after ``heartbeat`` seconds of silence; fail if nothing arrives within half
        of it (any byte counts: a busy connection needs no PING)."""
        interval = self._heartbeat
        assert interval is not None
        while True:
            await trio.sleep_until(self._last_rx + interval)
            if trio.current_time() < self._last_rx + interval:
                continue  # bytes arrived meanwhile
            sent = trio.current_time()
            self._ping_serial += 1
            self._h2.ping(self._ping_serial.to_bytes(8, "big"))
            self._wake_writer()
            await trio.sleep_until(sent + interval / 2)
            if self._last_rx < sent:
                self._fail(
                    ServerTimeoutError(
                        f"no data from {self.where} within {interval / 2} s after an HTTP/2 PING"
                    )
                )
                return

    def _event(self, event: h2.events.Event) -> None:
        # A stream's events only come while we track it: we stop tracking a stream when h2
        # closes it (its reset, our END_STREAM or RST_STREAM, after which h2 reports nothing
        # on it) or when the session ends (after our GOAWAY h2 reports nothing, after the
        # server's it refuses every frame). The ``is not None`` checks guard against a
        # disagreement with h2 (a KeyError would end the session); no test reaches them.
        streams = self._streams
        if isinstance(event, h2.events.DataReceived):
            # The connection's window goes back at once: what is buffered is bounded by the
            # streams' windows, and a stalled stream must not starve the others.
            self._unacked += event.flow_controlled_length
            if self._unacked >= CONNECTION_WINDOW // 4:
                self._h2.increment_flow_control_window(self._unacked)
                self._unacked = 0
            stream = streams.get(event.stream_id)
            if stream is not None:
                stream._data(event.data, event.flow_controlled_length)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = streams.get(event.stream_id)
            if stream is not None:
                stream._headers(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream = streams.get(event.stream_id)
            if stream is not None:
                stream._end()
        elif isinstance(event, h2.events.StreamReset):
            stream = streams.pop(event.stream_id, None)
            if stream is not None:
                code = _code_name(event.error_code)
                stream._break(WSConnectionError(f"the server reset the stream ({code})"))
                self._notify()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway_received(event)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings.set()
            self._notify()
        elif isinstance(event, h2.events.WindowUpdated):
            self._notify()
        elif isinstance(event, h2.events.PingAckReceived):
            waiter = self._pings.pop(event.ping_data, None)
            if waiter is not None:
                waiter.set()

    def _goaway_received(self, event: h2.events.ConnectionTerminated) -> None:
        # RFC 9113 §6.8 would let the streams up to last_stream_id finish after a GOAWAY
        # without error, but h2 closes its connection state on any GOAWAY received (no frame
        # can be sent after it): every stream breaks, with the GOAWAY as the cause.
        self._goaway = True
        code = _code_name(event.error_code)
        extra = f": {event.additional_data[:200]!r}" if event.additional_data else ""
        self._fail(WSConnectionError(f"{self.where} sent GOAWAY ({code}){extra}"))

    # --- used by the streams and the opener ----------------------------------------------------

    def _wake_writer(self) -> None:
        self._wakeup.set()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    async def _wait_drained(self) -> None:
        while self._failure is None and self._queued + self._in_flight > WRITE_HIGH:
            await self._drained.wait()
        await trio.lowlevel.checkpoint()

    def _send_window(self, stream_id: int) -> int:
        conn = self._h2
        return min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)

    def _send_data(self, stream_id: int, data: bytes) -> None:
        self._h2.send_data(stream_id, data)
        self._queued += len(data)
        self._wake_writer()

    def _broken_by(self, exc: h2.exceptions.ProtocolError) -> WSConnectionError:
        """h2 refused to send: the stream or the connection is closed on its side.

        A guard, not a path any test reaches: h2 closes a stream or the connection only on
        an event the reader handles at once (the stream breaks, or the session fails), so a
        stream we think sendable is open in h2."""
        error = WSConnectionError(f"HTTP/2 refused to send to {self.where}: {exc}")
        error.__cause__ = exc
        return error

    def _window_update(self, stream_id: int, size: int) -> None:
        try:
            self._h2.increment_flow_control_window(size, stream_id=stream_id)
        except h2.exceptions.ProtocolError:
            # A guard: the stream gives credit back only while the server has not ended it and
            # it is not broken, and h2 keeps such a stream open.
            return
        self._wake_writer()

    def _closed_stream(self, stream: H2Stream) -> None:
        """``stream.aclose()``. RFC 8441 §5.1: an orderly end is END_STREAM, an abort
        RST_STREAM (CANCEL). After the server ended its side, END_STREAM closes the stream.
        After a close handshake the server has not followed with END_STREAM, the WebSocket
        is over but the stream is not: RST_STREAM (NO_ERROR) closes it on both sides and frees
        its slot (RFC 9113 §8.1 lets either side end a stream so). Not END_STREAM there:
        hypercorn 0.18 forgets the stream once it answered our close frame, and DATA on it,
        even an empty END_STREAM, then ends its whole connection."""
        stream_id = stream.stream_id
        if self._streams.get(stream_id) is stream and self._failure is None:
            conn = self._h2
            try:
                if stream.ended:
                    conn.end_stream(stream_id)
                elif stream.finished:
                    conn.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
                else:
                    conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError:
                # A guard: a stream we still track with the session alive is open in h2 (see
                # _event), and both frames are allowed on an open or half-closed stream.
                pass
            self._wake_writer()
        self._streams.pop(stream_id, None)
        self._notify()
        if self.single and not self._streams:
            self.stop()

    async def wait_settings(self) -> bool:
        """Wait for the server's first SETTINGS; whether it accepts RFC 8441 WebSockets
        (``SETTINGS_ENABLE_CONNECT_PROTOCOL=1``).

        Raises:
            WSConnectionError: the session failed first (the server may not speak HTTP/2).
        """
        await self._settings.wait()
        if self._failure is not None:
            raise self._failure
        return bool(self._h2.remote_settings.enable_connect_protocol)

    async def open_stream(self, headers: list[tuple[bytes, bytes]]) -> H2Stream:
        """Open a stream with the request ``headers``, once the server allows another
        concurrent stream; the response is read from the stream (:attr:`H2Stream.response`).

        Cancellation: while waiting (for SETTINGS or a free stream) nothing is opened; once
        the request is queued the stream is returned (the caller closes it).

        Raises:
            WSConnectionError: the session failed, or is going away (GOAWAY).
        """
        await self.wait_settings()
        conn = self._h2
        while True:
            if self._failure is not None:  # GOAWAY and stop() set it too
                raise self._failure
            if conn.open_outbound_streams < conn.remote_settings.max_concurrent_streams:
                break
            await self._wait_changed()
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, headers)
        stream = self._streams[stream_id] = H2Stream(self, stream_id)
        self._wake_writer()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return stream

    async def ping(self) -> float:
        """Send an HTTP/2 PING and wait for its ACK; the round trip in seconds.

        Cancellation: the ACK, if it comes later, is ignored; the session is unchanged.

        Raises:
            WSConnectionError: the session failed (before or while waiting).
        """
        if self._failure is not None:
            raise self._failure
        self._ping_serial += 1
        opaque = self._ping_serial.to_bytes(8, "big")
        acked = self._pings[opaque] = trio.Event()
        start = trio.current_time()
        self._h2.ping(opaque)
        self._wake_writer()
        try:
            await acked.wait()
        finally:
            self._pings.pop(opaque, None)
        if self._failure is not None:
            raise self._failure
        return trio.current_time() - start

    # --- ending ---------------------------------------------------------------------------------

    def _end(self, exc: BaseException) -> None:
        """Record the session's end (its first cause wins): every stream breaks with it and
        every waiter wakes."""
        if self._failure is None:
            self._failure = exc
        for stream in self._streams.values():
            stream._break(self._failure)
        self._streams.clear()
        self._settings.set()
        self._drained.set()
        for waiter in self._pings.values():
            waiter.set()
        self._notify()

    def _fail(self, exc: BaseException) -> None:
        """The session is over: every stream breaks with ``exc``, the tasks stop."""
        self._end(exc)
        self._scope.cancel()

    def _stop_after(self, exc: BaseException) -> None:
        """End the session once the writer has sent what is queued (a GOAWAY)."""
        self._end(exc)
        self._stopping = True
        self._wake_writer()

    def abort(self) -> None:
        """End the session at once (the connect phase failed or was cancelled)."""
        self._fail(WSConnectionError(f"the HTTP/2 session with {self.where} was abandoned"))

    def stop(self) -> None:
        """Send GOAWAY and end the session once it is out (streams still open break)."""
        if self._stopping or self._failure is not None:
            return
        self._h2.close_connection()
        self._stop_after(WSConnectionError(f"the HTTP/2 session with {self.where} was closed"))

    async def wait_closed(self) -> None:
        """Wait until :meth:`run` has finished (the socket is closed)."""
        await self._done.wait()


def _code_name(code: h2.errors.ErrorCodes | int | None) -> str:
    if isinstance(code, h2.errors.ErrorCodes):
        return code.name
    return f"error code {code}"
