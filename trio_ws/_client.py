"""``open_ws`` and ``connect_ws``: the connect phase, the hidden nursery, the exception policy.

Theory of operation
-------------------

The **connect phase** (URL, DNS, TCP, TLS, opening handshake) runs before any background task
exists, under its own deadline ``connect_timeout``: wrapping ``open_ws()`` in ``trio.fail_after``
would also bound the whole session. Every failure in it is one of our typed errors, and the
stream is closed before the error propagates.

:func:`connect_ws` then starts the reader (and heartbeat) in the caller's nursery and returns.

:func:`open_ws` does the same in a **hidden nursery** of its own. Its exception policy:

* the body's exception leaves the ``async with`` unchanged: never wrapped in an
  ``ExceptionGroup``, ``__cause__``/``__context__`` kept. This works because the body's exception
  is caught *inside* the nursery, the connection is closed (which ends the background tasks, and
  they never raise), and the exception is re-raised *after* the nursery has exited;
* the server still receives a close frame (1011 after an exception, 1001 after cancellation,
  1000 on a normal exit), sent under a shield and bounded by ``ws_close``;
* outer cancellation stays ``trio.Cancelled``: the nursery's own exit checkpoint may add a
  ``Cancelled`` of its own, which is folded into the body's;
* a bug in trio_ws that escapes the nursery surfaces as one :class:`WSError`, with the group as
  its cause.
"""

from __future__ import annotations

import math
import ssl as _ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio

from ._connection import ClientWebSocket, _Negotiated
from ._errors import ConnectTimeoutError, InvalidArgument, WSConnectionError, WSError
from ._handshake import ClientHandshake, Headers
from ._protocol import DEFAULT_MAX_FRAGMENTS, ClientProtocol
from ._transport import open_stream
from ._types import DEFAULT_WS_CLIENT_TIMEOUT, BasicAuth, ClientWSTimeout
from ._url import Params, parse_url

__all__ = ["connect_ws", "open_ws"]

#: How long to keep reading a rejection's body after its head arrived.
_BODY_GRACE = 1.0
_HANDSHAKE_READ = 64 * 1024


def _check_seconds(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgument(f"{name} must be a positive number of seconds or None, not {value!r}")
    if math.isnan(value):  # pragma: no cover - NaN > 0 is already False
        raise InvalidArgument(f"{name} must not be NaN")


async def _read_response(stream: trio.abc.Stream, hs: ClientHandshake) -> None:
    data = await stream.receive_some(_HANDSHAKE_READ)
    if data:
        hs.receive_data(data)
    else:
        hs.receive_eof()


async def _handshake(
    stream: trio.abc.Stream, hs: ClientHandshake
) -> tuple[trio.abc.Stream, ClientHandshake]:
    try:
        await stream.send_all(hs.request_bytes())
        body_deadline = math.inf
        while not hs.done:
            if not hs.in_body:
                # The head of the response (the usual case ends here): no scope of its own.
                await _read_response(stream, hs)
                continue
            if body_deadline == math.inf:
                body_deadline = trio.current_time() + _BODY_GRACE
            with trio.move_on_at(body_deadline):
                await _read_response(stream, hs)
                continue
            hs.finish_body()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise WSConnectionError(
            f"the connection to {hs.target.url} broke during the opening handshake: {exc}"
        ) from exc
    return stream, hs


async def _connect(
    nursery: trio.Nursery,
    url: str,
    *,
    protocols: Sequence[str],
    headers: Headers | None,
    origin: str | None,
    params: Params | None,
    auth: BasicAuth | tuple[str, str] | None,
    ssl: bool | _ssl.SSLContext,
    server_hostname: str | None,
    timeout: ClientWSTimeout,
    connect_timeout: float | None,
    autoclose: bool,
    autoping: bool,
    heartbeat: float | None,
    compress: int,
    client_notakeover: bool,
    max_msg_size: int,
    max_fragments: int,
    decode_text: bool,
    stream: trio.abc.Stream | None,
) -> ClientWebSocket:
    # Everything that can be checked without I/O is checked before any.
    target = parse_url(url, params)
    if not isinstance(timeout, ClientWSTimeout):
        raise InvalidArgument(f"timeout must be a ClientWSTimeout, not {type(timeout).__name__}")
    _check_seconds("connect_timeout", connect_timeout)
    _check_seconds("heartbeat", heartbeat)
    for name, value in (("max_msg_size", max_msg_size), ("max_fragments", max_fragments)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{name} must be an int >= 0 (0 = no limit), not {value!r}")
    hs = ClientHandshake(
        target,
        protocols=protocols,
        headers=headers,
        origin=origin,
        auth=auth,
        compress=compress,
        client_notakeover=client_notakeover,
    )
    deadline = trio.current_time() + connect_timeout if connect_timeout is not None else math.inf
    opened: trio.abc.Stream | None = stream
    try:
        with trio.move_on_at(deadline) as scope:
            if opened is None:
                opened = await open_stream(target, ssl=ssl, server_hostname=server_hostname)
            await _handshake(opened, hs)
        if scope.cancelled_caught and hs.in_body:
            # The server refused in time; only its body was slow. Report the refusal.
            hs.finish_body()
        elif scope.cancelled_caught:
            raise ConnectTimeoutError(  # noqa: TRY301 - the except clause only closes the stream
                f"connecting to {target.url} took longer than connect_timeout={connect_timeout} s"
            )
        result = hs.result()
    except BaseException:
        if opened is not None:
            await trio.aclose_forcefully(opened)
        raise
    assert opened is not None
    deflate = result.deflate
    negotiated = _Negotiated(
        subprotocol=result.subprotocol,
        compress=deflate.client_max_window_bits if deflate is not None else 0,
        client_notakeover=deflate is not None and deflate.client_no_context_takeover,
        response_head=result.headers,
    )
    core = ClientProtocol(
        deflate=deflate,
        max_msg_size=max_msg_size,
        max_fragments=max_fragments,
        autoping=autoping,
        autoclose=autoclose,
        decode_text=decode_text,
        defer_failure_close=True,
    )
    ws = ClientWebSocket(
        opened,
        core,
        nursery=nursery,
        negotiated=negotiated,
        timeout=timeout,
        heartbeat=heartbeat,
    )
    ws._start(result.trailing_data)
    return ws


async def connect_ws(
    nursery: trio.Nursery,
    url: str,
    *,
    protocols: Sequence[str] = (),
    headers: Headers | None = None,
    origin: str | None = None,
    params: Params | None = None,
    auth: BasicAuth | tuple[str, str] | None = None,
    ssl: bool | _ssl.SSLContext = True,
    server_hostname: str | None = None,
    timeout: ClientWSTimeout = DEFAULT_WS_CLIENT_TIMEOUT,
    connect_timeout: float | None = 10.0,
    autoclose: bool = True,
    autoping: bool = True,
    heartbeat: float | None = None,
    compress: int = 0,
    client_notakeover: bool = False,
    max_msg_size: int = 4 * 1024 * 1024,
    max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    decode_text: bool = True,
    stream: trio.abc.Stream | None = None,
) -> ClientWebSocket:
    """Open a WebSocket connection whose background tasks run in ``nursery``.

    For when the connection must outlive a block of code; otherwise prefer :func:`open_ws`.
    The caller must ``await ws.close()`` (or use ``async with ws``): the reader task keeps the
    nursery open until the connection closes.

    Args: see :func:`open_ws`.

    Returns:
        The open :class:`ClientWebSocket`.

    Raises:
        InvalidURL, InvalidArgument, WSConnectionError, WSTLSError, ConnectTimeoutError,
        WSServerHandshakeError: see :func:`open_ws`.

    Cancellation: a cancelled connect closes whatever it opened and raises ``Cancelled``.
    """
    return await _connect(
        nursery,
        url,
        protocols=protocols,
        headers=headers,
        origin=origin,
        params=params,
        auth=auth,
        ssl=ssl,
        server_hostname=server_hostname,
        timeout=timeout,
        connect_timeout=connect_timeout,
        autoclose=autoclose,
        autoping=autoping,
        heartbeat=heartbeat,
        compress=compress,
        client_notakeover=client_notakeover,
        max_msg_size=max_msg_size,
        max_fragments=max_fragments,
        decode_text=decode_text,
        stream=stream,
    )


@asynccontextmanager
async def open_ws(
    url: str,
    *,
    protocols: Sequence[str] = (),
    headers: Headers | None = None,
    origin: str | None = None,
    params: Params | None = None,
    auth: BasicAuth | tuple[str, str] | None = None,
    ssl: bool | _ssl.SSLContext = True,
    server_hostname: str | None = None,
    timeout: ClientWSTimeout = DEFAULT_WS_CLIENT_TIMEOUT,
    connect_timeout: float | None = 10.0,
    autoclose: bool = True,
    autoping: bool = True,
    heartbeat: float | None = None,
    compress: int = 0,
    client_notakeover: bool = False,
    max_msg_size: int = 4 * 1024 * 1024,
    max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    decode_text: bool = True,
    stream: trio.abc.Stream | None = None,
) -> AsyncIterator[ClientWebSocket]:
    """Connect to a WebSocket server; close the connection when the block exits.

    .. code-block:: python

        async with trio_ws.open_ws("wss://example.org/feed", heartbeat=15) as ws:
            await ws.send_json({"op": "subscribe"})
            async for msg in ws:
                print(msg.type, msg.data)

    Args:
        url: ``ws://`` or ``wss://`` URL (``http``/``https`` are accepted as aliases);
            ``user:pass@`` gives Basic credentials.
        protocols: subprotocols to offer, in order of preference.
        headers: extra request headers (a mapping or ``(name, value)`` pairs).
        origin: the ``Origin`` header.
        params: query parameters appended to the URL's query.
        auth: Basic credentials, a :class:`BasicAuth` or ``(login, password)``.
        ssl: for ``wss://``: ``True`` verifies the certificate and host name (default),
            ``False`` verifies nothing, or an ``ssl.SSLContext``.
        server_hostname: the name to verify and send in SNI, if not the URL's host.
        timeout: :class:`ClientWSTimeout` (receive and close timeouts).
        connect_timeout: seconds for DNS, TCP, TLS and the opening handshake together;
            ``None`` waits for ever.
        autoclose: answer the server's close frame at once (else the application calls
            :meth:`~ClientWebSocket.close` after receiving CLOSE).
        autoping: answer pings and swallow pongs in the background (else both are delivered).
        heartbeat: send a ping after this many seconds without data from the server and fail
            the connection with :class:`ServerTimeoutError` if nothing arrives within half of it.
        compress: 0 (off) or 9..15: offer permessage-deflate with that ``client_max_window_bits``.
        client_notakeover: offer ``client_no_context_takeover``.
        max_msg_size: the largest message accepted, in bytes; 0 = no limit. A bigger one fails
            the connection with close code 1009, refused as soon as a frame header announces it
            (uncompressed) or inflating passes the limit (compressed).
        max_fragments: the most frames one message may have (control frames between them are
            not counted); 0 = no limit. More fail the connection with close code 1009.
        decode_text: deliver TEXT messages as ``str`` (else ``bytes``).
        stream: an already-open ``trio.abc.Stream`` to run the connection over instead of
            opening TCP/TLS (the URL still gives ``Host`` and the resource); trio_ws closes it.

    Yields:
        The open :class:`ClientWebSocket`.

    Raises:
        InvalidURL: the URL is malformed.
        InvalidArgument: an option cannot be used (raised before any I/O).
        WSConnectionError: DNS failure, refused or unreachable host (also ``OSError``).
        WSTLSError: the TLS handshake failed.
        ConnectTimeoutError: the connect phase exceeded ``connect_timeout``.
        WSServerHandshakeError: the server refused or botched the upgrade.

    An exception raised in the block propagates unchanged (never as an ``ExceptionGroup``) after
    a close frame with code 1011 was sent; cancellation sends 1001 and stays cancellation.
    """
    body_exc: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                ws = await connect_ws(
                    nursery,
                    url,
                    protocols=protocols,
                    headers=headers,
                    origin=origin,
                    params=params,
                    auth=auth,
                    ssl=ssl,
                    server_hostname=server_hostname,
                    timeout=timeout,
                    connect_timeout=connect_timeout,
                    autoclose=autoclose,
                    autoping=autoping,
                    heartbeat=heartbeat,
                    compress=compress,
                    client_notakeover=client_notakeover,
                    max_msg_size=max_msg_size,
                    max_fragments=max_fragments,
                    decode_text=decode_text,
                    stream=stream,
                )
            except BaseException as exc:
                body_exc = exc
            else:
                # The hidden nursery's background tasks never raise, so it never cancels the body.
                try:
                    yield ws
                except BaseException as exc:
                    body_exc = exc
                try:
                    await ws._close_after(body_exc)
                except BaseException as exc:  # Cancelled while closing normally
                    if body_exc is None:
                        body_exc = exc
    except BaseExceptionGroup as group:
        _, rest = group.split(trio.Cancelled)
        if rest is not None:
            raise WSError(f"internal error in trio_ws: {group!r}") from group
        # Only the nursery's exit checkpoint can add a Cancelled here: outer cancellation.
        if body_exc is None:
            body_exc = group.exceptions[0]
    if body_exc is not None:
        raise body_exc
