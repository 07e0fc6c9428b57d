"""Development sessions. ``nox`` runs tests, lint, typecheck and docs; ``nox -s NAME`` one."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "venv"

# The same command as the README and .ci/run; extra arguments go to pytest (nox -s tests -- -x).
PYTEST = [
    "python",
    "-m",
    "pytest",
    "--cov=trio_ws",
    "--cov-branch",
    "--cov-report=term-missing",
]
#: With no arguments (the whole suite), the same bound as .ci/run.
FAIL_UNDER = ["--cov-fail-under=97"]
LINTED = ["trio_ws", "tests", "compliance", "benchmarks", "noxfile.py", "docs/conf.py"]
#: Where `nox -s bench` keeps results.json, and where the docs look for the chart and table.
BENCH_RESULTS = "benchmarks/results"
BENCH_DOCS = "docs/_generated"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite with branch coverage."""
    session.install("-e", ".[test]")
    session.run(*PYTEST, *(session.posargs or FAIL_UNDER))


@nox.session
def fuzz(session: nox.Session) -> None:
    """Run the property tests of tests/test_fuzz.py with the big Hypothesis profile (minutes)."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/test_fuzz.py",
        # The differential tests (C parser vs Python, C inflater vs the zlib module's, fast 101
        # head vs h11), fresh inputs.
        "tests/test_scan.py",
        "tests/test_inflate.py",
        "tests/test_fasthead.py",
        "--hypothesis-show-statistics",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "fuzz"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff check (no formatter check, to avoid format fights)."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", *(session.posargs or LINTED))


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package."""
    session.install("-e", ".[lint]")
    session.run("mypy", "--strict", *(session.posargs or ["trio_ws"]))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs (extra arguments go to sphinx-build); any warning, an unresolved
    reference included (-n), fails the build."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build", "-W", "-n", "--keep-going", *session.posargs, "docs", "docs/_build/html"
    )


@nox.session
def autobahn(session: nox.Session) -> None:
    """Run the whole Autobahn|Testsuite (about 10 minutes); arguments go to compliance/run.py."""
    session.install("-e", ".")
    session.run("bash", "compliance/install.sh", external=True)
    session.run("python", "compliance/run.py", *(session.posargs or ["--full"]))


@nox.session
def autobahn_ci(session: nox.Session) -> None:
    """Run the CI subset of the Autobahn|Testsuite (about 35 seconds)."""
    session.install("-e", ".")
    session.run("bash", "compliance/install.sh", external=True)
    session.run("python", "compliance/run.py", "--ci", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run benchmarks/run.py (arguments go to it) and put its chart and table in the docs.

    ``nox -s bench -- --scale 0.05`` for a quick run; ``-- --reps 3`` for medians of three;
    ``-- --baseline-python OTHER_VENV/bin/python`` adds row trio_ws@baseline, the trio_ws
    installed in that venv, to compare two versions in one run (docs/benchmarks.rst).
    """
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", "--out", BENCH_RESULTS, *session.posargs)
    session.run("python", "benchmarks/plot.py", BENCH_RESULTS, "--out", BENCH_DOCS)
    # WebSockets over HTTP/2 against HTTP/1.1 (skipped without node).
    session.run("python", "benchmarks/http2.py", "--out", BENCH_RESULTS)


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """Run the benchmark suite with tiny n, trio_ws only: proves it still works (seconds)."""
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/run.py", "--smoke", *session.posargs)
