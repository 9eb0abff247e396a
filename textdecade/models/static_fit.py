"""A small in-process training loop for the static families (Word2Vec, GloVe).

The engine (``textdecade pretrain``) is the normal way to train; this loop is for library
users who want gensim's one-call experience, and for benchmarks and tests: it prepares
the data, builds the model and runs ``manual_step`` epoch by epoch with the family's
linear learning-rate decay, reporting the true mean loss and throughput of each epoch.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from textdecade.errors import ConfigError


@dataclass
class FitHistory:
    """Per-epoch ``{"epoch", "loss", "units_per_s", "seconds"}`` and the prepared data."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    data: Any = None
    prepare_seconds: float = 0.0
    train_seconds: float = 0.0


def fit_static(
    model_cls: type,
    texts: Iterable[str],
    tokenizer: Any,
    config: Any,
    *,
    epochs: int = 5,
    lr: float = 0.025,
    min_lr_ratio: float = 1e-4,
    batch_size: int = 10_000,
    seed: int = 1,
    device: str | torch.device = "cpu",
    workdir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    data: Any = None,
    compile: bool = False,
) -> tuple[Any, FitHistory]:
    """Train a static family on ``texts`` and return ``(model, history)``.

    Args:
        model_cls: ``word2vec.Model`` or ``glove.Model``.
        texts: documents.
        tokenizer: the shared tokenizer (its ``words`` splits the text).
        config: the family's ``Config``.
        epochs: passes over the data.
        lr: initial learning rate (decays linearly to ``lr * min_lr_ratio``, per step).
        min_lr_ratio: the final fraction of ``lr``.
        batch_size: units (words, or co-occurrence nonzeros) per step.
        seed: seeds the initialisation and the batches.
        device: where to train.
        workdir: where prepared data goes (a temporary directory when None).
        log: called with one line per epoch (e.g. ``print``).
        data: data an earlier call prepared (``history.data``), to train again without
            preparing it (a sweep over settings that do not change the vocabulary).
        compile: run the update under ``torch.compile`` (``Family.compile_update``).

    Returns:
        The trained model and a :class:`FitHistory`.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    tmp = None
    if workdir is None and data is None:
        tmp = tempfile.TemporaryDirectory(prefix="textdecade-")
        workdir = tmp.name
    history = FitHistory()
    t0 = time.perf_counter()
    if data is None:
        data = model_cls.prepare(texts, tokenizer, config, Path(workdir))
    history.prepare_seconds = time.perf_counter() - t0
    history.data = data
    torch.manual_seed(seed)
    model = model_cls(config, data.meta).to(device)
    if compile:
        model.compile_update()
    batcher = model.batcher(data, batch_size, seed=seed)
    per_epoch = math.ceil(data.n_units / batch_size)
    total = epochs * per_epoch
    step = 0
    t_train = time.perf_counter()
    for epoch in range(epochs):
        t = time.perf_counter()
        loss_sum, examples, units = 0.0, 0, 0
        for _ in range(per_epoch):
            batch = {k: v.to(device) for k, v in next(batcher).items()}
            rate = lr - (lr - lr * min_lr_ratio) * step / max(total - 1, 1)
            loss = model.manual_step(batch, rate)
            loss_sum += loss * model.last_examples
            examples += model.last_examples
            units += next(iter(batch.values())).shape[0]
            step += 1
        seconds = time.perf_counter() - t
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(examples, 1),
            "units_per_s": units / max(seconds, 1e-9),
            "seconds": seconds,
        }
        history.epochs.append(row)
        if log is not None:
            log(
                f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f} | "
                f"{row['units_per_s']:,.0f} {data.unit}/s | {seconds:.1f}s"
            )
    history.train_seconds = time.perf_counter() - t_train
    if hasattr(model, "close"):
        model.close()
    if tmp is not None:
        # The word stream is memmapped from the temporary directory: keep it alive with
        # the history rather than deleting it under the caller.
        history.tmpdir = tmp  # type: ignore[attr-defined]
    return model, history
