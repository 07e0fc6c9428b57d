"""The connect phase over HTTP/2: dialing with ALPN, the fallback decision, the extended CONNECT.

:func:`dial` opens the transport asking for HTTP/2 and returns either a running
:class:`~trio_ws._h2session.H2Session` whose server accepts RFC 8441 WebSockets, or a plain
stream to run the HTTP/1.1 upgrade over:

* ``wss://``: ALPN offers ``h2`` and ``http/1.1``; when the server picks ``http/1.1`` (or
  nothing) the same TLS connection carries the HTTP/1.1 upgrade;
* ``ws://``: h2c with prior knowledge (RFC 9113 §3.3), the client preface first; a server that
  does not answer with HTTP/2 SETTINGS ends the attempt, and a new TCP connection carries the
  HTTP/1.1 upgrade;
* a server that speaks HTTP/2 but does not send ``SETTINGS_ENABLE_CONNECT_PROTOCOL=1``
  (RFC 8441 §3) gets a GOAWAY, and a new connection (ALPN ``http/1.1`` only) the upgrade.

With ``http2="require"`` each fallback is a :exc:`WSServerHandshakeError` instead.

:func:`handshake` runs the extended CONNECT (:class:`~trio_ws._h2handshake.H2Handshake`) on a
new stream of the session and returns the stream, ready for the connection layer.
"""

from __future__ import annotations

import math
import os

import trio

from ._errors import WSConnectionError, WSServerHandshakeError
from ._h2handshake import H2Handshake
from ._h2session import H2Session, H2Stream
from ._offer import HandshakeResult
from ._options import ConnectOptions
from ._proxy import proxy_for
from ._transport import Progress, open_stream
from ._url import Target

__all__ = ["BODY_GRACE", "dial", "handshake"]

#: How long to keep reading a rejection's body after its head arrived (as on HTTP/1.1).
BODY_GRACE = 1.0
_H2_ALPN = ("h2", "http/1.1")
_H1_ALPN = ("http/1.1",)


async def open_transport(
    target: Target,
    options: ConnectOptions,
    progress: Progress,
    alpn: tuple[str, ...] | None = None,
) -> trio.abc.Stream:
    """The byte stream to ``target`` under ``options`` (TCP or a Unix socket, a proxy's
    tunnel, TLS offering ``alpn``), for HTTP/1.1 and HTTP/2 alike."""
    return await open_stream(
        target,
        ssl=options.ssl,
        server_hostname=options.server_hostname,
        proxy=proxy_for(
            target,
            options.proxy,
            os.environ,
            auth=options.proxy_auth,
            headers=options.proxy_headers,
        ),
        user_agent=options.user_agent,
        progress=progress,
        alpn=alpn,
    )


def _refuse(target: Target, why: str) -> WSServerHandshakeError:
    return WSServerHandshakeError(
        f"WebSocket handshake with {target.url} failed: {why}, and http2='require'"
    )


async def dial(
    nursery: trio.Nursery,
    target: Target,
    options: ConnectOptions,
    progress: Progress,
    *,
    single: bool,
) -> H2Session | trio.abc.Stream:
    """Connect to ``target`` asking for HTTP/2 (see the module docstring).

    The session's tasks run in ``nursery``; ``single`` ends the session with its one stream.

    Cancellation closes whatever was opened and propagates.

    Raises:
        WSServerHandshakeError: ``http2="require"`` and the server does not offer WebSockets
            over HTTP/2.
        WSConnectionError, WSTLSError, WSProxyError: as :func:`~trio_ws.open_ws`.
    """
    require = options.http2 == "require"
    stream = await open_transport(target, options, progress, _H2_ALPN)
    where = f"{target.host}:{target.port}"
    if isinstance(stream, trio.SSLStream):
        chosen = stream.selected_alpn_protocol()
        if chosen != "h2":
            if require:
                await trio.aclose_forcefully(stream)
                raise _refuse(target, f"the server chose {chosen or 'no protocol'} in ALPN, not h2")
            return stream  # HTTP/1.1 on this very connection
    # A session of its own: its one WebSocket's heartbeat watches it; a shared one pings.
    heartbeat = None if single else options.heartbeat
    session = H2Session(stream, where=where, single=single, heartbeat=heartbeat)
    nursery.start_soon(session.run, name=f"trio_ws HTTP/2 session {where}")
    try:
        accepted = await session.wait_settings()
    except WSConnectionError as exc:
        # h2c to a server that does not speak HTTP/2 (its HTTP/1.1 answer is a protocol
        # error to h2, or it hung up).
        if require:
            raise _refuse(target, f"the server does not speak HTTP/2 ({exc})") from exc
        accepted = None
    except BaseException:
        session.abort()
        raise
    if accepted:
        return session
    session.stop()
    if accepted is False and require:
        raise _refuse(
            target,
            "the server speaks HTTP/2 but does not accept WebSockets over it "
            "(no SETTINGS_ENABLE_CONNECT_PROTOCOL)",
        )
    return await open_transport(target, options, progress, _H1_ALPN)


async def handshake(session: H2Session, hs: H2Handshake) -> tuple[H2Stream, HandshakeResult]:
    """Open a stream on ``session`` with ``hs``'s extended CONNECT and read the answer; a
    rejection's body gets at most :data:`BODY_GRACE` seconds after its head.

    Cancellation resets the stream (the session stays usable) and propagates.

    Raises:
        WSServerHandshakeError: the server refused (its status, headers, body) or botched the
            negotiation.
        WSConnectionError: the session failed or is going away.
    """
    stream = await session.open_stream(hs.request_headers())
    try:
        try:
            headers = await stream.wait_response()
        except trio.BrokenResourceError as exc:
            raise WSConnectionError(
                f"the HTTP/2 stream to {hs.target.url} broke during the opening handshake: "
                f"{exc.__cause__ or exc}"
            ) from exc
        hs.receive_headers(headers)
        body_deadline = trio.current_time() + BODY_GRACE if hs.in_body else math.inf
        with trio.move_on_at(body_deadline):
            while not hs.done:
                try:
                    data = await stream.receive_some()
                except trio.BrokenResourceError:
                    data = b""  # reset in the middle of the body: show what arrived
                if data:
                    hs.receive_data(data)
                else:
                    hs.receive_eof()
        hs.finish_body()
        result = hs.result()
        stream.upgraded()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream, result
