"""The interactive client of the command line: stdin lines out, incoming messages printed.

Theory of operation
-------------------

Two tasks talk over one connection (:func:`talk`): the *printer* prints every message that
arrives and, when the server closes or the connection fails, ends the conversation; the
*sender* (the main task) reads stdin and sends each line as a TEXT message. At end of input
it waits until no reply has come for ``linger`` seconds (replies to piped lines would
otherwise be cut off by the close), then returns; :func:`~trio_ws._cli_session.run_session`
closes the connection.

**Reading stdin.** There is no portable way to read a terminal or a pipe without blocking
Trio (``trio.lowlevel.FdStream`` would set ``O_NONBLOCK`` on a file description that the shell
shares), so :class:`StdinReader` calls ``os.read`` in a worker thread, abandoned when the
session ends (a blocked read cannot be interrupted; Trio's worker threads are daemon
threads). ``os.read``, not ``sys.stdin.readline``: no Python-level lock is held by a thread
blocked at interpreter exit, and the bytes arrive undecoded.

**Bytes, then text.** :class:`LineSplitter` cuts the byte stream into lines (``\\n``, with an
optional ``\\r`` before it); :func:`decode_line` decodes each one as UTF-8. A line that is not
valid UTF-8 is still sent, with U+FFFD in place of each invalid sequence, and a warning on
stderr says which line and which byte: a TEXT message must be UTF-8 (RFC 6455 §5.6), and
dropping the line silently would be worse.

**On a terminal** the kernel's line discipline edits the line, so a read returns when the user
presses Enter: one whole line. Ctrl-D on an empty line makes the read return nothing (end of
input); Ctrl-D after some text returns that text without a newline, which is kept until the
line is finished (the prompt is still on screen).
"""

from __future__ import annotations

import os
from typing import IO, Final, Protocol

import trio

from trio_ws import ClientWebSocket, WSError, WSMsgType

from ._cli_output import Console, View, describe

__all__ = ["InputSource", "LineSplitter", "StdinReader", "decode_line", "talk"]

#: Bytes asked of each read of stdin.
READ_SIZE: Final = 65536


class InputSource(Protocol):
    """Where the lines to send come from: stdin, or a script in tests."""

    async def read(self) -> bytes:
        """The next bytes available (a whole line on a terminal); ``b""`` at end of input."""
        ...


class StdinReader:
    """:class:`InputSource` over ``sys.stdin``'s file descriptor, read in a worker thread."""

    def __init__(self, stdin: IO[str] | None) -> None:
        self._stdin = stdin

    async def read(self) -> bytes:
        """Read what is available; ``b""`` at end of input, when the terminal is gone, or when
        there is no stdin at all (``pythonw``, a closed descriptor).

        Cancellation: the read is abandoned (it returns in its thread later, or never).
        """
        try:
            fd = self._stdin.fileno() if self._stdin is not None else -1
            if fd < 0:
                await trio.lowlevel.checkpoint()
                return b""
            return await trio.to_thread.run_sync(os.read, fd, READ_SIZE, abandon_on_cancel=True)
        except (OSError, ValueError):  # EIO: the terminal hung up; EBADF, ValueError: closed
            return b""


class LineSplitter:
    """Bytes in, lines out (without their ``\\n`` or ``\\r\\n``)."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The lines that ``data`` finishes."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.removesuffix(b"\r") for line in lines]

    def finish(self) -> list[bytes]:
        """End of input: the unfinished last line, if there is one."""
        line, self._partial = self._partial, b""
        return [line.removesuffix(b"\r")] if line else []


def decode_line(line: bytes, number: int) -> tuple[str, str | None]:
    """``line`` as text, and a warning if it was not valid UTF-8.

    Args:
        line: the bytes of one input line.
        number: its number (from 1), for the warning.

    Returns:
        The text (invalid sequences replaced by U+FFFD) and ``None``, or a warning that says
        where the first invalid byte was.
    """
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        warning = (
            f"input line {number} is not valid UTF-8 (byte 0x{line[exc.start]:02x} at offset "
            f"{exc.start}); sent with U+FFFD in place of the invalid bytes"
        )
        return line.decode("utf-8", "replace"), warning


class _Activity:
    """When the last message arrived (or input ended, if later)."""

    def __init__(self) -> None:
        self.last = trio.current_time()


async def talk(
    ws: ClientWebSocket, console: Console, source: InputSource, view: View, linger: float
) -> None:
    """Send input lines and print incoming messages until input ends (then linger) or the
    connection ends."""
    activity = _Activity()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_print_incoming, ws, console, view, nursery.cancel_scope, activity)
        await _send_input(ws, console, source)
        activity.last = trio.current_time()
        # A deadline that moves with each reply, not a polled condition.
        while trio.current_time() < activity.last + linger:  # noqa: ASYNC110
            await trio.sleep_until(activity.last + linger)
        nursery.cancel_scope.cancel()


async def _send_input(ws: ClientWebSocket, console: Console, source: InputSource) -> None:
    """Send each input line as TEXT until end of input or the connection ends."""
    splitter = LineSplitter()
    number = 0
    while True:
        console.prompt()
        data = await source.read()
        if data.endswith(b"\n"):
            console.line_entered()
        lines = splitter.feed(data) if data else splitter.finish()
        for line in lines:
            number += 1
            text, warning = decode_line(line, number)
            if warning is not None:
                console.warn(warning)
            try:
                await ws.send_str(text)
            except WSError:
                return  # the connection ended; the printer reports how
        if not data:
            return


async def _print_incoming(
    ws: ClientWebSocket,
    console: Console,
    view: View,
    done: trio.CancelScope,
    activity: _Activity,
) -> None:
    """Print every message until the connection ends; end the conversation if the server
    closed it or it failed."""
    while True:
        msg = await ws.receive()
        activity.last = trio.current_time()
        if msg.type is WSMsgType.CLOSING:
            return  # we are closing: the session finishes the handshake
        if msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
            done.cancel()
            return
        console.say(*describe(msg, view))
