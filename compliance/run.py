"""Run the Autobahn|Testsuite fuzzingserver against trio_ws and summarize its grades.

    python compliance/run.py --ci                  # the CI subset, 324 cases, 35 seconds
    python compliance/run.py --full                # all 517 cases, 10.5 minutes on 2 cores
    python compliance/run.py --cases '6.*,7.1.*'   # id globs, as in client.py
    python compliance/run.py --summarize DIR       # only summarize an earlier run's reports

The server comes from ``compliance/install.sh`` (``$TRIO_WS_AUTOBAHN_HOME``, default
``~/.cache/trio-ws-compliance``). It listens on a free port of 127.0.0.1 and is stopped by its
PID when the run ends, whatever the outcome. The exit status is 0 only if every selected case
was run and graded OK or INFORMATIONAL, for its behaviour and for its close behaviour.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn

HERE: Final = Path(__file__).resolve().parent

#: Grades that pass; anything else (NON-STRICT included) fails the run.
PASSING: Final = frozenset({"OK", "INFORMATIONAL"})
#: Table columns for ``behavior``; rarer grades (WRONG CODE, UNCLEAN, ...) go to "other".
GRADES: Final = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

#: The CI subset: every group but 12 and 13 (compression, 1000 messages per case: 97% of the
#: full suite's time), and from those two, in every subgroup, the case with 16-byte messages
#: (N.M.1) and in some the one with 8 KiB messages in 256-byte fragments (N.M.11).
CI_CASES: Final = ",".join(
    [f"{group}.*" for group in range(1, 12)]
    + ["12.1.1", "12.1.2", "12.1.3", "12.2.1", "12.3.1", "12.4.1", "12.5.1"]
    + ["12.1.11", "12.2.11", "12.3.11", "12.4.11", "12.5.11"]
    + ["13.1.1", "13.2.1", "13.3.1", "13.4.1", "13.5.1", "13.6.1", "13.7.1"]
    + ["13.1.11", "13.3.11", "13.5.11", "13.7.11"]
)

#: Python 2.7 code that runs ``wstest`` with every TCP listener bound to 127.0.0.1 (stock wstest
#: listens on all interfaces). Importing autobahntestsuite installs Twisted's reactor.
SERVER_MAIN: Final = """\
import sys
import autobahntestsuite
from autobahntestsuite import wstest
from twisted.internet import reactor
listen_any = reactor.listenTCP
reactor.listenTCP = lambda port, factory, backlog=50, interface='': listen_any(
    port, factory, backlog, interface or '127.0.0.1')
sys.argv[0] = 'wstest'
wstest.run()
"""


def tool_home() -> Path:
    """Where install.sh put wstest."""
    default = Path.home() / ".cache" / "trio-ws-compliance"
    return Path(os.environ.get("TRIO_WS_AUTOBAHN_HOME") or default)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In a child process (Linux): get SIGTERM when the parent dies, even by SIGKILL."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


#: ``preexec_fn`` of the children, so that no server outlives a killed run.
CHILD_SETUP: Final = _die_with_parent if sys.platform == "linux" else None


def _popen(args: Sequence[str], out: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a child in ``out`` with stdout and stderr going to ``log`` (appended)."""
    with log.open("ab") as log_file:
        return subprocess.Popen(
            args,
            cwd=out,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=CHILD_SETUP,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child by its PID: SIGTERM, then SIGKILL after 10 seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def fuzzingserver(home: Path, out: Path, port: int | None, timeout: float) -> Iterator[str]:
    """Run the fuzzingserver for the block; yield its ``ws://`` URL.

    With ``port=None`` a free port is chosen (and another one if that was taken meanwhile).
    """
    python = home / "bin" / "python2.7"
    if not python.exists():
        raise SystemExit(f"no wstest in {home}: run compliance/install.sh first")
    for _attempt in range(3):
        chosen = port or free_port()
        url = f"ws://127.0.0.1:{chosen}"
        spec = {"url": url, "outdir": str(out / "reports" / "clients"), "cases": ["*"]}
        (out / "fuzzingserver.json").write_text(json.dumps(spec, indent=1))
        args = [str(python), "-c", SERVER_MAIN, "-m", "fuzzingserver"]
        proc = _popen([*args, "-s", "fuzzingserver.json", "-u", "0"], out, out / "server.log")
        (out / "server.pid").write_text(f"{proc.pid}\n")
        try:
            if _wait_listening(proc, chosen, timeout):
                print(f"fuzzingserver pid {proc.pid} on {url}", flush=True)
                yield url
                return
        finally:
            stop(proc)
        if port is not None or "Address already in use" not in _tail(out / "server.log"):
            break
    raise SystemExit(f"the fuzzingserver did not start:\n{_tail(out / 'server.log')}")


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Wait until ``proc`` accepts connections on ``port``; False if it exits or times out."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
        else:
            return True
    return False


def _tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def run_client(
    url: str, out: Path, cases: str, case_timeout: float, budget: float, quiet: bool
) -> None:
    """Run client.py with this interpreter; stop it by its PID when ``budget`` seconds pass.

    The client itself starts no case after 85% of the budget, so it normally still has time
    to ask the server for the reports.
    """
    args = [sys.executable, str(HERE / "client.py"), "--url", url, "--cases", cases]
    args += ["--case-timeout", str(case_timeout), "--total-timeout", str(0.85 * budget - 10)]
    args += ["--log", str(out / "client.json")] + (["--quiet"] if quiet else [])
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=CHILD_SETUP)
    try:
        proc.wait(budget)
    except subprocess.TimeoutExpired:
        print(f"client still running after {budget:.0f} s: stopping it", flush=True)
    finally:
        stop(proc)


# ------------------------------------------------------------------------------------------
# reports


def _case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def _one_line(text: str) -> str:
    """HTML of a case report as one line of plain text."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def load_reports(out: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """The agent name and its per-case entries from ``reports/clients/index.json``."""
    index = json.loads((out / "reports" / "clients" / "index.json").read_text())
    if len(index) != 1:
        raise SystemExit(f"expected one agent in the reports, found {sorted(index)}")
    [(agent, cases)] = index.items()
    return agent, cases


def summarize(out: Path) -> tuple[str, bool]:
    """A Markdown summary of the run in ``out`` and whether it passed."""
    agent, cases = load_reports(out)
    client_path = out / "client.json"
    client = json.loads(client_path.read_text()) if client_path.exists() else []
    ids = sorted(set(cases) | {r["id"] for r in client}, key=_case_key)

    groups: dict[str, Counter[str]] = {}
    for case_id in ids:
        entry = cases.get(case_id, {})
        count = groups.setdefault(case_id.split(".")[0], Counter())
        count["cases"] += 1
        grade = entry.get("behavior", "NOT RUN")
        count[grade if grade in GRADES else "other"] += 1
        count["close OK" if entry.get("behaviorClose") in PASSING else "close not OK"] += 1
    total: Counter[str] = Counter()
    for count in groups.values():
        total.update(count)

    columns = ["cases", *GRADES, "other", "close OK", "close not OK"]
    lines = [
        f"Autobahn|Testsuite fuzzingserver, agent {agent}, {len(ids)} cases",
        "",
        "| group | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name, count in [*sorted(groups.items(), key=lambda g: int(g[0])), ("all", total)]:
        lines.append(f"| {name} | " + " | ".join(str(count[c]) for c in columns) + " |")

    notes, problems, not_run = [], [], []
    runs = {r["id"]: r for r in client}
    for case_id in ids:
        entry = cases.get(case_id, {})
        if not entry or runs.get(case_id, {}).get("status") == "skipped":
            not_run.append(case_id)
            continue
        grades = entry.get("behavior", "NOT RUN"), entry.get("behaviorClose", "NOT RUN")
        run = runs.get(case_id, {"status": "done", "detail": ""})
        line = f"- {case_id}: {grades[0]} / close {grades[1]}"
        if run["status"] != "done":
            line += f" (client: {run['status']} {run['detail']})".replace(" )", ")")
        detail = _case_detail(out, entry)
        if set(grades) <= PASSING and run["status"] == "done":
            if grades != ("OK", "OK"):
                notes.append(f"{line}. {detail}")
        else:
            problems.append(f"{line}. {detail}")
    if notes:
        lines += ["", "Passing, not OK:", *notes]
    if problems:
        lines += ["", f"Failing ({len(problems)}):", *problems]
    if not_run:
        lines += ["", f"Not run ({len(not_run)}): {', '.join(not_run)}"]
    failed = len(problems) + len(not_run)
    lines += ["", f"FAILED: {failed} cases" if failed else "PASSED"]
    return "\n".join(lines), not failed


def _case_detail(out: Path, entry: dict[str, Any]) -> str:
    """Description and result of one case, from its report file."""
    try:
        report = json.loads((out / "reports" / "clients" / entry["reportfile"]).read_text())
    except (OSError, KeyError, ValueError):
        return "no report"
    parts = [_one_line(report.get("description", "")), _one_line(report.get("result", ""))]
    expected = report.get("expected") or {}
    if entry.get("behavior") not in PASSING and expected.get("OK"):
        parts.append(f"expected {expected['OK']}, received {report.get('received')}"[:300])
    if report.get("resultClose"):
        parts.append("Close: " + _one_line(report["resultClose"]))
    return " | ".join(p for p in parts if p)


# ------------------------------------------------------------------------------------------
# command line


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop the children."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Autobahn|Testsuite conformance run of trio_ws.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--full", action="store_true", help="all cases (default)")
    which.add_argument("--ci", action="store_true", help="the CI subset")
    which.add_argument("--cases", help="comma-separated case id globs, e.g. '1.*,12.1.1'")
    which.add_argument("--summarize", type=Path, metavar="DIR", help="summarize DIR, run nothing")
    parser.add_argument("--out", type=Path, help="run directory (default: under the tool home)")
    parser.add_argument("--port", type=int, help="server port (default: a free one)")
    parser.add_argument("--case-timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument(
        "--timeout", type=float, help="seconds for the whole run (default: 300 for --ci, 2400)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)

    if args.summarize:
        text, passed = summarize(args.summarize)
        print(text)
        return 0 if passed else 1

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    start = time.monotonic()
    timeout = args.timeout or (300.0 if args.ci else 2400.0)
    cases = CI_CASES if args.ci else args.cases or "*"
    mode = "ci" if args.ci else "cases" if args.cases else "full"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = (args.out or tool_home() / "runs" / f"{stamp}-{mode}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"run directory: {out}", flush=True)

    with fuzzingserver(tool_home(), out, args.port, timeout=min(60.0, timeout / 4)) as url:
        budget = timeout - (time.monotonic() - start) - 15
        run_client(url, out, cases, args.case_timeout, budget, quiet=not args.verbose)
    print(f"cases and reports took {time.monotonic() - start:.0f} s", flush=True)

    if not (out / "reports" / "clients" / "index.json").exists():
        print(f"FAILED: the server wrote no reports; see {out}/server.log")
        return 1
    text, passed = summarize(out)
    (out / "summary.md").write_text(text + "\n")
    print(text)
    print(f"HTML report: {out / 'reports' / 'clients' / 'index.html'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
