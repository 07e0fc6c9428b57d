"""What the command line prints, and how: message lines, the prompt, stdout that goes away.

Theory of operation
-------------------

Every line the CLI prints goes through one :class:`Console`. Lines on stdout start with ``<``
(received), ``>`` (sent, in the demonstration) or ``=`` (connection state), as in the logs of
the websockets library; errors and warnings are single ``error: ...`` / ``warning: ...``
lines on stderr, sometimes followed by a ``hint: ...`` line.

**On a terminal** (stdin and stdout both TTYs) the console shows a prompt, ``"> "``, and the
user types on that line while messages arrive. The terminal stays in its ordinary (canonical)
mode, so the kernel echoes what is typed and we never know it; a line printed the ordinary
way would land in the middle of it (``hello wor< TEXT 'tick'``). Instead each line is
*inserted above* the input line with ANSI/VT100 sequences, as websockets' CLI does: save the
cursor (``ESC 7``), line feed (which scrolls if the input line is the last one), cursor up,
insert a blank line there (``ESC [ L``, which pushes the input line down), print, restore the
cursor (``ESC 8``) and move it down by one, back onto the input line at the same column. A
line longer than the terminal is wide is not handled (the terminal wraps it); neither does
websockets.

**stdout closed by its reader** (``trio-ws URL | head -1``): the write raises
``BrokenPipeError``. The console points stdout at ``os.devnull`` (so that Python's final
flush cannot fail again), prints nothing more, and calls ``on_broken`` once: the session then
closes its connection and exits with status 141, the status of a program killed by SIGPIPE.

Text from the network is never written raw: messages are shown with ``repr()`` (or as JSON,
hex, base64), and control characters are escaped everywhere else (a server must not be able
to move our cursor or retitle the terminal).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import io
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Final, Protocol

import attrs

from trio_ws import WSMessage, WSMsgType

__all__ = [
    "PROMPT",
    "BinaryView",
    "Console",
    "TextStream",
    "View",
    "describe",
    "escape",
    "logging_to",
]

#: Control characters (C0, DEL, C1) escaped as ``repr()`` would; everything else is printable
#: enough for a terminal.
_ESCAPES: Final = str.maketrans(
    {i: repr(chr(i))[1:-1] for i in itertools.chain(range(32), range(127, 160))}
)
#: The prompt of the interactive client on a terminal.
PROMPT: Final = "> "
# VT100: save cursor, LF, cursor up, insert line / print / restore cursor, cursor down.
_INSERT_ABOVE: Final = "\x1b7\n\x1b[A\x1b[L"
_BACK_TO_INPUT: Final = "\n\x1b8\x1b[B"
# Carriage return, erase the line (the prompt and whatever was typed after it).
_ERASE_LINE: Final = "\r\x1b[K"


def escape(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b`` for ESC...), safe for a terminal."""
    return text.translate(_ESCAPES)


class TextStream(Protocol):
    """What the console writes to: ``sys.stdout``, ``sys.stderr`` or a test double."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class BinaryView(enum.Enum):
    """How BINARY messages are shown (``--binary``)."""

    REPR = "repr"
    HEX = "hex"
    BASE64 = "base64"


@attrs.frozen
class View:
    """How received messages are shown.

    Attributes:
        json: show TEXT messages that are JSON documents pretty-printed (``--json``).
        binary: how to show BINARY messages (``--binary``).
    """

    json: bool = False
    binary: BinaryView = BinaryView.REPR


def describe(msg: WSMessage, view: View = View()) -> list[str]:
    """The output lines for a received message (one, or several for pretty-printed JSON)."""
    if msg.type is WSMsgType.CLOSE:
        reason = f" reason={msg.extra!r}" if msg.extra else ""
        return [f"< CLOSE code={msg.data}{reason}"]
    if msg.type is WSMsgType.TEXT and view.json:
        pretty = _pretty_json(msg.data)
        if pretty is not None:
            lines = [escape(line) for line in pretty.split("\n")]
            if len(lines) == 1:
                return [f"< JSON {lines[0]}"]
            return ["< JSON", *(f"  {line}" for line in lines)]
    if msg.type is WSMsgType.BINARY and view.binary is BinaryView.HEX:
        return [f"< BINARY {bytes(msg.data).hex()}".rstrip()]
    if msg.type is WSMsgType.BINARY and view.binary is BinaryView.BASE64:
        return [f"< BINARY {base64.b64encode(msg.data).decode('ascii')}".rstrip()]
    return [f"< {msg.type.name} {msg.data!r}"]


def _pretty_json(text: str) -> str | None:
    """``text`` pretty-printed if it is a JSON document, else ``None``."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return None
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # an integer too long to print again
        return None


class Console:
    """The CLI's stdout and stderr (see the module docstring).

    Args:
        out: where ``say()`` writes (stdout).
        err: where errors and warnings go (stderr).
        terminal: a person types on the same terminal: show a prompt and print incoming lines
            above the input line.
        timestamps: prefix each stdout line with the local time (``HH:MM:SS.mmm``).
    """

    def __init__(
        self,
        out: TextStream,
        err: TextStream,
        *,
        terminal: bool = False,
        timestamps: bool = False,
    ) -> None:
        self._out = out
        self._err = err
        self._terminal = terminal
        self._timestamps = timestamps
        self._prompt_shown = False
        self._broken = False
        # Errors go above the input line too, when stderr is that same terminal.
        self._err_on_terminal = terminal and _isatty(err)
        #: Called once when stdout turns out to be closed by its reader.
        self.on_broken: Callable[[], None] | None = None
        for stream in (out, err):
            # A message may hold characters the locale's encoding lacks (LANG=C): escape
            # them rather than fail.
            if isinstance(stream, io.TextIOWrapper):
                with contextlib.suppress(ValueError, OSError):
                    stream.reconfigure(errors="backslashreplace")

    def say(self, *lines: str) -> None:
        """Print lines on stdout (above the input line, when a prompt is shown)."""
        if self._timestamps:
            stamp = _timestamp()
            lines = tuple(f"{stamp} {line}" for line in lines)
        self._emit(self._out, lines)

    def warn(self, text: str) -> None:
        """Print ``warning: text`` on stderr."""
        self._emit(self._err, (f"warning: {escape(text)}",))

    def error(self, text: str) -> None:
        """Print ``error: text`` on stderr."""
        self._emit(self._err, (f"error: {escape(text)}",))

    def hint(self, text: str) -> None:
        """Print ``hint: text`` on stderr (after an error, what to do about it)."""
        self._emit(self._err, (f"hint: {escape(text)}",))

    def log(self, text: str) -> None:
        """Print a log record (``--verbose``) on stderr."""
        self._emit(self._err, (escape(text),))

    def prompt(self) -> None:
        """On a terminal, show the prompt (unless it is shown already)."""
        if self._terminal and not self._prompt_shown:
            self._write(self._out, PROMPT)
            self._prompt_shown = True

    def line_entered(self) -> None:
        """The user ended a line (Enter): the cursor is on a fresh line, without a prompt."""
        self._prompt_shown = False

    def end_input(self) -> None:
        """Input is over: erase the prompt line (and an unsent partial line, or ``^C``), so that
        the last lines do not follow the prompt."""
        if self._prompt_shown:
            self._write(self._out, _ERASE_LINE)
            self._prompt_shown = False

    def _emit(self, stream: TextStream, lines: tuple[str, ...]) -> None:
        if self._prompt_shown and (stream is self._out or self._err_on_terminal):
            text = "".join(f"{_INSERT_ABOVE}{line}{_BACK_TO_INPUT}" for line in lines)
        else:
            text = "".join(f"{line}\n" for line in lines)
        self._write(stream, text)

    def _write(self, stream: TextStream, text: str) -> None:
        if self._broken and stream is self._out:
            return
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            _silence(stream)
            if stream is self._out:
                self._broken = True
                if self.on_broken is not None:
                    self.on_broken()


class _ConsoleHandler(logging.Handler):
    """Log records through the console, so that they too go above the input line."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._console.log(self.format(record))
        except Exception:  # logging's contract: a failing handler reports, never raises
            self.handleError(record)


@contextlib.contextmanager
def logging_to(console: Console, verbosity: int) -> Iterator[None]:
    """While the block runs, show trio_ws's log records on the console: none (0), INFO and
    above (1), everything (2 or more).

    Quiet by default because each failure the library logs is also the CLI's ``error:``
    line; without a handler of ours, Python's last-resort handler would print its warnings
    a second time.
    """
    logger = logging.getLogger("trio_ws")
    handler: logging.Handler = _ConsoleHandler(console) if verbosity else logging.NullHandler()
    level = logger.level
    if verbosity:
        logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _isatty(stream: TextStream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):
        return False


def _silence(stream: TextStream) -> None:
    """Point the file descriptor under ``stream`` at ``os.devnull``, so that writes and the
    interpreter's final flush succeed (the reader is gone; there is nobody to tell)."""
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        fd = fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
