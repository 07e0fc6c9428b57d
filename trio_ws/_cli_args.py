"""The command line's arguments: three parsers (client, ``serve``, ``bench``) and what they mean.

``trio-ws [options] [URL]`` is the client (without URL, the demonstration), as it always was;
``trio-ws serve ...`` and ``trio-ws bench ...`` are subcommands, recognised by their first
word (a URL is never ``serve`` or ``bench``), so the client's optional URL and the
subcommands do not fight over argparse's positional arguments.

Every check that needs no network happens here, before the event loop starts, and a bad value
is an argparse error (exit status 2): numbers, header syntax, PEM files (the TLS context is
built here). What trio_ws itself refuses before connecting (the URL, a header value) is
status 2 as well, by :func:`~trio_ws._cli_session.status_for_error`.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import ssl
import sys
from collections.abc import Callable
from typing import Final

import attrs
import trio

import trio_ws

from ._cli_output import BinaryView, View
from ._cli_session import EXIT_STATUS_HELP

__all__ = [
    "BENCH_N",
    "BENCH_SIZE",
    "PIPE_LINGER",
    "BenchConfig",
    "ClientConfig",
    "ServeConfig",
    "UsageError",
    "bench_config",
    "bench_parser",
    "client_config",
    "client_parser",
    "prog",
    "serve_config",
    "serve_parser",
]

#: Default number of messages per ``bench`` test.
BENCH_N: Final = 1000
#: Default size of a ``bench`` message, in bytes.
BENCH_SIZE: Final = 32
#: The linger after end of input when stdin is not a terminal (a person who types Ctrl-D
#: wants to leave; a script wants the replies to what it piped).
PIPE_LINGER: Final = 1.0

_USAGE: Final = """\
%(prog)s [options] [URL]
       %(prog)s serve [--host HOST] [--port PORT] [--tls] [--subprotocol P]
       %(prog)s bench [URL] [--n N] [--size BYTES] [connection options]"""

_CLIENT_EPILOG: Final = f"""\
commands:
  URL              interactive client: type a line to send it, Ctrl-D or Ctrl-C to close;
                   with stdin piped, each line is sent, then the client closes after --linger
  (no URL)         a demonstration against a local echo server (needs no network)
  serve            run a local echo server and print its URL (see serve --help)
  bench [URL]      measure round trips and throughput (see bench --help)

output: "< TYPE data" for a message received, "= ..." for the connection's state; errors
and warnings are one "error: ..." or "warning: ..." line on stderr (an error may be followed
by a "hint: ..." line).

examples:
  %(prog)s serve --port 8765 &
  %(prog)s ws://127.0.0.1:8765/ --subprotocol chat --header 'Authorization: Bearer x'
  echo '{{"op": "hi"}}' | %(prog)s ws://127.0.0.1:8765/ --json --timestamps

{EXIT_STATUS_HELP}"""


_SERVE_EPILOG: Final = """\
examples:
  %(prog)s
      listen on a free port of 127.0.0.1; the URL is the first line of output
  %(prog)s --port 8765 --tls
      serve wss://127.0.0.1:8765/ with a self-signed certificate (needs trustme)

exit status: 130 after Ctrl-C (SIGINT), 143 after SIGTERM (open connections are first
closed with code 1001), 4 if the address is in use, 1 if --tls lacks trustme, 2 on bad
arguments.
"""


class UsageError(Exception):
    """An option value that cannot be used (a PEM file that does not load...): status 2."""


def prog() -> str:
    """The program's name: ``trio-ws`` as the console script, else ``python -m trio_ws``."""
    return "trio-ws" if os.path.basename(sys.argv[0]) == "trio-ws" else "python -m trio_ws"


# ---------------------------------------------------------------------------------------------
# argument types: each raises ArgumentTypeError, which argparse turns into status 2


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _positive_seconds(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low}..{high}, got {value}")
        return value

    return convert


def _loopback(text: str) -> str:
    try:
        loopback = ipaddress.ip_address(text).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(
            f"the echo server listens on a loopback address only (127.0.0.1 or ::1), not {text!r}"
        )
    return text


# ---------------------------------------------------------------------------------------------
# parsers


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def client_parser() -> argparse.ArgumentParser:
    """The parser of ``trio-ws [options] [URL]``."""
    parser = argparse.ArgumentParser(
        prog=prog(),
        usage=_USAGE,
        description=(
            "Interactive WebSocket client: send each line of stdin as a TEXT message and\n"
            "print what the server sends. Without URL, run a demonstration against a local\n"
            "echo server."
        ),
        epilog=_CLIENT_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("url", nargs="?", metavar="URL", help="ws:// or wss:// URL")
    parser.add_argument(
        "--version",
        action="version",
        version=(
            f"trio_ws {trio_ws.__version__} (trio {trio.__version__}, Python "
            f"{sys.version.split()[0]})"
        ),
    )
    _add_connection_options(parser)
    display = parser.add_argument_group("display options")
    display.add_argument(
        "--json", action="store_true", help="pretty-print TEXT messages that are JSON"
    )
    display.add_argument(
        "--binary",
        choices=[view.value for view in BinaryView if view is not BinaryView.REPR],
        help="show BINARY messages in hex or base64 (default: as a Python bytes literal)",
    )
    display.add_argument(
        "--timestamps", action="store_true", help="prefix each line with the time (HH:MM:SS.mmm)"
    )
    display.add_argument(
        "--linger",
        type=_seconds,
        metavar="S",
        help=f"after end of input, keep printing replies until none came for S seconds, then "
        f"close (default: {PIPE_LINGER:g} when stdin is not a terminal, 0 when it is)",
    )
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show trio_ws's log records on stderr (-v: INFO, -vv: DEBUG, with every frame)",
    )


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    _add_verbose(parser)
    group = parser.add_argument_group("connection options")
    group.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    group.add_argument(
        "--subprotocol",
        "--protocol",
        dest="protocol",
        action="append",
        default=[],
        metavar="P",
        help="offer subprotocol P (repeatable, in order of preference)",
    )
    group.add_argument("--origin", metavar="O", help="send Origin: O")
    group.add_argument(
        "--heartbeat",
        type=_positive_seconds,
        metavar="S",
        help="ping when the server has been silent S seconds; fail if no answer in S/2",
    )
    group.add_argument(
        "--compress", action="store_true", help="offer permessage-deflate compression"
    )
    group.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="S",
        help="give up connecting (DNS, TCP, TLS, proxy, handshake) after S seconds (default 10)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate (prints a warning)",
    )
    group.add_argument(
        "--cafile", metavar="PEM", help="trust the certificate authorities in this PEM file"
    )
    group.add_argument(
        "--certfile", metavar="PEM", help="client certificate (PEM; may hold the key too)"
    )
    group.add_argument(
        "--keyfile", metavar="PEM", help="private key of --certfile, if not in that file"
    )
    group.add_argument(
        "--proxy",
        metavar="URL",
        help="tunnel through this proxy (http://, https://, socks5://, socks5h://, socks4://, "
        "socks4a://; credentials as user:pass@); 'none' connects directly; default: the "
        "proxy environment variables",
    )
    group.add_argument(
        "--unix-socket",
        metavar="PATH",
        help="connect to this Unix domain socket (the URL still gives Host and the TLS name)",
    )
    # Two flags, not --http2[=require]: an optional value would swallow the URL that follows.
    http2 = group.add_mutually_exclusive_group()
    http2.add_argument(
        "--http2",
        dest="http2",
        action="store_const",
        const=True,
        default=False,
        help="run the WebSocket over HTTP/2 (RFC 8441; h2c for ws://) when the server offers "
        "it, else over HTTP/1.1",
    )
    http2.add_argument(
        "--http2-only",
        dest="http2",
        action="store_const",
        const="require",
        help="as --http2, but fail (status 6) when the server does not offer it",
    )


def serve_parser() -> argparse.ArgumentParser:
    """The parser of ``trio-ws serve``."""
    parser = argparse.ArgumentParser(
        prog=f"{prog()} serve",
        description=(
            "Run trio_ws's embedded echo server (trio_ws.testing.open_test_server) until\n"
            "Ctrl-C: for a first program, a demonstration, or testing another tool. The\n"
            "first line on stdout is its URL; then one line per connection opened and\n"
            "closed. It echoes TEXT and BINARY messages, answers pings, accepts\n"
            "permessage-deflate, and closes open connections with 1001 (going away) when\n"
            "stopped."
        ),
        epilog=_SERVE_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        type=_loopback,
        help="loopback address to listen on: 127.0.0.1 (default) or ::1",
    )
    parser.add_argument(
        "--port",
        default=0,
        type=_int_in(0, 65535),
        help="port to listen on (default 0: a free port, shown in the URL)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve wss:// with a self-signed certificate made by the trustme package; its "
        "CA certificate is written to a temporary PEM file for --cafile (printed on line 2)",
    )
    parser.add_argument(
        "--subprotocol",
        action="append",
        default=[],
        metavar="P",
        help="accept subprotocol P when a client offers it (repeatable)",
    )
    _add_verbose(parser)
    return parser


def bench_parser() -> argparse.ArgumentParser:
    """The parser of ``trio-ws bench``."""
    parser = argparse.ArgumentParser(
        prog=f"{prog()} bench",
        description=(
            "Measure round trips (send a TEXT message, wait for its echo, N times) and\n"
            "throughput (send N messages without waiting, receive the N echoes) against an\n"
            "echo server such as `trio-ws serve`; without URL, against an embedded one.\n"
            "Progress is shown on stderr when it is a terminal; the summary table is\n"
            "printed on stdout."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=_formatter,
    )
    parser.add_argument(
        "url", nargs="?", metavar="URL", help="an echo server (default: an embedded one)"
    )
    parser.add_argument(
        "--n",
        type=_int_in(1, 10_000_000),
        default=BENCH_N,
        help=f"messages per test (default {BENCH_N})",
    )
    parser.add_argument(
        "--size",
        type=_int_in(0, 64 * 1024 * 1024),
        default=BENCH_SIZE,
        metavar="BYTES",
        help=f"size of each message (default {BENCH_SIZE})",
    )
    _add_connection_options(parser)
    return parser


# ---------------------------------------------------------------------------------------------
# what the arguments mean


@attrs.frozen
class ClientConfig:
    """The interactive client, from its arguments.

    Attributes:
        url: the URL, or ``None`` for the demonstration.
        options: the keywords for ``open_ws``.
        view: how messages are shown.
        linger: ``--linger``, or ``None`` for the default (depends on stdin).
        timestamps: ``--timestamps``.
        insecure: ``--insecure`` (a warning is printed).
        verbose: how many ``-v``.
    """

    url: str | None
    options: trio_ws.WSOptions
    view: View
    linger: float | None
    timestamps: bool
    insecure: bool
    verbose: int = 0


@attrs.frozen
class ServeConfig:
    """``serve``, from its arguments."""

    host: str
    port: int
    tls: bool
    subprotocols: tuple[str, ...]
    verbose: int = 0


@attrs.frozen
class BenchConfig:
    """``bench``, from its arguments (``url`` ``None``: an embedded server)."""

    url: str | None
    options: trio_ws.WSOptions
    n: int
    size: int
    insecure: bool
    verbose: int = 0


def client_config(args: argparse.Namespace) -> ClientConfig:
    """The client's configuration.

    Raises:
        UsageError: an option value that cannot be used (a PEM file...).
    """
    return ClientConfig(
        url=args.url,
        options=_connect_options(args),
        view=View(json=args.json, binary=BinaryView(args.binary or "repr")),
        linger=args.linger,
        timestamps=args.timestamps,
        insecure=args.insecure,
        verbose=args.verbose,
    )


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """``serve``'s configuration."""
    return ServeConfig(
        host=args.host,
        port=args.port,
        tls=args.tls,
        subprotocols=tuple(args.subprotocol),
        verbose=args.verbose,
    )


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """``bench``'s configuration.

    Raises:
        UsageError: an option value that cannot be used (a PEM file...).
    """
    options = _connect_options(args)
    # The default limit (4 MiB) would refuse the echo of a bigger --size.
    options["max_msg_size"] = max(4 * 1024 * 1024, args.size)
    return BenchConfig(
        url=args.url,
        options=options,
        n=args.n,
        size=args.size,
        insecure=args.insecure,
        verbose=args.verbose,
    )


def _connect_options(args: argparse.Namespace) -> trio_ws.WSOptions:
    return {
        "protocols": args.protocol,
        "headers": args.header,
        "origin": args.origin,
        "heartbeat": args.heartbeat,
        "compress": 15 if args.compress else 0,
        "connect_timeout": args.connect_timeout,
        "ssl": _tls(args),
        "proxy": None if args.proxy == "none" else (args.proxy or True),
        "unix_socket": args.unix_socket,
        "http2": args.http2,
    }


def _tls(args: argparse.Namespace) -> bool | ssl.SSLContext:
    """``ssl=`` for ``open_ws``: ``True`` (verify, the system's CAs) unless a TLS option says
    otherwise."""
    if args.keyfile and not args.certfile:
        raise UsageError("--keyfile needs --certfile")
    if not (args.insecure or args.cafile or args.certfile):
        return True
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--cafile {args.cafile}: {_reason(exc)}") from exc
    if args.certfile:
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as exc:
            files = args.certfile + (f" --keyfile {args.keyfile}" if args.keyfile else "")
            raise UsageError(f"--certfile {files}: {_reason(exc)}") from exc
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"not a usable PEM file ({exc.reason or exc})"
    return exc.strerror or str(exc)
