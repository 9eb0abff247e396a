"""Train a family from Python in one call, the way ``gensim.models.Word2Vec(texts)`` does.

A thin front over :class:`~textdecade.pretrain.trainer.Trainer`, the one engine that
``textdecade pretrain`` runs: the same presets, settings, schedules, checkpoints and run
directory. It adds what an in-process user (a notebook, a test, a benchmark) wants back:
the trained model, its data, and a per-pass summary of the loss and throughput::

    run = train("word2vec", texts, settings={"train": {"epochs": 5}})
    run.model, run.epochs[-1]["loss"], run.epochs[-1]["units_per_s"]
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textdecade.config import build_config
from textdecade.models import get_family
from textdecade.models.base import PreparedData
from textdecade.pretrain import rundir
from textdecade.pretrain.progress import read_metrics
from textdecade.pretrain.trainer import FitResult, Trainer


@dataclass
class TrainedRun:
    """What :func:`train` returns.

    Attributes:
        model: the trained model, loaded back from ``run_dir`` (eval mode, on the CPU
            unless ``device`` said otherwise).
        tokenizer: the run's tokenizer.
        run_dir: the run directory (a temporary one lives as long as this object).
        result: the Trainer's :class:`FitResult` (steps, seconds, last metrics).
        data: the prepared data the run trained on.
        epochs: one row per pass over the data, ``{"epoch", "loss", "units_per_s",
            "seconds", "steps"}``: the mean step loss of the pass and its throughput,
            measured by the engine (training time only; evaluations would count too).
    """

    model: Any
    tokenizer: Any
    run_dir: Path
    result: FitResult
    data: PreparedData
    epochs: list[dict[str, float]] = field(default_factory=list)
    _tmp: Any = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        """Wall time of the training loop (not the tokenizer or the data preparation)."""
        return self.result.seconds


def train(
    family: str,
    texts: Iterable[str] | None = None,
    *,
    tokenizer: Any = None,
    preset: str = "tiny",
    settings: dict[str, dict[str, Any]] | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    data_from: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    device: str = "cpu",
) -> TrainedRun:
    """Train ``family`` on ``texts`` with the engine and return the trained run.

    Args:
        family: a registered family name ("word2vec", "glove", "gpt", ...).
        texts: documents (re-iterable); None reads what the config's ``data`` names.
        tokenizer: a trained Tokenizer to use instead of training one.
        preset: the family's preset to start from.
        settings: typed ``{section: {key: value}}`` on top of the preset, e.g.
            ``{"model": {"workers": 2}, "train": {"epochs": 5, "lr": 0.025}}``.
        overrides: ``section.key=value`` strings, as ``--set`` takes them.
        run_dir: where the run goes; a temporary directory when None.
        data_from: a run directory of the same family whose tokenizer and prepared data
            to reuse (see :class:`Trainer`); ``texts`` and ``tokenizer`` are then unused.
        overwrite: replace a run already in ``run_dir``.
        progress: show the engine's progress bar on stderr.
        device: where the returned model is loaded (training follows ``train.device``).
    """
    Model, Config, presets = get_family(family)
    config = build_config(family, Config, presets, preset, None, tuple(overrides), settings)
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"textdecade-{family}-")
        run_dir = Path(tmp.name) / "run"
    trainer = Trainer(
        config,
        run_dir,
        corpus=texts,
        tokenizer=tokenizer,
        overwrite=overwrite,
        progress=progress,
        data_from=data_from,
    )
    result = trainer.fit()
    _, model, tok = rundir.load_run(result.run_dir, device)
    meta = rundir.read_json(result.run_dir / rundir.DATA_META)
    data = Model.load_prepared(result.run_dir / rundir.DATA_DIR, meta)
    epochs = epoch_summary(read_metrics(result.run_dir), data.n_units)
    return TrainedRun(model, tok, result.run_dir, result, data, epochs, tmp)


def prepare(
    family: str,
    texts: Iterable[str] | None = None,
    *,
    run_dir: str | Path,
    tokenizer: Any = None,
    preset: str = "tiny",
    settings: dict[str, dict[str, Any]] | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
) -> PreparedData:
    """Prepare ``family``'s data in ``run_dir`` without training, for :func:`train`'s
    ``data_from`` (one tokenizer and data for a sweep). The arguments are :func:`train`'s;
    the model settings that shape the data (vocabulary, window) must be the sweep's."""
    _, Config, presets = get_family(family)
    config = build_config(family, Config, presets, preset, None, tuple(overrides), settings)
    trainer = Trainer(
        config, run_dir, corpus=texts, tokenizer=tokenizer, overwrite=overwrite, progress=False
    )
    return trainer.prepare()[1]


def epoch_summary(records: Sequence[dict[str, Any]], n_units: int) -> list[dict[str, float]]:
    """Fold the engine's per-step records into one row per pass over the data.

    A step belongs to the pass its ``epoch`` (passes done after the step) ends in; a
    pass's throughput is its units over the seconds between its last step and the previous
    pass's (a pass cut short by ``train.steps`` counts the share it reached).
    """
    passes: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if "loss" in record and "epoch" in record and "seconds" in record:
            passes.setdefault(max(math.ceil(record["epoch"]) - 1, 0), []).append(record)
    rows, previous_end = [], 0.0
    for index in sorted(passes):
        steps = passes[index]
        seconds = steps[-1]["seconds"] - previous_end
        done = steps[-1]["epoch"] - index  # 1.0 for a whole pass
        rows.append(
            {
                "epoch": index + 1,
                "loss": sum(r["loss"] for r in steps) / len(steps),
                "units_per_s": n_units * done / max(seconds, 1e-9),
                "seconds": seconds,
                "steps": len(steps),
            }
        )
        previous_end = steps[-1]["seconds"]
    return rows
