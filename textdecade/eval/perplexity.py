"""Held-out loss, perplexity and bits per byte of a trained model (``textdecade eval perplexity``).

Bits per byte divide the loss by the bytes the tokens stand for, so models with different
tokenizers (a byte-level one, a 32k BPE) compare fairly (Gao et al. 2020, The Pile).

The interval resamples **evaluation batches**: the unit the families' evaluators have
(``Family.eval_batches``: GPT's batches of consecutive windows of the held-out token
stream, BERT's masked windows, seq2seq/Transformer buckets of sentence pairs), with the
loss per token as the ratio of summed nats to summed tokens in each resample. Documents
are not kept apart in the token stream, so batches (each a contiguous stretch of text)
stand in for them; with few batches (small validation sets) the interval is coarse.
Perplexity and bits per byte are increasing functions of the loss, so their intervals are
the loss interval's bounds mapped through them.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdecade.errors import UserError
from textdecade.eval.intervals import DEFAULT_LEVEL, Interval, bootstrap, ratio
from textdecade.eval.progress import bar
from textdecade.eval.report import interval_dict
from textdecade.models.base import Generates, PreparedData


@dataclass
class PerplexityResult:
    """Loss (nats/token), perplexity and bits per byte on some held-out text."""

    data: str
    loss: float
    ppl: float | None
    bpb: float | None
    extra: dict[str, float]
    #: intervals of "loss", "perplexity" and "bits_per_byte" (resampling eval batches)
    intervals: dict[str, Interval] = field(default_factory=dict)
    batches: int = 0  # evaluation batches scored (the resampled unit)

    def summary(self) -> dict[str, Any]:
        """Loss, perplexity and bits per byte, each with ``low``/``high`` when computed."""
        out: dict[str, Any] = {}
        for key, value in (
            ("loss", self.loss),
            ("perplexity", self.ppl),
            ("bits_per_byte", self.bpb),
        ):
            out[key] = value
            if key in self.intervals:
                out[f"{key} low"] = self.intervals[key].low
                out[f"{key} high"] = self.intervals[key].high
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every number (for ``--format json``)."""
        head = {"task": "perplexity", "data": self.data, "batches": self.batches}
        values = {"loss": self.loss, "perplexity": self.ppl, "bits_per_byte": self.bpb}
        return {**head, **values, **self.extra, **interval_dict(self.intervals)}

    def _line(self, label: str, key: str, value: float, digits: int) -> str:
        ci = self.intervals.get(key)
        return f"{label:<18} {ci.format(digits=digits) if ci else f'{value:.{digits}f}'}"

    def format(self) -> str:
        """Readable lines (for ``--format table``)."""
        rows = [
            f"Held-out text: {self.data}",
            self._line("loss (nats/token)", "loss", self.loss, 4),
        ]
        if self.ppl is not None:
            rows.append(self._line("perplexity", "perplexity", self.ppl, 2))
        if self.bpb is not None:
            rows.append(self._line("bits per byte", "bits_per_byte", self.bpb, 4))
        rows += [f"{k:<18} {v:.4f}" for k, v in self.extra.items()]
        if self.intervals:
            level = next(iter(self.intervals.values())).level
            rows.append(f"({100 * level:g}% intervals over {self.batches} evaluation batches)")
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
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> PerplexityResult:
    """Score a run on its own validation split, or on ``corpus`` when given.

    Args:
        run: a run directory.
        corpus: texts to score instead of the run's held-out documents.
        max_batches: batches of ``batch_size`` windows of the model's context.
        device: where to run (None: cuda > mps > cpu).
        ci: confidence level of the intervals (resampling evaluation batches); 0: none.
        progress: show a bar over the evaluation batches on stderr.

    Raises:
        UserError: the family has no held-out loss to report, or there is no text.
    """
    from textdecade.pretrain.device import select_device
    from textdecade.pretrain.rundir import DATA_DIR, load_run

    run = Path(run)
    config, model, tokenizer = load_run(run, device=select_device(device or "auto"))
    Model = type(model)
    with tempfile.TemporaryDirectory() as tmp:
        if corpus is None:
            if not (run / DATA_DIR).is_dir():
                raise UserError(
                    f"{run} holds no held-out text of its own (an imported model has none): "
                    "pass --corpus FILE to score text"
                )
            data = Model.load_prepared(run / DATA_DIR, model.meta)
            name = f"{run} (held-out split)"
        else:
            valid, counts = _own_text(tokenizer, corpus, Path(tmp))
            data = PreparedData(meta=model.meta, train=valid, valid=valid, n_units=len(valid))
            model.meta = {**model.meta, **counts}  # bits per byte of *this* text
            name = "the given text"
        # The evaluators batch as during training.
        model.batcher(data, batch_size, seed=0)
        batches = list(
            bar(
                model.eval_batches(data, max_batches),
                total=max_batches,
                desc="perplexity",
                unit="batch",
                enabled=progress,
            )
        )
        metrics = model.eval_metrics(batches) if batches else model.evaluate(data, max_batches)
    if "val_loss" not in metrics:
        raise UserError(
            f"a {config.family} run has no held-out text to score (no validation split)"
        )
    loss = metrics.pop("val_loss")
    ppl = metrics.pop("val_ppl", None)
    bpb = metrics.pop("val_bpb", None)
    if ppl is None and isinstance(model, Generates):  # a causal LM's loss is per next token
        ppl = math.exp(min(loss, 50.0))
    result = PerplexityResult(name, loss, ppl, bpb, metrics, batches=len(batches))
    if ci and batches:
        nats = np.array([b["nats"] for b in batches], np.float64)
        tokens = np.array([b["tokens"] for b in batches], np.float64)
        lo = bootstrap((nats, tokens), ratio, level=ci)
        result.intervals["loss"] = lo
        if ppl is not None:
            result.intervals["perplexity"] = lo.map(lambda x: math.exp(min(x, 50.0)))
        if bpb is not None:
            result.intervals["bits_per_byte"] = lo.map(lambda x: x * bpb / loss)
    return result
