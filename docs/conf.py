"""Sphinx configuration for the trio_ws documentation."""

from __future__ import annotations

import inspect
import os
import sys
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
nitpicky = False

autodoc_member_order = "bysource"

napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Fetching inventories needs the network, and a failed fetch is a warning that `-W` turns into
# an error. Links to the Python and Trio docs are therefore opt-in: TRIO_WS_DOCS_INTERSPHINX=1.
if os.environ.get("TRIO_WS_DOCS_INTERSPHINX"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "trio": ("https://trio.readthedocs.io/en/stable/", None),
    }

html_theme = "alabaster"
html_theme_options = {
    "description": "A Trio-native WebSocket client",
    "fixed_sidebar": True,
}


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

    Sphinx cannot parse a signature that contains ``<function loads>``, and then prints its
    annotations raw (``~typing.Any``).
    """
    if signature is None or "<function " not in signature:
        return None
    for param in inspect.signature(obj).parameters.values():
        default = param.default
        if inspect.isfunction(default) or inspect.isbuiltin(default):
            shown = f"{default.__module__}.{default.__qualname__}"
            signature = signature.replace(f"<function {default.__name__}>", shown)
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
    app.connect("builder-inited", _ensure_benchmark_fragment)
    app.connect("autodoc-process-signature", _name_function_defaults)
