"""The batcher contract: an endless, resumable iterator of batches.

It lives on the data floor because the data modules (``data/lm.py``, ``data/parallel.py``)
implement it; the families and the engine only consume it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import torch


class Batcher(Iterator[dict[str, torch.Tensor]]):
    """An endless, resumable iterator of batches (dicts of CPU tensors).

    Every tensor in a batch has the examples on dim 0, so the engine can split a batch
    across data-parallel ranks by rows: the engine asks for the *global* batch and each
    rank keeps its slice, which makes a run's data independent of the number of ranks.

    Subclasses set ``units_per_batch`` (tokens or words a batch holds, for throughput)
    and implement ``__next__``, ``state_dict`` and ``load_state_dict``. ``epoch`` (float)
    says how far training has gone through the data. A batcher whose passes end on a
    batch boundary (the last batch of a pass is short) says how many batches a pass takes
    in ``batches_per_epoch``, so ``train.epochs`` turns into whole passes; None leaves the
    engine to count passes in units.
    """

    units_per_batch: int = 0
    batches_per_epoch: int | None = None

    @property
    def epoch(self) -> float:
        return 0.0

    def __iter__(self) -> Batcher:
        return self

    @abstractmethod
    def __next__(self) -> dict[str, torch.Tensor]:
        """The next batch."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """JSON-able position and random state."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
