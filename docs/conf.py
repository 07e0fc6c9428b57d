"""Sphinx configuration for the trio_ws documentation."""

from __future__ import annotations

import inspect
import os
import re
import sys
import zlib
from pathlib import Path
from typing import Any

# Document the checkout this file lives in, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio_ws

project = "trio_ws"
author = "trio_ws contributors"
copyright = "trio_ws contributors"
release = trio_ws.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinxcontrib_trio",
]

# _generated/ holds fragments that other pages include (benchmarks.rst), not pages of its own.
exclude_patterns = ["_build", "_generated"]
default_role = "py:obj"
nitpicky = True
# Every page is about trio_ws: names such as ``ClientWebSocket`` resolve there by default (a page
# may still set another ``currentmodule``).
rst_prolog = ".. currentmodule:: trio_ws\n"

autodoc_member_order = "bysource"

napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"trio_ws {release}"

# Links to the Python and Trio docs. Fetching their inventories needs the network, and a failed
# fetch is a warning that `-W` turns into an error, so by default the build writes small
# inventories of its own (LINKED below, into the doctree directory, never committed) and points
# intersphinx at them, with the real base URLs: the links are the real ones, and the build is
# offline and deterministic. TRIO_WS_DOCS_INTERSPHINX=1 fetches the real inventories instead
# (a check that LINKED still points at the right pages).
PYTHON_DOCS = "https://docs.python.org/3/"
TRIO_DOCS = "https://trio.readthedocs.io/en/stable/"
ONLINE_INVENTORIES = bool(os.environ.get("TRIO_WS_DOCS_INTERSPHINX"))


def _on(page: str, kind: str, *names: str) -> dict[str, tuple[str, str]]:
    """``names``, objects of type ``kind`` documented on ``page`` (each at its own anchor)."""
    return dict.fromkeys(names, (kind, f"{page}#$"))


#: The names the docs link to in each project: name -> (object type, page#anchor), in the
#: format of Sphinx's objects.inv ("$" at the end stands for the name). A reference to a Python
#: or Trio name that is missing here is an unresolved reference, so `-n` names it.
LINKED: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "python": (
        PYTHON_DOCS,
        {
            "logging": ("py:module", "library/logging.html#module-$"),
            **_on("library/functions.html", "py:class", "int", "float", "bool"),
            **_on(
                "library/stdtypes.html",
                "py:class",
                *("str", "bytes", "bytearray", "memoryview", "list", "tuple"),
            ),
            **_on(
                "library/exceptions.html",
                "py:exception",
                *("BaseException", "Exception", "ExceptionGroup"),
                *("OSError", "RuntimeError", "TimeoutError", "TypeError", "ValueError"),
            ),
            **_on(
                "library/collections.abc.html",
                "py:class",
                *("collections.abc.AsyncGenerator", "collections.abc.AsyncIterable"),
                *("collections.abc.AsyncIterator", "collections.abc.Awaitable"),
                *("collections.abc.Callable", "collections.abc.Iterable"),
                *("collections.abc.Mapping", "collections.abc.Sequence"),
            ),
            **_on("library/contextlib.html", "py:class", "contextlib.AbstractAsyncContextManager"),
            **_on("library/logging.html", "py:class", "logging.Logger", "logging.LoggerAdapter"),
            **_on("library/os.html", "py:class", "os.PathLike"),
            **_on("library/ssl.html", "py:class", "ssl.SSLContext"),
            **_on("library/ssl.html", "py:exception", "ssl.SSLCertVerificationError"),
            **_on("library/ssl.html", "py:function", "ssl.create_default_context"),
            **_on("library/ssl.html", "py:method", "ssl.SSLContext.load_cert_chain"),
            **_on("library/typing.html", "py:data", "typing.Any", "typing.Unpack"),
        },
    ),
    "trio": (
        TRIO_DOCS,
        {
            **_on(
                "reference-core.html",
                "py:exception",
                *("trio.BrokenResourceError", "trio.Cancelled", "trio.ClosedResourceError"),
                "trio.TooSlowError",
            ),
            **_on(
                "reference-core.html",
                "py:class",
                *("trio.CapacityLimiter", "trio.Nursery"),
            ),
            **_on(
                "reference-core.html",
                "py:function",
                *("trio.as_safe_channel", "trio.current_time", "trio.fail_after", "trio.run"),
            ),
            **_on("reference-io.html", "py:class", "trio.SSLStream", "trio.abc.Stream"),
            **_on("reference-testing.html", "py:class", "trio.testing.MockClock"),
        },
    ),
}


def _write_inventory(path: Path, project: str, names: dict[str, tuple[str, str]]) -> None:
    """Write ``names`` as a Sphinx inventory, version 2 (the format of ``objects.inv``)."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: \n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    # name domain:type priority uri display-name ("-": the name itself)
    lines = "".join(f"{name} {kind} 1 {uri} -\n" for name, (kind, uri) in sorted(names.items()))
    path.write_bytes(header.encode() + zlib.compress(lines.encode()))


def _set_up_intersphinx(app: Any, config: Any) -> None:
    """Point intersphinx at the real inventories (opt-in) or at ones written from LINKED."""
    if ONLINE_INVENTORIES:
        config.intersphinx_mapping = {name: (url, None) for name, (url, _) in LINKED.items()}
        return
    directory = Path(app.doctreedir) / "intersphinx"
    directory.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for name, (url, names) in LINKED.items():
        path = directory / f"{name}.inv"
        _write_inventory(path, name, names)
        mapping[name] = (url, str(path))
    config.intersphinx_mapping = mapping


def _name_function_defaults(
    app: object,
    what: str,
    name: str,
    obj: Any,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    """Show a default such as ``json.loads`` by name instead of ``<function loads>``.

    Sphinx cannot parse a signature that contains ``<function loads>`` (or ``<built-in method
    random of Random object at 0x...>``, the default of ``Backoff.jitter``), and then prints
    its annotations raw (``~typing.Any``).
    """
    if signature is None or "<" not in signature:
        return None
    for param in inspect.signature(obj).parameters.values():
        default = param.default
        if not (inspect.isfunction(default) or inspect.isbuiltin(default)):
            continue
        # random.random is a method of the random module's hidden Random instance.
        module = default.__module__ or type(getattr(default, "__self__", None)).__module__
        if getattr(sys.modules.get(module), default.__name__, None) is default:
            shown = f"{module}.{default.__name__}"
        else:
            shown = f"{module}.{default.__qualname__}"
        signature = signature.replace(f"<function {default.__name__}>", shown)
        signature = re.sub(
            rf"<built-in (?:function|method) {default.__name__}\b[^>]*>", shown, signature
        )
    return signature, return_annotation


#: Written by ``nox -s bench`` (benchmarks/plot.py) and included by benchmarks.rst; never
#: committed. Without a measurement the page includes a placeholder written here instead.
BENCHMARK_FRAGMENT = Path(__file__).resolve().parent / "_generated" / "benchmarks.rst"
BENCHMARK_PLACEHOLDER = """\
.. Placeholder written by docs/conf.py: no benchmark results in this build.

.. note::

   Not measured in this build: run ``nox -s bench`` to measure and put the chart and table
   here.
"""


def _ensure_benchmark_fragment(app: object) -> None:
    """Let benchmarks.rst include its fragment even when nothing was measured."""
    if not BENCHMARK_FRAGMENT.exists():
        BENCHMARK_FRAGMENT.parent.mkdir(exist_ok=True)
        BENCHMARK_FRAGMENT.write_text(BENCHMARK_PLACEHOLDER)


def setup(app: Any) -> None:
    # Before intersphinx reads the mapping (it loads the inventories at builder-inited).
    app.connect("config-inited", _set_up_intersphinx)
    app.connect("builder-inited", _ensure_benchmark_fragment)
    app.connect("autodoc-process-signature", _name_function_defaults)
