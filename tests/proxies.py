"""Real proxies for the tests: ``pproxy`` (an asyncio proxy server from PyPI) in a subprocess.

Nobody on this project wrote pproxy, so a client's ``proxy=`` support tested against it is
tested against someone else's reading of the protocols. Each context manager starts one pproxy
process listening on 127.0.0.1 (port 0: pproxy binds it and prints the port it got), waits
until it listens, yields a :class:`Proxy`, and stops the process on exit::

    async with http_proxy(username="user", password="pass") as proxy:
        ...  # connect through proxy.url
        await proxy.wait_target("127.0.0.1", port)  # pproxy really connected there

* :func:`http_proxy`: HTTP (``CONNECT``, also plain forwarding), optional Basic auth.
* :func:`https_proxy`: the same behind TLS, with a certificate for ``127.0.0.1`` and
  ``localhost`` from a ``trustme`` CA; :meth:`Proxy.ssl_context` trusts it.
* :func:`socks5_proxy`: SOCKS5 ``CONNECT`` to IPv4, IPv6 and domain-name addresses (so it
  serves ``socks5://`` and ``socks5h://`` clients alike), optional username/password auth.
* :func:`socks4_proxy`: SOCKS4, optional user id (SOCKS4 has no password).

The targets are observed in pproxy's verbose log (``-v``): for every accepted connection it
prints ``PROTOCOL CLIENT_IP:PORT -> HOST:PORT`` just before it connects to ``HOST:PORT``, after
authentication, with the host exactly as the client sent it (a name is not resolved first). A
background task reads the log into :attr:`Proxy.lines` and :attr:`Proxy.targets`.

What pproxy 2.7.9 does not do, or does its own way (read in its source, ``pproxy/proto.py`` and
``pproxy/server.py``, and checked by ``tests/test_proxies_fixture.py``):

* No SOCKS4a. Its SOCKS4 server reads the IPv4 address and ignores the name that follows the
  user id: a SOCKS4a request for ``localhost`` is granted and then connects to ``0.0.0.1``. So
  there is no ``socks4a_proxy``; a client's SOCKS4a can only be tested against a scripted peer.
* Refusals are closes, not error replies. A wrong or missing SOCKS5 password closes the
  connection (no ``0x01 0x01`` status, no ``0xFF`` "no acceptable method"); an unknown SOCKS4
  user id closes it (no ``0x5B``). Only HTTP answers ``407 Proxy Authentication Required``.
* SOCKS success is sent before the target is tried: SOCKS4 and SOCKS5 reply "granted" /
  "succeeded" at once, then connect; a refused target closes the tunnel afterwards. HTTP
  ``CONNECT`` answers 200 only once the target is connected, but a refused target closes the
  connection instead of answering 502.
* Its ``200 Connection established`` carries ``Connection: close``; a client must ignore it.
* It reads ``Proxy-Authorization`` only with that exact spelling and ``": "`` after the name (it
  splits the head itself); other spellings count as no credentials, so a 407.
* Authentication is remembered per client IP (``--auth`` seconds, 30 days by default): after
  one good login every later connection from 127.0.0.1 would pass without credentials. These
  helpers pass ``--auth=-1`` so that every connection must authenticate.
* ``python -m pproxy`` fails on Python 3.14 (``asyncio.get_event_loop()`` in its ``main``
  raises there: qwj/python-proxy#200), so pproxy is started through :data:`BOOT`, which sets
  an event loop first and then runs the same ``pproxy.server.main``.

Every helper skips the test (``pytest.skip``) if pproxy is not installed. Each leaves its
``async with`` with the body's exception unchanged, not wrapped in an ``ExceptionGroup``, and
ends the process (terminate, then kill) before it returns.
"""

from __future__ import annotations

import base64
import enum
import importlib.util
import re
import ssl
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

import pytest
import trio
import trustme

__all__ = [
    "BOOT",
    "Proxy",
    "Scheme",
    "basic_auth",
    "http_proxy",
    "https_proxy",
    "open_pproxy",
    "socks4_proxy",
    "socks5_proxy",
]

#: The kinds of proxy: the scheme of :attr:`Proxy.url`.
Scheme = Literal["http", "https", "socks4", "socks5"]

HOST: Final = "127.0.0.1"
#: Bound on waiting for pproxy to say it listens (its start takes about 0.1 s).
READY_TIMEOUT: Final = 10.0
#: Default bound of :meth:`Proxy.wait_target` and :meth:`Proxy.wait_log`.
WAIT_TIMEOUT: Final = 5.0
#: How long a terminated pproxy has to exit before it is killed.
TERMINATE_TIMEOUT: Final = 5.0
#: ``python -c BOOT ARGS...`` runs pproxy's command line like ``python -m pproxy ARGS...``,
#: with an event loop set first, which Python 3.14 needs (see the module docstring).
BOOT: Final = (
    "import asyncio; asyncio.set_event_loop(asyncio.new_event_loop()); "
    "from pproxy.server import main; main()"
)

#: pproxy's line once a listener is bound: "Serving on ipv4 127.0.0.1:PORT by http(SSL) ".
#: (``ipv?`` on Python 3.11+, where ``str()`` of an address family is its number.) If the bind
#: fails it prints "Serving on 127.0.0.1:0 by ..." without the family, then the error.
_SERVING = re.compile(r"^Serving on ipv[46?] (?P<host>\S+):(?P<port>\d+) by ")
#: pproxy's verbose line for each accepted connection: "socks5 127.0.0.1:50112 -> host:port".
_TARGET = re.compile(r"^(?P<protocol>[a-z0-9]+) (?P<client>\S+) -> (?P<host>\S+):(?P<port>\d+)$")
#: What pproxy's listen URI cannot carry in credentials: it splits the URI at ``__`` (proxy
#: chains) and its user list at newlines.
_BAD_CREDENTIAL = re.compile(r"__|[\r\n\0]")


class _Keep(enum.Enum):
    KEEP = enum.auto()


@contextmanager
def _unwrap_single() -> Iterator[None]:
    """Let a lone exception out of a nursery as itself (as in ``tests/servers.py``)."""
    inner: BaseException | None = None
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        inner = group.exceptions[0]
    if inner is not None:
        raise inner  # outside the except block, so Python does not touch __context__


def basic_auth(username: str, password: str) -> str:
    """The value of a ``Proxy-Authorization`` header for HTTP Basic auth."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class Proxy:
    """A running pproxy, listening on :attr:`host`:attr:`port`."""

    def __init__(
        self,
        process: trio.Process,
        scheme: Scheme,
        username: str | None,
        password: str | None,
        ca: trustme.CA | None,
    ) -> None:
        self.process = process
        #: ``http``, ``https``, ``socks4`` or ``socks5``.
        self.scheme: Scheme = scheme
        self.host = HOST
        self.port = 0
        #: The credentials pproxy requires (SOCKS4: the user id, and no password), or ``None``.
        self.username = username
        self.password = password
        #: For ``https``: the CA that issued the proxy's certificate.
        self.ca = ca
        #: Everything pproxy printed (stdout and stderr), line by line.
        self.lines: list[str] = []
        #: ``(host, port)`` of each connection pproxy made for a client, in order, the host as
        #: the client named it (SOCKS5 with a name and HTTP CONNECT keep the name).
        self.targets: list[tuple[str, int]] = []
        self._buffer = bytearray()
        self._changed = trio.Event()

    def __repr__(self) -> str:
        return f"<Proxy {self.url}>"

    @property
    def url(self) -> str:
        """``scheme://[user[:password]@]127.0.0.1:port``, credentials percent-encoded."""
        return self.url_for()

    def url_for(
        self,
        scheme: str | None = None,
        *,
        username: str | _Keep | None = _Keep.KEEP,
        password: str | _Keep | None = _Keep.KEEP,
    ) -> str:
        """:attr:`url` with another scheme (``socks5h``, ``socks4a``) or other credentials
        (``None`` leaves them out): ``proxy.url_for(password="wrong")``."""
        user = self.username if username is _Keep.KEEP else username
        secret = self.password if password is _Keep.KEEP else password
        userinfo = ""
        if user is not None:
            userinfo = quote(user, safe="")
            if secret is not None:
                userinfo += ":" + quote(secret, safe="")
            userinfo += "@"
        return f"{scheme or self.scheme}://{userinfo}{self.host}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value this HTTP(S) proxy accepts (``None``: no auth)."""
        if self.username is None or self.password is None:
            return None
        return basic_auth(self.username, self.password)

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this ``https`` proxy's certificate (issued
        for ``127.0.0.1`` and ``localhost``)."""
        if self.ca is None:
            raise ValueError(f"{self.scheme} proxy has no TLS")
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    @property
    def output(self) -> str:
        """Everything pproxy printed so far, for error messages."""
        return "\n".join(self.lines)

    async def wait_target(self, host: str, port: int, *, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until pproxy has connected (or is connecting) to ``host:port`` for a client.

        pproxy logs the target before it connects, so once a client has seen bytes from the
        target the line is at most in flight; this waits for it. Fails (``AssertionError``,
        with the targets seen and pproxy's output) after ``timeout`` seconds.
        """
        with trio.move_on_after(timeout):
            while (host, port) not in self.targets:
                await self._changed.wait()
            return
        raise AssertionError(
            f"{self!r} did not connect to {host}:{port} within {timeout} s; "
            f"targets: {self.targets}; output:\n{self.output}"
        )

    async def wait_log(self, pattern: str, *, timeout: float = WAIT_TIMEOUT) -> str:
        """The first line of pproxy's output that matches the regex ``pattern`` (searched
        anywhere in the line), waiting for it up to ``timeout`` seconds.

        pproxy logs each refused client as ``REASON from CLIENT_IP``, e.g. ``Unauthorized
        HTTP from 127.0.0.1`` or ``Unauthorized SOCKS b'user':b'wrong' from 127.0.0.1``.
        """
        regex = re.compile(pattern)
        with trio.move_on_after(timeout):
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                await self._changed.wait()
        raise AssertionError(
            f"{self!r} printed no line matching {pattern!r} within {timeout} s; "
            f"output:\n{self.output}"
        )

    # ----------------------------------------------------------------------------------------

    async def _next_line(self) -> str | None:
        assert self.process.stdout is not None
        while (end := self._buffer.find(b"\n")) < 0:
            data = await self.process.stdout.receive_some(65536)
            if not data:
                if not self._buffer:
                    return None
                end = len(self._buffer)  # a last line without its newline
                self._buffer += b"\n"
                break
            self._buffer += data
        line = self._buffer[:end].decode("utf-8", "replace").rstrip("\r")
        del self._buffer[: end + 1]
        self.lines.append(line)
        return line

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_ready(self) -> None:
        """Read pproxy's output up to its "Serving on" line and take the port from it."""
        with trio.move_on_after(READY_TIMEOUT) as scope:
            while (line := await self._next_line()) is not None:
                if match := _SERVING.match(line):
                    self.port = int(match["port"])
                    return
        if scope.cancelled_caught:
            what = f"did not listen within {READY_TIMEOUT} s"
        else:
            with trio.move_on_after(TERMINATE_TIMEOUT):
                await self.process.wait()
            what = f"exited ({self.process.returncode}) without listening"
        raise RuntimeError(f"pproxy {what}: {self.process.args!r}; output:\n{self.output}")

    async def _read_output(self) -> None:
        while (line := await self._next_line()) is not None:
            if match := _TARGET.match(line):
                self.targets.append((match["host"], int(match["port"])))
            self._notify()
        self._notify()


def _check_credentials(scheme: Scheme, username: str | None, password: str | None) -> str:
    """The user list for pproxy's listen URI (after ``#``); ``""`` for none."""
    if scheme == "socks4":
        if password is not None:
            raise ValueError("SOCKS4 has a user id and no password")
        secret = username
    else:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if username is not None and ":" in username:
            raise ValueError(f"pproxy cannot tell a username with ':' apart: {username!r}")
        secret = None if username is None else f"{username}:{password}"
    if secret is not None and _BAD_CREDENTIAL.search(secret):
        raise ValueError(f"pproxy cannot take these credentials: {secret!r}")
    return secret or ""


async def _stop(process: trio.Process) -> None:
    """Terminate ``process``; kill it if it has not exited after :data:`TERMINATE_TIMEOUT`."""
    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(TERMINATE_TIMEOUT):
            await process.wait()
        if process.returncode is None:
            process.kill()
    await process.wait()


@asynccontextmanager
async def open_pproxy(
    scheme: Scheme,
    *,
    username: str | None = None,
    password: str | None = None,
    ca: trustme.CA | None = None,
    extra_args: tuple[str, ...] = (),
) -> AsyncIterator[Proxy]:
    """Run pproxy as a ``scheme`` proxy on 127.0.0.1 for the duration of the block.

    With ``username`` (and ``password``, except for SOCKS4) it requires those credentials on
    every connection. ``https`` listens with TLS, with a certificate from ``ca`` (a new
    ``trustme.CA`` if not given). ``extra_args`` go to pproxy's command line as they are.

    The command line is ``python -u -c BOOT -v --auth=-1 -l LISTEN [--ssl PEM]``, where LISTEN
    is ``http://127.0.0.1:0``, ``http+ssl://...``, ``socks4://...`` or ``socks5://...``,
    followed by ``#user:password`` (SOCKS4: ``#userid``) when there are credentials.
    """
    if importlib.util.find_spec("pproxy") is None:
        pytest.skip("pproxy is not installed (pip install 'pproxy>=2.7')")
    users = _check_credentials(scheme, username, password)
    if scheme == "https" and ca is None:
        ca = trustme.CA()
    protocol = {"http": "http", "https": "http+ssl", "socks4": "socks4", "socks5": "socks5"}
    listen = f"{protocol[scheme]}://{HOST}:0" + (f"#{users}" if users else "")
    cmd = [sys.executable, "-u", "-c", BOOT, "-v", "--auth=-1", "-l", listen]
    with ExitStack() as stack:
        if scheme == "https":
            assert ca is not None
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="pproxy-"))
            pem = Path(directory, "proxy.pem")
            if "," in str(pem):  # --ssl takes "certfile[,keyfile]"
                raise RuntimeError(f"pproxy cannot take a certificate path with ',': {pem}")
            cert = ca.issue_cert(HOST, "localhost")
            await trio.Path(pem).write_bytes(cert.private_key_and_cert_chain_pem.bytes())
            cmd += ["--ssl", str(pem)]
        cmd += extra_args
        process = await trio.lowlevel.open_process(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            proxy = Proxy(process, scheme, username, password, ca)
            await proxy._wait_ready()
            with _unwrap_single():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(proxy._read_output)
                    yield proxy
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await _stop(process)
                assert process.stdout is not None
                await process.stdout.aclose()


def http_proxy(
    *, username: str | None = None, password: str | None = None
) -> AbstractAsyncContextManager[Proxy]:
    """An HTTP proxy (``CONNECT``); with credentials, it requires Basic auth."""
    return open_pproxy("http", username=username, password=password)


def https_proxy(
    *,
    ca: trustme.CA | None = None,
    username: str | None = None,
    password: str | None = None,
) -> AbstractAsyncContextManager[Proxy]:
    """An HTTP proxy behind TLS (certificate for 127.0.0.1 and localhost, issued by ``ca``)."""
    return open_pproxy("https", username=username, password=password, ca=ca)


def socks5_proxy(
    *, username: str | None = None, password: str | None = None
) -> AbstractAsyncContextManager[Proxy]:
    """A SOCKS5 proxy; with credentials, it requires username/password auth (RFC 1929)."""
    return open_pproxy("socks5", username=username, password=password)


def socks4_proxy(*, user_id: str | None = None) -> AbstractAsyncContextManager[Proxy]:
    """A SOCKS4 proxy (not 4a, see the module docstring); with ``user_id``, it requires it."""
    return open_pproxy("socks4", username=user_id)
