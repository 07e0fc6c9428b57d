"""Run one configuration with one client, in this process, and print one JSON line.

    python -m benchmarks.measure --client trio_ws --config W3-64 --n 20000 \\
        --port P --deflate-port Q [--server-pid PID]

:mod:`benchmarks.run` starts one such process per measurement, so that every measurement
starts from a fresh interpreter that has imported only its own library. The line is the
workload's result with ``"status": "ok"``, or ``"status": "n/a"`` (library not installed, or no
permessage-deflate for W6) or ``"status": "error"`` with the exception.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import traceback
from collections.abc import Sequence
from typing import Any

if __package__ in {None, ""}:  # run as a script: python benchmarks/measure.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.clients import CLIENTS, Client
from benchmarks.workloads import (
    CONFIGS,
    RUNTIMES,
    WORKLOADS,
    Config,
    Result,
    Urls,
    Window,
    Workload,
)


def not_applicable(client: Client, config: Config, *, here: bool = True) -> str | None:
    """Why ``client`` cannot run ``config`` here, or ``None`` if it can.

    ``here=False`` leaves out whether the library is installed: for a row that another
    interpreter measures (run.py's ``--baseline-python``), only that interpreter can tell.
    """
    if here and not client.available():
        return f"{client.module} is not installed"
    if config.deflate and not client.deflate:
        return f"{client.name} has no permessage-deflate"
    return None


def measure(
    client: Client, config: Config, n: int, urls: Urls, server_pid: int | None = None
) -> Result:
    """Run ``config`` with ``n`` exchanges; the workload's result plus the window's figures."""
    reason = not_applicable(client, config)
    if reason:
        return {"status": "n/a", "reason": reason}
    client.load()
    window = Window(server_pid)
    workload = WORKLOADS[config.workload]
    run = RUNTIMES[client.loop].run
    result = run(_workload, workload, client, urls, n, config.size, config.warm(n), window)
    return {"status": "ok", **result, **window.figures(), "library": _library(client)}


async def _workload(
    workload: Workload, client: Client, urls: Urls, n: int, size: int, warm: int, window: Window
) -> Result:
    """``workload``, then the client's ``shutdown`` (inside the same event loop)."""
    try:
        return await workload(client, urls, n, size, warm, window)
    finally:
        if client.shutdown is not None:
            await client.shutdown()


def _library(client: Client) -> dict[str, Any]:
    """Which copy of the library this process measured: version and where it was imported from.

    run.py's ``--baseline-python`` row imports trio_ws from another environment; this is how
    the results show that it did.
    """
    module = sys.modules[client.module.partition(".")[0]]
    return {"version": client.version(), "file": getattr(module, "__file__", None)}


def which_trio_ws() -> dict[str, Any]:
    """Which trio_ws this interpreter imports, for run.py: file, version, C speed-up, source.

    ``installed_from`` is pip's record of where the installed distribution came from
    (``direct_url.json``: e.g. ``file:///path/to/checkout``), when pip recorded one.
    """
    from importlib import metadata

    try:
        import trio_ws
    except ImportError as exc:
        return {"error": f"cannot import trio_ws: {exc}"}
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "version": getattr(trio_ws, "__version__", None),
        "file": trio_ws.__file__,
    }
    try:
        import trio_ws._speedups as speedups

        info["speedups"] = speedups.__file__
    except ImportError:
        info["speedups"] = None
    try:
        import trio_ws._inflate as inflate

        info["inflate"] = inflate.__file__
    except ImportError:
        info["inflate"] = None
    try:
        direct_url = metadata.distribution("trio-ws").read_text("direct_url.json")
        info["installed_from"] = json.loads(direct_url) if direct_url else None
    except metadata.PackageNotFoundError:
        info["installed_from"] = None
    for name in ("trio", "attrs"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="One benchmark measurement, one JSON line.")
    parser.add_argument("--client", required=True, choices=sorted(CLIENTS))
    parser.add_argument("--config", required=True, choices=sorted(CONFIGS))
    parser.add_argument("--n", type=int, help="exchanges (default: the full-size n)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deflate-port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, help="report the server's CPU use too")
    args = parser.parse_args(argv)

    # W5 holds many connections at once: allow as many open files as the hard limit does.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    config = CONFIGS[args.config]
    urls = Urls(f"ws://127.0.0.1:{args.port}", f"ws://127.0.0.1:{args.deflate_port}")
    line: dict[str, Any]
    try:
        line = measure(CLIENTS[args.client], config, args.n or config.n, urls, args.server_pid)
    except Exception as exc:
        traceback.print_exc()
        while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # a nursery's wrapping says nothing about the failure
        line = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(line), flush=True)
    return 0 if line["status"] != "error" else 1


if __name__ == "__main__":
    sys.exit(main())
