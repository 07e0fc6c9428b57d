"""The command line (`python -m trio_ws`), in-process and as a real subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from trio_ws.__main__ import _interactive, _parser, main
from trio_ws.testing import ServerConnection, open_test_server

from .proxies import http_proxy
from .servers import open_websockets_server

ROOT = Path(__file__).resolve().parents[1]


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


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints the usage and the options and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--header", "--protocol", "--heartbeat", "--compress", "--insecure"):
        assert option in out


@pytest.mark.parametrize("argv", [["ws://x/", "--header", "no colon"], ["--heartbeat", "soon"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed options are argparse errors (status 2)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_url_prints_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL trio_ws refuses gives one `error:` line on stderr, no traceback, status 1."""
    assert main(["ftp://example.com/"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_refused_connection_prints_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A refused TCP connection gives one `error:` line on stderr and status 1."""
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert main([f"ws://127.0.0.1:{port}/"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err


class FakeTerminal:
    """The CLI's stdin and stdout, scripted like `expect`.

    ``script`` holds ``(wait_for, line)`` pairs: readline() returns ``line`` once the output
    line ``wait_for`` (if not None) has been printed, so the test never races the CLI. With
    the script used up, readline() blocks like a terminal nobody types in, until release().
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.script: list[tuple[str | None, str]] = []
        self.lines: list[str] = []
        self._partial = ""
        self._released = False
        self._cond = threading.Condition()

    def install(self, script: list[tuple[str | None, str]] | None = None) -> None:
        """Become sys.stdin and sys.stdout, with this input script."""
        self.script = list(script or [])
        self._monkeypatch.setattr(sys, "stdin", self)
        self._monkeypatch.setattr(sys, "stdout", self)

    def write(self, text: str) -> int:
        with self._cond:
            *done, self._partial = (self._partial + text).split("\n")
            self.lines.extend(done)
            self._cond.notify_all()
        return len(text)

    def flush(self) -> None:
        pass

    def readline(self) -> str:
        with self._cond:
            if not self.script:
                self._cond.wait_for(lambda: self._released, timeout=60)
                return ""
            wait_for, line = self.script.pop(0)
            if wait_for is not None:
                assert self._cond.wait_for(lambda: wait_for in self.lines, timeout=10), wait_for
            return line

    def release(self) -> None:
        with self._cond:
            self._released = True
            self._cond.notify_all()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTerminal]:
    """A FakeTerminal; the test calls install() first (pytest's capture resets sys.stdout and
    sys.stdin when the test body starts, so a fixture cannot set them)."""
    term = FakeTerminal(monkeypatch)
    try:
        yield term
    finally:
        term.release()  # an abandoned readline thread returns and finishes


async def test_stdin_lines_are_sent_and_replies_printed(terminal: FakeTerminal) -> None:
    """Each stdin line goes out as TEXT, replies print as `< TEXT`, EOF closes with 1000."""
    terminal.install([(None, "hi\n"), ("< TEXT 'hi'", "there\r\n"), ("< TEXT 'there'", "")])
    async with open_test_server(subprotocols=["chat"]) as server:
        args = _parser().parse_args(
            [
                server.url_for("/room"),
                "--header",
                "X-Token: abc",
                "--protocol",
                "chat",
                "--origin",
                "http://origin.test",
                "--heartbeat",
                "30",
                "--compress",
            ]
        )
        assert await _interactive(args) == 0
    assert terminal.lines == [
        f"= connected to {server.url_for('/room')} (subprotocol 'chat')",
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


async def test_proxy_and_unix_socket_options(terminal: FakeTerminal, tmp_path: Path) -> None:
    """--proxy tunnels through a real proxy; --unix-socket reaches a server on a socket."""
    terminal.install([(None, "via proxy\n"), ("< TEXT 'via proxy'", "")])
    async with open_test_server() as server, http_proxy() as proxy:
        args = _parser().parse_args([server.url_for("/"), "--proxy", proxy.url])
        assert await _interactive(args) == 0
        assert len(proxy.targets) == 1
    terminal.install([(None, "via unix\n"), ("< TEXT 'via unix'", "")])
    path = tmp_path / "s.sock"
    async with open_websockets_server(unix_path=path):
        args = _parser().parse_args(
            ["ws://sidecar/echo", "--unix-socket", str(path), "--proxy", "none"]
        )
        assert await _interactive(args) == 0
    assert "< TEXT 'via unix'" in terminal.lines


async def test_server_close_ends_the_program(terminal: FakeTerminal) -> None:
    """The server's close frame ends the program, with the code printed, status 0."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send_str("welcome")
        await conn.close(4000, "bye")

    terminal.install()
    async with open_test_server(handler) as server:
        assert await _interactive(_parser().parse_args([server.url])) == 0
    assert terminal.lines[1:] == [
        "< TEXT 'welcome'",
        "< CLOSE code=4000 reason='bye'",
        "= closed code=4000",
    ]


async def test_lost_connection_exits_1(terminal: FakeTerminal) -> None:
    """A connection dropped without a close frame prints code 1006 and exits 1."""

    async def handler(conn: ServerConnection) -> None:
        await conn.aclose()

    terminal.install()
    async with open_test_server(handler) as server:
        assert await _interactive(_parser().parse_args([server.url])) == 1
    assert terminal.lines[-1] == "= closed code=1006"


async def test_protocol_error_prints_one_error_line(
    terminal: FakeTerminal, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that breaks the protocol ends the program with `error:` on stderr, status 1."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send_raw(b"\x81\x82abcd\x00\x00")  # masked server frame: RFC 6455 §5.1

    terminal.install()
    async with open_test_server(handler) as server:
        assert await _interactive(_parser().parse_args([server.url])) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


async def test_subprocess_sends_stdin_and_exits_0() -> None:
    """`python -m trio_ws URL`: a stdin line is echoed and printed; end of input exits 0."""
    async with open_test_server() as server:
        with trio.fail_after(20):
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "trio_ws", server.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=ROOT,
            )
            assert proc.stdin is not None
            assert proc.stdout is not None
            assert proc.stderr is not None
            try:
                await proc.stdin.send_all(b"hi\n")
                # End input only once the echo is printed: close() drops what is in flight.
                out = await _read_until(proc.stdout, b"< TEXT 'hi'\n")
                await proc.stdin.aclose()
                out += await _read_until(proc.stdout, None)
                err = await _read_until(proc.stderr, None)
                await proc.wait()
            finally:
                if proc.returncode is None:  # pragma: no cover - only when the test fails
                    proc.kill()
                    with trio.CancelScope(shield=True):
                        await proc.wait()
                for pipe in (proc.stdin, proc.stdout, proc.stderr):
                    await trio.aclose_forcefully(pipe)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        f"= connected to {server.url}",
        "< TEXT 'hi'",
        "= closed code=1000",
    ]
    assert server.connections[0].received[0].data == "hi"


async def test_piped_input_waits_for_the_replies() -> None:
    """`echo ... | python -m trio_ws URL`: replies to piped lines are printed before closing."""
    async with open_test_server() as server:
        with trio.fail_after(20):
            result = await trio.run_process(
                [sys.executable, "-m", "trio_ws", server.url, "--linger", "0.3"],
                stdin=b"hi\nthere\n",
                capture_stdout=True,
                capture_stderr=True,
                cwd=ROOT,
            )
    assert result.stdout.decode().splitlines() == [
        f"= connected to {server.url}",
        "< TEXT 'hi'",
        "< TEXT 'there'",
        "= closed code=1000",
    ], result.stderr


async def _read_until(stream: trio.abc.ReceiveStream, marker: bytes | None) -> bytes:
    """Read until the data ends with `marker` (None: until EOF)."""
    data = b""
    while marker is None or not data.endswith(marker):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_subprocess_bad_url_exits_1() -> None:
    """`python -m trio_ws` with a bad URL prints `error:` on stderr and exits 1."""
    result = await trio.run_process(
        [sys.executable, "-m", "trio_ws", "ws://"],
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr.decode().startswith("error: ")
    assert b"Traceback" not in result.stderr
