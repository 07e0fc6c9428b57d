"""What WebSockets over HTTP/2 (RFC 8441) cost and save, against HTTP/1.1, in one run.

    python benchmarks/http2.py                      # 3 repetitions, medians
    python benchmarks/http2.py --reps 1 --n 200     # quicker
    python benchmarks/http2.py --out DIR            # also write DIR/http2.json

One server (``benchmarks/server_h2.js``, Node's http2/https/http modules, pinned to CPU 0)
echoes WebSocket frames the same way over HTTP/1.1 and over HTTP/2, so the rows differ only in
the transport. Each measurement runs in a fresh process pinned to CPU 1:

* ``open-N wss`` / ``open-N ws``: open N WebSockets to one host, at most 50 handshakes in
  flight (HTTP/1.1: N connections, N TLS handshakes; HTTP/2: one ``open_session`` and N
  streams on it), check each with one echo, then close them all. Figures: seconds to open,
  client CPU seconds to open, resident memory and file descriptors held per WebSocket,
  seconds to close.
* ``W2-64 ws`` / ``W2-64 wss``: one WebSocket, n 64-byte messages sent while the echoes are
  received (as W2 of ``benchmarks/run.py``): messages/s and client CPU per message, so the
  cost of HTTP/2's framing on one stream is known.

Needs ``node`` (skipped without it) and trustme (the test dependencies).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

if __package__ in {None, ""}:  # run as a script: python benchmarks/http2.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT: Final = Path(__file__).resolve().parent.parent
SERVER: Final = Path(__file__).resolve().parent / "server_h2.js"
IN_FLIGHT: Final = 50
PAYLOAD: Final = b"\x01" * 64
#: name -> (workload, TLS?)
CONFIGS: Final = {
    "open-N wss": ("open", True),
    "open-N ws": ("open", False),
    "W2-64 ws": ("w2", False),
    "W2-64 wss": ("w2", True),
}


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # pragma: no cover - Linux always has the line


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------------------------
# one measurement (a fresh process)


async def _one_websocket(
    stack: contextlib.AsyncExitStack, base: str, http2: bool, options: dict[str, Any]
) -> Any:
    """One WebSocket to ``base``/echo, over its own HTTP/2 session or HTTP/1.1 connection,
    closed with ``stack``."""
    import trio_ws

    if http2:
        session = await stack.enter_async_context(
            trio_ws.open_session(base, http2="require", **options)
        )
        return await stack.enter_async_context(session.open_ws("/echo"))
    return await stack.enter_async_context(trio_ws.open_ws(base + "/echo", **options))


async def _open_n(base: str, http2: bool, n: int, ctx: ssl.SSLContext | None) -> dict[str, Any]:
    import gc

    import trio

    import trio_ws

    options: dict[str, Any] = {"heartbeat": None, "ssl": ctx} if ctx else {"heartbeat": None}
    url = base + "/echo"
    # Warm up (imports, the TLS context, a first handshake) over the transport measured; the
    # measured HTTP/2 run opens its own session, and its handshakes count.
    async with contextlib.AsyncExitStack() as stack:
        ws = await _one_websocket(stack, base, http2, options)
        await ws.send_bytes(PAYLOAD)
        await ws.receive_bytes()
    gc.collect()
    fds0, rss0, cpu0 = _fds(), _rss_kb(), time.process_time()
    sem = trio.Semaphore(IN_FLIGHT)
    opened = 0
    all_open, release = trio.Event(), trio.Event()

    async def hold(open_one: Any) -> None:
        nonlocal opened
        async with sem:
            cm = open_one()
            ws = await cm.__aenter__()
        try:
            await ws.send_bytes(PAYLOAD)
            assert await ws.receive_bytes() == PAYLOAD
            opened += 1
            if opened == n:
                all_open.set()
            await release.wait()
        finally:
            await cm.__aexit__(None, None, None)

    async with contextlib.AsyncExitStack() as stack:
        started = time.perf_counter()
        if http2:
            session = await stack.enter_async_context(
                trio_ws.open_session(base, http2="require", **options)
            )

            def open_one() -> Any:
                return session.open_ws("/echo")
        else:

            def open_one() -> Any:
                return trio_ws.open_ws(url, **options)

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(hold, open_one)
            await all_open.wait()
            open_s = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            gc.collect()
            rss, fds = _rss_kb() - rss0, _fds() - fds0
            closing = time.perf_counter()
            release.set()
    close_s = time.perf_counter() - closing
    return {
        "open_s": open_s,
        "open_cpu_ms_per_ws": cpu / n * 1e3,
        "kb_per_ws": rss / n,
        "fds_per_ws": fds / n,
        "close_s": close_s,
    }


async def _w2(base: str, http2: bool, n: int, ctx: ssl.SSLContext | None) -> dict[str, Any]:
    import trio

    options: dict[str, Any] = {"heartbeat": None, "ssl": ctx} if ctx else {"heartbeat": None}
    async with contextlib.AsyncExitStack() as stack:
        ws = await _one_websocket(stack, base, http2, options)
        for _ in range(n // 20):  # warm up
            await ws.send_bytes(PAYLOAD)
            await ws.receive_bytes()
        cpu0, started = time.process_time(), time.perf_counter()

        async def sender() -> None:
            for _ in range(n):
                await ws.send_bytes(PAYLOAD)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            for _ in range(n):
                await ws.receive_bytes()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    return {"msgs_per_s": n / seconds, "cpu_us_per_msg": cpu / n * 1e6}


def measure(args: argparse.Namespace) -> None:
    import trio

    _pin(1)
    ctx = None
    workload, tls = CONFIGS[args.config]
    if tls:
        ctx = ssl.create_default_context(cafile=args.ca)
    port = args.port
    base = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}"
    run = _open_n if workload == "open" else _w2
    result = trio.run(run, base, args.transport == "h2", args.n, ctx)
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# the run


@contextmanager
def _server(cert: Path) -> Iterator[dict[str, int]]:
    cmd = ["node", str(SERVER), str(cert)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            yield ready["ports"]
        finally:
            proc.kill()


def _port(ports: dict[str, int], config: str, transport: str) -> int:
    tls = CONFIGS[config][1]
    if transport == "h2":
        return ports["h2" if tls else "h2c"]
    return ports["h1s" if tls else "h1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=1000, help="WebSockets of open-N")
    parser.add_argument("--messages", type=int, default=50000, help="messages of W2-64")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--measure", dest="config", help=argparse.SUPPRESS)
    parser.add_argument("--transport", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config:
        measure(args)
        return
    if shutil.which("node") is None:
        print("benchmarks/http2.py: skipped, node is not installed")
        return
    import trustme

    configs = args.configs.split(",")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {c: {"h1": [], "h2": []} for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = Path(tmp, "server.pem")
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
        ca_file = Path(tmp, "ca.pem")
        ca.cert_pem.write_to_path(str(ca_file))
        with _server(cert) as ports:
            for _ in range(args.reps):
                for config in configs:
                    n = args.n if CONFIGS[config][0] == "open" else args.messages
                    for transport in ("h1", "h2"):
                        cmd = [
                            sys.executable, str(Path(__file__).resolve()), "--measure", config,
                            "--transport", transport, "--port",
                            str(_port(ports, config, transport)), "--ca", str(ca_file),
                            "--n", str(n),
                        ]
                        out = subprocess.run(
                            cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                            check=False,
                        )
                        if out.returncode:
                            raise SystemExit(f"{config} {transport} failed:\n{out.stderr}")
                        results[config][transport].append(json.loads(out.stdout))
    _table(results, args)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "http2.json").write_text(json.dumps(results, indent=1))


def _table(results: dict[str, dict[str, list[dict[str, Any]]]], args: argparse.Namespace) -> None:
    print(f"\nWebSockets over HTTP/1.1 vs HTTP/2 (RFC 8441), medians of {args.reps}; "
          f"open-N: N={args.n}, W2-64: {args.messages} messages\n")
    print("| configuration | figure | HTTP/1.1 | HTTP/2 | HTTP/2 / HTTP/1.1 |")
    print("|---|---|---:|---:|---:|")
    for config, by in results.items():
        for figure in by["h1"][0]:
            h1 = statistics.median(r[figure] for r in by["h1"])
            h2 = statistics.median(r[figure] for r in by["h2"])
            ratio = f"{h2 / h1:.2f}" if h1 else "-"
            print(f"| {config} | {figure} | {h1:.4g} | {h2:.4g} | {ratio} |")


if __name__ == "__main__":
    main()
