"""The interactive client under a real pseudo-terminal: prompt, typed line intact, Ctrl-C, Ctrl-D.

Each test runs ``python -m trio_ws URL`` as a child whose stdin, stdout and stderr are the slave
side of a pty, and whose controlling terminal it is, so the kernel's line discipline does what
it does for a person: echo what is typed, hand over a line at Enter, turn Ctrl-C into SIGINT
and Ctrl-D into end of input. The test types into the master side and reads everything the
terminal would show; :class:`Screen` replays that output (the few VT100 sequences the CLI and
the line discipline use) into the lines a person would see.

Nothing here sleeps: each step waits, with a bounded timeout, for the output that shows the
previous step happened.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from trio_ws.testing import ServerConnection, echo_handler, open_test_server

ROOT = Path(__file__).resolve().parents[1]
ROWS, COLUMNS = 24, 80

# Run in a new session (start_new_session=True), the child makes the pty its controlling
# terminal, then becomes `python -m trio_ws ...` (no preexec_fn: it is not safe with threads).
TAKE_TERMINAL = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'trio_ws', *sys.argv[1:]])\n"
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")


class Screen:
    """A VT100 screen of ROWS x COLUMNS, enough for what the CLI and the tty write: printable
    characters, CR, LF (scrolling at the bottom), BS, ESC 7 / ESC 8 (save and restore the
    cursor), CSI A/B (up/down), CSI K (erase to the end of the line), CSI L (insert a line)."""

    def __init__(self) -> None:
        self.rows = [[" "] * COLUMNS for _ in range(ROWS)]
        self.row = self.col = 0
        self.saved = (0, 0)

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            char = text[i]
            if char == "\x1b" and text[i + 1] in "78":
                if text[i + 1] == "7":
                    self.saved = (self.row, self.col)
                else:
                    self.row, self.col = self.saved
                i += 2
                continue
            if char == "\x1b" and text[i + 1] == "[":
                end = i + 2
                while not text[end].isalpha():
                    end += 1
                self._csi(text[i + 2 : end], text[end])
                i = end + 1
                continue
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self._line_feed()
            elif char == "\b":
                self.col = max(0, self.col - 1)
            elif char >= " ":
                if self.col == COLUMNS:
                    self.col = 0
                    self._line_feed()
                self.rows[self.row][self.col] = char
                self.col += 1
            i += 1

    def _line_feed(self) -> None:
        if self.row == ROWS - 1:
            self.rows = [*self.rows[1:], [" "] * COLUMNS]
        else:
            self.row += 1

    def _csi(self, params: str, command: str) -> None:
        count = int(params or "1")
        if command == "A":
            self.row = max(0, self.row - count)
        elif command == "B":
            self.row = min(ROWS - 1, self.row + count)
        elif command == "K":
            self.rows[self.row][self.col :] = [" "] * (COLUMNS - self.col)
        elif command == "L":
            for _ in range(count):
                self.rows.insert(self.row, [" "] * COLUMNS)
                del self.rows[ROWS]
        else:  # pragma: no cover - a sequence this model does not know: say so
            raise AssertionError(f"unexpected control sequence CSI {params}{command}")

    def lines(self) -> list[str]:
        """The non-blank lines, top to bottom, without trailing spaces."""
        return [text for row in self.rows if (text := "".join(row).rstrip())]


def test_screen_model_inserts_above_the_cursor_line() -> None:
    """The model itself: the CLI's insert-above sequence keeps the input line and its cursor."""
    screen = Screen()
    screen.feed("a\r\n> hel")
    screen.feed("\x1b7\r\n\x1b[A\x1b[L< msg\r\n\x1b8\x1b[B")
    screen.feed("lo")
    assert screen.lines() == ["a", "< msg", "> hello"]
    screen.feed("\r\x1b[K= bye\r\n")
    assert screen.lines() == ["a", "< msg", "= bye"]


def test_screen_model_scrolls_at_the_bottom() -> None:
    """At the last row the line feed scrolls, and the insertion still lands above the input."""
    screen = Screen()
    screen.feed("".join(f"{n}\r\n" for n in range(ROWS - 1)) + "> ty")
    screen.feed("\x1b7\r\n\x1b[A\x1b[L< msg\r\n\x1b8\x1b[B")
    screen.feed("ped")
    assert screen.lines()[-2:] == ["< msg", "> typed"]


class Terminal:
    """The master side of the child's pty: type, and wait for output."""

    def __init__(self, stream: trio.lowlevel.FdStream, process: trio.Process) -> None:
        self.stream = stream
        self.process = process
        self.output = ""
        self.eof = False

    async def type(self, text: str) -> None:
        await self.stream.send_all(text.encode())

    async def wait_for(self, marker: str) -> None:
        """Read until ``marker`` has been shown (it may be there already)."""
        while marker not in self.output:
            assert not self.eof, f"{marker!r} never came; the terminal showed {self.output!r}"
            await self._read()

    async def wait_for_exit(self) -> int:
        """Read until the child has closed the terminal; its exit status."""
        while not self.eof:
            await self._read()
        return await self.process.wait()

    async def _read(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:  # EIO: every slave descriptor is closed
            data = b""
        if not data:
            self.eof = True
        self.output += data.decode("utf-8", "replace")

    def screen(self) -> list[str]:
        screen = Screen()
        screen.feed(self.output)
        return screen.lines()


@asynccontextmanager
async def client_in_pty(*args: str, term: str = "xterm") -> AsyncIterator[Terminal]:
    """``python -m trio_ws *args`` on a new pty (ROWS x COLUMNS) with ``TERM=term``, within
    15 s in all."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    with trio.fail_after(15):
        try:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-c", TAKE_TERMINAL, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                cwd=ROOT,
                env={**os.environ, "TERM": term},
            )
        finally:
            os.close(slave)
        terminal = Terminal(trio.lowlevel.FdStream(master), process)
        try:
            yield terminal
        finally:
            if process.returncode is None:  # pragma: no cover - only when the test fails
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
            await terminal.stream.aclose()


PROMPT_SHOWN = "Ctrl-C to close\r\n> "


async def test_incoming_message_goes_above_the_line_being_typed() -> None:
    """A message that arrives while a line is half typed is printed above it; the line stays
    whole, is sent at Enter, and Ctrl-D on the empty prompt closes with 1000 (status 0)."""
    tick = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        await tick.wait()
        await conn.send_str("tick 3")
        await echo_handler(conn)

    async with open_test_server(handler) as server, client_in_pty(server.url) as term:
        await term.wait_for(PROMPT_SHOWN)
        await term.type("hello wor")
        await term.wait_for("> hello wor")  # the tty's echo
        tick.set()
        await term.wait_for("'tick 3'\r\n\x1b8\x1b[B")  # printed, cursor back on the input
        await term.type("ld\n")
        await term.wait_for("< TEXT 'hello world'")
        await term.type("\x04")
        status = await term.wait_for_exit()
    assert status == 0, term.output
    assert term.screen() == [
        f"= connected to {server.url}",
        "= type a line and Enter to send it; Ctrl-D or Ctrl-C to close",
        "< TEXT 'tick 3'",
        "> hello world",
        "< TEXT 'hello world'",
        "= closed code=1000",
    ]
    assert server.connections[0].close_code == 1000


async def test_ctrl_c_closes_with_1000_and_exits_130() -> None:
    """Ctrl-C with a line half typed: close frame 1000, `= closed`, status 130, no traceback."""
    async with open_test_server() as server, client_in_pty(server.url) as term:
        await term.wait_for(PROMPT_SHOWN)
        await term.type("not sent")
        await term.wait_for("> not sent")
        await term.type("\x03")
        status = await term.wait_for_exit()
    assert status == 130, term.output
    assert "Traceback" not in term.output
    assert term.screen()[-1] == "= closed code=1000"
    assert server.connections[0].close_code == 1000
    assert server.connections[0].received[0].type.name == "CLOSE"  # nothing else was sent


async def test_ctrl_d_after_text_sends_it_then_closes() -> None:
    """Ctrl-D after some text hands it over unfinished; a second Ctrl-D ends input: the text is
    sent, then the connection closes with 1000 and the client exits 0."""
    async with open_test_server() as server, client_in_pty(server.url) as term:
        await term.wait_for(PROMPT_SHOWN)
        await term.type("abc\x04")
        await term.wait_for("> abc")
        await term.type("\x04")
        status = await term.wait_for_exit()
    assert status == 0, term.output
    received = server.connections[0].received
    assert [m.data for m in received] == ["abc", 1000]
    assert term.screen()[-1] == "= closed code=1000"


async def test_server_close_while_typing_ends_the_session() -> None:
    """The server's close frame (1008) ends the session while a line is being typed: the close
    shows above the input, then `= closed code=1008` replaces it, status 3."""
    go = trio.Event()

    async def handler(conn: ServerConnection) -> None:
        await go.wait()
        await conn.close(1008, "policy")

    async with open_test_server(handler) as server, client_in_pty(server.url) as term:
        await term.wait_for(PROMPT_SHOWN)
        await term.type("half")
        await term.wait_for("> half")
        go.set()
        status = await term.wait_for_exit()
    assert status == 3, term.output
    assert term.screen()[-2:] == ["< CLOSE code=1008 reason='policy'", "= closed code=1008"]
    assert "Traceback" not in term.output


async def test_dumb_terminal_gets_plain_lines() -> None:
    """TERM=dumb: no prompt and no escape sequences, just lines; Ctrl-D still closes."""
    async with open_test_server() as server, client_in_pty(server.url, term="dumb") as term:
        await term.wait_for(f"= connected to {server.url}\r\n")
        await term.type("hi\n")
        await term.wait_for("< TEXT 'hi'\r\n")
        await term.type("\x04")
        status = await term.wait_for_exit()
    assert status == 0, term.output
    assert "\x1b" not in term.output
    assert term.output.replace("\r\n", "\n") == (
        f"= connected to {server.url}\nhi\n< TEXT 'hi'\n= closed code=1000\n"
    )
