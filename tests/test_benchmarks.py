"""The benchmark suite still works: trio_ws's workloads against benchmarks/server.py, tiny n.

Not a measurement: every n is the configuration's smoke size, so the whole module takes a few
seconds. What is checked is that each workload ran to the end and counted what it received
(rates above zero, payload byte counts exact), that the runner and the .rst fragment work end
to end, and that a missing library is reported as n/a. The server binds 127.0.0.1 only, and
every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio

from benchmarks import measure, plot, run
from benchmarks.clients import CLIENTS
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


def test_runner_smoke_end_to_end(tmp_path: Path) -> None:
    """run.py --smoke measures in subprocesses, prints the table and writes results.json."""
    args = [sys.executable, "benchmarks/run.py", "--smoke", "--configs", "W1,W3-64,W6"]
    done = subprocess.run(
        [*args, "--out", str(tmp_path), "--no-pin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert [m["status"] for m in results["measurements"]] == ["ok", "ok", "ok"]
    for m in results["measurements"]:
        assert m["client"] == "trio_ws"
        assert m["rate"] > 0
        assert m["bytes"] == m["n"] * CONFIGS[m["config"]].size
    assert results["machine"]["versions"]["trio-ws"]
    assert results["table"][0][:3] == ["config", "unit", "trio_ws"]
    assert "W3-64" in done.stdout

    fragment = plot.fragment(results, image=None)
    assert "Measured on" in fragment
    assert ".. list-table::" in fragment
    assert "figure::" not in fragment
