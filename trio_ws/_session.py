"""``open_session``: many WebSockets to one server over one HTTP/2 connection (RFC 8441).

Theory of operation
-------------------

:func:`open_session` runs the connect phase of the *connection* once (DNS, TCP, TLS with ALPN
``h2``, the server's SETTINGS) under ``connect_timeout``, and keeps the
:class:`~trio_ws._h2session.H2Session` running in a hidden nursery for the block. Each
:meth:`WSSession.open_ws` then costs one extended CONNECT on a new stream (one round trip),
under its own ``connect_timeout``, and gives a :class:`~trio_ws.ClientWebSocket` running
through the same connection layer as over HTTP/1.1, its tasks in a hidden nursery of its own
(:func:`~trio_ws._client.hidden_nursery`: the same exception policy as :func:`open_ws`).

Options: those given to :func:`open_session` are the defaults of every WebSocket of the
session; :meth:`WSSession.open_ws` may replace the per-WebSocket ones (subprotocols, headers,
compression, limits, timeouts, heartbeat...). The options of the connection itself
(:data:`SESSION_ONLY`) belong to the session alone.

When the server does not offer WebSockets over HTTP/2 (and ``http2`` is not ``"require"``),
the session still works: each :meth:`WSSession.open_ws` opens its own HTTP/1.1 connection, and
:attr:`WSSession.http2` says so.

Leaving the block closes every WebSocket still open on the session with a close frame (1001,
going away, bounded by each one's ``ws_close``), then sends GOAWAY and closes the socket.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final, Unpack, final

import attrs
import trio

from ._client import (
    _connect,
    _h2_request_text,
    _new_h2_handshake,
    _spell_out_options,
    hidden_nursery,
    settle_group,
    start_ws,
)
from ._connection import GOING_AWAY_GRACE, ClientWebSocket
from ._errors import ConnectTimeoutError, InvalidArgument, WSError
from ._h2connect import dial
from ._h2connect import handshake as h2_handshake
from ._h2session import H2Session
from ._monitor import LOGGER, format_id, new_serial
from ._observed import log_handshake
from ._options import ConnectOptions, WSOptions, make_options
from ._transport import Progress
from ._types import WSCloseCode
from ._url import Target, parse_url

__all__ = ["SESSION_ONLY", "WSSession", "open_session"]

#: The options of the connection, given to :func:`open_session` only.
SESSION_ONLY: Final = frozenset(
    {
        "ssl",
        "server_hostname",
        "unix_socket",
        "proxy",
        "proxy_auth",
        "proxy_headers",
        "http2",
        "max_redirects",
    }
)


@final
class WSSession:
    """One connection to a server that carries many WebSockets (HTTP/2, RFC 8441).

    Get one from :func:`open_session`; do not instantiate it yourself.
    """

    def __init__(
        self, target: Target, options: ConnectOptions, session: H2Session | None
    ) -> None:
        self._target = target
        self._options = options
        self._h2 = session
        self._closed = False
        #: The WebSockets opened over HTTP/1.1 (without HTTP/2), closed with the session.
        self._h1: list[ClientWebSocket] = []

    @property
    def http2(self) -> bool:
        """The WebSockets run over one HTTP/2 connection (``False``: the server did not offer
        it, and each WebSocket has its own HTTP/1.1 connection)."""
        return self._h2 is not None

    @property
    def url(self) -> str:
        """The URL the session was opened with (without credentials)."""
        return self._target.url

    @property
    def closed(self) -> bool:
        """The session has been closed, or its connection failed or is going away."""
        return self._closed or (self._h2 is not None and not self._h2.usable)

    def _target_for(self, path: str) -> Target:
        if not path.startswith("/"):
            raise InvalidArgument(f"path must start with '/', not {path!r}")
        base = self._target
        scheme = "wss" if base.secure else "ws"
        target = parse_url(f"{scheme}://{base.host_header}{path}")
        return attrs.evolve(target, credentials=base.credentials, unix_path=base.unix_path)

    def _options_for(self, options: WSOptions) -> ConnectOptions:
        shared = sorted(options.keys() & SESSION_ONLY)
        if shared:
            raise InvalidArgument(
                f"{shared[0]} is an option of the session's connection: give it to "
                "open_session(), not to session.open_ws()"
            )
        merged = make_options(options)  # checks names and values
        given = {name: getattr(merged, name) for name in options}
        return attrs.evolve(self._options, **given)

    @asynccontextmanager
    async def open_ws(
        self, path: str = "/", **options: Unpack[WSOptions]
    ) -> AsyncIterator[ClientWebSocket]:
        """Open a WebSocket to ``path`` on the session's server; close it when the block exits.

        .. code-block:: python

            async with trio_ws.open_session("wss://example.org", http2=True) as session:
                async with session.open_ws("/feed/eur-usd", heartbeat=15) as ws:
                    async for msg in ws:
                        print(msg.data)

        Args:
            path: the resource (path and query), starting with ``/``.
            **options: the per-WebSocket options of :func:`open_ws` (``protocols``,
                ``headers``, ``compress``, ``heartbeat``, ``timeout``, ``connect_timeout``,
                limits...), replacing the session's; the connection's options
                (``ssl``, ``proxy``, ``http2``...) raise :exc:`InvalidArgument`.

        Yields:
            The open :class:`ClientWebSocket`, with the exception policy of :func:`open_ws`.

        Raises:
            WSServerHandshakeError: the server refused the WebSocket (status, headers, body).
            WSConnectionError: the session's connection failed or is going away.
            ConnectTimeoutError: no stream became free, or the server did not answer, within
                ``connect_timeout``.

        Cancellation while opening resets the stream; the session stays usable.
        """
        async with hidden_nursery(
            lambda nursery: self.connect_ws(nursery, path, **options)
        ) as ws:
            yield ws

    async def connect_ws(
        self, nursery: trio.Nursery, path: str = "/", **options: Unpack[WSOptions]
    ) -> ClientWebSocket:
        """As :meth:`open_ws`, with the WebSocket's tasks in ``nursery`` (the caller closes
        it, as with :func:`connect_ws`). It raises what :meth:`open_ws` raises."""
        opts = self._options_for(options)
        target = self._target_for(path)
        session = self._h2
        if self._closed:
            raise WSError("the session is closed")
        if session is None:
            ws = await _connect(nursery, target.url, None, attrs.evolve(opts, http2=False))
            # Kept for aclose(); the closed ones are dropped as new ones come.
            self._h1 = [w for w in self._h1 if not w.closed]
            self._h1.append(ws)
            return ws
        log = opts.logger or LOGGER
        serial = new_serial()
        started = trio.current_time()
        hs = _new_h2_handshake(opts, self._target, target)
        timeout = opts.connect_timeout
        with trio.move_on_at(started + timeout if timeout is not None else math.inf) as scope:
            stream, result = await h2_handshake(session, hs)
        if scope.cancelled_caught:
            raise ConnectTimeoutError(
                f"opening a WebSocket to {target.url} over HTTP/2 took longer than "
                f"connect_timeout={timeout} s"
            )
        request = _h2_request_text(hs)
        head = hs.response_head()
        log_handshake(log, format_id(serial), target.url, request, *head, http_version="2")
        ws = start_ws(nursery, stream, result, opts, target, log, serial, started)
        stream.owner = ws
        return ws

    async def ping(self) -> float:
        """Check that the connection is alive: an HTTP/2 PING, answered by the server's HTTP/2
        layer (not by an application); returns the round trip in seconds.

        Bound it with ``trio.fail_after`` (or ``move_on_after``). Cancellation leaves the
        session as it was. Over HTTP/1.1 (:attr:`http2` is ``False``) there is no connection
        to check: it returns ``0.0``.

        Raises:
            WSConnectionError: the connection failed or is closed.
        """
        if self._h2 is None:
            await trio.lowlevel.checkpoint()
            return 0.0
        return await self._h2.ping()

    async def aclose(self) -> None:
        """Close every WebSocket still open on the session (close frame 1001), then the
        connection (GOAWAY). Idempotent.

        Cancellation: the WebSockets' closing is shielded and bounded by
        ``GOING_AWAY_GRACE``; the connection is closed in any case.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        session = self._h2
        owners = session.owners if session is not None else self._h1
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + max(
                GOING_AWAY_GRACE, self._options.timeout.ws_close or 0
            )
            async with trio.open_nursery() as nursery:
                for owner in owners:
                    if isinstance(owner, ClientWebSocket) and not owner.closed:
                        nursery.start_soon(_going_away, owner)
        self._h1 = []
        if session is None:
            return
        session.stop()
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + GOING_AWAY_GRACE
            await session.wait_closed()
        if scope.cancelled_caught:
            session.abort()


async def _going_away(ws: ClientWebSocket) -> None:
    await ws.close(code=WSCloseCode.GOING_AWAY)


@asynccontextmanager
async def open_session(url: str, **options: Unpack[WSOptions]) -> AsyncIterator[WSSession]:
    """Open one connection to a server for many WebSockets; close it when the block exits.

    .. code-block:: python

        async with trio_ws.open_session("wss://example.org") as session:
            async with session.open_ws("/a") as a, session.open_ws("/b") as b:
                ...

    One TCP and TLS handshake for every WebSocket of the block; each new WebSocket is one
    round trip (an extended CONNECT on a new HTTP/2 stream, RFC 8441).

    Args:
        url: ``wss://`` or ``ws://`` URL of the server; its path is not used (each
            :meth:`WSSession.open_ws` names its own); ``user:pass@`` gives Basic credentials
            to every WebSocket.
        **options: the options of :func:`open_ws` (``http2`` defaults to ``True`` here: one
            HTTP/1.1 connection per WebSocket when the server does not offer WebSockets over
            HTTP/2; ``"require"`` raises :exc:`WSServerHandshakeError` instead; ``False``
            always uses HTTP/1.1): those of the connection (``ssl``,
            ``server_hostname``, ``proxy``, ``unix_socket``, ``connect_timeout``...) and the
            defaults of every WebSocket of the session. ``heartbeat`` also watches the
            connection: an HTTP/2 PING after that many seconds without data, and the session
            fails with :exc:`ServerTimeoutError` if nothing arrives within half of it.

    Yields:
        The :class:`WSSession`.

    Raises:
        WSError: what :func:`open_ws` raises for its connection (an invalid URL or option,
            DNS, TCP, TLS, the proxy, the connect timeout), before the block runs.
        WSServerHandshakeError: ``http2="require"`` and the server does not accept
            WebSockets over HTTP/2.

    An exception raised in the block propagates unchanged (never as an ``ExceptionGroup``)
    after the session closed; cancellation closes it and stays cancellation.
    """
    given: WSOptions = {"http2": True}
    given.update(options)
    opts = make_options(given)
    target = parse_url(url, opts.params)
    if opts.unix_socket is not None:
        target = attrs.evolve(target, unix_path=opts.unix_socket)
    body_exc: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            session = None
            try:
                session = await _open(nursery, target, opts)
            except BaseException as exc:
                body_exc = exc
            if session is not None:
                try:
                    yield session
                except BaseException as exc:
                    body_exc = exc
                try:
                    await session.aclose()
                except BaseException as exc:
                    if body_exc is None:
                        body_exc = exc
    except BaseExceptionGroup as group:
        # Without an exception of the block, only the session's task was cancelled, after the
        # block and aclose() were done: a task that outlives aclose() is one given up in the
        # connect phase (the HTTP/1.1 fallback), still sending its GOAWAY when an outer scope
        # is cancelled.
        body_exc = settle_group(group, body_exc)
    if body_exc is not None:
        raise body_exc


async def _open(nursery: trio.Nursery, target: Target, options: ConnectOptions) -> WSSession:
    if not options.http2:
        await trio.lowlevel.checkpoint()
        return WSSession(target, options, None)
    timeout = options.connect_timeout
    progress = Progress()
    with trio.move_on_at(
        trio.current_time() + timeout if timeout is not None else math.inf
    ) as scope:
        dialed = await dial(nursery, target, options, progress, single=False)
    if scope.cancelled_caught:
        raise ConnectTimeoutError(
            f"connecting to {target.url} took longer than connect_timeout={timeout} s"
        )
    if isinstance(dialed, H2Session):
        return WSSession(target, options, dialed)
    # HTTP/1.1: each WebSocket will have a connection of its own; this one is not needed.
    await trio.aclose_forcefully(dialed)
    return WSSession(target, options, None)



def _spell_out_session_options() -> None:
    """The options in ``open_session``'s signature, with its own default of ``http2``."""
    _spell_out_options(open_session)
    signature = open_session.__signature__  # type: ignore[attr-defined]
    params = [
        p.replace(default=True) if p.name == "http2" else p
        for p in signature.parameters.values()
    ]
    open_session.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]


_spell_out_session_options()
