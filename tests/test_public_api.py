"""The public namespace: what ``import trio_ws`` offers, and the documented exception tree."""

from __future__ import annotations

import builtins
import inspect
import re
import types
from pathlib import Path

import pytest

import trio_ws
from trio_ws import _errors, testing

PUBLIC = sorted(trio_ws.__all__)


def test_every_name_in_all_is_listed_once() -> None:
    """__all__ has no duplicates."""
    assert len(trio_ws.__all__) == len(set(trio_ws.__all__))


def test_all_is_exactly_the_public_namespace() -> None:
    """Every public attribute is in __all__ (submodules and __version__ aside), and vice versa."""
    public = {
        name
        for name, value in vars(trio_ws).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(trio_ws.__all__)


def test_star_import_gives_all() -> None:
    """from trio_ws import * binds exactly __all__."""
    namespace: dict[str, object] = {}
    exec("from trio_ws import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(trio_ws.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_classes_and_functions_live_in_trio_ws(name: str) -> None:
    """Public classes and functions say they live in trio_ws, not in a private module."""
    obj = getattr(trio_ws, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert obj.__module__ == "trio_ws"
        assert obj.__name__ == obj.__qualname__ == name
    else:
        assert not name.startswith("_")
        assert name.isupper()  # constants only, like DEFAULT_WS_CLIENT_TIMEOUT


def test_version_is_a_string() -> None:
    """__version__ is a PEP 440 version string."""
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|a\d+|b\d+|rc\d+)?", trio_ws.__version__)


@pytest.mark.parametrize(
    ("exc", "base"),
    [
        (trio_ws.InvalidURL, ValueError),
        (trio_ws.InvalidArgument, ValueError),
        (trio_ws.WSConnectionError, OSError),
        (trio_ws.WSTLSError, OSError),
        (trio_ws.ServerTimeoutError, TimeoutError),
        (trio_ws.ConnectTimeoutError, TimeoutError),
        (trio_ws.WSTimeoutError, TimeoutError),
        (trio_ws.WSMessageTypeError, TypeError),
    ],
)
def test_errors_are_also_the_stdlib_errors_callers_catch(
    exc: type[Exception], base: type[Exception]
) -> None:
    """InvalidURL is a ValueError, connection errors OSErrors, timeouts TimeoutErrors..."""
    assert issubclass(exc, base)
    assert issubclass(exc, trio_ws.WSError)


# ---------------------------------------------------------------------------------------------
# the tree drawn in the docstring of trio_ws/_errors.py

_NODE = re.compile(
    r"^(?P<indent>(?:│   |    )*)(?:├── |└── )?(?P<name>\w+)(?: \(also (?P<also>[\w, ]+)\))?"
)


def _tree() -> list[tuple[str, str | None, list[str]]]:
    """(name, parent, also-bases) for each line of the drawn tree."""
    doc = _errors.__doc__
    assert doc is not None
    block = doc.split(".. code-block:: text", 1)[1].strip("\n")
    lines = [line[4:] for line in block.splitlines() if line.strip()]
    nodes: list[tuple[str, str | None, list[str]]] = []
    stack: list[str] = []
    for line in lines:
        match = _NODE.match(line)
        assert match is not None, line
        depth = len(match["indent"]) // 4 + (1 if line[len(match["indent"]) :][:1] in "├└" else 0)
        del stack[depth:]
        parent = stack[-1] if stack else None
        also = [a.strip() for a in (match["also"] or "").split(",") if a.strip()]
        nodes.append((match["name"], parent, also))
        stack.append(match["name"])
    return nodes


TREE = _tree()


def _resolve(name: str) -> type:
    obj = getattr(trio_ws, name, None) or getattr(builtins, name)
    assert isinstance(obj, type)
    return obj


def test_drawn_tree_covers_every_public_exception() -> None:
    """Every public exception appears in the drawn tree exactly once, rooted at WSError."""
    names = [name for name, _, _ in TREE]
    exceptions = [
        n
        for n in PUBLIC
        if isinstance(getattr(trio_ws, n), type) and issubclass(getattr(trio_ws, n), BaseException)
    ]
    assert sorted(names) == exceptions
    assert TREE[0] == ("WSError", None, [])


@pytest.mark.parametrize(("name", "parent", "also"), TREE, ids=[node[0] for node in TREE])
def test_drawn_tree_holds(name: str, parent: str | None, also: list[str]) -> None:
    """Each class in the drawn tree subclasses its parent there and the bases it says "also"."""
    cls = _resolve(name)
    if parent is not None:
        assert issubclass(cls, _resolve(parent))
    for base in also:
        assert issubclass(cls, _resolve(base))
    assert name in _errors.__all__


# ---------------------------------------------------------------------------------------------
# the reference page documents every public name

API_PAGE = Path(__file__).parent.parent / "docs" / "api.rst"
_DIRECTIVE = re.compile(
    r"^\.\. (?:auto)?(?:function|class|exception|data|decorator)::\s+(?P<name>[\w.]+)", re.M
)


def _documented() -> set[str]:
    """The full names that docs/api.rst documents with a top-level directive."""
    names: set[str] = set()
    module = ""
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. module::"):
            module = line.split("::", 1)[1].strip()
        match = _DIRECTIVE.match(line)
        if match:
            names.add(f"{module}.{match['name']}")
    return names


@pytest.mark.parametrize(
    "name",
    [f"trio_ws.{n}" for n in PUBLIC] + [f"trio_ws.testing.{n}" for n in testing.__all__],
)
def test_the_reference_page_documents_every_public_name(name: str) -> None:
    """Each name of trio_ws.__all__ and trio_ws.testing.__all__ has its directive in api.rst."""
    assert name in _documented()


def test_the_reference_page_documents_nothing_that_is_not_public() -> None:
    """docs/api.rst documents no name that is missing from the __all__ lists (or misspelled)."""
    public = {f"trio_ws.{n}" for n in PUBLIC} | {f"trio_ws.testing.{n}" for n in testing.__all__}
    assert _documented() <= public
