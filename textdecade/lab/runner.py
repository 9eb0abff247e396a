"""Run an experiment's grid: one tokenizer and data, then every cell through the Trainer.

``textdecade lab EXPERIMENT -o DIR`` lays out::

    DIR/plan.json        the settings and each cell's outcome (the resume record)
    DIR/data/            the prepared tokenizer and data every cell trains on (data_from)
    DIR/runs/CELL/       one ordinary run directory per cell (resumes, loads, plots as any)
    DIR/report.md/.json  the table and pictures (:mod:`textdecade.lab.report`)

Every cell's configuration is built (and so checked) before any work starts; a rerun of
the same command skips finished cells and resumes an interrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textdecade.data.sample import check_sample
from textdecade.errors import UserError
from textdecade.extras import check
from textdecade.io import write_json
from textdecade.lab.experiments import Experiment, Variant, check_family, get_experiment

PLAN = "plan.json"

#: Each preset's budget: small enough that an experiment's grid (3 seeds) runs in about
#: ten minutes on 2 CPU cores at tiny, and on one GPU at small. Dropout is off so that
#: what differs between variants is the lesson alone.
BUDGET: dict[str, dict[str, list[str]]] = {
    "tiny": {
        "all": [
            # ~40 ms a step at 4 layers of 64 on 2 idle cores (measured): ~12 s a cell.
            "train.steps=300",
            "train.batch_size=8",
            "train.warmup_steps=30",
            "train.eval_every=100",
            "train.eval_batches=8",
            "train.ckpt_every=300",
            "train.log_every=5",
            "train.diagnostics_every=100",
            "tokenizer.vocab_size=2048",
            "model.dropout=0",
        ],
        "gpt": ["model.d_model=64", "model.n_heads=4", "model.n_layers=4", "model.max_len=64"],
        "bert": ["model.d_model=64", "model.n_heads=4", "model.n_layers=4", "model.max_len=64"],
        "transformer": [
            "model.d_model=64",
            "model.n_heads=4",
            "model.n_layers=2",
            "model.d_ff=256",
            "model.max_len=32",
        ],
        "seq2seq": ["model.d_model=64", "model.d_hidden=64", "model.max_len=32"],
    },
    "small": {
        "all": [
            "train.steps=2000",
            "train.batch_size=32",
            "train.warmup_steps=100",
            "train.eval_every=250",
            "train.eval_batches=20",
            "train.ckpt_every=500",
            "train.diagnostics_every=250",
            "tokenizer.vocab_size=8192",
            "model.dropout=0",
        ],
        "gpt": ["model.d_model=256", "model.n_heads=4", "model.n_layers=6", "model.max_len=256"],
        "bert": ["model.d_model=256", "model.n_heads=4", "model.n_layers=6", "model.max_len=256"],
        "transformer": ["model.d_model=256", "model.n_heads=4", "model.n_layers=3"],
        "seq2seq": ["model.d_model=256", "model.d_hidden=256"],
    },
}


@dataclass
class LabSettings:
    """What defines a lab run (saved in ``plan.json``)."""

    experiment: str
    family: str | None = None
    preset: str = "tiny"
    seeds: int = 3
    corpus: list[str] = field(default_factory=list)
    dataset: str | None = None
    max_texts: int | None = None
    overrides: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # a subset by name (default: all)
    depths: list[int] = field(default_factory=list)  # instead of the experiment's own


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    name: str
    variant: Variant
    depth: int | None
    lr: float | None
    seed: int

    def overrides(self) -> list[str]:
        out = list(self.variant.overrides)
        if self.depth is not None:
            out.append(f"model.n_layers={self.depth}")
        if self.lr is not None:
            out.append(f"train.lr={self.lr}")
        return [*out, f"train.seed={self.seed}"]


def make_cells(
    experiment: Experiment, seeds: int, best_lr: dict[str, float] | None = None
) -> list[Cell]:
    """The grid: variants x depths x seeds; for a sweep, every rate with the first seed
    and, once ``best_lr`` is known, the other seeds at each variant's best rate."""
    cells = []
    for variant in experiment.variants:
        for depth in experiment.depths or (None,):
            rates = experiment.sweep.get(variant.name)
            if rates is None:
                runs = [(None, s) for s in range(1, seeds + 1)]
            else:
                runs = [(lr, 1) for lr in rates]
                if best_lr and variant.name in best_lr:
                    runs += [(best_lr[variant.name], s) for s in range(2, seeds + 1)]
            for lr, seed in runs:
                cells.append(
                    Cell(_cell_name(variant.name, depth, lr, seed), variant, depth, lr, seed)
                )
    return cells


def _cell_name(variant: str, depth: int | None, lr: float | None, seed: int) -> str:
    slug = re.sub(r"[^a-z0-9.]+", "-", variant.lower()).strip("-")
    parts = [slug] + ([f"L{depth}"] if depth is not None else []) + ([f"lr{lr:g}"] if lr else [])
    return "_".join([*parts, f"s{seed}"])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_lab(
    out_dir: str | Path,
    settings: LabSettings,
    *,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Run (or resume) every cell of ``settings.experiment`` into ``out_dir``; returns
    the report's path."""
    from textdecade.lab.report import write_report

    experiment = narrow(get_experiment(settings.experiment), settings.variants, settings.depths)
    settings.family = check_family(experiment, settings.family)
    if settings.preset not in BUDGET:
        raise UserError(f"unknown preset '{settings.preset}' (choose from: {', '.join(BUDGET)})")
    if settings.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {settings.seeds}")
    out = Path(out_dir)
    extra = [f'train.device="{device}"'] if device else []
    # Every cell's config, built now: a bad --set is one line before any directory exists.
    for cell in make_cells(experiment, settings.seeds, _guess_best(experiment)):
        _cell_config(settings, cell, extra)
    plan = _open_plan(out, settings, resume, overwrite)
    settings = LabSettings(**plan["settings"])
    _prepare_data(out, settings, extra, progress)
    cells = make_cells(experiment, settings.seeds)
    _run_cells(out, plan, settings, cells, extra, progress)
    if experiment.sweep:
        best = best_rates(out, plan, cells)
        _run_cells(
            out, plan, settings, make_cells(experiment, settings.seeds, best), extra, progress
        )
        plan["best_lr"] = best
        write_json(out / PLAN, plan)
    return write_report(
        out, plan, experiment, make_cells(experiment, settings.seeds, plan.get("best_lr"))
    )


def narrow(experiment: Experiment, variants: list[str], depths: list[int]) -> Experiment:
    """The experiment with only the named ``variants`` and with ``depths`` (when given)."""
    known = {v.name for v in experiment.variants}
    unknown = [name for name in variants if name not in known]
    if unknown:
        raise UserError(
            f"lab {experiment.name} has no variant '{unknown[0]}' "
            f"(choose from: {', '.join(v.name for v in experiment.variants)})"
        )
    if any(d < 1 for d in depths):
        raise UserError(f"--depths must be positive layer counts, got {depths}")
    if depths and not experiment.depths:
        raise UserError(f"lab {experiment.name} keeps the preset's depth; --depths does not apply")
    chosen = tuple(v for v in experiment.variants if not variants or v.name in variants)
    return dataclasses.replace(
        experiment, variants=chosen, depths=tuple(depths) or experiment.depths
    )


def _guess_best(experiment: Experiment) -> dict[str, float]:
    """Any rate of each sweep, so the second phase's cells are checked up front too."""
    return {name: rates[0] for name, rates in experiment.sweep.items()}


def _base_overrides(settings: LabSettings) -> list[str]:
    budget = BUDGET[settings.preset]
    data = [f"data.corpus={json.dumps(settings.corpus)}"] if settings.corpus else []
    if settings.dataset:
        data.append(f"data.dataset={json.dumps(settings.dataset)}")
    if settings.max_texts:
        data.append(f"data.max_texts={settings.max_texts}")
    return [*budget["all"], *budget.get(settings.family or "", []), *data]


def _cell_config(settings: LabSettings, cell: Cell | None, extra: list[str]):
    from textdecade.config import build_config
    from textdecade.models import get_family

    _, Config, presets = get_family(settings.family)
    overrides = [*_base_overrides(settings), *(cell.overrides() if cell else [])]
    overrides += [*settings.overrides, *extra]
    return build_config(settings.family, Config, presets, settings.preset, None, overrides)


def check_extras(settings: dict[str, Any]) -> None:
    """What a lab experiment needs beyond ``pip install textdecade``, checked before any
    directory or training: matplotlib draws every report's pictures, and gensim builds the
    built-in sample when ``settings`` (a ``plan.json``'s) name no corpus.

    Raises:
        MissingExtra: one of them is not installed; one line naming the extra.
    """
    check("matplotlib", f"textdecade lab {settings['experiment']} (its pictures)")
    if "corpus" in settings and not settings["corpus"] and settings.get("dataset") is None:
        check_sample()


def _open_plan(out: Path, settings: Any, resume: bool, overwrite: bool) -> dict:
    """The plan of ``out`` (any lab experiment's settings dataclass): a new one, or the one
    a rerun or ``--resume`` continues; the extras that plan needs are checked first."""
    plan_path = out / PLAN
    old = json.loads(plan_path.read_text(encoding="utf-8")) if plan_path.exists() else None
    resumed = old is not None and resume and not overwrite
    check_extras(old["settings"] if resumed else asdict(settings))
    if old is not None:
        plan = old
        if overwrite:
            shutil.rmtree(out)
        elif plan["settings"].get("experiment") != settings.experiment:
            raise UserError(
                f"{out} holds the lab's {plan['settings'].get('experiment')} experiment; "
                "choose another -o or pass --overwrite to replace it"
            )
        elif plan["settings"] == asdict(settings) or resume:
            return plan
        else:
            raise UserError(
                f"{out} holds a lab {settings.experiment} run with other settings; pass "
                "--resume to continue it or --overwrite to replace it"
            )
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} is not empty and holds no lab experiment; choose another -o")
    elif out.is_dir() and overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = {"settings": asdict(settings), "cells": {}}
    write_json(plan_path, plan)
    return plan


def _prepare_data(out: Path, settings: LabSettings, extra: list[str], progress: bool) -> None:
    """The tokenizer and data every cell shares (once; a rerun finds them)."""
    from textdecade.pretrain import rundir
    from textdecade.pretrain.trainer import Trainer

    data = out / "data"
    if (data / rundir.DATA_META).is_file():
        return
    _say(f"lab {settings.experiment}: preparing the tokenizer and data")
    Trainer(_cell_config(settings, None, extra), data, overwrite=True, progress=progress).prepare()


def _run_cells(
    out: Path, plan: dict, settings: LabSettings, cells: list[Cell], extra, progress
) -> None:
    from textdecade.pretrain.rundir import is_run_dir
    from textdecade.pretrain.trainer import Trainer, TrainingDiverged

    todo = [c for c in cells if not plan["cells"].get(c.name, {}).get("done")]
    spent: list[float] = []
    for i, cell in enumerate(todo, 1):
        run_dir = out / "runs" / cell.name
        left = f", ~{_minutes(sum(spent) / len(spent) * (len(todo) - i + 1))} left" if spent else ""
        _say(f"lab {settings.experiment} [{i}/{len(todo)}] {cell.name}{left}")
        config = _cell_config(settings, cell, extra)
        t0 = time.perf_counter()
        state: dict[str, Any] = {"done": True}
        try:
            result = Trainer(
                config,
                run_dir,
                resume=is_run_dir(run_dir),
                progress=progress,
                data_from=out / "data",
            ).fit()
            state.update(step=result.step, n_params=result.n_params, seconds=result.seconds)
        except TrainingDiverged as exc:
            _say(f"lab {settings.experiment}: {cell.name} diverged ({exc})")
            state.update(diverged=True, seconds=time.perf_counter() - t0)
        spent.append(time.perf_counter() - t0)
        plan["cells"][cell.name] = state
        write_json(out / PLAN, plan)


def best_rates(out: Path, plan: dict, cells: list[Cell]) -> dict[str, float]:
    """Each swept variant's rate with the lowest final validation loss (first seed)."""
    from textdecade.lab.report import cell_summary

    best: dict[str, tuple[float, float]] = {}
    for cell in cells:
        if cell.lr is None:
            continue
        loss = cell_summary(out, plan, cell)["val_loss"]
        if cell.variant.name not in best or loss < best[cell.variant.name][1]:
            best[cell.variant.name] = (cell.lr, loss)
    return {name: lr for name, (lr, _) in best.items()}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"
