"""How many steps a run takes: ``train.steps``, whole passes (``train.epochs``), or the
steps that fill a wall-clock budget (``train.minutes``)."""

from __future__ import annotations

import math
from typing import Any

from textdecade.config import TrainConfig
from textdecade.models.base import PreparedData


def total_steps(train: TrainConfig, data: PreparedData, batcher: Any) -> int:
    """``train.steps``, or the steps that make ``train.epochs`` passes over the data: whole
    passes of the batcher's batches where it says how many a pass takes."""
    if train.epochs is None:
        return train.steps
    if batcher.batches_per_epoch:
        return max(1, math.ceil(train.epochs * batcher.batches_per_epoch / train.grad_accum))
    per_step = max(batcher.units_per_batch * train.grad_accum, 1)
    return max(1, math.ceil(train.epochs * data.n_units / per_step))


#: A time-budgeted run's total until its rate is measured (no step reaches it).
UNMEASURED = 10**15


class TimeBudget:
    """``train.minutes``: the step count that fills a wall-clock budget.

    The rate is measured over the first steps (at least 3, and 5% of the budget or 30 s,
    whichever is shorter), the first excluded (it pays for warm-up and allocation). Until
    then the total is :data:`UNMEASURED`, so the schedule warms up as usual and then holds
    its peak; ``train.steps`` and ``train.epochs`` are not read.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.first: float | None = None  # when the first step ended

    def steps(self, done: int, elapsed: float) -> int | None:
        """The steps that fill the budget once ``done`` steps (of this process) took
        ``elapsed`` seconds, or None while the measurement is still too short to trust."""
        if done == 1:
            self.first = elapsed
        if done < 3 or elapsed < min(0.05 * self.seconds, 30.0):
            return None
        per_step = (elapsed - (self.first or 0.0)) / (done - 1)
        return done + max(0, int((self.seconds - elapsed) / max(per_step, 1e-9)))
