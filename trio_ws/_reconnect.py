"""``reconnecting()``: a fresh connection each time the previous one is lost, with backoff.

Theory of operation
-------------------

.. code-block:: python

    async with trio_ws.reconnecting(url, heartbeat=15) as connections:
        async for ws in connections:
            async for msg in ws:  # ends when this connection is lost
                ...

``reconnecting`` is an async generator made safe by :func:`trio.as_safe_channel`: it runs in a
task of its own, and each connection it yields lives inside its ``open_ws`` block there. The
consumer asks for the next connection when it is done with the current one (the connection
was lost, or it moved on): the generator then closes the current one (a close frame if it is
still open), waits, and connects again. Leaving the ``async with`` (a ``break``, an exception
of the body, a cancellation) cancels the generator, which closes the current connection
(code 1001, within a second) and leaves nothing running. The body's exceptions are never
retried: they leave the loop as they are.

**Backoff.** The first attempt is immediate. After a failed attempt or a lost connection the
next attempt waits a random time between 0 and the current delay ("full jitter"), which
starts at :attr:`Backoff.first` and is multiplied by :attr:`Backoff.factor` after each wait, up
to :attr:`Backoff.cap`; a connection that stayed up :attr:`Backoff.reset_after` seconds
resets it. A server that answers 429 or 503 with ``Retry-After`` is waited for that long
(up to the cap) instead.

**What is retried.** By default (:func:`is_retryable`): network errors and connect timeouts
(:exc:`WSConnectionError`, proxies included), handshake answers 5xx and 429, and a connection
that ends for any reason. Raised at once: TLS certificate failures, other handshake refusals
(4xx), redirects that may not be followed, bad URLs and options. ``should_retry(exc)``
replaces the rule.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import ssl
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Unpack

import attrs
import trio

from ._client import open_ws
from ._connection import GOING_AWAY_GRACE, ClientWebSocket
from ._errors import (
    InvalidArgument,
    WSConnectionError,
    WSRedirectError,
    WSServerHandshakeError,
    WSTLSError,
)
from ._monitor import LOGGER
from ._options import WSOptions
from ._types import WSCloseCode

__all__ = ["Backoff", "is_retryable", "reconnecting"]

#: Handshake statuses worth another attempt.
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise InvalidArgument(f"{attribute.name} must be a positive number, not {value!r}")


def _factor(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 1:
        raise InvalidArgument(f"factor must be a number >= 1, not {value!r}")


@attrs.frozen(kw_only=True)
class Backoff:
    """How long :func:`reconnecting` waits between attempts.

    Attributes:
        first: the delay before the second attempt, in seconds (the first is immediate).
        factor: the delay is multiplied by this after each wait.
        cap: the longest delay (also the longest ``Retry-After`` honoured).
        reset_after: a connection that stayed up this long resets the delay to ``first``.
        jitter: ``jitter()`` gives a number in [0, 1) that scales each delay ("full
            jitter": waits spread over [0, delay)); tests inject a fixed one.
    """

    first: float = attrs.field(default=1.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_factor)
    cap: float = attrs.field(default=60.0, validator=_positive)
    reset_after: float = attrs.field(default=60.0, validator=_positive)
    jitter: Callable[[], float] = attrs.field(default=random.random, repr=False)


def is_retryable(exc: BaseException) -> bool:
    """The default rule of :func:`reconnecting`: is ``exc`` worth another attempt?

    Yes for network errors and connect timeouts (:exc:`WSConnectionError`, proxies included),
    a TLS handshake that broke, and handshake answers 429, 500, 502, 503 and 504. No for a
    certificate that did not verify, any other handshake status (401, 403, 404, 501...), a
    redirect that may not be followed, and anything else.
    """
    if isinstance(exc, WSTLSError):
        err: BaseException | None = exc
        while err is not None:
            if isinstance(err, ssl.SSLCertVerificationError):
                return False  # it will not verify next time either
            err = err.__cause__
        return True
    if isinstance(exc, WSRedirectError):
        return False
    if isinstance(exc, WSServerHandshakeError):
        return exc.status in _RETRY_STATUSES
    return isinstance(exc, WSConnectionError)


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429/503 answer's ``Retry-After`` asks for, if any (RFC 9110 §10.2.3)."""
    if not isinstance(exc, WSServerHandshakeError):
        return None
    values = [v.strip() for k, v in exc.headers if k.lower() == "retry-after"]
    if not values:
        return None
    if values[0].isdigit():
        return float(values[0])
    try:
        when = email.utils.parsedate_to_datetime(values[0])
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _open(url: str, options: WSOptions) -> AbstractAsyncContextManager[ClientWebSocket]:
    """``open_ws(url, **options)`` (a seam for the tests' connects that fail without I/O)."""
    return open_ws(url, **options)


@trio.as_safe_channel
async def reconnecting(
    url: str,
    *,
    backoff: Backoff = Backoff(),
    should_retry: Callable[[BaseException], bool] = is_retryable,
    **options: Unpack[WSOptions],
) -> AsyncGenerator[ClientWebSocket, None]:
    """Connect to ``url``, and again each time the connection is lost, with backoff.

    Use it as ``async with reconnecting(url, **options) as connections:`` then
    ``async for ws in connections:``; each ``ws`` is open when the body gets it, and is
    closed when the body asks for the next one or leaves the loop.

    Args:
        url: as for :func:`open_ws`.
        backoff: the delays between attempts (:class:`Backoff`).
        should_retry: ``should_retry(exc)`` says whether a failed attempt is retried
            (default :func:`is_retryable`); when it says no, ``exc`` leaves the loop.
        **options: as for :func:`open_ws`; each connection gets them all.

    Raises:
        InvalidArgument: a bad option or URL, at once (never retried).

    When ``should_retry`` says no, what the failed attempt raised leaves the loop as it is.
    """
    log = options.get("logger") or LOGGER
    delay = backoff.first
    attempt = 0
    while True:
        attempt += 1
        wait = None
        opened_at = trio.current_time()
        try:
            async with _open(url, options) as ws:
                opened_at = trio.current_time()
                try:
                    yield ws
                except GeneratorExit:
                    # The consumer left the loop (the generator is closed in a cancelled
                    # task): say goodbye as after a cancellation, briefly.
                    with trio.CancelScope(shield=True) as scope:
                        scope.deadline = trio.current_time() + GOING_AWAY_GRACE
                        await ws.close(code=WSCloseCode.GOING_AWAY)
                    raise
                if not ws.closed:
                    await ws.close()
            exc: BaseException | None = ws.exception()
        except (trio.Cancelled, KeyboardInterrupt, GeneratorExit):
            raise
        except InvalidArgument:
            raise
        except Exception as error:
            if not should_retry(error):
                raise
            exc = error
            wait = retry_after(error)
        else:
            if trio.current_time() - opened_at >= backoff.reset_after:
                delay = backoff.first  # it stayed up: start over
        if wait is None:
            wait = delay * backoff.jitter()
            delay = min(backoff.cap, delay * backoff.factor)
        wait = min(wait, backoff.cap)
        if log.isEnabledFor(logging.INFO):
            why = f": {exc}" if exc is not None else ""
            log.info("reconnecting to %s in %.3f s (attempt %d%s)", url, wait, attempt + 1, why)
        await trio.sleep(wait if math.isfinite(wait) else backoff.cap)
