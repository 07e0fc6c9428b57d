"""trio_ws's own benchmark suite: ``nox -s bench`` (see docs/benchmarks.rst).

* :mod:`benchmarks.server` is the loopback server, run in its own process.
* :mod:`benchmarks.clients` has one adapter per client library (Trio ones, and aiohttp).
* :mod:`benchmarks.workloads` has the workloads W1..W6, written once for every client, on Trio
  or asyncio.
* :mod:`benchmarks.measure` runs one workload with one client and prints one JSON line.
* :mod:`benchmarks.run` starts the server, runs every (client x workload) in a fresh process,
  takes medians and ratios, and writes ``results.json``; ``--baseline-python`` adds a row for
  a second copy of trio_ws, measured by another environment's interpreter.
* :mod:`benchmarks.plot` turns ``results.json`` into a bar chart and an .rst fragment.
"""
