"""Every Python example of the README and the docs runs, and prints what the page says.

The examples are found, not listed: every ```` ```python ```` block of README.md and every
``.. code-block:: python`` (or ``pycon``) of docs/**/*.rst is one test, ``FILE:LINE``. What a
block is decides how it runs, each in a subprocess of its own (``sys.executable``):

* a **program** (it calls ``trio.run(``) runs as written, in an empty directory, with the
  addresses of the reader's local servers replaced by those of servers this module starts:
  ``ws://127.0.0.1:8765`` (``trio-ws serve --port 8765``: an echo server),
  ``wss://127.0.0.1:8765`` and ``wss://localhost:8765`` (``trio-ws serve --tls``; the directory
  holds its authority as ``ca.pem``, and a client certificate as ``client.pem``);
* a **test module** (it defines ``test_`` functions) runs under pytest with pytest-trio's
  ``trio_mode = true``, as the testing how-to sets it up;
* a **fragment** (anything else) runs at the top level of a module with ``await`` allowed,
  given ``trio``, ``trio_ws``, ``url`` and ``ws``, an open connection to ``url``: an echo
  server that closes the connection (code 1000) once the client has been silent for
  :data:`IDLE` seconds, so that a fragment's ``async for msg in ws`` ends;
* a ``pycon`` block runs as a doctest.

Each must exit with status 0 and print nothing on stderr. When the page shows the output (the
next block is a ``text`` block and the paragraph just before it ends with "prints:", or
"prints, at once:"...), stdout
must be exactly that; a line ``...`` there stands for any number of lines.

:data:`SETUPS` gives the few examples that need more (a proxy, a Unix socket, names a fragment
takes as given) and names the ones that cannot run here, with the reason. All examples run
concurrently in one Trio run, the first time a test of this module asks for its result.
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Final
from urllib.parse import quote

import attrs
import pytest
import trio
import trustme

from trio_ws import WSMsgType
from trio_ws.testing import ServerConnection, TestServer, open_test_server

from .conftest import PROXY_VARIABLES
from .h2servers import open_hypercorn
from .proxies import Proxy, http_proxy, socks5_proxy

ROOT: Final = Path(__file__).resolve().parent.parent
#: Seconds of client silence after which the fragments' server closes the connection.
IDLE: Final = 0.3
#: Bound on each example's run.
EXAMPLE_TIMEOUT: Final = 20.0
#: Examples running at the same time.
CONCURRENCY: Final = 4


# ---------------------------------------------------------------------------------------------
# finding the examples


@attrs.frozen
class Example:
    """One code block: where it is, its language, its code and the output the page shows."""

    path: str  # relative to the repository
    line: int  # of the first line of code
    language: str  # "python" or "pycon"
    code: str
    output: list[str] | None

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def kind(self) -> str:
        if self.language == "pycon":
            return "doctest"
        if "trio.run(" in self.code:
            return "program"
        if re.search(r"^(async )?def test_", self.code, re.M):
            return "pytest"
        return "fragment"


@attrs.frozen
class _Block:
    language: str
    line: int
    end: int  # the index of the first line after the block
    code: str


_RST_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<language>\S+)\s*$")
_MD_FENCE = re.compile(r"^```(?P<language>\S*)\s*$")


def _rst_blocks(lines: list[str]) -> Iterator[_Block]:
    i = 0
    while i < len(lines):
        match = _RST_DIRECTIVE.match(lines[i])
        i += 1
        if not match:
            continue
        indent = len(match["indent"])
        # Options (":caption: ..."), then a blank line, then the content, indented deeper.
        while i < len(lines) and lines[i].strip().startswith(":"):
            i += 1
        start = i
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            i += 1
        body = lines[start:i]
        first = next(n for n, text in enumerate(body) if text.strip())
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        yield _Block(match["language"], start + first + 1, i, code)


def _md_blocks(lines: list[str]) -> Iterator[_Block]:
    i = 0
    while i < len(lines):
        match = _MD_FENCE.match(lines[i])
        i += 1
        if not match or not match["language"]:
            continue
        start = i
        while not lines[i].startswith("```"):
            i += 1
        yield _Block(match["language"], start + 1, i + 1, "\n".join(lines[start:i]) + "\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _shown_output(lines: list[str], block: _Block, following: _Block | None) -> list[str] | None:
    """The next block's lines if it is the output the page shows for ``block``: a ``text``
    block with only a paragraph ending in "prints:" (or "prints, ...:") between the two."""
    if following is None or following.language != "text":
        return None
    between = [line.strip() for line in lines[block.end : following.line - 1] if line.strip()]
    between = [line for line in between if not line.startswith(("```", ".. code-block::"))]
    if not between or not re.search(r"\bprints\b[^.]*:$", between[-1]):
        return None
    return following.code.rstrip("\n").split("\n")


def find_examples() -> list[Example]:
    docs = ROOT / "docs"
    pages = [
        ROOT / "README.md",
        *sorted(p for p in docs.rglob("*.rst") if not p.relative_to(docs).parts[0].startswith("_")),
    ]
    examples = []
    for page in pages:
        lines = page.read_text(encoding="utf-8").split("\n")
        blocks = list((_md_blocks if page.suffix == ".md" else _rst_blocks)(lines))
        for n, block in enumerate(blocks):
            following = blocks[n + 1] if n + 1 < len(blocks) else None
            if block.language in ("python", "pycon"):
                output = _shown_output(lines, block, following)
                path = str(page.relative_to(ROOT))
                examples.append(Example(path, block.line, block.language, block.code, output))
    return examples


EXAMPLES: Final = find_examples()


# ---------------------------------------------------------------------------------------------
# what some examples need


@attrs.frozen
class Setup:
    """What one example (the block of ``path`` that contains ``snippet``) needs."""

    path: str
    snippet: str
    #: Code run before a fragment: the names it takes as given.
    given: str = ""
    #: Text of the example -> a key of the servers (``Servers.named``) to put in its place.
    replace: dict[str, str] = attrs.field(factory=dict)
    #: The server a fragment's ``url`` and ``ws`` are connected to.
    url: str = "idle"
    #: A pattern that stderr must match (logging examples log there), instead of being empty.
    stderr: str | None = None
    #: Why the example cannot run here: it is not run at all.
    skip: str | None = None


SETUPS: Final = [
    Setup(
        "docs/howto/migrating-from-aiohttp.rst",
        "aiohttp.ClientSession()",
        skip="aiohttp on asyncio, for comparison: not installed with the test dependencies",
    ),
    Setup(
        "docs/howto/migrating-from-trio-websocket.rst",
        "trio_websocket.open_websocket_url",
        skip="trio-websocket, for comparison: not installed with the test dependencies",
    ),
    Setup(
        "docs/concurrency.rst",
        "nursery.start_soon(consume, ws)",
        given="async def consume(ws):\n    async for msg in ws:\n        pass\n",
    ),
    Setup("docs/timeouts.rst", "with trio.fail_after(10)", given="def handle(msg): pass\n"),
    Setup("docs/timeouts.rst", "connect_timeout=10) as ws:", given="def handle(msg): pass\n"),
    Setup("docs/logging.rst", "logging.basicConfig(level=logging.INFO)", stderr=r"connected to"),
    Setup(
        "docs/howto/proxies.rst",
        "proxy.corp:3128",
        replace={
            "http://user:pass@proxy.corp:3128": "http-auth",
            "http://proxy.corp:3128": "http-auth-bare",
            "socks5h://127.0.0.1:9050": "socks5h",
        },
    ),
    Setup(
        "docs/howto/proxies.rst",
        "except trio_ws.WSProxyError",
        given="proxy_url = 'PROXY_URL'\n",
        replace={"PROXY_URL": "http-auth"},
    ),
    Setup(
        "docs/howto/redirects.rst", "api.example.com", replace={"wss://api.example.com": "redirect"}
    ),
    Setup(
        "docs/howto/tls.rst",
        "load_cert_chain",
        replace={"wss://127.0.0.1:8765": "mtls"},
    ),
    Setup(
        "docs/howto/http2.rst",
        "open_session(",
        replace={"ws://127.0.0.1:8443": "h2c"},
    ),
    Setup(
        "docs/howto/unix-sockets.rst",
        "/run/app.sock",
        replace={"%2Frun%2Fapp.sock": "unix-quoted", "/run/app.sock": "unix"},
    ),
]


def setup_of(example: Example) -> Setup:
    found = [s for s in SETUPS if s.path == example.path and s.snippet in example.code]
    assert len(found) <= 1, f"{example.id}: more than one setup"
    return found[0] if found else Setup(example.path, "")


def test_every_setup_names_one_example() -> None:
    """Each entry of SETUPS matches exactly one example (none is stale)."""
    for setup in SETUPS:
        matches = [e.id for e in EXAMPLES if e.path == setup.path and setup.snippet in e.code]
        assert len(matches) == 1, (setup, matches)


def test_the_examples_are_found() -> None:
    """The extractor finds the README's program and examples on every kind of page."""
    assert EXAMPLES[0].path == "README.md"
    assert EXAMPLES[0].kind == "program"
    assert EXAMPLES[0].output is not None
    assert {e.kind for e in EXAMPLES} >= {"program", "fragment", "pytest"}


# ---------------------------------------------------------------------------------------------
# the servers the examples talk to


async def _echo_until_idle(conn: ServerConnection) -> None:
    """:func:`~trio_ws.testing.echo_handler`, but close the connection (1000) once the client
    has been silent for :data:`IDLE` seconds."""
    while True:
        with trio.move_on_after(IDLE) as silence:
            msg = await conn.receive()
        if silence.cancelled_caught:
            await conn.close()
            return
        try:
            if msg.type is WSMsgType.TEXT:
                await conn.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await conn.send_bytes(msg.data)
        except trio.ClosedResourceError:
            continue  # the client's close frame is next in the queue
        except trio.BrokenResourceError:
            return
        if msg.type is WSMsgType.CLOSE:
            await conn.close(msg.data)
            return
        if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSED):
            return


async def _forward(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
    try:
        async for data in source:
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # one side went away (the other direction's end closed this stream)
    finally:
        await trio.aclose_forcefully(sink)


@asynccontextmanager
async def _unix_socket_to(path: Path, port: int) -> AsyncIterator[None]:
    """A Unix socket at ``path`` whose connections are forwarded to 127.0.0.1:``port``."""

    async def forward(unix: trio.SocketStream) -> None:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward, unix, tcp)
            nursery.start_soon(_forward, tcp, unix)

    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, forward, [trio.SocketListener(sock)])
        yield
        nursery.cancel_scope.cancel()


@attrs.define
class Servers:
    """The servers of one run, and where the examples find them."""

    #: Holds ca.pem (the authority of the TLS servers) and client.pem (a certificate it issued).
    directory: Path
    #: The addresses of the reader's servers -> ours, replaced in every example.
    everywhere: dict[str, str] = attrs.field(factory=dict)
    #: The servers that SETUPS name: key -> URL or path.
    named: dict[str, str] = attrs.field(factory=dict)


@asynccontextmanager
async def open_servers(directory: Path) -> AsyncIterator[Servers]:
    servers = Servers(directory)
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(directory / "ca.pem"))
    client_cert = authority.issue_cert("client@example.test")
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(directory / "client.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
    mtls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(mtls)
    authority.configure_trust(mtls)
    mtls.verify_mode = ssl.CERT_REQUIRED

    async with AsyncExitStack() as stack:

        async def serve(**kwargs: object) -> TestServer:
            return await stack.enter_async_context(open_test_server(**kwargs))  # type: ignore[arg-type]

        echo = await serve(compression=True)
        idle = await serve(handler=_echo_until_idle)
        secure = await serve(ssl_context=tls, compression=True)
        mutual = await serve(ssl_context=mtls)
        redirect = await serve(reject=(307, [(b"Location", echo.url.encode())], b""))
        proxy: Proxy = await stack.enter_async_context(http_proxy(username="user", password="pass"))
        socks: Proxy = await stack.enter_async_context(socks5_proxy())
        unix = directory / "app.sock"
        await stack.enter_async_context(_unix_socket_to(unix, echo.port))
        h2c = await stack.enter_async_context(open_hypercorn())
        servers.everywhere.update(
            {
                "ws://127.0.0.1:8765": echo.url.rstrip("/"),
                "wss://127.0.0.1:8765": secure.url.rstrip("/"),
                "wss://localhost:8765": secure.url.rstrip("/").replace("127.0.0.1", "localhost"),
            }
        )
        servers.named.update(
            {
                "idle": idle.url,
                "mtls": mutual.url.rstrip("/"),
                "redirect": redirect.url.rstrip("/"),
                "http-auth": proxy.url,
                "http-auth-bare": proxy.url_for(username=None),
                "socks5h": socks.url_for("socks5h"),
                "unix": str(unix),
                "unix-quoted": quote(str(unix), safe=""),
                "h2c": h2c.url("").rstrip("/"),
            }
        )
        yield servers


# ---------------------------------------------------------------------------------------------
# running them

#: Runs a fragment: ``python -c FRAGMENT_RUNNER PATH LINE URL GIVEN`` (the fragment on stdin).
FRAGMENT_RUNNER: Final = """
import ast, sys, trio, trio_ws

path, line, url, given = sys.argv[1:]
source = "\\n" * (int(line) - 1) + sys.stdin.read()  # tracebacks name the page's lines
code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__", "trio": trio, "trio_ws": trio_ws, "url": url}
exec(given, namespace)

async def main():
    async with trio_ws.open_ws(url) as ws:
        namespace["ws"] = ws
        result = eval(code, namespace)
        if result is not None:
            await result

trio.run(main)
"""

DOCTEST_RUNNER: Final = """
import doctest, sys
path, line = sys.argv[1:]
test = doctest.DocTestParser().get_doctest(sys.stdin.read(), {}, path, path, int(line))
runner = doctest.DocTestRunner()
runner.run(test)
sys.exit(1 if runner.failures else 0)
"""

PYPROJECT: Final = "[tool.pytest.ini_options]\ntrio_mode = true\n"


@attrs.frozen
class Result:
    returncode: int
    stdout: str
    stderr: str


def _replace(code: str, replacements: dict[str, str]) -> str:
    # Longest first, so that "http://user:pass@host" goes before a shorter text inside it.
    for old in sorted(replacements, key=len, reverse=True):
        code = code.replace(old, replacements[old])
    return code


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def prepare(example: Example, servers: Servers, directory: Path) -> tuple[list[str], bytes]:
    """Write the example's files into ``directory``; the command that runs it, and its stdin."""
    setup = setup_of(example)
    addresses = servers.everywhere | {old: servers.named[key] for old, key in setup.replace.items()}
    code = _replace(example.code, addresses)
    directory.mkdir()
    for name in ("ca.pem", "client.pem"):
        (directory / name).write_bytes((servers.directory / name).read_bytes())
    if example.kind == "program":
        (directory / "example.py").write_text(code)
        return [sys.executable, "example.py"], b""
    if example.kind == "pytest":
        (directory / "test_example.py").write_text(code)
        (directory / "pyproject.toml").write_text(PYPROJECT)
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], b""
    where = [example.path, str(example.line)]
    if example.kind == "doctest":
        return [sys.executable, "-c", DOCTEST_RUNNER, *where], code.encode()
    url = servers.named[setup.url]
    given = _replace(setup.given, addresses)
    return [sys.executable, "-c", FRAGMENT_RUNNER, *where, url, given], code.encode()


async def run_example(example: Example, servers: Servers, directory: Path) -> Result:
    command, stdin = prepare(example, servers, directory)
    with trio.move_on_after(EXAMPLE_TIMEOUT):
        result = await trio.run_process(
            command,
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=directory,
            env=_environment(),
        )
        return Result(result.returncode, result.stdout.decode(), result.stderr.decode())
    return Result(-1, "", f"(killed: still running after {EXAMPLE_TIMEOUT} s)")


async def run_examples(examples: list[Example], directory: Path) -> dict[str, Result]:
    results: dict[str, Result] = {}
    limit = trio.CapacityLimiter(CONCURRENCY)

    async def run_one(n: int, example: Example) -> None:
        async with limit:
            results[example.id] = await run_example(example, servers, directory / f"example{n}")

    async with open_servers(directory) as servers, trio.open_nursery() as nursery:
        for n, example in enumerate(examples):
            nursery.start_soon(run_one, n, example)
    return results


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Result]:
    """The results of every example that this session selected, run together once."""
    selected = {
        item.callspec.params["example"].id
        for item in request.session.items
        if hasattr(item, "callspec") and isinstance(item.callspec.params.get("example"), Example)
    }
    chosen = [e for e in EXAMPLES if e.id in selected and setup_of(e).skip is None]
    directory = tmp_path_factory.mktemp("docs-examples")
    return trio.run(run_examples, chosen, directory)


def _matches(expected: list[str], actual: list[str]) -> bool:
    """``actual == expected``, where a line ``...`` in ``expected`` stands for any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[n:]) for n in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and _matches(expected[1:], actual[1:])


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs(example: Example, results: dict[str, Result]) -> None:
    """The example exits with status 0, prints nothing on stderr, and the output shown."""
    setup = setup_of(example)
    if setup.skip is not None:
        pytest.skip(setup.skip)
    result = results[example.id]
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    if setup.stderr is None:
        assert result.stderr == "", report
    else:
        assert re.search(setup.stderr, result.stderr), report
    if example.output is not None:
        assert _matches(example.output, result.stdout.rstrip("\n").split("\n")), report


def test_no_example_uses_the_internet() -> None:
    """No example connects to a host on the internet: they run against local servers."""
    for example in EXAMPLES:
        setup = setup_of(example)
        if setup.skip is not None:
            continue
        code = _replace(example.code, dict.fromkeys(setup.replace, ""))
        # Names under .test (RFC 6761) and .internal (reserved for private use) never resolve
        # on the internet: a Host header for a Unix socket, the memory pair's URL.
        local = r"127\.0\.0\.1|localhost|\[::1\]|[\w.-]+\.(?:test|internal)\b"
        assert not re.search(rf"wss?://(?!{local})", code), example.id
