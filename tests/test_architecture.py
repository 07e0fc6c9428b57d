"""The layering of DESIGN.md §2, read from the source with ``ast``: who may import what, and
how big a module may grow.

The import graph is followed inside ``trio_ws`` transitively, from the source files alone
(nothing is imported, so a half-written module elsewhere cannot hide a violation here). Every
import counts, also one inside a function or under ``TYPE_CHECKING``: a sans-I/O module that
needs trio even for its annotations has an I/O concept in its interface.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trio_ws"

#: The sans-I/O half: bytes and values in, bytes and values out, no trio (DESIGN.md §2).
SANS_IO = [
    "_protocol",
    "_outbox",
    "_framing",
    "_deflate",
    "_assembler",
    "_handshake",
    "_fasthead",
    "_offer",
    "_h2handshake",
    "_closewatch",
    "_url",
    "_types",
    "_errors",
    "_proxy",
    # Added by its own issue; checked as soon as it exists.
    *(["_options"] if (PACKAGE / "_options.py").exists() else []),
]
#: The public module of the test servers, ``trio_ws.testing``.
TEST_SERVERS = "testing"
#: Its private parts, loaded by it alone.
TEST_SERVER_PARTS = ["_testmemory", "_testserver_connection"]
#: The only modules that may use wsproto: the test servers and their parts.
WSPROTO_USERS = frozenset({TEST_SERVERS, *TEST_SERVER_PARTS})
#: The biggest a module may grow before it is split along a seam (DESIGN.md §2).
MAX_LINES = 650

MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))


def imports_of(module: str) -> list[str]:
    """The absolute names of everything ``trio_ws/<module>.py`` imports, anywhere in it."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                assert node.module is not None
                names.append(node.module)
            elif node.module:
                # The package is flat: a relative import names a sibling module.
                names.append(f"trio_ws.{node.module}")
            else:
                names += [f"trio_ws.{alias.name}" for alias in node.names]
    return names


def module_of(name: str) -> str | None:
    """The module of ``trio_ws`` that an imported name loads (``__init__`` for the package),
    or ``None`` for a compiled extension, which imports nothing of ours."""
    parts = name.split(".")
    module = parts[1] if len(parts) > 1 else "__init__"
    if (PACKAGE / f"{module}.py").exists():
        return module
    assert (PACKAGE / f"{module}.c").exists(), f"{name} is neither a module nor an extension"
    return None


def reachable(start: str, *, stop: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Every top-level package outside ``trio_ws`` that ``start`` imports, directly or
    through other modules of ``trio_ws`` (not through those in ``stop``), with the chain of
    modules that gets there."""
    chains = {start: [start]}
    todo = [start]
    external: dict[str, list[str]] = {}
    while todo:
        module = todo.pop()
        for name in imports_of(module):
            if name.split(".")[0] != "trio_ws":
                external.setdefault(name.split(".")[0], [*chains[module], name])
                continue
            target = module_of(name)
            if target is not None and target not in chains and target not in stop:
                chains[target] = [*chains[module], target]
                todo.append(target)
    return external


def test_the_graph_walker_sees_every_kind_of_import() -> None:
    """The walker resolves relative, absolute and package imports, also inside functions
    (_framing imports the C speed-up inside a function; __main__ imports the package)."""
    assert "trio_ws._speedups" in imports_of("_framing")
    assert module_of("trio_ws._speedups") is None
    assert {"trio_ws", "trio_ws.testing", "trio"} <= set(imports_of("__main__"))
    assert module_of("trio_ws") == "__init__"
    chain = reachable("__init__")["trio"]
    assert (chain[0], chain[-1]) == ("__init__", "trio")
    assert all(module_of(f"trio_ws.{m}") == m for m in chain[1:-1])


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_never_reach_trio(module: str) -> None:
    """No sans-I/O module imports trio, directly or through another module of trio_ws."""
    external = reachable(module)
    assert "trio" not in external, f"{module} reaches trio: {' -> '.join(external['trio'])}"


@pytest.mark.parametrize("module", [m for m in MODULES if m not in WSPROTO_USERS])
def test_only_the_test_servers_use_wsproto(module: str) -> None:
    """No module of the client imports wsproto (it is the independent peer of the tests and
    the engine of trio_ws.testing), directly or through another module."""
    external = reachable(module, stop=WSPROTO_USERS)
    assert "wsproto" not in external, (
        f"{module} reaches wsproto: {' -> '.join(external['wsproto'])}"
    )


def users_of(target: str) -> list[str]:
    """The modules of trio_ws that import ``target`` directly."""
    return [
        m
        for m in MODULES
        if any(module_of(n) == target for n in imports_of(m) if n.startswith("trio_ws"))
    ]


def test_only_the_cli_loads_the_test_servers() -> None:
    """trio_ws.testing (and with it wsproto) is loaded only by the CLI's demo server, never by
    ``import trio_ws`` or a module of the client."""
    assert users_of(TEST_SERVERS) == ["__main__"]


@pytest.mark.parametrize("part", TEST_SERVER_PARTS)
def test_only_trio_ws_testing_loads_its_parts(part: str) -> None:
    """A private part of the test servers is loaded by trio_ws.testing alone, so the client
    cannot reach wsproto through it."""
    assert users_of(part) == [TEST_SERVERS]


@pytest.mark.parametrize("module", MODULES)
def test_modules_stay_small(module: str) -> None:
    """Each module stays under 650 lines; a room that grows past that is split along a seam."""
    lines = len((PACKAGE / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert lines < MAX_LINES, f"trio_ws/{module}.py has {lines} lines (the limit is {MAX_LINES})"
