"""The usual answer to an upgrade request, read without h11: a strict subset, nothing more.

Nearly every server answers a WebSocket upgrade with the same kind of head: the status line
``HTTP/1.1 101 <reason>``, a few ``Name: value`` lines of plain ASCII, each ended by CRLF, and
an empty line. :func:`switching_head` reads exactly that. Anything else is for h11
(``_handshake.py``), which reads every head the fast path declines exactly as before:

* a status other than 101, or another HTTP version (rejections, redirects, ``100 Continue``);
* a bare LF or CR, obs-fold, obs-text, a control character, a byte outside the token and
  visible-ASCII rules;
* ``Content-Length`` or ``Transfer-Encoding`` (h11 validates their values).

On what it does read, it gives what h11 gives (``tests/test_fasthead.py`` holds both to the
same results on generated heads): the status 101, the reason, and the header pairs as sent,
the white space around each value stripped. The head ends at the first CRLF CRLF, which is
where h11 ends it too, since no bare LF precedes it.

Why: h11 (building its connection, then the events) was ~9 % of a connection's CPU in the
connect benchmark (W4, open + handshake + close); this path costs a regular expression per
line. The RFC 6455 checks of the head are the same whichever parser read it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["STATUS_LINE", "might_switch", "switching_head"]

#: How the only head this module reads begins.
STATUS_LINE: Final = b"HTTP/1.1 101"
_STATUS: Final = re.compile(rb"HTTP/1\.1 101(?: ([\t\x20-\x7e]*))?\r\n")
# RFC 9110 §5.6.2 token, ":", optional white space, visible ASCII words separated by spaces
# or tabs, optional white space (h11's rule, obs-text left out).
_FIELD: Final = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*\r\n"
)
_FOR_H11: Final = frozenset({b"content-length", b"transfer-encoding"})


def might_switch(start: bytes | bytearray) -> bool:
    """Whether a head that begins with ``start`` may still be one :func:`switching_head`
    reads: ``start`` agrees with ``HTTP/1.1 101`` so far and has no bare LF."""
    prefix = bytes(start[: len(STATUS_LINE)])
    return STATUS_LINE.startswith(prefix) if len(prefix) < len(STATUS_LINE) else (
        prefix == STATUS_LINE and start.count(b"\n") == start.count(b"\r\n")
    )


def switching_head(head: bytes | bytearray) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """The reason and the header pairs of ``head`` (the bytes up to and including the first
    CRLF CRLF) if it is a 101 answer of the plain kind; ``None`` for h11 to read."""
    status = _STATUS.match(head)
    if status is None:
        return None
    end = len(head) - 2  # the empty line
    pos = status.end()
    fields: list[tuple[bytes, bytes]] = []
    while pos < end:
        field = _FIELD.match(head, pos)
        if field is None:
            return None
        name = field.group(1)
        if name.lower() in _FOR_H11:
            return None
        fields.append((name, field.group(2)))
        pos = field.end()
    if pos != end or head[end:] != b"\r\n":
        return None
    return status.group(1) or b"", fields
