"""Hooks into the one training loop, for experiments that steer a run from outside.

The lab's lottery tickets keep pruned weights at zero and snapshot the weights to rewind
to; its architecture search stops a trial whose validation loss is hopeless. Both are a
:class:`Callback` passed to ``Trainer(..., callbacks=[...])``, so the loop itself never
learns about pruning or search.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class Callback:
    """What the Trainer calls, in order. Each hook does nothing by default.

    Callbacks run on the main process's unwrapped model (``train.parallel=none``); a hook
    that changes weights does so in place, under ``torch.no_grad()``.
    """

    def on_start(self, model: nn.Module, step: int) -> None:
        """The model is built (and restored from a checkpoint when resuming at ``step``)."""

    def after_step(self, model: nn.Module, step: int) -> None:
        """The optimizer step that made ``step`` steps is done."""

    def after_eval(self, step: int, record: dict[str, Any]) -> bool:
        """Validation metrics of ``step`` are in ``record``; True stops the run here (its
        checkpoint is written and ``fit`` returns with ``stopped_early``)."""
        return False
