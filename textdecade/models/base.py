"""The contract between a model family and the one pretraining engine.

The :class:`~textdecade.pretrain.trainer.Trainer` never branches on the family. It asks the
family's class to turn a corpus into prepared data, builds the model from that data's
metadata, draws batches from the family's batcher, and calls ``loss`` (or, for families
with a hand-written sparse update such as Word2Vec, ``manual_step``)::

    data   = Family.prepare(corpus, tokenizer, model_cfg, workdir)   # cached on disk
    model  = Family(model_cfg, data.meta)                            # meta: JSON-able
    batches = model.batcher(data, batch_size, seed=..., rank=..., world_size=...)
    loss   = model.loss(next(batches))                               # scalar tensor

Batchers are stateful iterators whose ``state_dict()`` (JSON-able) restores the exact
position and random state, so an interrupted run resumes bit for bit.
"""

from __future__ import annotations

import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class PreparedData:
    """What ``Family.prepare`` returns.

    Attributes:
        meta: JSON-able facts the model is built from (vocabulary sizes, word lists);
            saved as ``data_meta.json`` in the run directory and passed to the constructor
            again when a run is loaded.
        train: family-specific training data (memmapped shards, pair tables, ...).
        valid: held-out data of the same kind, or None.
        n_units: how many tokens (or words) one pass over ``train`` holds, for progress.
        unit: what ``n_units`` counts ("tokens" or "words").
    """

    meta: dict[str, Any]
    train: Any
    valid: Any = None
    n_units: int = 0
    unit: str = "tokens"
    extra: dict[str, Any] = field(default_factory=dict)


class Batcher(Iterator[dict[str, torch.Tensor]]):
    """An endless, resumable iterator of batches (dicts of CPU tensors).

    Every tensor in a batch has the examples on dim 0, so the engine can split a batch
    across data-parallel ranks by rows: the engine asks for the *global* batch and each
    rank keeps its slice, which makes a run's data independent of the number of ranks.

    Subclasses set ``units_per_batch`` (tokens or words a batch holds, for throughput)
    and implement ``__next__``, ``state_dict`` and ``load_state_dict``. ``epoch`` (float)
    says how far training has gone through the data.
    """

    units_per_batch: int = 0

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


class Family(nn.Module, metaclass=ABCMeta):
    """Base class of the six model families (see the module docstring for the flow).

    Class attributes:
        name: the registry name ("word2vec", "glove", "seq2seq", "transformer", "bert", "gpt").
        Config: the frozen dataclass of the family's model hyperparameters.
        manual_update: True when the family updates its own weights in ``manual_step``
            (sparse SGD) instead of ``loss`` + backward + optimizer.
        default_optimizer / default_schedule: what the training config uses unless told.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    manual_update: ClassVar[bool] = False
    default_optimizer: ClassVar[str] = "adamw"
    default_schedule: ClassVar[str] = "cosine"

    def __init__(self, config: Any, meta: dict[str, Any]):
        super().__init__()
        self.config = config
        self.meta = meta

    @classmethod
    @abstractmethod
    def prepare(
        cls, corpus: Iterable[str], tokenizer: Any, config: Any, workdir: Path
    ) -> PreparedData:
        """Turn raw texts into the family's training data, cached under ``workdir``."""

    @classmethod
    @abstractmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        """Reopen data that ``prepare`` already wrote under ``workdir`` (for resume/ranks)."""

    @abstractmethod
    def batcher(
        self, data: PreparedData, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1
    ) -> Batcher:
        """A resumable batch iterator over ``data.train``.

        The engine asks for the global batch (``rank=0, world_size=1``) and splits it by
        rows across ranks itself; ``rank``/``world_size`` stay for families that shard.
        """

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean training loss of one batch (a scalar tensor with grad)."""
        raise TypeError(f"{type(self).__name__} trains with manual_step, not a loss")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss; ``forward`` so DDP and ``torch.compile`` see the call."""
        return self.loss(batch)

    def manual_step(self, batch: dict[str, torch.Tensor], lr: float) -> float:
        """Apply one hand-written update and return the batch loss (manual_update only)."""
        raise TypeError(f"{type(self).__name__} has no hand-written update; it trains by loss")

    def compile_update(self) -> None:
        """Run the hand-written update under ``torch.compile`` (``train.compile`` asks it).

        A family whose update does not compile says so and keeps it eager.
        """
        warnings.warn(
            f"{self.name}'s update runs eagerly: train.compile does not apply", stacklevel=2
        )

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Validation metrics (e.g. ``{"val_loss": ...}``); empty when there is nothing to say."""
        return {}

    def flops_per_unit(self) -> float:
        """Training FLOPs per token (6N + attention) for MFU; 0 when it does not apply."""
        return 0.0

    def fsdp_units(self) -> list[nn.Module]:
        """The modules ``train.parallel=fsdp`` shards one by one, in forward order.

        A family's repeated blocks (each a ZeRO-3 unit whose parameters are gathered just
        before it runs); the engine shards the rest with the root. Empty (the default)
        when the family has no such blocks: FSDP then refuses it with one line.
        """
        return []
