"""Learning-rate schedules as pure functions of the step (nothing to checkpoint)."""

from __future__ import annotations

import math

# SCHEDULES lives in config so that TrainConfig checks train.schedule against the same names.
from textdecade.config import SCHEDULES
from textdecade.errors import ConfigError


def lr_at(
    schedule: str, step: int, *, lr: float, total: int, warmup: int, min_ratio: float
) -> float:
    """The learning rate of ``step`` (0-based).

    Args:
        schedule: ``cosine`` (linear warmup, cosine decay to ``lr * min_ratio``; GPT-2/nanoGPT),
            ``linear`` (warmup, then linear decay to ``lr * min_ratio``; word2vec.c's and
            gensim's alpha: without warmup the first step runs at ``lr``, the last at the floor),
            ``noam`` (Vaswani et al. 2017: linear warmup then ``1/sqrt(step)`` decay, scaled so
            the peak at ``warmup`` equals ``lr``), or ``constant`` (after warmup).
        step: the optimizer step about to be taken.
        lr: the peak learning rate.
        total: the number of steps of the run.
        warmup: warmup steps (0 for none).
        min_ratio: the final fraction of ``lr`` (cosine, linear).
    """
    s = step + 1
    if schedule == "noam":
        w = max(warmup, 1)
        return lr * min(s / w, math.sqrt(w / s))
    if warmup > 0 and s <= warmup:
        return lr * s / warmup
    floor = lr * min_ratio
    # The first step after warmup runs at the peak and the last at the floor: word2vec.c
    # starts at alpha and gensim ends at min_alpha; a decay that left the peak unused (or
    # stopped short of the floor) would train at rates neither reference uses.
    progress = min(max((step - warmup) / max(total - warmup - 1, 1), 0.0), 1.0)
    if schedule == "cosine":
        return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return lr - (lr - floor) * progress
    if schedule == "constant":
        return lr
    raise ConfigError(f"unknown schedule '{schedule}' (allowed: {', '.join(SCHEDULES)})")
