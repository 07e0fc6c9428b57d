"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import settings

from .peer import ws_pair


@pytest.fixture
def open_pair() -> Callable[..., object]:
    """``async with open_pair(nursery, **options) as (ws, peer)``; see ``tests.peer.ws_pair``."""
    return ws_pair


# Hypothesis profiles: "default" (Hypothesis's own, 100 examples per test) keeps the suite fast;
# HYPOTHESIS_PROFILE=fuzz (what `nox -s fuzz` sets) runs tests/test_fuzz.py for much longer.
# Tests that pin max_examples themselves are not affected.
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
