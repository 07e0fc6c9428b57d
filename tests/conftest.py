"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import settings

from .peer import ws_pair

#: The environment variables trio_ws reads for proxies (each also in upper case).
PROXY_VARIABLES = ("ws_proxy", "wss_proxy", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without proxy variables (a CI machine may set them; a test that
    needs them sets them with monkeypatch, which undoes it afterwards)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def open_pair() -> Callable[..., object]:
    """``async with open_pair(nursery, **options) as (ws, peer)``; see ``tests.peer.ws_pair``."""
    return ws_pair


# Hypothesis profiles: "repeatable" (the suite's: Hypothesis's 100 examples per test, drawn
# from a fixed seed and no example database, so every run of CI tries the same inputs and a
# run never fails by chance); HYPOTHESIS_PROFILE=fuzz (what `nox -s fuzz` sets) draws fresh
# random inputs, many more of them, to look for new failures. Tests that pin max_examples
# themselves keep their count.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
