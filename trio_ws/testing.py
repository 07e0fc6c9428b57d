"""A small, real WebSocket server for tests: :func:`open_test_server`.

Use it to test code that uses trio_ws (or any WebSocket client) against a real server on the
loopback interface, with no network and no third-party server::

    from trio_ws.testing import open_test_server

    async def test_echo() -> None:
        async with open_test_server() as server, trio_ws.open_ws(server.url) as ws:
            await ws.send_str("hi")
            assert (await ws.receive()).data == "hi"
        assert server.connections[0].received[0].data == "hi"

For tests that need no socket at all — and run heartbeats and timeouts in virtual time under
``MockClock(autojump_threshold=0)`` — :func:`open_memory_pair` connects a real client to a
:class:`ScriptedServer` in memory (``trio_ws._testmemory`` has its docstring).

Theory of operation
-------------------

This is server-side code, independent of the trio_ws client (it only borrows the value types
of ``trio_ws._types``), so a bug in the client cannot hide behind the same bug in the server.
wsproto does the protocol work (the upgrade checks, framing, masking rules, permessage-deflate);
this module only moves bytes and decides policy. It is in two parts: this module listens and
runs the opening handshake; ``trio_ws._testserver_connection`` runs each accepted connection
(:class:`ServerConnection`) after its 101 response, and its docstring continues this one.

* ``open_test_server`` starts :func:`trio.serve_tcp` in a nursery on 127.0.0.1 (or ::1) and
  yields a :class:`TestServer`. Leaving the ``async with`` cancels that nursery: the listener
  closes and every connection is dropped (TCP closed, no close frame). An exception raised in
  the body leaves the ``async with`` as it is, never wrapped in an ``ExceptionGroup``.
* One task per TCP connection: TLS handshake (``wss``), then the HTTP request is parsed with
  h11 so that :class:`HandshakeRequest` records every header exactly as sent, then the request
  goes through wsproto's server handshake (``initiate_upgrade_connection``), which checks it.
  A bad upgrade gets wsproto's 4xx answer, ``reject=`` answers every upgrade with the given
  response, otherwise the server accepts (subprotocol, permessage-deflate). The connection is
  appended to ``TestServer.connections`` *before* the 101 response is sent, so it is there by
  the time the client's connect returns. The whole opening phase is bounded by
  ``HANDSHAKE_TIMEOUT``.
* After the upgrade, the same task runs the connection: a reader task feeds wsproto and logs
  every message in ``ServerConnection.received`` while the handler (yours, or
  :func:`echo_handler`) talks to the client; every byte goes out under one lock. When the
  handler returns the server closes the connection gracefully; when it raises, the connection
  is closed with 1011 and other connections never notice.
* Waits are bounded or tied to the peer: the opening phase by ``HANDSHAKE_TIMEOUT``, the
  closing handshake by ``CLOSE_TIMEOUT``; ``receive()`` and sends wait for the client, and all
  of it ends when the ``async with`` exits.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

import attrs
import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import RemoteProtocolError

from . import _testserver_connection
from ._testmemory import ScriptedServer, open_memory_pair
from ._testserver_connection import (
    RECEIVE_SIZE,
    Handler,
    HandshakeRequest,
    ServerConnection,
    logger,
)
from ._types import WSMsgType

__all__ = [
    "CLOSE_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "HandshakeRequest",
    "ScriptedServer",
    "ServerConnection",
    "TestServer",
    "echo_handler",
    "open_memory_pair",
    "open_test_server",
]

#: Seconds allowed for the TLS handshake plus the HTTP upgrade request of one connection.
HANDSHAKE_TIMEOUT: Final = 10.0
#: Default seconds :meth:`ServerConnection.close` waits for the client's close frame.
CLOSE_TIMEOUT: Final = _testserver_connection.CLOSE_TIMEOUT  # owned there, documented here
#: Largest HTTP upgrade request accepted (bytes); larger ones get 431 from h11.
MAX_REQUEST_SIZE: Final = 64 * 1024


async def echo_handler(conn: ServerConnection) -> None:
    """The default handler: echo TEXT and BINARY, answer pings and the client's close.

    Pings are answered by the server's ``autopong`` (or here, when it is off). A message that
    arrives just before the client's close frame cannot be echoed (wsproto allows no data after
    a close frame) and is dropped. A client that goes away while its message is being echoed
    (reset, or gone before the echo) is not a handler error: the handler just returns. Returns
    when the connection is over.
    """
    while True:
        msg = await conn.receive()
        try:
            if msg.type is WSMsgType.TEXT:
                await conn.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await conn.send_bytes(msg.data)
            elif msg.type is WSMsgType.PING:
                await conn.pong(msg.data)
        except trio.ClosedResourceError:
            continue  # the client's close frame is next in the queue; answer it below
        except trio.BrokenResourceError:
            return  # the client is gone (reset mid-echo): nothing left to echo or answer
        if msg.type is WSMsgType.CLOSE:
            await conn.close(msg.data)
            return
        if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSED):
            return


@attrs.define(eq=False)
class TestServer:
    """A running test server, as yielded by :func:`open_test_server`.

    Attributes:
        host: the address it listens on (``127.0.0.1`` or ``::1``).
        port: the port it listens on.
        secure: whether it speaks TLS (``wss``).
        url: ``ws://HOST:PORT/`` or ``wss://HOST:PORT/`` with the host as given (IPv6 in
            brackets); for TLS, connect with ``server_hostname`` matching the certificate.
        connections: every accepted connection, in order; a connection is appended before its
            101 response is sent.
        requests: every upgrade request, in order, including refused ones; appended before the
            response is sent.
        errors: every exception a handler raised, in order (``assert not server.errors`` at the
            end of a test catches failing assertions inside handlers).
    """

    __test__ = False  # not a pytest test class, despite the name

    host: str
    port: int
    secure: bool
    url: str
    connections: list[ServerConnection] = attrs.field(factory=list)
    requests: list[HandshakeRequest] = attrs.field(factory=list)
    errors: list[BaseException] = attrs.field(factory=list)

    def url_for(self, path: str) -> str:
        """The URL of ``path`` (with its query string, if any) on this server.

        Raises:
            ValueError: ``path`` does not start with ``/``.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        return self.url[:-1] + path


@attrs.frozen
class _Options:
    handler: Handler
    ssl_context: ssl.SSLContext | None
    subprotocols: tuple[str, ...]
    compression: bool
    reject: tuple[int, list[tuple[bytes, bytes]], bytes] | None
    autopong: bool


@asynccontextmanager
async def open_test_server(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    subprotocols: Sequence[str] = (),
    compression: bool = False,
    reject: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None,
    autopong: bool = True,
) -> AsyncIterator[TestServer]:
    """Run a WebSocket server on the loopback interface for the duration of the block.

    Each accepted connection runs ``handler(conn)`` in its own task; when the handler returns,
    the server closes the connection gracefully (close frame 1000, or the answer to the client's
    close frame). Leaving the block cancels all handlers and drops every connection without a
    close frame; an exception raised in the block propagates unchanged.

    Args:
        handler: the coroutine function that serves one connection; ``None`` means
            :func:`echo_handler`. If it raises, the exception is logged, recorded in
            ``conn.error`` and ``server.errors``, and the client gets close code 1011.
        host: ``"127.0.0.1"`` or ``"::1"`` (the server never listens beyond loopback).
        port: the port; 0 picks a free one.
        ssl_context: a server-side context (e.g. from trustme) to serve ``wss``.
        subprotocols: the subprotocols the server supports; it picks the first one in the
            client's offer that it supports, or none.
        compression: accept permessage-deflate when the client offers it.
        reject: ``(status, headers, body)``: answer every valid upgrade request with this HTTP
            response instead (``Content-Length`` is added unless given).
        autopong: answer pings automatically (they still appear in ``conn.received``); when
            False, pings reach the handler as PING messages.

    Yields:
        The running :class:`TestServer`.

    Raises:
        ValueError: ``host`` is not a loopback IP address.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the test server listens on a loopback address (127.0.0.1 or ::1) only, not {host!r}"
        )
    options = _Options(
        handler=handler or echo_handler,
        ssl_context=ssl_context,
        subprotocols=tuple(subprotocols),
        compression=compression,
        reject=reject,
        autopong=autopong,
    )
    server = TestServer(host=host, port=port, secure=ssl_context is not None, url="")

    async def serve(stream: trio.SocketStream) -> None:
        await _serve_connection(server, options, stream)

    body_exc: BaseException | None = None
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            functools.partial(trio.serve_tcp, serve, port, host=host)
        )
        server.port = int(listeners[0].socket.getsockname()[1])
        scheme = "wss" if server.secure else "ws"
        netloc = f"[{host}]" if ":" in host else host
        server.url = f"{scheme}://{netloc}:{server.port}/"
        try:
            yield server
        except BaseException as exc:
            # Raised again below, outside the nursery, so that it is not wrapped in an
            # ExceptionGroup.
            body_exc = exc
        finally:
            nursery.cancel_scope.cancel()
    if body_exc is not None:
        try:
            raise body_exc
        finally:
            body_exc = None  # break the frame <-> traceback cycle


async def _serve_connection(
    server: TestServer, options: _Options, tcp_stream: trio.SocketStream
) -> None:
    """Serve one TCP connection; never raises anything but cancellation."""
    stream: trio.abc.Stream = tcp_stream
    conn: ServerConnection | None = None
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            if options.ssl_context is not None:
                ssl_stream = trio.SSLStream(tcp_stream, options.ssl_context, server_side=True)
                stream = ssl_stream
                await ssl_stream.do_handshake()
            conn = await _open_connection(server, options, stream)
        if conn is not None:
            await conn._run(options.handler)
    except trio.TooSlowError:
        logger.info("opening handshake timed out after %s s", HANDSHAKE_TIMEOUT)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        # The client went away (or failed the TLS handshake, as certificate tests do).
        logger.debug("connection ended: %r", exc)
    except Exception as exc:  # a bug here; keep the server and other connections alive
        logger.exception("test server failed on a connection")
        server.errors.append(exc)
        if conn is not None and conn.error is None:
            conn.error = exc
    finally:
        await trio.aclose_forcefully(stream)


async def _open_connection(
    server: TestServer, options: _Options, stream: trio.abc.Stream
) -> ServerConnection | None:
    """Read the upgrade request and answer it; the connection if it was accepted."""
    http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_SIZE)
    while True:
        try:
            event = http.next_event()
        except h11.RemoteProtocolError as exc:
            await _respond(stream, http, exc.error_status_hint, [], str(exc).encode())
            return None
        if event is h11.NEED_DATA:
            data = bytes(await stream.receive_some(RECEIVE_SIZE))
            if not data:
                return None  # EOF before a whole request
            http.receive_data(data)
        elif isinstance(event, h11.Request):
            break
        else:  # ConnectionClosed etc.: no request will come
            return None

    request = HandshakeRequest(
        path=event.target.decode("ascii", "replace"),
        headers=[
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers.raw_items()
        ],
        subprotocols=_split_header(event.headers, b"sec-websocket-protocol"),
        extensions=_split_header(event.headers, b"sec-websocket-extensions"),
        method=event.method.decode("ascii", "replace"),
    )
    server.requests.append(request)
    if event.method != b"GET":
        await _respond(stream, http, 405, [(b"Allow", b"GET")], b"method not allowed")
        return None

    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.initiate_upgrade_connection(list(event.headers), event.target)
    except RemoteProtocolError as exc:
        hint = exc.event_hint
        status, headers = 400, []
        if isinstance(hint, RejectConnection):
            status = hint.status_code
            headers = [(_to_bytes(name), _to_bytes(value)) for name, value in hint.headers]
        await _respond(stream, http, status, headers, str(exc).encode())
        return None
    ws_request = next(e for e in ws.events() if isinstance(e, Request))

    if options.reject is not None:
        status, headers, body = options.reject
        await _respond(stream, http, status, headers, body)
        return None

    subprotocol = next((p for p in ws_request.subprotocols if p in options.subprotocols), None)
    extensions: list[Extension] = [PerMessageDeflate()] if options.compression else []
    response = ws.send(AcceptConnection(subprotocol=subprotocol, extensions=extensions))
    conn = ServerConnection(
        stream=stream,
        ws=ws,
        request=request,
        subprotocol=subprotocol,
        compressed=any(ext.enabled() for ext in extensions),
        autopong=options.autopong,
        # Bytes the client sent right after its request (h11 did not consume them).
        initial_data=bytes(http.trailing_data[0]),
        errors=server.errors,
    )
    server.connections.append(conn)
    await stream.send_all(response)
    return conn


async def _respond(
    stream: trio.abc.Stream,
    http: h11.Connection,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    """Answer the request with an HTTP error response (the upgrade is refused)."""
    headers = list(headers)
    if not any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers):
        headers.append((b"Content-Length", str(len(body)).encode()))
    data = http.send(h11.Response(status_code=status, headers=headers)) or b""
    if body:
        data += http.send(h11.Data(data=body)) or b""
    data += http.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def _split_header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    values: list[str] = []
    for key, value in headers:
        if key == name:
            values.extend(
                part.strip() for part in value.decode("latin-1").split(",") if part.strip()
            )
    return values


# Public names say they live in trio_ws.testing (repr, docs, pickling), not in the private
# module that defines some of them.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
del _name, _obj


# The in-memory pair is documented (and pickled, and shown in reprs) as part of this module.
ScriptedServer.__module__ = open_memory_pair.__module__ = __name__
