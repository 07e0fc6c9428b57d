"""The benchmark suite still works: trio_ws's workloads against benchmarks/server.py, tiny n.

Not a measurement: every n is the configuration's smoke size, so the whole module takes a few
seconds. What is checked is that each workload ran to the end and counted what it received
(rates above zero, payload byte counts exact), that the runner and the .rst fragment work end
to end, and that a missing library is reported as n/a. The workloads' asyncio runtime (the
aiohttp row's) is checked with websockets' asyncio client, which the test extra has, so that CI
needs no aiohttp; so is the ``--baseline-python`` row, with this interpreter standing in for
another environment's. The server binds 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio

from benchmarks import measure, plot, run
from benchmarks.clients import CLIENTS, MAX_MESSAGE, Client, Endpoints
from benchmarks.workloads import CONFIGS, WORKLOADS, Config, Urls, Window

ROOT: Final = Path(__file__).resolve().parent.parent
#: Guard against hangs: far above what the tiny workloads need.
GUARD: Final = 10.0

#: Configurations whose result counts received payload bytes, with the bytes per message.
COUNTED: Final = {n: c.size for n, c in CONFIGS.items() if c.workload in {"W1", "W2", "W3", "W6"}}


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """One benchmark server for the module (not pinned to a CPU): its ready line."""
    with run.server(cpu=None) as ready:
        yield ready


def urls(ready: dict[str, Any]) -> Urls:
    return Urls(f"ws://127.0.0.1:{ready['port']}", f"ws://127.0.0.1:{ready['deflate_port']}")


def test_server_listens_on_loopback_only(server: dict[str, Any]) -> None:
    """The ready line names two distinct ports and the server's pid."""
    assert server["event"] == "ready"
    assert server["port"] != server["deflate_port"]
    assert server["pid"] > 0


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
async def test_trio_ws_workload(server: dict[str, Any], config: Config) -> None:
    """Each workload runs to the end with trio_ws and reports a real rate and exact counts."""
    n = config.smoke_n
    window = Window(server["pid"])
    workload = WORKLOADS[config.workload]
    with trio.fail_after(GUARD):
        result = await workload(CLIENTS["trio_ws"], urls(server), n, config.size, 1, window)
    assert result["n"] == n
    assert result["rate"] > 0
    assert window.seconds > 0
    assert result["rate"] == pytest.approx(n / window.seconds)
    if config.name in COUNTED:
        assert result["bytes"] == n * COUNTED[config.name]
    if config.workload == "W5":
        assert result["rss_open_kib"] > 0
        assert isinstance(result["kib_per_conn"], float)


@asynccontextmanager
async def _websockets_asyncio(url: str, compress: bool = False) -> AsyncIterator[Endpoints]:
    from websockets.asyncio.client import connect

    async with connect(
        url,
        max_size=MAX_MESSAGE,
        ping_interval=None,
        compression="deflate" if compress else None,
        proxy=None,
    ) as ws:
        yield Endpoints(ws.send, ws.send, ws.recv, ws.recv)


#: An asyncio client that CI has (websockets is in the test extra): runs the asyncio runtime.
ASYNCIO_CLIENT: Final = Client(
    "websockets-asyncio",
    "websockets.asyncio.client",
    "websockets",
    True,
    _websockets_asyncio,
    loop="asyncio",
)


#: Run on asyncio too: one configuration per workload except W6 (W3 plus deflate, which is the
#: client's business, not the runtime's). On asyncio only how W2 and W5 start tasks differs.
ASYNCIO_CONFIGS: Final = ["W1", "W2-64", "W3-64", "W4", "W5-1000"]


@pytest.mark.parametrize("config", [CONFIGS[n] for n in ASYNCIO_CONFIGS], ids=ASYNCIO_CONFIGS)
def test_asyncio_runtime_workload(server: dict[str, Any], config: Config) -> None:
    """Each workload also runs on asyncio (the aiohttp row's loop), with exact counts."""
    result = measure.measure(ASYNCIO_CLIENT, config, config.smoke_n, urls(server), server["pid"])
    assert result["status"] == "ok"
    assert result["n"] == config.smoke_n
    assert result["rate"] > 0
    if config.name in COUNTED:
        assert result["bytes"] == config.smoke_n * COUNTED[config.name]
    assert result["library"]["file"]


@pytest.mark.parametrize("name", ["W1", "W5-1000", "W6"])
def test_aiohttp_row(server: dict[str, Any], name: str) -> None:
    """Where aiohttp is installed, its row works and closes its session (no warning)."""
    pytest.importorskip("aiohttp")
    config = CONFIGS[name]
    result = measure.measure(CLIENTS["aiohttp"], config, config.smoke_n, urls(server))
    assert result["status"] == "ok"
    assert result["n"] == config.smoke_n


def test_missing_library_is_not_applicable(server: dict[str, Any]) -> None:
    """A client whose library is not installed is n/a, not an error."""
    ghost = attrs.evolve(CLIENTS["trio_ws"], name="ghost", module="no_such_module_xyz_benchmarks")
    result = measure.measure(ghost, CONFIGS["W1"], 1, urls(server))
    assert result["status"] == "n/a"


def test_no_deflate_is_not_applicable(server: dict[str, Any]) -> None:
    """W6 with a client that has no permessage-deflate is n/a."""
    plain = attrs.evolve(CLIENTS["trio_ws"], deflate=False)
    result = measure.measure(plain, CONFIGS["W6"], 1, urls(server))
    assert result["status"] == "n/a"


def _python(tmp_path: Path, name: str, environment: str = "", flags: str = "") -> str:
    """A stand-in for another environment's python: this one, with variables and flags."""
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\n{environment} exec "{sys.executable}" {flags} "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_runner_smoke_end_to_end(tmp_path: Path) -> None:
    """run.py --smoke measures in subprocesses, prints the table and writes results.json.

    With ``--baseline-python``: row trio_ws@baseline is measured by that interpreter, with its
    own ratio column. The stand-in "other environment" finds trio_ws through PYTHONPATH (which
    run.py does not pass on, so the script sets it): this working tree's copy, so run.py must
    call it an A/A run.
    """
    baseline = _python(tmp_path, "python-aa", f"PYTHONPATH='{ROOT}'")
    args = [sys.executable, "benchmarks/run.py", "--smoke", "--configs", "W1,W6"]
    done = subprocess.run(
        [*args, "--out", str(tmp_path), "--no-pin", "--baseline-python", baseline],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert [m["status"] for m in results["measurements"]] == ["ok"] * 4
    for m in results["measurements"]:
        assert m["rate"] > 0
        assert m["bytes"] == m["n"] * CONFIGS[m["config"]].size
    assert sorted(m["client"] for m in results["measurements"]) == sorted(
        ["trio_ws", "trio_ws@baseline"] * 2
    )
    assert results["machine"]["versions"]["trio-ws"]
    assert results["table"][0] == [
        "config", "unit", "trio_ws", "trio_ws@baseline", "x trio_ws@baseline"
    ]  # fmt: skip
    assert results["trio_ws"]["trio_ws@baseline"]["same_as_subject"] is True
    assert "A/A run" in done.stdout
    assert "W6" in done.stdout

    fragment = plot.fragment(results, image=None)
    assert "Measured on" in fragment
    assert ".. list-table::" in fragment
    assert "figure::" not in fragment
    assert "Row trio_ws@baseline measured trio_ws" in fragment


def test_baseline_without_trio_ws(tmp_path: Path) -> None:
    """A baseline interpreter that cannot import trio_ws is an error, not this working tree.

    Its processes do not have the repository on sys.path. The stand-in finds, first on its
    PYTHONPATH, a trio_ws that fails to import, as a venv without trio_ws would.
    """
    (tmp_path / "trio_ws.py").write_text("raise ImportError('no trio_ws in this venv')\n")
    info = run.probe(_python(tmp_path, "python-none", f"PYTHONPATH='{tmp_path}'"))
    assert info["error"] == "cannot import trio_ws: no trio_ws in this venv"


@pytest.mark.skipif(shutil.which("node") is None, reason="benchmarks/http2.py needs node")
def test_http2_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/http2.py, tiny: every configuration over both transports, one table."""
    out = subprocess.run(
        [sys.executable, "benchmarks/http2.py", "--reps", "1", "--n", "10", "--messages", "200",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    assert "| open-N wss | fds_per_ws | 1 |" in out.stdout
    results = json.loads((tmp_path / "http2.json").read_text())
    assert set(results) == {"open-N wss", "open-N ws", "W2-64 ws", "W2-64 wss"}
    for by in results.values():
        for transport in ("h1", "h2"):
            (figures,) = by[transport]
            assert all(value >= 0 for value in figures.values())
    assert results["open-N wss"]["h2"][0]["fds_per_ws"] < 0.5  # one socket for all ten
