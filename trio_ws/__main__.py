"""The command line: ``python -m trio_ws`` (or the ``trio-ws`` script).

* ``trio-ws URL``: an interactive client. Each line read from stdin is sent as a TEXT
  message and every message received is printed; end of input (Ctrl-D) or Ctrl-C closes the
  connection with code 1000. On a terminal, a prompt, and incoming messages are printed above
  the line being typed (:mod:`trio_ws._cli_output`).
* ``trio-ws`` (no URL): a short demonstration against an in-process echo server on 127.0.0.1
  (see :mod:`trio_ws.testing`), so it needs no network.
* ``trio-ws serve``: that echo server, until stopped, its URL on the first line of stdout.
* ``trio-ws bench [URL]``: round trips and throughput against an echo server
  (:mod:`trio_ws._cli_bench`); without URL, against the embedded one.

Output lines start with ``>`` (sent), ``<`` (received) or ``=`` (connection state), as in the
logs of the websockets library. Errors print one ``error: ...`` line on stderr, and the exit
status says how the session ended (:class:`~trio_ws._cli_session.ExitStatus`, the table in
``--help`` and docs/cli.rst). No expected condition (Ctrl-C, a closed pipe, invalid input, a
refused connection) prints a traceback.

This module is the only one that loads :mod:`trio_ws.testing` (tests/test_architecture.py
checks it): the demonstration, ``serve`` and ``bench`` without URL start servers here and
hand their URLs to the other ``_cli_*`` modules.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Final, TextIO, TypeVar

import trio

import trio_ws
from trio_ws import WSCloseCode
from trio_ws.testing import ServerConnection, echo_handler, open_test_server

from . import _cli_bench
from ._cli_args import (
    PIPE_LINGER,
    BenchConfig,
    ClientConfig,
    ServeConfig,
    UsageError,
    bench_config,
    bench_parser,
    client_config,
    client_parser,
    serve_config,
    serve_parser,
)
from ._cli_client import InputSource, StdinReader, talk
from ._cli_output import Console, TextStream, describe, logging_to
from ._cli_session import ExitStatus, Stopper, run_session, run_stoppable

__all__ = ["main"]

#: Seconds the demonstration waits for each echo (it talks to its own server).
DEMO_RECEIVE_TIMEOUT: Final = 5.0
_Config = TypeVar("_Config", ClientConfig, BenchConfig)

#: Seconds ``serve`` gives its clients to answer its close frame (1001) when stopped.
SERVE_CLOSE_TIMEOUT: Final = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Bad arguments exit with status 2 (argparse's ``SystemExit``); otherwise the status says how
    the session ended (see ``--help``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    try:
        if command == "serve":
            serve = serve_config(serve_parser().parse_args(argv[1:]))
            return _run(_serve, serve)
        if command == "bench":
            parser = bench_parser()
            bench = _configure(parser, bench_config, parser.parse_args(argv[1:]))
            return _run(_bench, bench)
        parser = client_parser()
        client = _configure(parser, client_config, parser.parse_args(argv))
        if client.url is None:
            return _run(_demo)
        return _run(_client, client)
    except KeyboardInterrupt:  # Ctrl-C while parsing the arguments
        return ExitStatus.INTERRUPTED


def _configure(
    parser: argparse.ArgumentParser,
    configure: Callable[[argparse.Namespace], _Config],
    args: argparse.Namespace,
) -> _Config:
    try:
        return configure(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits with status 2


def _run(fn: Callable[..., Awaitable[int]], *args: object) -> int:
    """``trio.run(fn, *args)``, with a Ctrl-C that arrives outside the session's own signal
    handling (inside Trio's, which raises ``KeyboardInterrupt``) turned into status 130."""
    try:
        return int(trio.run(fn, *args))
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BaseExceptionGroup as group:  # raised in a task, it left through a nursery
        _, rest = group.split(KeyboardInterrupt)
        if rest is not None:
            raise
        return ExitStatus.INTERRUPTED


def _console() -> Console:
    return Console(sys.stdout, sys.stderr, terminal=_stdin_is_terminal())


def _stdin_is_terminal() -> bool:
    """A person types on the same terminal the output goes to, and it understands the VT100
    sequences of the prompt (``TERM=dumb``, an Emacs shell for example, does not)."""
    return _isatty(sys.stdin) and _isatty(sys.stdout) and os.environ.get("TERM") != "dumb"


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # closed
        return False


# ---------------------------------------------------------------------------------------------
# the interactive client


async def _client(
    config: ClientConfig, source: InputSource | None = None, out: TextStream | None = None
) -> int:
    """Run the interactive client on stdin and stdout (or on ``source`` and ``out``)."""
    terminal = source is None and _stdin_is_terminal()
    typed = source is None and _isatty(sys.stdin)  # a person types: Ctrl-D means leave now
    console = Console(
        sys.stdout if out is None else out,
        sys.stderr,
        terminal=terminal,
        timestamps=config.timestamps,
    )
    if source is None:
        source = StdinReader(sys.stdin)
    linger = config.linger if config.linger is not None else (0.0 if typed else PIPE_LINGER)
    url = config.url
    assert url is not None
    if config.insecure:
        console.warn(
            "--insecure: the server's TLS certificate is not verified; anyone on the path can "
            "read and change this session"
        )

    async def body(stopper: Stopper) -> ExitStatus:
        async def conversation(ws: trio_ws.ClientWebSocket) -> None:
            if terminal:
                console.say("= type a line and Enter to send it; Ctrl-D or Ctrl-C to close")
            await talk(ws, console, source, config.view, linger)

        return await run_session(stopper, console, url, config.options, conversation)

    with logging_to(console, config.verbose):
        return await run_stoppable(console, body)


# ---------------------------------------------------------------------------------------------
# the demonstration


async def _demo(console: Console | None = None) -> int:
    """Show text, binary, JSON, ping/pong and the close handshake against a local server."""
    console = console or _console()

    async def body(stopper: Stopper) -> ExitStatus:
        with stopper.stage():
            await _demo_exchange(console)
        return ExitStatus.OK

    with logging_to(console, 0):
        return await run_stoppable(console, body)


async def _demo_exchange(console: Console) -> None:
    say = console.say
    async with open_test_server(subprotocols=["demo"], compression=True) as server:
        say(f"= echo server listening on {server.url}")
        # autoping=False: the server's pong is delivered to receive(), so it can be shown.
        async with trio_ws.open_ws(
            server.url, protocols=["demo"], compress=15, autoping=False
        ) as ws:
            deflate = "on" if ws.compress else "off"
            say(f"= connected (subprotocol {ws.protocol!r}, permessage-deflate {deflate})")

            say("> TEXT 'hello'")
            await ws.send_str("hello")
            say(*describe(await ws.receive(timeout=DEMO_RECEIVE_TIMEOUT)))

            blob = b"\x00\x01"
            say(f"> BINARY {blob!r}")
            await ws.send_bytes(blob)
            say(*describe(await ws.receive(timeout=DEMO_RECEIVE_TIMEOUT)))

            payload = {"op": "greet", "n": 1}
            say(f"> JSON {json.dumps(payload)}")
            await ws.send_json(payload)
            say(f"< JSON {json.dumps(await ws.receive_json(timeout=DEMO_RECEIVE_TIMEOUT))}")

            say("> PING b'are you there?'")
            await ws.ping(b"are you there?")
            say(*describe(await ws.receive(timeout=DEMO_RECEIVE_TIMEOUT)))

            say("> CLOSE code=1000")
            await ws.close()
        say(f"= closed code={ws.close_code}")


# ---------------------------------------------------------------------------------------------
# serve


class _EchoService:
    """``serve``'s handler: echo, print each connection, close with 1001 when stopped."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._numbers = itertools.count(1)
        self._live = 0
        self._changed = trio.Event()
        self._stopping = trio.Event()

    async def handler(self, conn: ServerConnection) -> None:
        number = next(self._numbers)
        self._live += 1
        self._console.say(f"= connection {number} opened: GET {conn.request.path}")
        try:
            async with trio.open_nursery() as nursery:

                async def echo() -> None:
                    await echo_handler(conn)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(echo)
                await self._stopping.wait()
                nursery.cancel_scope.cancel()
            if self._stopping.is_set():
                # RFC 6455 §7.4.1: 1001, "a server going down".
                await conn.close(
                    WSCloseCode.GOING_AWAY, "server stopping", timeout=SERVE_CLOSE_TIMEOUT
                )
        finally:
            self._live -= 1
            self._changed.set()
            how = f"code={conn.close_code}" if conn.close_code is not None else "no close frame"
            self._console.say(f"= connection {number} closed: {how}")

    async def stop(self) -> None:
        """Close every open connection with 1001; return when they are all closed."""
        self._stopping.set()
        while self._live:
            self._changed = trio.Event()
            await self._changed.wait()


async def _serve(config: ServeConfig, console: Console | None = None) -> int:
    """Run the echo server until Ctrl-C or SIGTERM."""
    console = console or _console()

    async def body(stopper: Stopper) -> ExitStatus:
        with ExitStack() as stack:
            context: ssl.SSLContext | None = None
            cafile: Path | None = None
            if config.tls:
                try:
                    context, cafile = _self_signed(config.host, stack)
                except ImportError:
                    console.error(
                        "--tls needs the trustme package to make a self-signed certificate: "
                        "python -m pip install trustme"
                    )
                    return ExitStatus.ERROR
            service = _EchoService(console)
            try:
                async with open_test_server(
                    service.handler,
                    host=config.host,
                    port=config.port,
                    ssl_context=context,
                    subprotocols=config.subprotocols,
                    compression=True,
                ) as server:
                    console.say(server.url)
                    if cafile is not None:
                        console.say(f"= TLS certificate authority: {cafile} (clients: --cafile)")
                    console.say("= echo server running; Ctrl-C stops it")
                    with stopper.stage():
                        await trio.sleep_forever()
                    with stopper.stage(skip_if_stopped=False):
                        await service.stop()
                console.say("= echo server stopped")
            except (OSError, BaseExceptionGroup) as exc:
                error = _listen_error(exc)
                console.error(f"cannot listen on {config.host} port {config.port}: {error}")
                return ExitStatus.UNREACHABLE
        return ExitStatus.OK  # not reached: only a stop ends it, and it sets the status

    with logging_to(console, config.verbose):
        return await run_stoppable(console, body)


def _listen_error(exc: BaseException) -> str:
    """The ``OSError`` (maybe in an exception group from the server's nursery) as text;
    anything else is raised again."""
    if isinstance(exc, BaseExceptionGroup):
        match, rest = exc.split(OSError)
        if rest is not None or match is None:
            raise exc
        leaves = list(_leaves(match))
        exc = leaves[0]
    assert isinstance(exc, OSError)
    return exc.strerror or str(exc)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return leaves


def _self_signed(host: str, stack: ExitStack) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for ``host`` and ``localhost`` from a new CA, and
    the CA's PEM file (in a temporary directory that ``stack`` removes).

    Raises:
        ImportError: trustme is not installed.
    """
    import trustme  # optional: only `serve --tls` needs it

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(host, "localhost").configure_cert(context)
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trio-ws-")))
    cafile = directory / "ca.pem"
    authority.cert_pem.write_to_path(str(cafile))
    return context, cafile


# ---------------------------------------------------------------------------------------------
# bench


async def _bench(config: BenchConfig, console: Console | None = None) -> int:
    """Run ``bench`` against ``config.url``, or against an embedded echo server."""
    console = console or Console(sys.stdout, sys.stderr)
    progress = _cli_bench.Progress(
        sys.stderr, enabled=sys.stderr is not None and sys.stderr.isatty()
    )
    if config.insecure:
        console.warn("--insecure: the server's TLS certificate is not verified")

    async def body(stopper: Stopper) -> ExitStatus:
        if config.url is not None:
            return await _bench_session(stopper, config.url)
        async with open_test_server(compression=True) as server:
            console.say(f"= echo server listening on {server.url}")
            return await _bench_session(stopper, server.url)

    async def _bench_session(stopper: Stopper, url: str) -> ExitStatus:
        run = functools.partial(
            _cli_bench.run,
            console=console,
            url=url,
            n=config.n,
            size=config.size,
            progress=progress,
        )
        return await run_session(stopper, console, url, config.options, run)

    with logging_to(console, config.verbose):
        return await run_stoppable(console, body)


if __name__ == "__main__":
    sys.exit(main())
