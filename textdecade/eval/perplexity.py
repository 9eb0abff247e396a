"""Held-out loss, perplexity and bits per byte of a trained model (``textdecade eval perplexity``).

Bits per byte divide the loss by the bytes the tokens stand for, so models with different
tokenizers (a byte-level one, a 32k BPE) compare fairly (Gao et al. 2020, The Pile).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from textdecade.errors import UserError


@dataclass
class PerplexityResult:
    """Loss (nats/token), perplexity and bits per byte on some held-out text."""

    data: str
    loss: float
    ppl: float | None
    bpb: float | None
    extra: dict[str, float]

    def summary(self) -> dict[str, Any]:
        return {"loss": self.loss, "perplexity": self.ppl, "bits_per_byte": self.bpb}

    def to_dict(self) -> dict[str, Any]:
        return {"task": "perplexity", "data": self.data, **self.summary(), **self.extra}

    def format(self) -> str:
        rows = [f"Held-out text: {self.data}", f"loss (nats/token)  {self.loss:.4f}"]
        if self.ppl is not None:
            rows.append(f"perplexity         {self.ppl:.2f}")
        if self.bpb is not None:
            rows.append(f"bits per byte      {self.bpb:.4f}")
        rows += [f"{k:<18} {v:.4f}" for k, v in self.extra.items()]
        return "\n".join(rows)


def _own_text(tokenizer: Any, texts: Iterable[str], workdir: Path) -> tuple[Any, dict[str, int]]:
    """Encode ``texts`` as one validation stream; count the bytes they hold."""
    from textdecade.data.shards import TokenShards, prepare_shards

    counted = {"bytes": 0}

    def counting():
        for text in texts:
            counted["bytes"] += len(text.encode("utf-8")) + 1  # +1: the separator eos stands for
            yield text

    prepare_shards(counting(), tokenizer, workdir)
    shards = TokenShards(workdir)
    return shards.array, {"n_valid_tokens": len(shards), "n_valid_bytes": counted["bytes"]}


@torch.no_grad()
def evaluate_perplexity(
    run: str | Path,
    corpus: Iterable[str] | None = None,
    max_batches: int = 100,
    batch_size: int = 8,
    device: str | None = None,
) -> PerplexityResult:
    """Score a run on its own validation split, or on ``corpus`` when given.

    Args:
        run: a run directory.
        corpus: texts to score instead of the run's held-out documents.
        max_batches: batches of ``batch_size`` windows of the model's context.
        device: where to run (None: cuda > mps > cpu).

    Raises:
        UserError: the family has no held-out loss to report, or there is no text.
    """
    from textdecade.pretrain.device import select_device
    from textdecade.pretrain.rundir import DATA_DIR, load_run

    run = Path(run)
    config, model, tokenizer = load_run(run, device=select_device(device or "auto"))
    Model = type(model)
    # The evaluators batch as during training.
    model.batcher(Model.load_prepared(run / DATA_DIR, model.meta), batch_size, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        if corpus is None:
            data = Model.load_prepared(run / DATA_DIR, model.meta)
            name = f"{run} (held-out split)"
        else:
            valid, counts = _own_text(tokenizer, corpus, Path(tmp))
            data = Model.load_prepared(run / DATA_DIR, model.meta)
            data.valid = valid
            model.meta = {**model.meta, **counts}  # bits per byte of *this* text
            name = "the given text"
        metrics = model.evaluate(data, max_batches)
    if "val_loss" not in metrics:
        raise UserError(
            f"a {config.family} run has no held-out text to score (no validation split)"
        )
    loss = metrics.pop("val_loss")
    ppl = metrics.pop("val_ppl", None)
    bpb = metrics.pop("val_bpb", None)
    if ppl is None and config.family in ("gpt",):
        ppl = math.exp(min(loss, 50.0))
    return PerplexityResult(name, loss, ppl, bpb, metrics)
