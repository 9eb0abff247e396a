"""``textdecade lab search``: a budgeted architecture and hyperparameter search.

Optuna (Akiba et al. 2019) draws each trial's layers, width, heads, FFN width,
activation, norm, learning rate and batch size from a space (:mod:`textdecade.lab.space`)
with TPE (Bergstra et al. 2011) or at random, and a multi-fidelity pruner (Hyperband, Li
et al. 2017, or the median rule) stops trials whose validation loss is hopeless at a
quarter, half or three quarters of their budget. The objective is the validation loss
after a fixed number of training sequences (steps x batch size at the lab's context),
not after fixed seconds: on a shared machine seconds depend on what else runs, so a
seconds budget would make trials incomparable and a resumed search unrepeatable; the
seconds each trial took are reported beside its loss instead.

Layout of ``-o DIR``::

    DIR/plan.json     the settings (as the other lab experiments) and the baseline's outcome
    DIR/study.db      Optuna's SQLite storage: a killed search resumes, keeping its trials
    DIR/data/         the tokenizer and data every trial trains on (data_from)
    DIR/runs/trial_NNN/, DIR/runs/preset/   ordinary run directories
    DIR/report.md/.json, search.png, best.toml
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textdecade.errors import UserError
from textdecade.extras import require
from textdecade.io import write_json
from textdecade.lab.runner import BUDGET, PLAN, _base_overrides, _open_plan, _prepare_data, _say
from textdecade.lab.space import DEFAULT_SPACES, build_space, overrides, space_to_json, suggest
from textdecade.pretrain.callbacks import Callback

SAMPLERS = ("tpe", "random")
PRUNERS = ("hyperband", "median", "none")
STUDY = "study.db"
#: Validation points in a trial: the pruner's rungs are 1/4, 1/2, 3/4 of the budget.
N_EVALS = 4
#: Sequences of validation text every trial is scored on (whatever its batch size), so
#: that trials with different batch sizes are compared on the same held-out windows.
EVAL_SEQUENCES = 64


@dataclass
class SearchSettings:
    """What defines a search (saved in ``plan.json``; ``trials`` is not part of it, so a
    rerun with more trials continues the same study)."""

    experiment: str = "search"
    family: str | None = None
    preset: str = "tiny"
    sampler: str = "tpe"
    pruner: str = "hyperband"
    space: dict[str, str] = field(default_factory=dict)  # --space key -> text
    budget: int | None = None  # training sequences per trial (default: the preset's)
    seed: int = 1
    corpus: list[str] = field(default_factory=list)
    dataset: str | None = None
    max_texts: int | None = None
    overrides: list[str] = field(default_factory=list)


def import_optuna():
    """Optuna, or one line saying how to install it (the ``lab`` extra)."""
    optuna = require("optuna", "textdecade lab search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def check_settings(settings: SearchSettings, trials: int) -> None:
    """Every choice, checked before any work (one line each)."""
    family = settings.family = settings.family or "gpt"
    if family not in DEFAULT_SPACES:
        raise UserError(
            f"lab search does not apply to {family} (choose from: {', '.join(DEFAULT_SPACES)})"
        )
    if settings.preset not in BUDGET:
        raise UserError(f"unknown preset '{settings.preset}' (choose from: {', '.join(BUDGET)})")
    if settings.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler '{settings.sampler}' (choose from: tpe, random)")
    if settings.pruner not in PRUNERS:
        raise UserError(f"unknown pruner '{settings.pruner}' (choose from: {', '.join(PRUNERS)})")
    if trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if settings.budget is not None and settings.budget < 1:
        raise UserError(f"--budget must be a positive number of sequences, got {settings.budget}")
    build_space(family, settings.space)


def default_budget(preset: str) -> int:
    """The lab's per-cell budget in training sequences (tiny: 300 steps x 8)."""
    values = dict(o.split("=", 1) for o in BUDGET[preset]["all"])
    return int(values["train.steps"]) * int(values["train.batch_size"])


def budget_overrides(budget: int, batch_size: int) -> list[str]:
    """Steps, evaluation, warm-up and checkpoints for ``budget`` sequences at
    ``batch_size``: every batch size sees the same sequences (to within one batch), and
    exactly N_EVALS evaluations, the last one at the end (the Trainer's final)."""
    # at least 3 x N_EVALS steps, so that the N_EVALS - 1 early evaluations come first
    steps = max(3 * N_EVALS, budget // batch_size)
    return [
        f"train.batch_size={batch_size}",
        f"train.steps={steps}",
        f"train.eval_every={math.ceil(steps / N_EVALS)}",
        f"train.eval_batches={max(1, EVAL_SEQUENCES // batch_size)}",
        f"train.warmup_steps={max(1, steps // 10)}",
        f"train.ckpt_every={steps}",
        "train.diagnostics_every=0",
    ]


def trial_overrides(settings: SearchSettings, params: dict[str, Any], extra: list[str]):
    """Every override of one trial: the lab's budget and data, the drawn params, the
    per-trial budget, then the user's ``--set``."""
    budget = settings.budget or default_budget(settings.preset)
    return [
        *_base_overrides(settings),
        *overrides(params),
        *budget_overrides(budget, params["batch_size"]),
        *settings.overrides,
        *extra,
    ]


def build_trial_config(settings: SearchSettings, params: dict[str, Any], extra: list[str]):
    """The RunConfig of one trial."""
    from textdecade.config import build_config
    from textdecade.models import get_family

    _, Config, presets = get_family(settings.family)
    over = trial_overrides(settings, params, extra)
    return build_config(settings.family, Config, presets, settings.preset, None, over)


def preset_params(family: str) -> dict[str, Any]:
    """The family's tiny preset as search params (its shape, rate and batch size; the
    family's own activation and norm), to train on the same budget as every trial."""
    from textdecade.models import get_family

    _, Config, presets = get_family(family)
    tiny, defaults = presets["tiny"], Config()
    model, train = tiny["model"], tiny.get("train", {})
    d_model = model.get("d_model", defaults.d_model)
    d_ff = model.get("d_ff", defaults.d_ff) or 4 * d_model
    return {
        "n_layers": model.get("n_layers", defaults.n_layers),
        "d_model": d_model,
        "n_heads": model.get("n_heads", defaults.n_heads),
        "ffn_mult": d_ff // d_model,  # every preset's FFN is a whole multiple of its width
        "activation": model.get("activation", defaults.activation),
        "norm_type": model.get("norm_type", defaults.norm_type),
        "lr": train.get("lr", 1e-3),
        "batch_size": train.get("batch_size", 8),
    }


class ReportToTrial(Callback):
    """Hands each validation loss to the Optuna trial (the k-th evaluation at rung k:
    k quarters of the budget) and stops the run when the pruner says so."""

    def __init__(self, trial):
        self.trial = trial
        self.rung = 0

    def after_eval(self, step: int, record: dict[str, Any]) -> bool:  # noqa: ARG002
        if "val_loss" not in record:
            return False
        self.rung += 1
        self.trial.report(float(record["val_loss"]), self.rung)
        return self.trial.should_prune()


def run_search(
    out_dir: str | Path,
    settings: SearchSettings,
    *,
    trials: int = 24,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Run (or continue) a search of ``trials`` trials into ``out_dir``; returns the
    report's path."""
    from textdecade.lab.search_report import write_search_report

    optuna = import_optuna()
    check_settings(settings, trials)
    extra = [f'train.device="{device}"'] if device else []
    space = build_space(settings.family, settings.space)
    build_trial_config(settings, preset_params(settings.family), extra)  # a bad --set, now
    out = Path(out_dir)
    plan = _open_plan(out, settings, resume, overwrite)
    settings = SearchSettings(**plan["settings"])
    space = build_space(settings.family, settings.space)
    study = open_study(optuna, out, settings, space)
    _prepare_data(out, settings, extra, progress)
    _run_baseline(out, plan, settings, extra, progress)
    _forget_interrupted(optuna, out, study)
    done = count_finished(optuna, study)
    if done < trials:
        _say(f"lab search: {done} of {trials} trials done; running {trials - done}")
        objective = _objective(optuna, out, settings, space, extra, progress)
        study.optimize(objective, n_trials=trials - done)
    budget = settings.budget or default_budget(settings.preset)
    return write_search_report(
        out, plan, settings, space, study, budget, lambda p: trial_overrides(settings, p, [])
    )


def open_study(optuna, out: Path, settings: SearchSettings, space) -> Any:
    """The study in ``out/study.db`` (created with the settings it belongs to; refused,
    one line, when it belongs to another experiment, family, space or budget)."""
    key = _study_key(settings, space)
    path = out / STUDY
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if names and names != ["search"]:
        raise UserError(f"{path} holds studies {names}, not a lab search; choose another -o")
    existing = optuna.load_study(study_name="search", storage=storage).trials if names else []
    seed = settings.seed + len(existing)
    study = optuna.create_study(
        storage=storage,
        study_name="search",
        direction="minimize",
        load_if_exists=True,
        sampler=_sampler(optuna, settings.sampler, seed),
        pruner=_pruner(optuna, settings.pruner),
    )
    saved = study.user_attrs.get("key")
    if saved is None and study.trials:
        raise UserError(f"{path} holds a study the lab did not make; choose another -o")
    if saved is None:
        study.set_user_attr("key", key)
    elif saved != key:
        what = [k for k in key if key[k] != saved.get(k)]
        raise UserError(
            f"{path} belongs to another search (its {', '.join(what)} differ); choose "
            "another -o or pass --overwrite"
        )
    return study


def _study_key(settings: SearchSettings, space) -> dict[str, Any]:
    """What a study's trials depend on: resuming under anything else would mix them."""
    return {
        "experiment": settings.experiment,
        "family": settings.family,
        "preset": settings.preset,
        "space": space_to_json(space),
        "budget": settings.budget or default_budget(settings.preset),
        "data": [settings.corpus, settings.dataset, settings.max_texts],
        "overrides": settings.overrides,
    }


def _sampler(optuna, name: str, seed: int):
    # A resumed study reseeds by its trial count: a random sampler would otherwise draw
    # the killed run's sequence again.
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)


def _pruner(optuna, name: str):
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=N_EVALS)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def count_finished(optuna, study) -> int:
    """Trials that ran to their end or were pruned (what a resumed search keeps)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _forget_interrupted(optuna, out: Path, study) -> None:
    """A trial left RUNNING by a killed process will never finish: mark it failed (it is
    not counted) and remove its half-written run directory."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        shutil.rmtree(out / "runs" / trial_name(trial.number), ignore_errors=True)


def trial_name(number: int) -> str:
    """A trial's run directory under ``runs/``."""
    return f"trial_{number:03d}"


def _objective(optuna, out: Path, settings: SearchSettings, space, extra, progress):
    from textdecade.pretrain.trainer import Trainer, TrainingDiverged

    def objective(trial) -> float:
        params = suggest(trial, space)
        config = build_trial_config(settings, params, extra)
        name = trial_name(trial.number)
        _say(f"lab search trial {trial.number}: {json.dumps(params)}")
        callback = ReportToTrial(trial)
        t0 = time.perf_counter()
        try:
            result = Trainer(
                config,
                out / "runs" / name,
                overwrite=True,
                progress=progress,
                data_from=out / "data",
                callbacks=[callback],
            ).fit()
        except TrainingDiverged:
            trial.set_user_attr("diverged", True)
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            return float("inf")
        trial.set_user_attr("seconds", result.seconds)
        trial.set_user_attr("n_params", result.n_params)
        trial.set_user_attr("steps", result.step)
        trial.set_user_attr("tokens", result.units_seen)
        if result.stopped_early:
            raise optuna.TrialPruned(f"stopped at step {result.step}")
        return float(result.metrics["val_loss"])

    return objective


def _run_baseline(out: Path, plan: dict, settings: SearchSettings, extra, progress) -> None:
    """The family's tiny preset on the same budget (once; in plan.json)."""
    from textdecade.pretrain.trainer import Trainer, TrainingDiverged

    if plan.get("baseline", {}).get("done"):
        return
    params = preset_params(settings.family)
    _say(f"lab search: the {settings.family} tiny preset on the same budget")
    config = build_trial_config(settings, params, extra)
    state: dict[str, Any] = {"done": True, "params": params}
    try:
        result = Trainer(
            config,
            out / "runs" / "preset",
            overwrite=True,
            progress=progress,
            data_from=out / "data",
        ).fit()
        state.update(
            val_loss=result.metrics.get("val_loss"),
            n_params=result.n_params,
            seconds=result.seconds,
            steps=result.step,
        )
    except TrainingDiverged:
        state.update(val_loss=None, diverged=True)
    plan["baseline"] = state
    write_json(out / PLAN, plan)
