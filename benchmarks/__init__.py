"""trio_ws's own benchmark suite: ``nox -s bench`` (see docs/benchmarks.rst).

* :mod:`benchmarks.server` is the loopback server, run in its own process.
* :mod:`benchmarks.clients` has one adapter per client library.
* :mod:`benchmarks.workloads` has the workloads W1..W6, written once for every Trio client.
* :mod:`benchmarks.measure` runs one workload with one client and prints one JSON line.
* :mod:`benchmarks.run` starts the server, runs every (client x workload) in a fresh process,
  takes medians and ratios, and writes ``results.json``.
* :mod:`benchmarks.plot` turns ``results.json`` into a bar chart and an .rst fragment.
"""
