"""Test helper: how often a task yields to Trio's scheduler (a public Instrument)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio


class StepCounter(trio.abc.Instrument):
    """Counts the steps of the task that made it: each step after the first follows a yield."""

    def __init__(self) -> None:
        self.task = trio.lowlevel.current_task()
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


@contextmanager
def counting_steps() -> Iterator[StepCounter]:
    """How often the current task yields inside the block."""
    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
    finally:
        trio.lowlevel.remove_instrument(counter)
