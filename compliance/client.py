"""Autobahn|Testsuite fuzzingserver client for trio_ws.

The fuzzingserver protocol: ``/getCaseCount`` sends the number of cases as a text message,
``/getCaseInfo?case=N`` a JSON object with the case's ``id`` (``"1.1.1"``) and description,
``/runCase?case=N&agent=A`` runs case N (the client echoes every message until the connection
closes) and ``/updateReports?agent=A`` makes the server write its reports.

    python compliance/client.py --url ws://127.0.0.1:9001 --cases '1.*,12.1.*,13.2.1'

Patterns are shell globs on the whole case id (``1.*`` does not match ``12.1.1``). The exit
status is 0 when every selected case ran to its end; how the cases were graded is in the
server's reports (``run.py`` reads them).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import trio

import trio_ws
from trio_ws import WSClosedError, WSMsgType

#: The options every connection uses: no size limit (9.* sends 16 MiB messages) and a
#: permessage-deflate offer (12.* and 13.* test compression).
OPEN_OPTIONS: Final[dict[str, Any]] = {"max_msg_size": 0, "compress": 15}

DEFAULT_AGENT: Final = f"trio_ws-{trio_ws.__version__}"


def parse_patterns(text: str | None) -> list[str]:
    """Split ``"1.*, 12.1.1"`` into ``["1.*", "12.1.1"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def select(ids: Iterable[str], include: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """The ids matching any ``include`` pattern (all if there are none) and no ``exclude`` one."""
    return [
        case_id
        for case_id in ids
        if (not include or any(fnmatch.fnmatchcase(case_id, p) for p in include))
        and not any(fnmatch.fnmatchcase(case_id, p) for p in exclude)
    ]


async def fetch_text(url: str) -> str:
    """Connect to ``url`` and return the first message, which must be text."""
    async with trio_ws.open_ws(url, **OPEN_OPTIONS) as ws:
        msg = await ws.receive()
    if msg.type is not WSMsgType.TEXT:
        raise RuntimeError(f"{url}: expected a text message, got {msg.type.name}")
    return str(msg.data)


async def echo(url: str) -> None:
    """Connect to ``url`` and send every message back, unchanged, until the connection ends."""
    async with trio_ws.open_ws(url, **OPEN_OPTIONS) as ws:
        while True:
            msg = await ws.receive()
            try:
                if msg.type is WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                else:  # CLOSE, CLOSING, CLOSED or ERROR: the case is over
                    return
            except WSClosedError:  # the server closed while we answered
                return


def _describe(exc: BaseException) -> str:
    """One line for an unexpected exception (groups flattened)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def case_ids(base: str) -> list[str]:
    """All case ids the server offers, in its order (case number N is at index N - 1)."""
    count = int(json.loads(await fetch_text(f"{base}/getCaseCount")))
    ids = []
    for number in range(1, count + 1):
        info = json.loads(await fetch_text(f"{base}/getCaseInfo?case={number}"))
        ids.append(str(info["id"]))
    return ids


async def run_cases(
    base: str,
    agent: str,
    include: Sequence[str],
    exclude: Sequence[str],
    case_timeout: float,
    deadline: float | None,
    quiet: bool,
) -> list[dict[str, Any]]:
    """Run the selected cases one after the other; one result dict per selected case.

    A case's ``status`` is ``done``, ``timeout`` (abandoned after ``case_timeout`` seconds),
    ``error`` (an unexpected exception) or ``skipped`` (``deadline``, a ``trio.current_time()``
    value, had passed). The reports are updated at the end in every case.
    """
    ids = await case_ids(base)
    numbers = {case_id: number for number, case_id in enumerate(ids, 1)}
    selected = select(ids, include, exclude)
    agent_q = urllib.parse.quote(agent, safe="")
    print(f"agent {agent}: {len(selected)} of {len(ids)} cases", flush=True)
    results: list[dict[str, Any]] = []
    group = ""
    for k, case_id in enumerate(selected, 1):
        result: dict[str, Any] = {"id": case_id, "status": "done", "detail": "", "seconds": 0.0}
        results.append(result)
        if deadline is not None and trio.current_time() >= deadline:
            result["status"] = "skipped"
            continue
        if quiet and case_id.split(".")[0] != group:
            group = case_id.split(".")[0]
            print(f"[{k}/{len(selected)}] group {group}", flush=True)
        url = f"{base}/runCase?case={numbers[case_id]}&agent={agent_q}"
        start = time.monotonic()
        try:
            with trio.move_on_after(case_timeout) as scope:
                await echo(url)
            if scope.cancelled_caught:
                result["status"] = "timeout"
        except Exception as exc:  # a client bug: note it and go on with the next case
            result["status"], result["detail"] = "error", _describe(exc)[:500]
        result["seconds"] = round(time.monotonic() - start, 3)
        if not quiet or result["status"] != "done":
            line = f"[{k}/{len(selected)}] {case_id} {result['status']} {result['seconds']:.2f}s"
            print(f"{line} {result['detail']}".rstrip(), flush=True)
    skipped = sum(r["status"] == "skipped" for r in results)
    if skipped:
        print(f"deadline passed: {skipped} cases not run", flush=True)
    with trio.move_on_after(600):
        await echo(f"{base}/updateReports?agent={agent_q}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Run Autobahn fuzzingserver cases with trio_ws.")
    parser.add_argument("--url", default="ws://127.0.0.1:9001", help="the fuzzingserver")
    parser.add_argument("--agent", default=DEFAULT_AGENT, help="agent name in the reports")
    parser.add_argument("--cases", help="comma-separated id globs to run (default: all)")
    parser.add_argument("--exclude", help="comma-separated id globs to skip")
    parser.add_argument("--case-timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument(
        "--total-timeout", type=float, help="seconds after which no further case is started"
    )
    parser.add_argument("--log", type=Path, help="write per-case results to this JSON file")
    parser.add_argument("--list", action="store_true", help="print the selected ids and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    include, exclude = parse_patterns(args.cases), parse_patterns(args.exclude)

    if args.list:
        for case_id in select(trio.run(case_ids, base), include, exclude):
            print(case_id)
        return 0

    async def run() -> list[dict[str, Any]]:
        deadline = None
        if args.total_timeout is not None:
            deadline = trio.current_time() + args.total_timeout
        return await run_cases(
            base, args.agent, include, exclude, args.case_timeout, deadline, args.quiet
        )

    results = trio.run(run)
    if args.log:
        args.log.write_text(json.dumps(results, indent=1))
    return 0 if all(r["status"] == "done" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
