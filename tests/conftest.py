"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .peer import ws_pair


@pytest.fixture
def open_pair() -> Callable[..., object]:
    """``async with open_pair(nursery, **options) as (ws, peer)``; see ``tests.peer.ws_pair``."""
    return ws_pair
