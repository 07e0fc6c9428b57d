"""The command line: ``python -m trio_ws`` (or the ``trio-ws`` script).

Without a URL it runs a short demonstration against an in-process echo server on 127.0.0.1
(see :mod:`trio_ws.testing`), so it needs no network. With a URL it is an interactive client:
each line read from stdin is sent as a TEXT message, every message received is printed, and
end of input (Ctrl-D) closes the connection.

Output lines start with ``>`` (sent), ``<`` (received) or ``=`` (connection state), as in the
logs of the websockets library. Errors print one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Final

import trio

import trio_ws
from trio_ws import ClientWebSocket, WSError, WSMessage, WSMsgType
from trio_ws.testing import open_test_server

__all__ = ["main"]

#: Seconds the demonstration waits for each echo (it talks to its own server).
DEMO_RECEIVE_TIMEOUT: Final = 5.0

_EPILOG = """\
examples:
  python -m trio_ws                                  demonstration against a local echo server
  python -m trio_ws wss://echo.example/ --protocol chat --header 'Authorization: Bearer x'
  echo hi | python -m trio_ws ws://127.0.0.1:8765/   send one line, print replies, close

exit status: 0 after a close handshake, 1 on an error or a connection lost without a close
frame (code 1006), 2 on bad arguments, 130 on Ctrl-C.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Errors of trio_ws (:class:`~trio_ws.WSError`) print one ``error: ...`` line on stderr and
    return 1; bad arguments exit with status 2 (argparse).
    """
    args = _parser().parse_args(argv)
    try:
        if args.url is None:
            return trio.run(_demo)
        return trio.run(_interactive, args)
    except WSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        # "trio-ws" when run as the console script, "python -m trio_ws" otherwise.
        prog=("trio-ws" if os.path.basename(sys.argv[0]) == "trio-ws" else "python -m trio_ws"),
        description=(
            "Interactive WebSocket client: send each stdin line as a TEXT message and print "
            "what the server sends. Without URL, run a demonstration against a local echo "
            "server."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", nargs="?", help="ws:// or wss:// URL (omit for the demonstration)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="P",
        help="offer subprotocol P (repeatable, in order of preference)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        metavar="S",
        help="ping when the server has been silent S seconds; fail if no answer in S/2",
    )
    parser.add_argument(
        "--compress", action="store_true", help="offer permessage-deflate compression"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    parser.add_argument("--origin", metavar="O", help="send Origin: O")
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="tunnel through this proxy (http://, https://, socks5://, socks5h://, socks4://, "
        "socks4a://; credentials as user:pass@); 'none' connects directly; default: the "
        "proxy environment variables",
    )
    parser.add_argument(
        "--unix-socket",
        metavar="PATH",
        help="connect to this Unix domain socket (the URL still gives Host and the TLS name)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=1.0,
        metavar="S",
        help="after end of input, keep printing replies until none came for S seconds "
        "(default 1), then close",
    )
    return parser


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _say(line: str) -> None:
    print(line, flush=True)


def _describe(msg: WSMessage) -> str:
    """One output line for a received message."""
    if msg.type is WSMsgType.CLOSE:
        reason = f" reason={msg.extra!r}" if msg.extra else ""
        return f"< CLOSE code={msg.data}{reason}"
    return f"< {msg.type.name} {msg.data!r}"


async def _demo() -> int:
    """Show text, binary, JSON, ping/pong and the close handshake against a local server."""
    async with open_test_server(subprotocols=["demo"], compression=True) as server:
        _say(f"= echo server listening on {server.url}")
        # autoping=False: the server's pong is delivered to receive(), so it can be shown.
        async with trio_ws.open_ws(
            server.url, protocols=["demo"], compress=15, autoping=False
        ) as ws:
            deflate = "on" if ws.compress else "off"
            _say(f"= connected (subprotocol {ws.protocol!r}, permessage-deflate {deflate})")

            _say("> TEXT 'hello'")
            await ws.send_str("hello")
            _say(_describe(await ws.receive(timeout=DEMO_RECEIVE_TIMEOUT)))

            blob = b"\x00\x01"
            _say(f"> BINARY {blob!r}")
            await ws.send_bytes(blob)
            _say(_describe(await ws.receive(timeout=DEMO_RECEIVE_TIMEOUT)))

            payload = {"op": "greet", "n": 1}
            _say(f"> JSON {json.dumps(payload)}")
            await ws.send_json(payload)
            _say(f"< JSON {json.dumps(await ws.receive_json(timeout=DEMO_RECEIVE_TIMEOUT))}")

            _say("> PING b'are you there?'")
            await ws.ping(b"are you there?")
            _say(_describe(await ws.receive(timeout=DEMO_RECEIVE_TIMEOUT)))

            _say("> CLOSE code=1000")
            await ws.close()
        _say(f"= closed code={ws.close_code}")
    return 0


async def _interactive(args: argparse.Namespace) -> int:
    """Send stdin lines, print incoming messages; return the exit status."""
    async with trio_ws.open_ws(
        args.url,
        protocols=args.protocol,
        headers=args.header,
        origin=args.origin,
        heartbeat=args.heartbeat,
        compress=15 if args.compress else 0,
        ssl=not args.insecure,
        proxy=None if args.proxy == "none" else (args.proxy or True),
        unix_socket=args.unix_socket,
    ) as ws:
        extra = f" (subprotocol {ws.protocol!r})" if ws.protocol else ""
        _say(f"= connected to {args.url}{extra}")
        activity = _Activity()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_print_incoming, ws, nursery.cancel_scope, activity)
            await _send_stdin_lines(ws)
            activity.last = trio.current_time()
            # close() drops messages still in flight, so wait for replies to end first
            # (a deadline that moves with each reply, not a polled condition).
            while trio.current_time() < activity.last + args.linger:  # noqa: ASYNC110
                await trio.sleep_until(activity.last + args.linger)
            # End of input: close gracefully. Shielded so that the server's close frame,
            # arriving meanwhile, cannot cut our handshake short; close() is bounded by
            # ws_close itself.
            with trio.CancelScope(shield=True):
                await ws.close()
    exc = ws.exception()
    if exc is not None:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    _say(f"= closed code={ws.close_code}")
    return 1 if ws.close_code == 1006 else 0


async def _send_stdin_lines(ws: ClientWebSocket) -> None:
    """Send each line of stdin as TEXT until end of input or the connection ends."""
    while True:
        # The only thread in trio_ws: the portable way to read a terminal or pipe without
        # blocking Trio. Abandoned on cancellation (a blocked readline cannot be interrupted).
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        try:
            await ws.send_str(line.rstrip("\r\n"))
        except WSError:
            return  # the connection ended; _print_incoming reports how


class _Activity:
    """When the last message arrived (or end of input, if later)."""

    def __init__(self) -> None:
        self.last = trio.current_time()


async def _print_incoming(ws: ClientWebSocket, done: trio.CancelScope, activity: _Activity) -> None:
    """Print every message until the connection ends; stop the stdin loop if the server did."""
    while True:
        msg = await ws.receive()
        activity.last = trio.current_time()
        if msg.type is WSMsgType.CLOSING:
            return  # we are closing (end of input): the main task finishes the handshake
        if msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
            done.cancel()  # the server closed or the connection failed
            return
        _say(_describe(msg))


if __name__ == "__main__":
    sys.exit(main())
