"""How a command-line session ends: the exit statuses, and what may stop a session early.

Theory of operation
-------------------

The exit status is the CLI's answer to "how did it end?", so that a script can tell a server
that closed with 1008 from one that closed with 1000, or a refused connection from a TLS
failure. :class:`ExitStatus` is the one table; ``--help`` and ``docs/cli.rst`` print it.

A session (the interactive client, ``bench``, ``serve``, the demonstration) runs in
**stages**, each a cancel scope: connecting, talking, closing. Three things stop a session
from outside its own logic, and all go through :meth:`Stopper.stop`, which records *why*
(the first reason wins: it is the exit status) and cancels the current stage:

* SIGINT (Ctrl-C) and SIGTERM, read with :func:`trio.open_signal_receiver`, so no
  ``KeyboardInterrupt`` is ever raised inside the session (an interrupt raised at an arbitrary
  checkpoint would leave through nurseries as an exception group and a traceback);
* stdout closed by its reader (``| head``): :class:`~trio_ws._cli_output.Console` calls back.

Cancelling the *talking* stage lets the session run the closing stage (a close frame with
code 1000, as after end of input); a second Ctrl-C cancels the closing stage itself, so the
user is never held for up to ``ws_close`` seconds against their will. A stop that comes
while connecting abandons the connection attempt.

Errors of trio_ws that end a session become one ``error: ...`` line (and a ``hint: ...`` line
when an option of the CLI is the remedy) and their status in one place, :func:`report`, so no
expected condition shows a traceback; anything else (a bug) still does.
"""

from __future__ import annotations

import enum
import functools
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Final

import trio

import trio_ws
from trio_ws import ClientWebSocket, WSError

from ._cli_output import Console

__all__ = [
    "EXIT_STATUS_HELP",
    "ExitStatus",
    "Stopper",
    "hint_for",
    "report",
    "run_session",
    "run_stoppable",
    "status_for_close",
    "status_for_error",
]


class ExitStatus(enum.IntEnum):
    """The exit status of ``trio-ws``: how the session ended."""

    #: The connection closed with code 1000 (normal) or 1001 (going away).
    OK = 0
    #: Any other error: the server broke the protocol, the connection was lost without a
    #: close frame (1006), the server did not echo (``bench``)...
    ERROR = 1
    #: Bad arguments: argparse, or a value trio_ws refuses before connecting (URL, header).
    USAGE = 2
    #: The server closed the connection with a code other than 1000 and 1001.
    SERVER_CLOSED = 3
    #: No connection: DNS failure, refused, unreachable, proxy failure; ``serve``: the address
    #: is in use.
    UNREACHABLE = 4
    #: The TLS handshake failed (certificate not trusted, wrong host name, ...).
    TLS = 5
    #: The server refused the WebSocket handshake (an HTTP status other than 101).
    REJECTED = 6
    #: A timeout: ``--connect-timeout``, ``--heartbeat``, or the closing handshake.
    TIMEOUT = 7
    #: Interrupted by Ctrl-C (SIGINT), after closing with code 1000.
    INTERRUPTED = 130
    #: stdout was closed by its reader (``| head``), after closing with code 1000.
    OUTPUT_CLOSED = 141
    #: Terminated by SIGTERM, after closing with code 1000.
    TERMINATED = 143


#: The exit-status table as ``--help`` prints it (docs/cli.rst shows the same table).
EXIT_STATUS_HELP: Final = """\
exit status:
    0  the connection closed with code 1000 or 1001
    1  another error: protocol violation, connection lost without a close frame (1006),
       no echo (bench), --tls without trustme (serve)
    2  bad arguments (option values, URL, header), before connecting
    3  the server closed with a code other than 1000 and 1001 (the code is printed)
    4  could not connect: DNS, refused, unreachable, proxy (serve: address in use)
    5  TLS handshake failed (untrusted certificate, wrong host name...)
    6  the server refused the WebSocket handshake (HTTP status other than 101)
    7  timeout: --connect-timeout, --heartbeat, or the closing handshake
  130  Ctrl-C (SIGINT), after a clean close with code 1000
  141  stdout closed by its reader (e.g. | head), after a close with code 1000
  143  SIGTERM, after a clean close with code 1000
"""

#: Close codes that end a session normally (RFC 6455 §7.4.1: normal closure, going away).
_NORMAL_CODES: Final = frozenset({1000, 1001})
#: The statuses of the signals a session handles itself.
_SIGNAL_STATUS: Final[dict[int, ExitStatus]] = {
    signal.SIGINT: ExitStatus.INTERRUPTED,
    signal.SIGTERM: ExitStatus.TERMINATED,
}


def status_for_error(exc: BaseException) -> ExitStatus:
    """The exit status for an error of trio_ws that ended the session.

    The order matters: a TLS failure and a connect timeout are also connection errors, and a
    proxy timeout is both a proxy error and a timeout (a timeout, then).
    """
    if isinstance(exc, trio_ws.InvalidArgument):
        return ExitStatus.USAGE
    if isinstance(exc, trio_ws.WSTLSError):
        return ExitStatus.TLS
    if isinstance(exc, TimeoutError):  # ConnectTimeoutError, ServerTimeoutError, close timeout
        return ExitStatus.TIMEOUT
    if isinstance(exc, trio_ws.WSConnectionError):
        return ExitStatus.UNREACHABLE
    if isinstance(exc, trio_ws.WSServerHandshakeError):
        return ExitStatus.REJECTED
    return ExitStatus.ERROR


def hint_for(exc: BaseException) -> str | None:
    """A line of advice for an error whose remedy is an option of the CLI, else ``None``."""
    if isinstance(exc, trio_ws.WSTLSError) and isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        return (
            "--cafile PEM trusts a private certificate authority (such as the one "
            "`trio-ws serve --tls` prints); --insecure skips verification"
        )
    return None


def report(console: Console, exc: BaseException) -> ExitStatus:
    """Print the ``error:`` line for ``exc`` (and a ``hint:`` line if one helps); its status."""
    console.error(str(exc))
    hint = hint_for(exc)
    if hint is not None:
        console.hint(hint)
    return status_for_error(exc)


def status_for_close(code: int | None) -> ExitStatus:
    """The exit status for a connection that closed with ``code`` and no failure."""
    if code in _NORMAL_CODES:
        return ExitStatus.OK
    if code is None or code == trio_ws.WSCloseCode.ABNORMAL_CLOSURE:
        return ExitStatus.ERROR  # lost without a close frame
    return ExitStatus.SERVER_CLOSED


class Stopper:
    """Why the session was stopped from outside (a signal, a closed stdout), and how.

    ``status`` is ``None`` until :meth:`stop` is called; the first call sets it and every call
    cancels the stage the session is in (see the module docstring).
    """

    def __init__(self) -> None:
        self.status: ExitStatus | None = None
        self._scope: trio.CancelScope | None = None

    @contextmanager
    def stage(self, *, skip_if_stopped: bool = True) -> Iterator[trio.CancelScope]:
        """Run the body as the current stage: :meth:`stop` cancels it.

        Args:
            skip_if_stopped: cancel the stage at once if the session was stopped already
                (connecting, talking); ``False`` for the closing stage, which must run after a
                first stop and is cancelled only by the next one.
        """
        with trio.CancelScope() as scope:
            if skip_if_stopped and self.status is not None:
                scope.cancel()
            self._scope = scope
            yield scope

    def stop(self, status: ExitStatus) -> None:
        """Stop the session with ``status`` (unless it was stopped already): cancel the current
        stage. Synchronous, so that any task or callback may call it."""
        if self.status is None:
            self.status = status
        if self._scope is not None:
            self._scope.cancel()

    async def watch(self, signals: AsyncIterator[int]) -> None:
        """Stop the session on each signal that arrives (until cancelled)."""
        async for signum in signals:
            self.stop(_SIGNAL_STATUS.get(signum, ExitStatus.INTERRUPTED))


async def run_stoppable(
    console: Console, body: Callable[[Stopper], Awaitable[ExitStatus]]
) -> ExitStatus:
    """Run ``body(stopper)`` with Ctrl-C, SIGTERM and a closed stdout wired to the stopper;
    the exit status.

    An error of trio_ws that leaves ``body`` is printed as one ``error:`` line and mapped by
    :func:`status_for_error`; a stop decides the status whatever ``body`` returned.
    """
    stopper = Stopper()
    console.on_broken = functools.partial(stopper.stop, ExitStatus.OUTPUT_CLOSED)
    status = ExitStatus.ERROR
    with trio.open_signal_receiver(*_SIGNAL_STATUS) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stopper.watch, signals)
            try:
                status = await body(stopper)
            except WSError as exc:
                status = report(console, exc)
            finally:
                nursery.cancel_scope.cancel()
    return stopper.status if stopper.status is not None else status


async def run_session(
    stopper: Stopper,
    console: Console,
    url: str,
    options: trio_ws.WSOptions,
    talk: Callable[[ClientWebSocket], Awaitable[None]],
) -> ExitStatus:
    """Connect, print ``= connected``, run ``talk(ws)``, close with 1000; the exit status.

    ``talk`` returns when it is done (or when the server closed); the session then closes the
    connection (nothing happens if it is closed already), prints ``= closed code=N`` or the
    failure, and returns the status. Errors raised while connecting propagate (to
    :func:`run_stoppable`).
    """
    ws: ClientWebSocket | None = None
    with stopper.stage():
        async with trio_ws.open_ws(url, **options) as ws:
            over = " over HTTP/2" if ws.get_extra_info("http_version") == "2" else ""
            extra = f" (subprotocol {ws.protocol!r})" if ws.protocol else ""
            console.say(f"= connected to {url}{over}{extra}")
            with stopper.stage():
                await talk(ws)
            with stopper.stage(skip_if_stopped=False):
                await ws.close()
    console.end_input()
    if ws is None:  # stopped while connecting
        assert stopper.status is not None
        return stopper.status
    exc = ws.exception()
    if exc is not None and stopper.status is None:
        return report(console, exc)
    if exc is None:
        console.say(f"= closed code={ws.close_code}")
    return stopper.status if stopper.status is not None else status_for_close(ws.close_code)
