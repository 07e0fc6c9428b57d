"""The command line (`python -m trio_ws`), in-process and as a real subprocess.

In-process tests drive the client with :class:`FakeTerminal` (a scripted stdin and a captured
stdout); subprocess tests run ``python -m trio_ws`` with pipes, signals and a server of the
test's own. The pseudo-terminal tests (prompt, Ctrl-C, Ctrl-D) are in test_cli_pty.py.
Every wait is bounded and tied to an output line, never to a sleep.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trustme

import trio_ws
from trio_ws import WSMessage, WSMsgType
from trio_ws.__main__ import _bench, _client, _run, _serve, main
from trio_ws._cli_args import (
    BenchConfig,
    ClientConfig,
    ServeConfig,
    bench_config,
    bench_parser,
    client_config,
    client_parser,
)
from trio_ws._cli_bench import BenchResult, Progress, summary
from trio_ws._cli_client import LineSplitter, decode_line
from trio_ws._cli_output import BinaryView, Console, View, describe, escape, logging_to
from trio_ws._cli_session import ExitStatus, status_for_close, status_for_error
from trio_ws.testing import ServerConnection, open_test_server

from .proxies import http_proxy
from .servers import open_websockets_server

ROOT = Path(__file__).resolve().parents[1]
#: Bound on any one subprocess test (they take well under a second each).
GUARD = 20


# ---------------------------------------------------------------------------------------------
# arguments


def test_demo_shows_the_exchange(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a URL, the demo talks to a local echo server and exits 0."""
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("= echo server listening on ws://127.0.0.1:")
    assert out[1:] == [
        "= connected (subprotocol 'demo', permessage-deflate on)",
        "> TEXT 'hello'",
        "< TEXT 'hello'",
        "> BINARY b'\\x00\\x01'",
        "< BINARY b'\\x00\\x01'",
        '> JSON {"op": "greet", "n": 1}',
        '< JSON {"op": "greet", "n": 1}',
        "> PING b'are you there?'",
        "< PONG b'are you there?'",
        "> CLOSE code=1000",
        "= closed code=1000",
    ]


def test_help_lists_options_commands_and_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints every option, the subcommands and the exit-status table, and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--header",
        "--subprotocol",
        "--protocol",
        "--origin",
        "--heartbeat",
        "--compress",
        "--connect-timeout",
        "--insecure",
        "--cafile",
        "--certfile",
        "--keyfile",
        "--json",
        "--binary",
        "--timestamps",
        "--linger",
        "--proxy",
        "--unix-socket",
        "--version",
        "serve",
        "bench",
    ):
        assert option in out
    for status in ExitStatus:
        assert re.search(rf"^ *{status.value} ", out, re.MULTILINE), status


@pytest.mark.parametrize("command", ["serve", "bench"])
def test_subcommand_help_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --help` and `bench --help` describe the subcommand."""
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"{command} [-h]" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the versions of trio_ws, trio and Python, and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"trio_ws {trio_ws.__version__} (trio ")


def test_docs_list_every_exit_status() -> None:
    """docs/cli.rst has a row for each exit status."""
    text = (ROOT / "docs" / "cli.rst").read_text(encoding="utf-8")
    for status in ExitStatus:
        assert re.search(rf"^ *{status.value} ", text, re.MULTILINE), status


@pytest.mark.parametrize(
    "argv",
    [
        ["ws://x/", "--header", "no colon"],
        ["--heartbeat", "soon"],
        ["ws://x/", "--heartbeat", "-1"],
        ["ws://x/", "--connect-timeout", "0"],
        ["ws://x/", "--linger", "nan"],
        ["ws://x/", "--binary", "octal"],
        ["ws://x/", "--keyfile", "key.pem"],
        ["ws://x/", "--cafile", "/nonexistent/ca.pem"],
        ["serve", "--host", "0.0.0.0"],
        ["serve", "--port", "70000"],
        ["bench", "--n", "0"],
        ["bench", "--size", "-1"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed or unusable options are argparse errors (status 2), before any connection."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err
    assert "Traceback" not in err


def test_unusable_pem_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --certfile that is not PEM is named in a usage error (status 2)."""
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(SystemExit) as info:
        main(["wss://x/", "--certfile", str(bad)])
    assert info.value.code == 2
    assert f"--certfile {bad}: not a usable PEM file" in capsys.readouterr().err


def test_bad_url_exits_2_with_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL trio_ws refuses is a bad argument: one `error:` line, no traceback, status 2."""
    assert main(["ftp://example.com/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_refused_connection_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    """A refused TCP connection gives one `error:` line on stderr and status 4."""
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert main([f"ws://127.0.0.1:{port}/"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# exit statuses, output and input as units


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (trio_ws.InvalidURL("bad"), ExitStatus.USAGE),
        (trio_ws.InvalidArgument("bad"), ExitStatus.USAGE),
        (trio_ws.WSConnectionError("refused"), ExitStatus.UNREACHABLE),
        (trio_ws.WSProxyError("407"), ExitStatus.UNREACHABLE),
        (trio_ws.WSTLSError("cert"), ExitStatus.TLS),
        (trio_ws.WSServerHandshakeError("403", status=403), ExitStatus.REJECTED),
        (trio_ws.WSRedirectError("loop"), ExitStatus.REJECTED),
        (trio_ws.ConnectTimeoutError("slow"), ExitStatus.TIMEOUT),
        (trio_ws.ProxyTimeoutError("slow proxy"), ExitStatus.TIMEOUT),
        (trio_ws.ServerTimeoutError("silent"), ExitStatus.TIMEOUT),
        (trio_ws.WSTimeoutError("close"), ExitStatus.TIMEOUT),
        (trio_ws.WSProtocolError("masked", 1002), ExitStatus.ERROR),
        (trio_ws.WSClosedError("closed"), ExitStatus.ERROR),
    ],
)
def test_status_for_error(exc: BaseException, status: ExitStatus) -> None:
    """Each kind of failure has its status; the most specific kind wins."""
    assert status_for_error(exc) is status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (1000, ExitStatus.OK),
        (1001, ExitStatus.OK),
        (1008, ExitStatus.SERVER_CLOSED),
        (4000, ExitStatus.SERVER_CLOSED),
        (1006, ExitStatus.ERROR),
        (None, ExitStatus.ERROR),
    ],
)
def test_status_for_close(code: int | None, status: ExitStatus) -> None:
    """1000 and 1001 are a normal end, another code is status 3, a lost connection 1."""
    assert status_for_close(code) is status


@pytest.mark.parametrize(
    ("msg", "view", "lines"),
    [
        (WSMessage(WSMsgType.TEXT, "hi", None), View(), ["< TEXT 'hi'"]),
        (WSMessage(WSMsgType.TEXT, "\x1b[2J", None), View(), ["< TEXT '\\x1b[2J'"]),
        (WSMessage(WSMsgType.TEXT, "42", None), View(json=True), ["< JSON 42"]),
        (WSMessage(WSMsgType.TEXT, "not json", None), View(json=True), ["< TEXT 'not json'"]),
        (
            WSMessage(WSMsgType.TEXT, '{"a": [1], "s": "\\u001b\\u0085é"}', None),
            View(json=True),
            ["< JSON", "  {", '    "a": [', "      1", "    ],", '    "s": "\\u001b\\x85é"', "  }"],
        ),
        (WSMessage(WSMsgType.BINARY, b"\x00\xff", None), View(), ["< BINARY b'\\x00\\xff'"]),
        (
            WSMessage(WSMsgType.BINARY, b"\x00\xff", None),
            View(binary=BinaryView.HEX),
            ["< BINARY 00ff"],
        ),
        (
            WSMessage(WSMsgType.BINARY, b"\x00\xff", None),
            View(binary=BinaryView.BASE64),
            ["< BINARY AP8="],
        ),
        (WSMessage(WSMsgType.BINARY, b"", None), View(binary=BinaryView.HEX), ["< BINARY"]),
        (WSMessage(WSMsgType.CLOSE, 1000, ""), View(), ["< CLOSE code=1000"]),
        (WSMessage(WSMsgType.CLOSE, 4000, "bye"), View(), ["< CLOSE code=4000 reason='bye'"]),
    ],
)
def test_describe(msg: WSMessage, view: View, lines: list[str]) -> None:
    """Messages print as repr, pretty JSON, hex or base64; control characters never raw."""
    assert describe(msg, view) == lines


def test_escape_leaves_printable_text() -> None:
    """escape() turns C0, DEL and C1 controls into escapes and keeps the rest."""
    assert escape("a\x1b\x7f\x85\u00a0é") == "a\\x1b\\x7f\\x85\u00a0é"


def test_line_splitter() -> None:
    """Lines end at LF (CR LF too); a line split across reads is joined; the last one counts
    even without its newline."""
    splitter = LineSplitter()
    assert splitter.feed(b"one\r\ntw") == [b"one"]
    assert splitter.feed(b"o\n\nthree") == [b"two", b""]
    assert splitter.finish() == [b"three"]
    assert splitter.finish() == []


def test_decode_line() -> None:
    """Valid UTF-8 decodes silently; invalid bytes become U+FFFD and the warning names them."""
    assert decode_line("é".encode(), 1) == ("é", None)
    text, warning = decode_line(b"ok\xffno", 3)
    assert text == "ok\ufffdno"
    assert warning is not None
    assert "input line 3 is not valid UTF-8 (byte 0xff at offset 2)" in warning


class Recorder:
    """A text stream that records what was written, as a terminal would receive it."""

    def __init__(self, *, broken: bool = False, tty: bool = False) -> None:
        self.text = ""
        self.broken = broken
        self.tty = tty

    def write(self, text: str) -> int:
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def test_console_on_a_terminal_prints_above_the_prompt() -> None:
    """With a prompt shown, lines are inserted above the input line (stdout, and stderr when it
    is the terminal too); end_input erases the prompt line."""
    out, err = Recorder(), Recorder(tty=True)
    console = Console(out, err, terminal=True)
    console.say("= before")
    console.prompt()
    console.prompt()  # shown once
    console.say("< TEXT 'x'")
    console.warn("careful")
    console.line_entered()
    console.say("< plain")
    console.prompt()
    console.end_input()
    console.say("= closed")
    above = "\x1b7\n\x1b[A\x1b[L{}\n\x1b8\x1b[B"
    assert out.text == (
        "= before\n> " + above.format("< TEXT 'x'") + "< plain\n> \r\x1b[K= closed\n"
    )
    assert err.text == above.format("warning: careful")


def test_console_without_terminal_has_no_prompt_or_escapes() -> None:
    """Not on a terminal: no prompt, plain lines; --timestamps prefixes each stdout line."""
    out, err = Recorder(), Recorder()
    console = Console(out, err, timestamps=True)
    console.prompt()
    console.say("< a", "  b")
    console.end_input()
    console.error("bad\x1b")
    assert re.fullmatch(r"(\d\d:\d\d:\d\d\.\d\d\d) < a\n\1   b\n", out.text)
    assert err.text == "error: bad\\x1b\n"


def test_console_reports_a_closed_stdout_once() -> None:
    """BrokenPipeError on stdout calls on_broken once; later lines are dropped silently."""
    calls: list[str] = []
    console = Console(Recorder(broken=True), Recorder())
    console.on_broken = lambda: calls.append("broken")
    console.say("one")
    console.say("two")
    assert calls == ["broken"]


def test_progress_bar_only_on_a_terminal() -> None:
    """The progress bar draws on a terminal and erases itself; elsewhere it writes nothing."""
    tty = Recorder(tty=True)
    progress = Progress(tty, enabled=True)
    progress.update("round trips", 1, 4)
    progress.update("round trips", 2, 4)  # too soon after the first: not drawn
    progress.update("round trips", 4, 4)  # 100%: always drawn
    progress.clear()
    assert tty.text.count("\r") == 3
    assert "[" + "#" * 30 + "] 4/4" in tty.text
    assert tty.text.endswith("\r\x1b[K")
    pipe = Recorder()
    progress = Progress(pipe, enabled=False)
    progress.update("pipelined", 1, 1)
    progress.clear()
    assert pipe.text == ""


def test_bench_summary_table() -> None:
    """The summary gives messages, seconds, msg/s and MiB/s per test, and the latencies."""
    result = BenchResult(n=4, size=1024, round_trips=(0.001, 0.002, 0.003, 0.004), pipelined=0.002)
    lines = summary("ws://h/", result, compress=0)
    assert lines[0] == "= bench ws://h/: n=4, size=1024 bytes, permessage-deflate off"
    assert lines[1].split() == ["test", "messages", "seconds", "msg/s", "MiB/s"]
    assert lines[2].split() == ["round", "trips", "4", "0.010", "400", "0.39"]
    assert lines[3].split() == ["pipelined", "4", "0.002", "2000", "1.95"]
    assert lines[4] == ("round-trip latency (ms): min 1.000, median 2.500, p99 4.000, max 4.000")


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        (0, []),
        (1, ["trio_ws.client INFO info"]),
        (2, ["trio_ws.client DEBUG debug", "trio_ws.client INFO info"]),
    ],
)
def test_logging_to_shows_records_only_when_verbose(verbosity: int, shown: list[str]) -> None:
    """-v shows trio_ws's records from INFO, -vv from DEBUG, through the console; without it
    they are dropped (no last-resort handler repeats the `error:` line); the logger is left
    as it was."""
    package = logging.getLogger("trio_ws")
    level, handlers = package.level, list(package.handlers)
    err = Recorder()
    with logging_to(Console(Recorder(), err), verbosity):
        logging.getLogger("trio_ws.client").debug("debug")
        logging.getLogger("trio_ws.client").info("info")
    assert err.text.splitlines() == shown
    assert (package.level, package.handlers) == (level, handlers)


def test_run_turns_a_stray_keyboard_interrupt_into_130() -> None:
    """Ctrl-C outside the session's own signal handling (Trio's KeyboardInterrupt, alone or
    through a nursery) is status 130, not a traceback; other errors still propagate."""

    async def direct() -> int:
        raise KeyboardInterrupt

    async def in_a_task() -> int:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(direct)
        return 0

    async def bug() -> int:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(direct)
            raise RuntimeError("bug")

    assert _run(direct) == ExitStatus.INTERRUPTED
    assert _run(in_a_task) == ExitStatus.INTERRUPTED
    with pytest.raises(BaseExceptionGroup):
        _run(bug)


# ---------------------------------------------------------------------------------------------
# the client in-process


class FakeTerminal:
    """The CLI's stdin and stdout, scripted like `expect`.

    ``script`` holds ``(wait_for, line)`` pairs: read() returns ``line`` once the output line
    ``wait_for`` (if not None) has been printed, so the test never races the CLI; ``""`` is
    end of input. With the script used up, read() blocks like a terminal nobody types in.
    """

    def __init__(self, script: Sequence[tuple[str | None, str]] = ()) -> None:
        self.script = list(script)
        self.lines: list[str] = []
        self._partial = ""
        self._changed = trio.Event()

    def write(self, text: str) -> int:
        *done, self._partial = (self._partial + text).split("\n")
        self.lines.extend(done)
        self._changed.set()
        self._changed = trio.Event()
        return len(text)

    def flush(self) -> None:
        pass

    async def read(self) -> bytes:
        if not self.script:
            await trio.sleep_forever()
        wait_for, line = self.script.pop(0)
        with trio.fail_after(10):
            while wait_for is not None and wait_for not in self.lines:
                await self._changed.wait()
        return line.encode()


def config(*argv: str) -> ClientConfig:
    return client_config(client_parser().parse_args(argv))


async def run_client(
    argv: Sequence[str], script: Sequence[tuple[str | None, str]] = ()
) -> tuple[int, list[str]]:
    """Run the client in-process on a FakeTerminal: the status and the stdout lines.

    Without ``--linger``, 0: the scripts end input only once the replies they wait for are
    printed (the default linger is tested with a real pipe, below).
    """
    terminal = FakeTerminal(script)
    if "--linger" not in argv:
        argv = [*argv, "--linger", "0"]
    with trio.fail_after(GUARD):
        status = await _client(config(*argv), terminal, terminal)
    return status, terminal.lines


async def test_stdin_lines_are_sent_and_replies_printed() -> None:
    """Each stdin line goes out as TEXT, replies print as `< TEXT`, EOF closes with 1000."""
    script = [(None, "hi\n"), ("< TEXT 'hi'", "there\r\n"), ("< TEXT 'there'", "")]
    async with open_test_server(subprotocols=["chat"], compression=True) as server:
        url = server.url_for("/room")
        status, lines = await run_client(
            [
                url,
                "--header",
                "X-Token: abc",
                "--subprotocol",
                "chat",
                "--origin",
                "http://origin.test",
                "--heartbeat",
                "30",
                "--compress",
                "--connect-timeout",
                "5",
            ],
            script,
        )
    assert status == 0
    assert lines == [
        f"= connected to {url} (subprotocol 'chat')",
        "< TEXT 'hi'",
        "< TEXT 'there'",
        "= closed code=1000",
    ]
    request = server.requests[0]
    assert request.path == "/room"
    assert request.header("X-Token") == "abc"
    assert request.header("Origin") == "http://origin.test"
    assert request.subprotocols == ["chat"]
    assert request.extensions[0].startswith("permessage-deflate")
    assert server.connections[0].close_code == 1000


async def test_display_options() -> None:
    """--json pretty-prints JSON, --binary shows hex or base64, --timestamps prefixes lines."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send_str('{"op": "tick", "n": [1]}')
        await conn.send_bytes(b"\x01\x02")
        await conn.close()

    async with open_test_server(handler) as server:
        status, lines = await run_client([server.url, "--json", "--binary", "hex"])
        assert status == 0
        assert lines[1:] == [
            "< JSON",
            "  {",
            '    "op": "tick",',
            '    "n": [',
            "      1",
            "    ]",
            "  }",
            "< BINARY 0102",
            "< CLOSE code=1000",
            "= closed code=1000",
        ]
        status, lines = await run_client([server.url, "--binary", "base64", "--timestamps"])
        assert status == 0
        assert all(re.match(r"\d\d:\d\d:\d\d\.\d\d\d ", line) for line in lines)
        assert lines[1].endswith('< TEXT \'{"op": "tick", "n": [1]}\'')
        assert base64.b64decode(lines[2].rpartition(" ")[2]) == b"\x01\x02"


async def test_proxy_and_unix_socket_options(tmp_path: Path) -> None:
    """--proxy tunnels through a real proxy; --unix-socket reaches a server on a socket."""
    async with open_test_server() as server, http_proxy() as proxy:
        status, _ = await run_client(
            [server.url, "--proxy", proxy.url], [(None, "via proxy\n"), ("< TEXT 'via proxy'", "")]
        )
        assert status == 0
        assert len(proxy.targets) == 1
    path = tmp_path / "s.sock"
    async with open_websockets_server(unix_path=path):
        status, lines = await run_client(
            ["ws://sidecar/echo", "--unix-socket", str(path), "--proxy", "none"],
            [(None, "via unix\n"), ("< TEXT 'via unix'", "")],
        )
    assert status == 0
    assert "< TEXT 'via unix'" in lines


async def test_missing_unix_socket_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing at the --unix-socket path: could not connect (status 4)."""
    status, _ = await run_client(["ws://x/", "--unix-socket", str(tmp_path / "none.sock")])
    assert status == ExitStatus.UNREACHABLE
    assert capsys.readouterr().err.startswith("error: ")


async def test_server_close_with_another_code_exits_3() -> None:
    """The server's close frame (4000) ends the session with the code printed, status 3."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send_str("welcome")
        await conn.close(4000, "bye")

    async with open_test_server(handler) as server:
        status, lines = await run_client([server.url])
    assert status == ExitStatus.SERVER_CLOSED
    assert lines[1:] == [
        "< TEXT 'welcome'",
        "< CLOSE code=4000 reason='bye'",
        "= closed code=4000",
    ]


async def test_server_going_away_exits_0() -> None:
    """1001 (going away) from the server is a normal end: status 0."""

    async def handler(conn: ServerConnection) -> None:
        await conn.close(1001)

    async with open_test_server(handler) as server:
        status, lines = await run_client([server.url])
    assert status == 0
    assert lines[-1] == "= closed code=1001"


async def test_lost_connection_exits_1() -> None:
    """A connection dropped without a close frame prints code 1006 and exits 1."""

    async def handler(conn: ServerConnection) -> None:
        await conn.aclose()

    async with open_test_server(handler) as server:
        status, lines = await run_client([server.url])
    assert status == ExitStatus.ERROR
    assert lines[-1] == "= closed code=1006"


async def test_protocol_error_prints_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that breaks the protocol ends the program with `error:` on stderr, status 1."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send_raw(b"\x81\x82abcd\x00\x00")  # masked server frame: RFC 6455 §5.1

    async with open_test_server(handler) as server:
        status, _ = await run_client([server.url])
    assert status == ExitStatus.ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


async def test_bad_header_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A header value trio_ws refuses (a control character) is a bad argument: status 2."""
    async with open_test_server() as server:
        status, _ = await run_client([server.url, "--header", "X-Bad: a\x01b"])
    assert status == ExitStatus.USAGE
    assert capsys.readouterr().err.startswith("error: ")
    assert server.requests == []


async def test_rejected_handshake_exits_6(capsys: pytest.CaptureFixture[str]) -> None:
    """An HTTP answer other than 101 is status 6, with the status in the error line."""
    async with open_test_server(reject=(403, [], b"go away")) as server:
        status, _ = await run_client([server.url])
    assert status == ExitStatus.REJECTED
    assert "403" in capsys.readouterr().err


async def test_connect_timeout_exits_7(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that accepts TCP and never answers the upgrade: --connect-timeout, status 7."""

    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, host="127.0.0.1"), silent, 0
        )
        port = listeners[0].socket.getsockname()[1]
        status, _ = await run_client([f"ws://127.0.0.1:{port}/", "--connect-timeout", "0.2"])
        nursery.cancel_scope.cancel()
    assert status == ExitStatus.TIMEOUT
    assert capsys.readouterr().err.startswith("error: ")


async def test_heartbeat_timeout_exits_7(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that never answers pings fails the heartbeat: status 7."""

    async def handler(conn: ServerConnection) -> None:
        await trio.sleep_forever()

    async with open_test_server(handler, autopong=False) as server:
        status, _ = await run_client([server.url, "--heartbeat", "0.2"])
    assert status == ExitStatus.TIMEOUT
    assert capsys.readouterr().err.startswith("error: ")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def tls_server(ca: trustme.CA, *, client_cert: bool = False) -> AsyncIterator[str]:
    """An echo server with a certificate for 127.0.0.1 from ``ca``; its URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    async with open_test_server(ssl_context=context) as server:
        yield server.url


async def test_tls_options(
    ca: trustme.CA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An untrusted certificate is status 5; --cafile trusts it; --insecure skips the check
    with a warning."""
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    script = [(None, "secret\n"), ("< TEXT 'secret'", "")]
    async with tls_server(ca) as url:
        status, _ = await run_client([url])
        assert status == ExitStatus.TLS
        error, hint = capsys.readouterr().err.splitlines()
        assert error.startswith("error: TLS handshake with 127.0.0.1:")
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert hint.startswith("hint: --cafile PEM trusts a private certificate authority")
        assert (await run_client([url, "--cafile", str(cafile)], script))[0] == 0
        assert capsys.readouterr().err == ""
        assert (await run_client([url, "--insecure"], script))[0] == 0
        assert capsys.readouterr().err.startswith("warning: --insecure: ")


async def test_client_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    """--certfile (with --keyfile) presents a client certificate to a server that needs one;
    without it the session fails."""
    cafile, certfile, keyfile = tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem"
    ca.cert_pem.write_to_path(str(cafile))
    cert = ca.issue_cert("client.example")
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    script = [(None, "me\n"), ("< TEXT 'me'", "")]
    async with tls_server(ca, client_cert=True) as url:
        argv = [url, "--cafile", str(cafile), "--certfile", str(certfile)]
        assert (await run_client([*argv, "--keyfile", str(keyfile)], script))[0] == 0
        # TLS 1.3 refuses the missing certificate after the client's half of the handshake;
        # Python's TLS servers then close without flushing their alert, so the client may see
        # a closed connection (6) rather than "certificate required" (5).
        assert (await run_client(argv[:3]))[0] in (ExitStatus.TLS, ExitStatus.REJECTED)


async def test_insecure_over_plain_ws_still_warns(capsys: pytest.CaptureFixture[str]) -> None:
    """--insecure always prints its warning (a redirect may lead to wss://)."""
    async with open_test_server() as server:
        assert (await run_client([server.url, "--insecure"], [(None, "")]))[0] == 0
    assert capsys.readouterr().err.startswith("warning: --insecure")


# ---------------------------------------------------------------------------------------------
# serve and bench in-process


async def test_serve_address_in_use_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --port P` with P taken: one error line, status 4."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = ServeConfig(host="127.0.0.1", port=port, tls=False, subprotocols=())
        assert await _serve(config, Console(sys.stdout, sys.stderr)) == ExitStatus.UNREACHABLE
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1 port {port}: ")
    assert err.count("\n") == 1


async def test_serve_tls_without_trustme_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --tls` without trustme says to install it (status 1)."""
    monkeypatch.setitem(sys.modules, "trustme", None)  # `import trustme` raises ImportError
    config = ServeConfig(host="127.0.0.1", port=0, tls=True, subprotocols=())
    assert await _serve(config, Console(sys.stdout, sys.stderr)) == ExitStatus.ERROR
    assert "pip install trustme" in capsys.readouterr().err


def bench_args(*argv: str) -> BenchConfig:
    return bench_config(bench_parser().parse_args(argv))


async def test_bench_against_its_own_server(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench` without URL starts an echo server, measures, prints the table, exits 0."""
    with trio.fail_after(GUARD):
        status = await _bench(bench_args("--n", "20", "--size", "100", "--compress"))
    assert status == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("= echo server listening on ws://127.0.0.1:")
    assert out[2].endswith(": n=20, size=100 bytes, permessage-deflate on")
    assert out[4].split()[:3] == ["round", "trips", "20"]
    assert out[5].split()[:2] == ["pipelined", "20"]
    assert out[6].startswith("round-trip latency (ms): min ")
    assert out[7] == "= closed code=1000"


async def test_bench_needs_an_echo(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that answers something else fails the bench (status 1, one error line)."""

    async def handler(conn: ServerConnection) -> None:
        while (await conn.receive()).type is WSMsgType.TEXT:
            await conn.send_str("no")

    async with open_test_server(handler) as server:
        status = await _bench(bench_args(server.url, "--n", "5"))
    assert status == ExitStatus.ERROR
    assert "bench needs an echo server" in capsys.readouterr().err


async def test_bench_stops_when_the_server_closes(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that closes with 1008 mid-bench: no table, `= closed code=1008`, status 3."""

    async def handler(conn: ServerConnection) -> None:
        await conn.receive()
        await conn.close(1008)

    async with open_test_server(handler) as server:
        status = await _bench(bench_args(server.url, "--n", "5"))
    assert status == ExitStatus.SERVER_CLOSED
    assert capsys.readouterr().out.splitlines()[-1] == "= closed code=1008"


# ---------------------------------------------------------------------------------------------
# subprocesses: pipes, signals, serve


@asynccontextmanager
async def cli_process(*args: str) -> AsyncIterator[trio.Process]:
    """``python -m trio_ws *args`` with piped stdin, stdout and stderr; killed if the test
    fails before it exits."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_ws", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:  # pragma: no cover - only when the test fails
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                await trio.aclose_forcefully(pipe)


async def read_until(stream: trio.abc.ReceiveStream | None, marker: bytes | None) -> bytes:
    """Read until the data ends with `marker` (None: until EOF)."""
    assert stream is not None
    data = b""
    while marker is None or not data.endswith(marker):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


class Lines:
    """A subprocess's output read line by line (a read may bring several lines)."""

    def __init__(self, stream: trio.abc.ReceiveStream | None) -> None:
        assert stream is not None
        self._stream = stream
        self._buffer = b""

    async def line(self) -> str:
        """The next line, without its newline."""
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            assert chunk, f"end of output before a whole line: {self._buffer!r}"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    async def rest(self) -> str:
        """Everything up to the end of output."""
        return (self._buffer + await read_until(self._stream, None)).decode()


async def test_subprocess_sends_stdin_and_exits_0() -> None:
    """`python -m trio_ws URL`: a stdin line is echoed and printed; end of input exits 0."""
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            async with cli_process(server.url) as proc:
                assert proc.stdin is not None
                await proc.stdin.send_all(b"hi\n")
                # End input only once the echo is printed: close() drops what is in flight.
                out = await read_until(proc.stdout, b"< TEXT 'hi'\n")
                await proc.stdin.aclose()
                out += await read_until(proc.stdout, None)
                err = await read_until(proc.stderr, None)
                await proc.wait()
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        f"= connected to {server.url}",
        "< TEXT 'hi'",
        "= closed code=1000",
    ]
    assert server.connections[0].received[0].data == "hi"


async def test_piped_input_waits_for_the_replies() -> None:
    """`echo ... | python -m trio_ws URL`: replies to piped lines are printed before closing;
    a line that is not UTF-8 is sent with U+FFFD and a warning."""
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            result = await trio.run_process(
                [sys.executable, "-m", "trio_ws", server.url, "--linger", "0.3"],
                stdin=b"hi\nbad \xff\xfe line\nthere",
                capture_stdout=True,
                capture_stderr=True,
                cwd=ROOT,
            )
    assert result.stdout.decode().splitlines() == [
        f"= connected to {server.url}",
        "< TEXT 'hi'",
        "< TEXT 'bad \ufffd\ufffd line'",
        "< TEXT 'there'",
        "= closed code=1000",
    ], result.stderr
    assert result.stderr.decode().splitlines() == [
        "warning: input line 2 is not valid UTF-8 (byte 0xff at offset 4); sent with U+FFFD "
        "in place of the invalid bytes"
    ]
    assert [m.data for m in server.connections[0].received] == [
        "hi",
        "bad \ufffd\ufffd line",
        "there",
        1000,
    ]


async def test_stdout_closed_by_its_reader_exits_141() -> None:
    """The reader of stdout goes away (`| head`): the client closes with 1000 and exits 141,
    silently (no BrokenPipeError traceback)."""
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            async with cli_process(server.url) as proc:
                assert proc.stdin is not None
                assert proc.stdout is not None
                await proc.stdin.send_all(b"one\n")
                await read_until(proc.stdout, b"< TEXT 'one'\n")
                await proc.stdout.aclose()  # the reader is gone
                await proc.stdin.send_all(b"two\n")  # its echo cannot be printed
                err = await read_until(proc.stderr, None)
                await proc.wait()
    assert proc.returncode == ExitStatus.OUTPUT_CLOSED, err
    assert err == b""
    assert server.connections[0].close_code == 1000


async def test_piped_into_head(tmp_path: Path) -> None:
    """`trio-ws URL | head -n 1` shows one line and no traceback, however the race ends."""
    err = tmp_path / "err.txt"
    command = f"{sys.executable} -m trio_ws {{url}} --linger 0.2 2>{err} | head -n 1"
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            result = await trio.run_process(
                ["sh", "-c", command.format(url=server.url)],
                stdin=b"a\nb\nc\n",
                capture_stdout=True,
                cwd=ROOT,
            )
    assert result.stdout.decode() == f"= connected to {server.url}\n"
    assert err.read_text() == ""


async def test_sigint_while_connecting_exits_130() -> None:
    """Ctrl-C (SIGINT) while the handshake is pending: status 130 at once, no traceback."""
    accepted = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        accepted.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, host="127.0.0.1"), silent, 0
        )
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(GUARD):
            async with cli_process(f"ws://127.0.0.1:{port}/") as proc:
                await accepted.wait()
                proc.send_signal(signal.SIGINT)
                out = await read_until(proc.stdout, None)
                err = await read_until(proc.stderr, None)
                await proc.wait()
        nursery.cancel_scope.cancel()
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert (out, err) == (b"", b"")


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, ExitStatus.INTERRUPTED), (signal.SIGTERM, ExitStatus.TERMINATED)],
)
async def test_signal_during_session_closes_with_1000(signum: int, status: int) -> None:
    """SIGINT or SIGTERM in a piped session: close frame 1000, `= closed`, status 130 or 143."""
    async with open_test_server() as server:
        with trio.fail_after(GUARD):
            async with cli_process(server.url) as proc:
                await read_until(proc.stdout, f"= connected to {server.url}\n".encode())
                proc.send_signal(signum)
                out = await read_until(proc.stdout, None)
                err = await read_until(proc.stderr, None)
                await proc.wait()
    assert proc.returncode == status, err
    assert (out, err) == (b"= closed code=1000\n", b"")
    assert server.connections[0].close_code == 1000


async def test_second_sigint_abandons_the_closing_handshake() -> None:
    """A server that never answers our close frame: a second Ctrl-C ends the wait at once
    (status 130, code 1006 shown) instead of holding the user for ws_close (10 s)."""
    got_close = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        assert (await conn.receive()).type is WSMsgType.CLOSE
        got_close.set()
        await trio.sleep_forever()  # never answers

    async with open_test_server(handler) as server:
        with trio.fail_after(5):  # well under ws_close
            async with cli_process(server.url) as proc:
                await read_until(proc.stdout, f"= connected to {server.url}\n".encode())
                proc.send_signal(signal.SIGINT)
                await got_close.wait()
                proc.send_signal(signal.SIGINT)
                out = await read_until(proc.stdout, None)
                err = await read_until(proc.stderr, None)
                await proc.wait()
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert (out, err) == (b"= closed code=1006\n", b"")


async def test_subprocess_bad_url_exits_2() -> None:
    """`python -m trio_ws` with a bad URL prints `error:` on stderr and exits 2."""
    result = await trio.run_process(
        [sys.executable, "-m", "trio_ws", "ws://"],
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.decode().startswith("error: ")
    assert b"Traceback" not in result.stderr


async def test_serve_then_bench_then_sigint(ca: trustme.CA) -> None:
    """`serve` prints its URL first and echoes; `bench URL` runs against it; SIGINT closes the
    open connection with 1001 and exits 130 without a traceback."""
    with trio.fail_after(GUARD):
        async with cli_process("serve", "--subprotocol", "chat") as server:
            stdout = Lines(server.stdout)
            url = await stdout.line()
            assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/", url)
            bench = await trio.run_process(
                [sys.executable, "-m", "trio_ws", "bench", url, "--n", "20"],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                cwd=ROOT,
            )
            assert bench.returncode == 0, bench.stderr
            assert b"round trips" in bench.stdout
            assert bench.stderr == b""  # no progress bar: stderr is not a terminal
            async with trio_ws.open_ws(url, protocols=["chat"]) as ws:
                assert ws.protocol == "chat"
                await ws.send_str("ping")
                assert (await ws.receive()).data == "ping"
                server.send_signal(signal.SIGINT)
                closing = await ws.receive()
            assert (closing.type, closing.data) == (WSMsgType.CLOSE, 1001)
            out = await stdout.rest()
            err = await read_until(server.stderr, None)
            await server.wait()
    assert server.returncode == ExitStatus.INTERRUPTED, err
    assert err == b""
    assert out.splitlines()[-2:] == [
        "= connection 2 closed: code=1001",
        "= echo server stopped",
    ]


async def test_serve_tls_then_sigterm() -> None:
    """`serve --tls` writes its CA for --cafile (line 2); a client trusting it connects;
    SIGTERM stops the server with status 143."""
    with trio.fail_after(GUARD):
        async with cli_process("serve", "--tls") as server:
            stdout = Lines(server.stdout)
            url = await stdout.line()
            assert url.startswith("wss://127.0.0.1:")
            line = await stdout.line()
            cafile = re.fullmatch(r"= TLS certificate authority: (.+) \(clients: --cafile\)", line)
            assert cafile is not None
            context = ssl.create_default_context(cafile=cafile[1])
            async with trio_ws.open_ws(url, ssl=context) as ws:
                await ws.send_str("over tls")
                assert (await ws.receive()).data == "over tls"
            server.send_signal(signal.SIGTERM)
            err = await read_until(server.stderr, None)
            await server.wait()
    assert server.returncode == ExitStatus.TERMINATED, err
    assert not await trio.Path(cafile[1]).exists()  # the temporary CA file is removed
