"""The lottery ticket hypothesis as rounds of engine runs (``textdecade lab lottery``).

Frankle & Carbin 2019: a dense network contains a sparse subnetwork (a "winning
ticket") that, reset to its initial weights, trains to the dense network's loss, while
the same mask with fresh weights does not. Frankle et al. 2020 ("Linear mode
connectivity and the lottery ticket hypothesis"): for larger networks the ticket only
wins when rewound to early in training (step k), not to step 0.

Iterative magnitude pruning (IMP), per seed: train dense (round 0, snapshotting step 0
and step k); then round r prunes the surviving prunable weights of round r-1's *line*
run (``rewind-k``, or ``rewind-init`` without it) by global magnitude to sparsity
``sparsities[r-1]``, and trains every control under that mask for the same steps, data
order and schedule as the dense run:

    rewind-init   the surviving weights back to their step-0 values (the 2019 ticket)
    rewind-k      back to their step-k values (the 2020 rewinding)
    reinit        a fresh random initialisation (another seed), the same mask
    random-mask   a random mask with the same per-tensor sparsity, the step-0 weights

Every cell is an ordinary run under ``DIR/runs/CELL`` (it loads, embeds, generates and
exports as any: pruned weights are stored as zeros) with its ``mask.safetensors``;
``plan.json`` records each finished cell and round, so a rerun resumes where it stopped.
Rewinding resets the weights only: each retrain starts a fresh optimizer and the full
schedule at step 0 (the engine's runs start there), rather than continuing the dense
run's schedule from step k as Frankle et al. 2020 do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textdecade.errors import UserError
from textdecade.io import write_json
from textdecade.lab.experiments import TRANSFORMERS, Experiment, check_family
from textdecade.lab.runner import BUDGET, PLAN, _cell_config, _open_plan, _prepare_data, _say

CONTROLS = ("rewind-init", "rewind-k", "reinit", "random-mask")
DEFAULT_SPARSITIES = (0.5, 0.75, 0.9)
#: The rewind step as a share of training when --rewind-step is not given: Frankle et al.
#: 2020 found rewinding to 0.1-7% of training enough to make tickets stable.
REWIND_SHARE = 0.05
#: Offset of the ``reinit`` control's initialisation seed from the run's seed.
REINIT_SEED = 10_000
#: Translation: Multi30k German -> English in the shared data (train / BLEU test set).
MULTI30K = {"source": "train.de", "target": "train.en"}
MULTI30K_TEST = ("test_2016_flickr.de", "test_2016_flickr.en")

LOTTERY = Experiment(
    "lottery",
    "Frankle & Carbin 2019 (the lottery ticket hypothesis), Frankle et al. 2020 (rewinding)",
    "Does a sparse subnetwork found by iterative magnitude pruning, rewound to its early "
    "weights, train as well as the dense network, and better than the same mask with "
    "fresh weights or a random mask of the same sparsity?",
    TRANSFORMERS,
    (),
)


@dataclass
class LotterySettings:
    """What defines a lottery run (saved in ``plan.json``)."""

    experiment: str = "lottery"
    family: str | None = None
    preset: str = "tiny"
    seeds: int = 3
    controls: list[str] = field(default_factory=lambda: list(CONTROLS))
    sparsities: list[float] = field(default_factory=lambda: list(DEFAULT_SPARSITIES))
    rewind_step: int | None = None  # default: REWIND_SHARE of the training steps
    prune_embeddings: bool = False
    corpus: list[str] = field(default_factory=list)
    dataset: str | None = None
    max_texts: int | None = None
    overrides: list[str] = field(default_factory=list)
    bleu_lines: int = 500  # translation: test sentences decoded (greedy) for BLEU


@dataclass(frozen=True)
class Cell:
    """One run: a control at a sparsity (round 0: the dense run) for one seed."""

    control: str  # "dense" or one of CONTROLS
    round: int
    sparsity: float
    seed: int

    @property
    def name(self) -> str:
        if self.control == "dense":
            return f"dense_s{self.seed}"
        return f"p{100 * self.sparsity:g}_{self.control}_s{self.seed}"

    def overrides(self) -> list[str]:
        return [f"train.seed={self.seed}"]


def line_control(controls: list[str]) -> str:
    """The control whose trained weights the next round prunes further."""
    for control in ("rewind-k", "rewind-init"):
        if control in controls:
            return control
    raise UserError("--controls needs rewind-k or rewind-init: the next round prunes its weights")


def make_cells(settings: LotterySettings) -> list[Cell]:
    """Every run, round by round (each round's seeds, the line control first)."""
    line = line_control(settings.controls)
    order = [line, *(c for c in CONTROLS if c in settings.controls and c != line)]
    cells = [Cell("dense", 0, 0.0, s) for s in range(1, settings.seeds + 1)]
    for r, level in enumerate(settings.sparsities, 1):
        cells += [Cell(c, r, level, s) for s in range(1, settings.seeds + 1) for c in order]
    return cells


def check_settings(settings: LotterySettings) -> LotterySettings:
    """The settings made canonical (family, sorted levels), or one line naming the problem."""
    settings.family = check_family(LOTTERY, settings.family)
    if settings.preset not in BUDGET:
        raise UserError(f"unknown preset '{settings.preset}' (choose from: {', '.join(BUDGET)})")
    if settings.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {settings.seeds}")
    for value in settings.sparsities:
        if not 0 <= value < 1:
            raise UserError(f"sparsity {value:g} is outside [0, 1)")
    # 0 is the dense run, which every lottery has anyway.
    settings.sparsities = sorted({float(v) for v in settings.sparsities if v > 0})
    if not settings.sparsities:
        raise UserError("--sparsities needs at least one level above 0")
    unknown = [c for c in settings.controls if c not in CONTROLS]
    if unknown:
        raise UserError(f"unknown control '{unknown[0]}' (choose from: {', '.join(CONTROLS)})")
    settings.controls = [c for c in CONTROLS if c in settings.controls]
    line_control(settings.controls)
    if settings.bleu_lines < 0:
        raise UserError(f"bleu_lines must be 0 or more, got {settings.bleu_lines}")
    return settings


def data_overrides(settings: LotterySettings) -> list[str]:
    """Translation on Multi30k de->en for the transformer unless a corpus is given."""
    if settings.family != "transformer" or settings.corpus or settings.dataset:
        return []
    if any(o.startswith(("data.source=", "data.target=")) for o in settings.overrides):
        return []
    return [f"data.{k}={json.dumps(str(_multi30k(f)))}" for k, f in MULTI30K.items()]


def _multi30k(name: str) -> Path:
    from textdecade.data.shared import shared_path

    path = shared_path("multi30k", name)
    if path is None:
        raise UserError(
            f"lab lottery --family transformer translates Multi30k, but shared/data/multi30k/"
            f"{name} is not found; give a parallel corpus with --set data.source=... "
            "--set data.target=..."
        )
    return path


def run_lottery(
    out_dir: str | Path,
    settings: LotterySettings,
    *,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Run (or resume) the lottery into ``out_dir``; returns the report's path."""
    from textdecade.lab.lottery_report import write_report

    settings = check_settings(settings)
    out = Path(out_dir)
    extra = [f'train.device="{device}"'] if device else []
    extra += data_overrides(settings)
    # Every cell's config, built now: a bad --set is one line before any directory exists.
    configs = [_cell_config(settings, cell, extra) for cell in make_cells(settings)]
    steps = configs[0].train.steps
    rewind = settings.rewind_step
    if rewind is not None and not 0 <= rewind <= steps:
        raise UserError(f"--rewind-step {rewind} is outside the {steps} training steps (0-{steps})")
    if rewind is None:
        settings.rewind_step = round(REWIND_SHARE * steps)
    plan = _open_plan(out, settings, resume, overwrite)
    settings = LotterySettings(**plan["settings"])
    _prepare_data(out, settings, extra, progress)
    cells = make_cells(settings)
    todo = [c for c in cells if not plan["cells"].get(c.name, {}).get("done")]
    spent: list[float] = []
    for i, cell in enumerate(todo, 1):
        left = (
            f", ~{sum(spent) / len(spent) * (len(todo) - i + 1) / 60:.1f} min left" if spent else ""
        )
        _say(f"lab lottery [{i}/{len(todo)}] {cell.name}{left}")
        t0 = time.perf_counter()
        plan["cells"][cell.name] = run_cell(out, settings, cell, extra, progress)
        spent.append(time.perf_counter() - t0)
        finished = [c.round for c in cells if plan["cells"].get(c.name, {}).get("done")]
        plan["rounds_done"] = [
            r for r in range(len(settings.sparsities) + 1)
            if finished.count(r) == sum(c.round == r for c in cells)
        ]  # fmt: skip
        write_json(out / PLAN, plan)
    return write_report(out, plan, LOTTERY, settings, cells)


def run_cell(
    out: Path, settings: LotterySettings, cell: Cell, extra: list[str], progress: bool
) -> dict[str, Any]:
    """Train one cell under its mask and start; what ``plan.json`` records of it."""
    from textdecade.lab import pruning
    from textdecade.pretrain.rundir import is_run_dir
    from textdecade.pretrain.trainer import Trainer, TrainingDiverged

    run_dir = out / "runs" / cell.name
    dense = out / "runs" / f"dense_s{cell.seed}"
    if cell.control == "dense":
        callback = pruning.Snapshots(run_dir, [0, settings.rewind_step])
    else:
        line = f"p{100 * _previous(settings, cell):g}_{line_control(settings.controls)}"
        previous = dense if cell.round == 1 else out / "runs" / f"{line}_s{cell.seed}"
        if not (previous / "model.safetensors").is_file():
            return {"done": True, "skipped": f"{previous.name} did not finish (diverged?)"}
        mask = next_mask(previous, settings.sparsities[cell.round - 1], settings.prune_embeddings)
        if cell.control == "random-mask":
            mask = pruning.random_mask_like(mask, seed=1000 * cell.seed + cell.round)
        step = settings.rewind_step if cell.control == "rewind-k" else 0
        start = None if cell.control == "reinit" else dense / pruning.snapshot_name(step)
        reinit = cell.seed + REINIT_SEED if cell.control == "reinit" else None
        callback = pruning.Masked(mask, run_dir, start=start, reinit_seed=reinit)
    config = _cell_config(settings, cell, extra)
    t0 = time.perf_counter()
    try:
        result = Trainer(
            config,
            run_dir,
            resume=is_run_dir(run_dir),
            progress=progress,
            data_from=out / "data",
            callbacks=[callback],
        ).fit()
    except TrainingDiverged as exc:
        _say(f"lab lottery: {cell.name} diverged ({exc})")
        return {"done": True, "diverged": True, "seconds": time.perf_counter() - t0}
    state = {"done": True, "step": result.step, "n_params": result.n_params}
    state.update(seconds=result.seconds, **measure(run_dir, settings))
    return state


def _previous(settings: LotterySettings, cell: Cell) -> float:
    return settings.sparsities[cell.round - 2] if cell.round > 1 else 0.0


def next_mask(previous: Path, level: float, embeddings: bool):
    """The mask at ``level``: ``previous`` run's surviving prunable weights (its own mask,
    or all of them for the dense run) pruned by global magnitude."""
    from textdecade.lab import pruning
    from textdecade.pretrain.rundir import load_run

    _, model, _ = load_run(previous)
    names = pruning.prunable_names(model, embeddings)
    mask_file = previous / pruning.MASK
    mask = pruning.load_mask(mask_file) if mask_file.is_file() else pruning.dense_mask(model, names)
    return pruning.global_magnitude_mask(dict(model.named_parameters()), mask, level)


def measure(run_dir: Path, settings: LotterySettings) -> dict[str, Any]:
    """The saved model's real sparsity (exact zeros) and, for translation, its BLEU."""
    from textdecade.lab import pruning
    from textdecade.pretrain.rundir import load_run

    _, model, _ = load_run(run_dir)
    zeros = pruning.zero_fractions(model, pruning.prunable_names(model, settings.prune_embeddings))
    out: dict[str, Any] = {
        "sparsity_prunable": zeros["prunable"],
        "sparsity_overall": zeros["overall"],
    }
    if data_overrides(settings) and settings.bleu_lines:
        from textdecade.eval.bleu import bleu_run

        source, reference = (_multi30k(name) for name in MULTI30K_TEST)
        result = bleu_run(run_dir, source, reference, beam=1, max_lines=settings.bleu_lines, ci=0)
        out["bleu"] = result.score
    return out
