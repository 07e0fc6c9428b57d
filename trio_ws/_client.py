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

import functools
import inspect
import logging
import math
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Unpack

import attrs
import trio

from ._connection import ClientWebSocket
from ._errors import (
    ConnectTimeoutError,
    InvalidArgument,
    InvalidURL,
    ProxyTimeoutError,
    WSConnectionError,
    WSError,
    WSRedirectError,
    WSServerHandshakeError,
    WSTLSError,
)
from ._h2connect import dial, open_transport
from ._h2connect import handshake as h2_handshake
from ._h2handshake import H2Handshake
from ._h2session import H2Session, H2Stream
from ._handshake import REDIRECT_STATUSES, ClientHandshake, HandshakeResult, Negotiated
from ._monitor import LOGGER, format_id, log_extra, new_serial
from ._observed import Logger, log_handshake, log_opened
from ._offer import OfferOptions
from ._options import ConnectOptions, WSOptions, make_options
from ._protocol import ClientProtocol
from ._transport import Progress, limit_unsent, tls_reason, write_now
from ._types import BasicAuth
from ._url import Target, parse_url, resolve_redirect

__all__ = ["connect_ws", "open_ws"]

#: How long to keep reading a rejection's body after its head arrived.
_BODY_GRACE = 1.0
_HANDSHAKE_READ = 64 * 1024
#: Request headers that only go to the origin they were given for (as the URL's credentials).
_ORIGIN_BOUND = frozenset({"authorization", "cookie"})


async def _read_response(stream: trio.abc.Stream, hs: ClientHandshake) -> None:
    data = await stream.receive_some(_HANDSHAKE_READ)
    if data:
        hs.receive_data(data)
    else:
        hs.receive_eof()


async def _handshake(stream: trio.abc.Stream, hs: ClientHandshake, plain_wss: bool) -> None:
    """Send the upgrade request and read the response as far as ``hs`` needs; a rejection's
    body gets at most :data:`_BODY_GRACE` seconds after its head."""
    try:
        request = hs.request_bytes()
        sent = write_now(stream, request)
        if sent < len(request):
            await stream.send_all(memoryview(request)[sent:])
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
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        error = WSTLSError if isinstance(cause, ssl.SSLError) else WSConnectionError
        raise error(
            f"the connection to {hs.target.url} broke during the opening handshake: "
            f"{tls_reason(exc)}"
        ) from exc
    if plain_wss and not hs.succeeded:
        hs.explain("the URL is wss:// but stream= is not a trio.SSLStream: TLS was expected")


def _credentials(
    options: ConnectOptions, first: Target, target: Target
) -> tuple[BasicAuth | None, tuple[tuple[str, str], ...]]:
    """The credentials a request to ``target`` carries: all of them on the first URL's
    origin; elsewhere only those of its own URL, and no Authorization or Cookie header."""
    if target.origin == first.origin:
        return options.auth or first.credentials or target.credentials, options.headers
    headers = tuple((k, v) for k, v in options.headers if k.lower() not in _ORIGIN_BOUND)
    return target.credentials, headers


def _refusal(hs: ClientHandshake) -> WSServerHandshakeError:
    """The refusal a redirect's handshake ends with."""
    try:
        hs.result()
    except WSServerHandshakeError as exc:
        return exc
    raise AssertionError("a redirect is a refusal")  # pragma: no cover


def _h2_location(refusal: WSServerHandshakeError, options: ConnectOptions) -> str | None:
    """The ``Location`` to follow after an HTTP/2 refusal, as on HTTP/1.1: a redirect status
    (RFC 9110 §15.4) with exactly one non-empty ``Location``, and ``max_redirects`` > 0."""
    if options.max_redirects <= 0 or refusal.status not in REDIRECT_STATUSES:
        return None
    locations = [value for name, value in refusal.headers if name.lower() == "location"]
    return locations[0] if len(locations) == 1 and locations[0] else None


def _redirect(
    location: str,
    refusal: WSServerHandshakeError,
    target: Target,
    chain: list[str],
    options: ConnectOptions,
    stream: trio.abc.Stream | None,
) -> Target:
    """Where the redirect to ``location`` goes, or :exc:`WSRedirectError` if it may not be
    followed (``refusal``: the redirect's status, headers and body)."""
    status, headers, body = refusal.status, refusal.headers, refusal.body

    def refuse(why: str, where: str) -> WSRedirectError:
        hops = " -> ".join([*chain, where])
        return WSRedirectError(
            f"WebSocket handshake with {chain[0]} failed: {why} ({hops})",
            status=status,
            headers=headers,
            body=body,
            chain=[*chain, where],
        )

    if stream is not None:
        raise refuse("the server redirects, which cannot be followed over stream=", location)
    try:
        new = resolve_redirect(target, location)
    except InvalidURL as exc:
        raise refuse(f"the server redirects to an unusable location: {exc}", location) from None
    if target.secure and not new.secure:
        raise refuse("refusing to follow a redirect from wss:// to ws://", new.url)
    if new.url in chain:
        raise refuse("redirect loop", new.url)
    if len(chain) > options.max_redirects:
        raise refuse(f"more than max_redirects={options.max_redirects} redirects", new.url)
    return new


@functools.lru_cache(maxsize=32)
def _queue_limits(messages: int, size: int) -> tuple[int, int]:
    """One tuple per pair of limits, shared by the connections (idle connections are many)."""
    return (messages, size)


def _offer_of(options: ConnectOptions, first: Target, target: Target) -> OfferOptions:
    """What the handshake offers ``target`` (the same over HTTP/1.1 and HTTP/2)."""
    auth, headers = _credentials(options, first, target)
    return {
        "protocols": options.protocols,
        "headers": headers,
        "origin": options.origin,
        "auth": auth,
        "compress": options.compress,
        "client_notakeover": options.client_notakeover,
        "user_agent": options.user_agent,
    }


def _new_handshake(options: ConnectOptions, first: Target, target: Target) -> ClientHandshake:
    follow = options.max_redirects > 0
    return ClientHandshake(target, follow_redirects=follow, **_offer_of(options, first, target))


def _new_h2_handshake(options: ConnectOptions, first: Target, target: Target) -> H2Handshake:
    return H2Handshake(target, **_offer_of(options, first, target))


def _h2_request_text(hs: H2Handshake) -> bytes:
    """The extended CONNECT as text lines, for the debug log (which redacts credentials)."""
    lines = [f"CONNECT {hs.target.resource} HTTP/2 (:protocol websocket)"]
    lines += [f"{k.decode('ascii')}: {v.decode('ascii')}" for k, v in hs.request_headers()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def _connect(
    nursery: trio.Nursery, url: str, stream: trio.abc.Stream | None, options: ConnectOptions
) -> ClientWebSocket:
    # Everything that can be checked without I/O is checked before any: the options were
    # checked when they were built; here the stream, the URL and the handshake's HTTP rules.
    if stream is not None and not isinstance(stream, trio.abc.Stream):
        raise InvalidArgument(f"stream must be a trio.abc.Stream or None, not {stream!r}")
    if stream is not None and options.http2:
        raise InvalidArgument("http2 needs trio_ws to open the connection: not with stream=")
    first = target = parse_url(url, options.params)
    if options.unix_socket is not None:
        first = target = attrs.evolve(target, unix_path=options.unix_socket)
    plain_wss = stream is not None and target.secure and not isinstance(stream, trio.SSLStream)
    log = options.logger or LOGGER
    serial = new_serial()
    ws_id = format_id(serial)
    started = trio.current_time()
    hs: ClientHandshake | H2Handshake = _new_handshake(options, first, target)
    connect_timeout = options.connect_timeout
    deadline = trio.current_time() + connect_timeout if connect_timeout is not None else math.inf
    chain: list[str] = []
    progress = Progress()
    opened: trio.abc.Stream | None = None
    session: H2Session | None = None
    session_origin: tuple[bool, str, int, str | None] | None = None
    try:
        with trio.move_on_at(deadline) as scope:
            while True:
                opened = stream
                if opened is None and options.http2:
                    if session is not None and session_origin != target.origin:
                        # A redirect to another origin: that one needs its own connection.
                        session.stop()
                        session = None
                    if session is None:
                        dialed = await dial(nursery, target, options, progress, single=True)
                        if isinstance(dialed, H2Session):
                            session, session_origin = dialed, target.origin
                            session.single = False  # kept while redirects are followed
                        else:
                            opened = dialed
                    if session is not None:
                        hs = _new_h2_handshake(options, first, target)
                        try:
                            opened, _ = await h2_handshake(session, hs)
                        except WSServerHandshakeError as refusal:
                            location = _h2_location(refusal, options)
                            if location is None:
                                raise
                            chain.append(target.url)
                            target = _redirect(location, refusal, target, chain, options, stream)
                            hs = _new_handshake(options, first, target)
                            continue
                        request = _h2_request_text(hs)
                        log_handshake(
                            log, ws_id, target.url, request, *hs.response_head(), http_version="2"
                        )
                        session.single = True  # ends with its WebSocket's stream
                        break
                if opened is None:
                    opened = await open_transport(target, options, progress)
                assert isinstance(hs, ClientHandshake)
                await _handshake(opened, hs, plain_wss)
                log_handshake(log, ws_id, target.url, hs.request_bytes(), *hs.response_head())
                if hs.redirect is None:
                    break
                chain.append(target.url)
                target = _redirect(hs.redirect, _refusal(hs), target, chain, options, stream)
                hs = _new_handshake(options, first, target)
                await trio.aclose_forcefully(opened)
                opened = None
        if scope.cancelled_caught and hs.in_body:
            # The server refused in time; only its body was slow. Report the refusal.
            hs.finish_body()
        elif scope.cancelled_caught:
            via = f" (redirected from {' -> '.join(chain)})" if chain else ""
            limit = f"connect_timeout={connect_timeout} s"
            if progress.proxy is not None:
                raise ProxyTimeoutError(  # noqa: TRY301 - the except clause only closes the stream
                    f"the proxy {progress.proxy.url} did not open the tunnel to "
                    f"{target.url}{via} within {limit}",
                    proxy=progress.proxy.url,
                )
            raise ConnectTimeoutError(  # noqa: TRY301
                f"connecting to {target.url}{via} took longer than {limit}"
            )
        result = hs.result()
    except BaseException as exc:
        if opened is not None:
            await trio.aclose_forcefully(opened)
        if session is not None:
            session.abort()
        if isinstance(exc, WSError) and log.isEnabledFor(logging.WARNING):
            log.warning(
                "[%s] connecting to %s failed: %s",
                ws_id,
                target.url,
                exc,
                extra=log_extra(ws_id, target.url),
            )
        raise
    assert opened is not None
    if opened is not stream and options.max_frame_size:
        limit_unsent(opened, options.max_frame_size)
    return start_ws(nursery, opened, result, options, target, log, serial, started)


def start_ws(
    nursery: trio.Nursery,
    opened: trio.abc.Stream,
    result: HandshakeResult,
    options: ConnectOptions,
    target: Target,
    log: Logger,
    serial: int,
    started: float,
) -> ClientWebSocket:
    """The connection over ``opened`` after a successful handshake, its tasks started."""
    deflate = result.deflate
    negotiated = Negotiated(
        subprotocol=result.subprotocol,
        compress=deflate.client_max_window_bits if deflate is not None else 0,
        client_notakeover=deflate is not None and deflate.client_no_context_takeover,
        headers=result.headers,
        url=sys.intern(target.url),  # shared by the connections to one URL
        opened_at=trio.current_time(),
    )
    core = ClientProtocol(
        deflate=deflate,
        max_msg_size=options.max_msg_size,
        max_fragments=options.max_fragments,
        autoping=options.autoping,
        autoclose=options.autoclose,
        decode_text=options.decode_text,
        defer_failure_close=True,
        max_frame_size=options.max_frame_size,
    )
    ws = ClientWebSocket(
        opened,
        core,
        nursery=nursery,
        negotiated=negotiated,
        timeout=options.timeout,
        heartbeat=options.heartbeat,
        log=log,
        serial=serial,
        queue_limits=_queue_limits(options.max_queue, options.max_queue_bytes),
        write_limit=options.write_limit,
    )
    took = negotiated.opened_at - started
    log_opened(log, format_id(serial), negotiated, took, http2=isinstance(opened, H2Stream))
    ws._start(result.trailing_data)
    return ws


async def connect_ws(
    nursery: trio.Nursery,
    url: str,
    *,
    stream: trio.abc.Stream | None = None,
    **options: Unpack[WSOptions],
) -> ClientWebSocket:
    """Open a WebSocket connection whose background tasks run in ``nursery``.

    For when the connection must outlive a block of code; otherwise prefer :func:`open_ws`.
    The caller must ``await ws.close()`` (or use ``async with ws``): the reader task keeps the
    nursery open until the connection closes.

    Args:
        nursery: where the reader (and heartbeat) tasks run.
        url: as for :func:`open_ws`.
        stream: as for :func:`open_ws`.
        **options: the options of :class:`ConnectOptions` (typed by :class:`WSOptions`), as
            for :func:`open_ws`; they are checked and frozen into one ``ConnectOptions``
            before any I/O.

    Returns:
        The open :class:`ClientWebSocket`.

    It raises what :func:`open_ws` raises, for the same reasons.

    Cancellation: a cancelled connect closes whatever it opened and raises ``Cancelled``.
    """
    return await _connect(nursery, url, stream, make_options(options))


def _spell_out_options(function: Callable[..., Any]) -> None:
    """Give ``function`` a ``__signature__`` that lists every option of :class:`ConnectOptions`
    as a keyword-only parameter with its default: ``help()``, IDEs without PEP 692 and tools
    that read ``inspect.signature`` see the options by name. Generated from the class, so an
    option is still written only there and in ``WSOptions``."""
    signature = inspect.signature(function)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    own = {p.name for p in params}  # an option the function names itself (open_session's http2)
    defaults = ConnectOptions()
    params += [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=getattr(defaults, field.name),
            annotation=field.type,
        )
        for field in attrs.fields(ConnectOptions)
        if field.name not in own
    ]
    function.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]


_spell_out_options(connect_ws)


def open_ws(
    url: str, *, stream: trio.abc.Stream | None = None, **options: Unpack[WSOptions]
) -> AbstractAsyncContextManager[ClientWebSocket]:
    """Connect to a WebSocket server; close the connection when the block exits.

    .. code-block:: python

        async with trio_ws.open_ws("wss://example.org/feed", heartbeat=15) as ws:
            await ws.send_json({"op": "subscribe"})
            async for msg in ws:
                print(msg.type, msg.data)

    Args:
        url: ``ws://`` or ``wss://`` URL (``http``/``https`` are accepted as aliases;
            ``ws+unix://`` and ``wss+unix://`` name a Unix socket); ``user:pass@`` gives Basic
            credentials.
        stream: an already-open ``trio.abc.Stream`` to run the connection over instead of
            opening TCP/TLS (the URL still gives ``Host`` and the resource); trio_ws closes it.
        **options: the options, each described with its default under :class:`ConnectOptions`
            (``protocols``, ``headers``, ``ssl``, ``timeout``, ``connect_timeout``,
            ``heartbeat``, ``compress``, ``max_msg_size``, ``proxy``, ``max_redirects``,
            ``logger``...) and typed by :class:`WSOptions`. All are checked before any I/O.

    Returns:
        An async context manager; ``async with`` connects and gives the open
        :class:`ClientWebSocket`, and closes it when the block exits.

    Raises:
        InvalidURL: the URL is malformed.
        InvalidArgument: an option cannot be used (raised before any I/O).
        TypeError: an unknown option name (raised before any I/O).
        WSConnectionError: DNS failure, refused or unreachable host (also ``OSError``).
        WSTLSError: the TLS handshake failed.
        WSProxyError: the proxy could not be reached, refused the tunnel or broke its
            protocol (:exc:`ProxyTimeoutError` if it did not answer in time).
        ConnectTimeoutError: the connect phase (redirects included) exceeded
            ``connect_timeout``.
        WSServerHandshakeError: the server refused or botched the upgrade
            (:exc:`WSRedirectError` for a redirect that may not be followed).

    An exception raised in the block propagates unchanged (never as an ``ExceptionGroup``) after
    a close frame with code 1011 was sent; cancellation sends 1001 and stays cancellation.
    """
    # The context manager of hidden_nursery itself, not one wrapped around it: an idle
    # connection keeps one suspended generator less (0.7 KB, benchmark W5).
    return hidden_nursery(lambda nursery: connect_ws(nursery, url, stream=stream, **options))


@asynccontextmanager
async def hidden_nursery(
    connect: Callable[[trio.Nursery], Awaitable[ClientWebSocket]],
) -> AsyncIterator[ClientWebSocket]:
    """The connection ``connect`` makes, its tasks in a hidden nursery, with the exception
    policy of :func:`open_ws` (see the module docstring)."""
    body_exc: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                ws = await connect(nursery)
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
        # Only the nursery's exit checkpoint can add a Cancelled here: outer cancellation.
        body_exc = settle_group(group, body_exc)
    if body_exc is not None:
        raise body_exc


def settle_group(group: BaseExceptionGroup, body_exc: BaseException | None) -> BaseException:
    """What leaves a hidden nursery whose exit raised ``group``: the block's own exception
    if it had one, else the ``Cancelled`` of outer cancellation. Anything but ``Cancelled``
    in the group is a bug of ours (background tasks never raise): an internal ``WSError``."""
    _, rest = group.split(trio.Cancelled)
    if rest is not None:
        raise WSError(f"internal error in trio_ws: {group!r}") from group
    return body_exc if body_exc is not None else group.exceptions[0]


_spell_out_options(open_ws)
