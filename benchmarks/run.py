"""Run the benchmark suite: every client x configuration, each in a fresh process.

    python benchmarks/run.py                          # everything, full size, 1 repetition
    python benchmarks/run.py --scale 0.05 --reps 3    # quicker, and medians of 3
    python benchmarks/run.py --clients trio_ws,websockets.trio --configs W1,W3-64
    python benchmarks/run.py --smoke                  # trio_ws only, tiny n (CI, seconds)
    python benchmarks/run.py --out DIR                # also write DIR/results.json
    python benchmarks/run.py --baseline-python OTHER_VENV/bin/python   # + row trio_ws@baseline

Method. The server (:mod:`benchmarks.server`) runs in its own process, pinned to CPU 0; each
measurement (:mod:`benchmarks.measure`) runs in a fresh process pinned to CPU 1 (when there are
two CPUs or more; ``--no-pin`` turns that off). Repetitions are interleaved: each repetition
runs every configuration, and within a configuration every client back to back, in an order
shuffled with a fixed seed; so a slow spell on the machine hits all clients alike instead of
one. The table shows the median of each figure over the repetitions, and the ratios
trio_ws / other are taken within each repetition first, then their median is shown.

A measurement that does not finish within ``--timeout`` seconds is killed and shown as
"timeout" (a deadlocked client cannot hang the run); one that fails shows "error", and a client
whose library is not installed, or that cannot do the configuration, shows "n/a".

Two copies of trio_ws in one run. Row ``trio_ws`` always measures this working tree (its
process runs from the repository's root, so ``import trio_ws`` finds ./trio_ws first).
``--baseline-python PATH`` adds row ``trio_ws@baseline``: its processes are run by that
interpreter (another virtualenv, with another trio_ws installed in it, e.g. a released version
or ``pip install`` of a git worktree at an older commit), and import only the ``benchmarks``
package from here, so that ``import trio_ws`` finds that environment's copy. The same
workload code, the same server and the same interleaving measure both; the table gets a
``x trio_ws@baseline`` column. Which copy each row imported (file, version, C speed-up, the
commit a ``pip install DIR`` was made from) is printed and kept in results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, NoReturn

if __package__ in {None, ""}:  # run as a script: python benchmarks/run.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.clients import CLIENTS
from benchmarks.measure import not_applicable, which_trio_ws
from benchmarks.workloads import CONFIGS, Config

ROOT: Final = Path(__file__).resolve().parent.parent
#: The client every ratio is about, and the ones it is compared with, in table order.
SUBJECT: Final = "trio_ws"
#: Bound on the server's start-up.
READY_TIMEOUT: Final = 15.0
#: A server using at least this much CPU per wall-second in a window of at least
#: ``BOUND_MIN_SECONDS`` was the bottleneck: the row is flagged.
SERVER_BOUND: Final = 0.9
BOUND_MIN_SECONDS: Final = 0.5
#: Other packages whose versions go into results.json.
OTHER_PACKAGES: Final = ("trio", "wsproto", "websockets", "uvloop")
#: The row ``--baseline-python`` adds: trio_ws as installed in another interpreter's environment.
BASELINE: Final = f"{SUBJECT}@baseline"

#: Run by ``--baseline-python`` (with ``-P``, and without PYTHONPATH) instead of
#: ``-m benchmarks.measure``: imports the ``benchmarks`` package from this repository by its
#: path, without putting the repository on ``sys.path``, so that ``import trio_ws`` can only find
#: that interpreter's own copy, never this working tree by mistake. (-P needs Python 3.11, as
#: trio_ws does.)
BOOTSTRAP: Final = f"""\
import importlib.util, sys
spec = importlib.util.spec_from_file_location(
    "benchmarks", {str(ROOT / "benchmarks" / "__init__.py")!r},
    submodule_search_locations=[{str(ROOT / "benchmarks")!r}])
sys.modules["benchmarks"] = package = importlib.util.module_from_spec(spec)
spec.loader.exec_module(package)
from benchmarks.measure import main
sys.exit(main())
"""
#: The same, for :func:`benchmarks.measure.which_trio_ws` instead of a measurement.
BOOTSTRAP_PROBE: Final = BOOTSTRAP.replace(
    "from benchmarks.measure import main\nsys.exit(main())",
    "import json\nfrom benchmarks.measure import which_trio_ws\nprint(json.dumps(which_trio_ws()))",
)



# --------------------------------------------------------------------------------------------
# processes


def _child_setup(cpu: int | None) -> Callable[[], None] | None:
    """``preexec_fn`` for a child: pin it to ``cpu``, and (Linux) end it if we die."""

    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)

    return setup if sys.platform == "linux" else None


def _cpus(pin: bool) -> tuple[int | None, int | None]:
    """(server CPU, client CPU): the first two this process may use, or no pinning."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def _stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a child by its PID: SIGTERM, then SIGKILL after 5 seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_line(stream: IO[str], proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line ``proc`` writes on ``stream``, within ``timeout`` seconds."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if selector.select(timeout):
            return stream.readline()
    _stop(proc)
    raise SystemExit(f"the benchmark server did not start within {timeout:.0f} s")


@contextlib.contextmanager
def server(cpu: int | None) -> Iterator[dict[str, Any]]:
    """Run :mod:`benchmarks.server` for the block; yield its ready line (ports, pid, loop)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_child_setup(cpu),
    )
    try:
        assert proc.stdout is not None
        line = _read_line(proc.stdout, proc, READY_TIMEOUT)
        if not line:
            raise SystemExit("the benchmark server exited before it was ready")
        yield json.loads(line)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def client_of(row: str) -> str:
    """The client (key of CLIENTS) a row measures: ``trio_ws@baseline`` measures trio_ws."""
    return row.partition("@")[0]


def _command(python: str | None) -> tuple[list[str], dict[str, str] | None]:
    """How to start a measuring process: by this interpreter, or by ``python`` (baseline)."""
    if python is None:
        return [sys.executable, "-m", "benchmarks.measure"], None
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    return [python, "-P", "-c", BOOTSTRAP], env


def measure(
    row: str,
    config: Config,
    n: int,
    ready: dict[str, Any],
    cpu: int | None,
    timeout: float,
    python: str | None = None,
) -> dict[str, Any]:
    """One measurement in a fresh process; its JSON line, or a timeout/error record.

    ``python``: the interpreter of a ``--baseline-python`` row (default: this one).
    """
    client = client_of(row)
    reason = not_applicable(CLIENTS[client], config, here=python is None)
    if reason:  # known without starting a process
        return {"status": "n/a", "reason": reason}
    command, env = _command(python)
    args = [*command, "--client", client]
    args += ["--config", config.name, "--n", str(n), "--port", str(ready["port"])]
    args += ["--deflate-port", str(ready["deflate_port"]), "--server-pid", str(ready["pid"])]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_child_setup(cpu),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        proc.communicate()
        return {"status": "timeout", "error": f"no result within {timeout:g} s"}
    finally:
        _stop(proc)
    lines = out.strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {"status": "error", "error": f"exit {proc.returncode}: {tail}"[:300]}


def probe(python: str | None) -> dict[str, Any]:
    """Which trio_ws the measuring processes of a row import (``measure.which_trio_ws``).

    For row trio_ws in this process (which imports it as its measuring processes do, from the
    repository's root); for a ``--baseline-python`` row in that interpreter, started as its
    measuring processes are. Adds ``commit`` when that copy was ``pip install``-ed from a local
    git checkout, and ``same_as_subject`` when a baseline imports this working tree after all.
    """
    if python is None:
        info = which_trio_ws()
    else:
        command, env = _command(python)
        command = [*command[:-1], BOOTSTRAP_PROBE]
        try:
            done = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"{python}: {exc}"}
        try:
            info = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            return {"error": f"{python}: exit {done.returncode}: {tail}"[:300]}
    if "error" in info:
        return info
    source = (info.get("installed_from") or {}).get("url", "")
    if source.startswith("file://"):  # pip install DIR (or -e DIR): the checkout it came from
        info["commit"] = _git_commit(Path(source.removeprefix("file://")))
    here = Path(info["file"]).resolve().is_relative_to(ROOT)
    info["same_as_subject"] = python is not None and here
    # An in-place build of the C speed-ups (editable install) is not rebuilt when the C changes.
    info["speedups_stale"] = [
        name
        for name, key in (("_speedups", "speedups"), ("_inflate", "inflate"))
        if here
        and (built := info.get(key))
        and (source_c := ROOT / "trio_ws" / f"{name}.c").exists()
        and Path(built).stat().st_mtime < source_c.stat().st_mtime
    ]
    return info


def describe(row: str, info: dict[str, Any]) -> str:
    """One line for the console: which trio_ws a row measures."""
    if "error" in info:
        return f"{row}: {info['error']}"
    text = f"{row}: trio_ws {info['version']} from {Path(info['file']).parent}"
    text += f", C speed-up {'yes' if info['speedups'] else 'no'}"
    text += f", C inflate {'yes' if info.get('inflate') else 'no'}"
    if info.get("commit"):
        text += f", installed from {info['installed_from']['url']} at {info['commit'][:12]}"
    text += f"; Python {info['python']} ({info['executable']}), trio {info['trio']}"
    for name in info["speedups_stale"]:
        text += f"\n  warning: trio_ws/{name}.c is newer than its in-place build: reinstall"
    if info["same_as_subject"]:
        text += (
            f"\n  warning: {row} imports this working tree's trio_ws too: both rows measure "
            "the same code (an A/A run: what it shows is the noise)"
        )
    return text


# --------------------------------------------------------------------------------------------
# summary


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(
    measurements: list[dict[str, Any]], clients: Sequence[str], configs: Sequence[Config]
) -> dict[str, Any]:
    """Medians per (configuration, client) and ratios of trio_ws to every other client."""
    summary: dict[str, Any] = {}
    for config in configs:
        rows = [m for m in measurements if m["config"] == config.name]
        per_client: dict[str, Any] = {}
        for client in clients:
            mine = [m for m in rows if m["client"] == client]
            ok = [m for m in mine if m["status"] == "ok"]
            entry: dict[str, Any] = {"runs": len(mine), "ok": len(ok)}
            if ok:
                entry["status"] = "ok"
                for key in ("rate", "seconds", "server_cpu", "client_cpu", "kib_per_conn"):
                    entry[key] = _median([m.get(key) for m in ok])
            else:
                # The most telling failure: a timeout or an error says more than n/a.
                statuses = [m["status"] for m in mine]
                entry["status"] = next(
                    (s for s in ("timeout", "error", "n/a") if s in statuses), "missing"
                )
                entry["detail"] = next((m.get("error") or m.get("reason") for m in mine), None)
            per_client[client] = entry
        ratios, memory_ratios = {}, {}
        for other in clients:
            if other == SUBJECT or SUBJECT not in clients:
                continue
            rate, memory = [], []
            for rep in sorted({m["rep"] for m in rows}):
                pair = {m["client"]: m for m in rows if m["rep"] == rep and m["status"] == "ok"}
                if SUBJECT in pair and other in pair:
                    rate.append(pair[SUBJECT]["rate"] / pair[other]["rate"])
                    if pair[other].get("kib_per_conn") and pair[SUBJECT].get("kib_per_conn"):
                        memory.append(pair[SUBJECT]["kib_per_conn"] / pair[other]["kib_per_conn"])
            ratios[other] = _median(rate)
            if config.workload == "W5":
                memory_ratios[other] = _median(memory)
        summary[config.name] = {"unit": config.unit, "clients": per_client, "ratios": ratios}
        if config.workload == "W5":
            summary[config.name]["memory_ratios"] = memory_ratios
    return summary


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _cell(entry: dict[str, Any], key: str = "rate") -> str:
    if entry["status"] != "ok":
        return str(entry["status"])
    value = entry.get(key)
    if value is None:
        return "-"
    text = _rate(value) if key == "rate" else f"{value:.1f}"
    bound = (entry.get("server_cpu") or 0) >= SERVER_BOUND
    if key == "rate" and bound and (entry.get("seconds") or 0) >= BOUND_MIN_SECONDS:
        text += "*"
    return text


def table_rows(summary: dict[str, Any], clients: Sequence[str]) -> list[list[str]]:
    """The table as rows of cells, header first (shared by the console and plot.py)."""
    others = [c for c in clients if c != SUBJECT] if SUBJECT in clients else []
    header = ["config", "unit", *clients, *(f"x {o}" for o in others)]
    rows = [header]
    for name, entry in summary.items():
        cells = [name, entry["unit"], *(_cell(entry["clients"][c]) for c in clients)]
        cells += [_ratio(entry["ratios"].get(o)) for o in others]
        rows.append(cells)
        if "memory_ratios" in entry:
            cells = [f"{name} mem", "KiB/conn"]
            cells += [_cell(entry["clients"][c], "kib_per_conn") for c in clients]
            cells += [_ratio(entry["memory_ratios"].get(o)) for o in others]
            rows.append(cells)
    return rows


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(rows: list[list[str]]) -> str:
    """Rows of cells as aligned plain text."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


TABLE_NOTES: Final = (
    "Rates are medians over the repetitions; higher is better. 'x other' is trio_ws / other, "
    "taken within each repetition, median shown: above 1 trio_ws was faster. In the 'mem' row "
    "(resident memory per idle connection) the ratio is trio_ws / other too, so below 1 "
    f"trio_ws used less. * = the server used >= {SERVER_BOUND} CPU-s/s: the server was the "
    "bottleneck."
)


# --------------------------------------------------------------------------------------------
# machine


def machine_info(server_loop: str) -> dict[str, Any]:
    """When, on what, with which versions and at which commit the run was made."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for package in [*(c.distribution for c in CLIENTS.values()), *OTHER_PACKAGES]:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": versions,
        "server_loop": server_loop,
        "commit": _git_commit(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _git_commit(where: Path = ROOT) -> str | None:
    """HEAD of a checkout, with ``+dirty`` when tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


# --------------------------------------------------------------------------------------------
# command line


def _names(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop the children."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="trio_ws benchmark suite.")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated rows")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configs")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every n")
    parser.add_argument("--reps", type=int, default=1, help="repetitions (interleaved)")
    parser.add_argument("--out", type=Path, help="write DIR/results.json")
    parser.add_argument("--smoke", action="store_true", help="trio_ws only, tiny n, for CI")
    parser.add_argument("--timeout", type=float, help="seconds per measurement (default 60)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--seed", type=int, default=1, help="seed of the client order")
    parser.add_argument(
        "--baseline-python",
        metavar="PATH",
        help=f"add row {BASELINE}: trio_ws as installed for this interpreter (another venv)",
    )
    args = parser.parse_args(argv)

    known: dict[str, Any] = dict(CLIENTS)
    if args.baseline_python:
        known[BASELINE] = CLIENTS[SUBJECT]
    clients = _names(args.clients, known, "clients")
    configs = [CONFIGS[name] for name in _names(args.configs, CONFIGS, "configs")]
    if args.smoke:
        clients = [SUBJECT] if args.clients == parser.get_default("clients") else clients
        args.scale, args.reps = 0.0, 1
    if args.baseline_python and BASELINE not in clients:
        # Next to trio_ws, so that its ratio column comes first.
        at = clients.index(SUBJECT) + 1 if SUBJECT in clients else 0
        clients.insert(at, BASELINE)
    pythons = {BASELINE: args.baseline_python} if args.baseline_python else {}
    timeout = args.timeout or (20.0 if args.smoke else 60.0)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    copies: dict[str, dict[str, Any]] = {}
    for row in (SUBJECT, BASELINE):
        if row in clients:
            copies[row] = probe(pythons.get(row))
            print(describe(row, copies[row]), flush=True)
    if "error" in copies.get(BASELINE, {}):
        raise SystemExit(f"--baseline-python: {copies[BASELINE]['error']}")

    server_cpu, client_cpu = _cpus(not args.no_pin)
    order = random.Random(args.seed)
    measurements: list[dict[str, Any]] = []
    started = time.monotonic()
    with server(server_cpu) as ready:
        where = f"127.0.0.1:{ready['port']} and :{ready['deflate_port']} (deflate)"
        if server_cpu is not None:
            where += f"; server on CPU {server_cpu}, clients on CPU {client_cpu}"
        print(f"server: websockets on {ready['loop']}, {where}", flush=True)
        for rep in range(1, args.reps + 1):
            for config in configs:
                n = config.scaled(args.scale)
                for client in order.sample(clients, len(clients)):
                    python = pythons.get(client)
                    line = measure(client, config, n, ready, client_cpu, timeout, python)
                    record = {"rep": rep, "config": config.name, "client": client, "n": n}
                    measurements.append({**record, **line})
                    progress = _progress(line, config)
                    print(f"[{rep}/{args.reps}] {config.name:8} {client:16} {progress}", flush=True)
    print(f"{len(measurements)} measurements in {time.monotonic() - started:.1f} s\n")

    summary = summarize(measurements, clients, configs)
    print(format_table(table_rows(summary, clients)))
    print("\n" + TABLE_NOTES)
    if args.smoke:
        print("Smoke run: every n is tiny, so these numbers say the suite works, nothing more.")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        results = {
            "machine": machine_info(ready["loop"]),
            "trio_ws": copies,
            "settings": {
                "clients": clients,
                "configs": [c.name for c in configs],
                "scale": args.scale,
                "reps": args.reps,
                "smoke": args.smoke,
                "timeout": timeout,
                "pinned": server_cpu is not None,
                "seed": args.seed,
                "baseline_python": args.baseline_python,
            },
            "configs": {
                c.name: {"workload": c.workload, "n": c.scaled(args.scale), "size": c.size,
                         "unit": c.unit}
                for c in configs
            },
            "measurements": measurements,
            "summary": summary,
            "table": table_rows(summary, clients),
        }
        path = args.out / "results.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwrote {path}")
    failed = [m for m in measurements if m["status"] in {"error", "timeout"}]
    return 1 if args.smoke and failed else 0


def _progress(line: dict[str, Any], config: Config) -> str:
    if line["status"] != "ok":
        return f"{line['status']}: {line.get('error') or line.get('reason')}"
    text = f"{_rate(line['rate'])} {config.unit} ({line['seconds']:.2f} s"
    if line.get("server_cpu") is not None and line["seconds"] >= BOUND_MIN_SECONDS:
        text += f", server CPU {line['server_cpu']:.2f}"
    if "kib_per_conn" in line:
        text += f", {line['kib_per_conn']:.1f} KiB/conn"
    return text + ")"


if __name__ == "__main__":
    sys.exit(main())
