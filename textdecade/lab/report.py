"""An experiment's report: one row per variant, the seed-to-seed noise beside every mean.

Each cell's outcome is read back from its run directory (``metrics.jsonl``): the final
validation loss and bits per byte, the training curve, the per-block diagnostics of
step 1 (the gradients at initialisation), divergence and wall time. A row pools a
variant's seeds (mean +- sample std); a difference from the best row counts as beyond
the seed spread when it exceeds twice the standard error of the difference of the two
means (about a 95% interval for many seeds; with 3 seeds a rough guide, said so).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.io import write_json, write_text
from textdecade.lab.experiments import Experiment
from textdecade.lab.figures import SMOOTH, gradient_by_depth, loss_curves
from textdecade.pretrain.progress import human, read_metrics


def cell_summary(out: Path, plan: dict, cell) -> dict[str, Any]:
    """What one cell's run directory says (``val_loss`` is inf for a diverged run)."""
    state = plan["cells"].get(cell.name, {})
    records = read_metrics(out / "runs" / cell.name)
    evals = [r for r in records if "val_loss" in r]
    last = evals[-1] if evals and not state.get("diverged") else {}
    first_layers = next((r["layers"] for r in records if "layers" in r), None)
    return {
        "cell": cell.name,
        "ran": bool(state.get("done")),
        "diverged": bool(state.get("diverged")),
        "val_loss": last.get("val_loss", math.inf),
        "val_bpb": last.get("val_bpb"),
        "curve": [(r["step"], r["loss"]) for r in records],
        "val_curve": [(r["step"], r["val_loss"]) for r in evals],
        "init_layers": first_layers,
        "seconds": state.get("seconds"),
        "n_params": state.get("n_params"),
    }


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first step whose running mean of ``SMOOTH`` training losses is at or below
    ``target`` (None if never)."""
    window: list[float] = []
    for step, loss in curve:
        window = [*window[-(SMOOTH - 1) :], loss]
        if len(window) == SMOOTH and sum(window) / SMOOTH <= target:
            return step
    return None


def summarise(out: Path, plan: dict, experiment: Experiment, cells: list) -> dict[str, Any]:
    """The rows of the report (a variant x depth each), the sweep and the notes."""
    groups: dict[tuple[str, int | None], list[tuple[Any, dict]]] = {}
    sweep = []
    best_lr = plan.get("best_lr", {})
    for cell in cells:
        summary = cell_summary(out, plan, cell)
        if cell.lr is not None:
            if cell.seed == 1:  # the sweep; the other seeds run at the best rate only
                sweep.append({"variant": cell.variant.name, "lr": cell.lr, **_brief(summary)})
            if best_lr.get(cell.variant.name) != cell.lr:
                continue  # a rate that lost: in the sweep table, not a row
        groups.setdefault((cell.variant.name, cell.depth), []).append((cell, summary))
    # Shallow to deep, each depth's variants in the experiment's order.
    groups = dict(sorted(groups.items(), key=lambda kv: kv[0][1] or 0))
    rows = [_row(name, depth, members) for (name, depth), members in groups.items()]
    learned = [r["val_loss_mean"] for r in rows if math.isfinite(r["val_loss_mean"])]
    # "Steps to target": to come within 10% of the best row's final loss.
    target = min(learned) * 1.1 if learned else math.inf
    for row, members in zip(rows, groups.values(), strict=True):
        hits = [steps_to(s["curve"], target) for _, s in members]
        row["steps_to_target"] = None if None in hits else statistics.mean(hits)
    _mark_noise(rows)
    return {
        "rows": rows,
        "sweep": sweep,
        "target_loss": target,
        "best_lr": best_lr,
        "unigram_loss": unigram_loss(out, plan["settings"]["family"]),
    }


def unigram_loss(out: Path, family: str) -> float | None:
    """Cross-entropy (nats per token) of the validation tokens under the training tokens'
    add-one unigram distribution: what a model that ignores context scores. None when the
    family's prepared data is not a token stream (the encoder-decoders' pairs)."""
    from textdecade.models import get_family
    from textdecade.pretrain import rundir

    Model, _, _ = get_family(family)
    meta = rundir.read_json(out / "data" / rundir.DATA_META)
    data = Model.load_prepared(out / "data" / rundir.DATA_DIR, meta)
    if not isinstance(data.train, np.ndarray) or not isinstance(data.valid, np.ndarray):
        return None
    vocab = int(meta.get("vocab_size") or max(data.train.max(), data.valid.max()) + 1)
    counts = np.bincount(np.asarray(data.train), minlength=vocab)[:vocab] + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[np.asarray(data.valid)].mean())


def _brief(summary: dict) -> dict[str, Any]:
    return {k: summary[k] for k in ("cell", "ran", "diverged", "val_loss", "val_bpb", "seconds")}


def _row(name: str, depth: int | None, members: list[tuple[Any, dict]]) -> dict[str, Any]:
    losses = [s["val_loss"] for _, s in members]
    finite = [x for x in losses if math.isfinite(x)]
    bpbs = [s["val_bpb"] for _, s in members if s["val_bpb"] is not None]
    layers = [s["init_layers"] for _, s in members]
    cell = members[0][0]
    return {
        "variant": name,
        "label": cell.variant.label,
        "depth": depth,
        "lr": cell.lr,
        "seeds": len(members),
        "diverged": sum(s["diverged"] for _, s in members),
        "val_loss_mean": statistics.mean(finite) if len(finite) == len(losses) else math.inf,
        "val_loss_std": statistics.stdev(finite) if len(finite) > 1 else None,
        "val_bpb_mean": statistics.mean(bpbs) if bpbs else None,
        "val_bpb_std": statistics.stdev(bpbs) if len(bpbs) > 1 else None,
        "grad_first_over_last": _geomean(_grad_ratio(x, first_last=True) for x in layers),
        "grad_spread": _geomean(_grad_ratio(x) for x in layers),
        "saturated": _mean_of(_mean_of(x["saturated"]) if x else None for x in layers),
        "dead": _mean_of(_mean_of(x["dead"]) if x else None for x in layers),
        "seconds": _mean_of(s["seconds"] for _, s in members),
        "n_params": next((s["n_params"] for _, s in members if s["n_params"]), None),
        "cells": [s["cell"] for _, s in members],
    }


def _mean_of(values) -> float | None:
    known = [v for v in values or () if v is not None]
    return statistics.mean(known) if known else None


def _geomean(values) -> float | None:
    known = [v for v in values if v is not None and v > 0]
    return math.exp(statistics.mean(math.log(v) for v in known)) if known else None


def _grad_ratio(layers: dict | None, first_last: bool = False) -> float | None:
    """At step 1: the largest block gradient norm over the smallest (how unevenly the
    blocks learn: 1 is even; Glorot & Bengio's vanishing/exploding picture), or the
    first block's over the last's."""
    norms = (layers or {}).get("grad_norm") or []
    if len(norms) < 2 or min(norms) <= 0:
        return None
    return norms[0] / norms[-1] if first_last else max(norms) / min(norms)


def _mark_noise(rows: list[dict]) -> None:
    """Compare each row with the best of its depth: beyond the seed spread or not."""
    for depth in {r["depth"] for r in rows}:
        same = [r for r in rows if r["depth"] == depth]
        best = min(same, key=lambda r: r["val_loss_mean"])
        for row in same:
            row["vs_best"] = _versus(row, best)


def _versus(row: dict, best: dict) -> str:
    if row is best:
        return "best"
    if not math.isfinite(row["val_loss_mean"]):
        return "diverged"
    if row["val_loss_std"] is None or best["val_loss_std"] is None:
        return "one seed: no spread to compare with"
    se = math.sqrt(
        row["val_loss_std"] ** 2 / row["seeds"] + best["val_loss_std"] ** 2 / best["seeds"]
    )
    gap = row["val_loss_mean"] - best["val_loss_mean"]
    return f"+{gap:.3f}, beyond the seed spread" if gap > 2 * se else f"+{gap:.3f}, within it"


def _units(saturated: float | None, dead: float | None) -> str:
    """The share of saturated sigmoid/tanh outputs and of dead ReLU outputs at step 1."""
    parts = [f"{100 * saturated:.0f}% sat." if saturated is not None else ""]
    parts.append(f"{100 * dead:.0f}% dead" if dead is not None else "")
    return " ".join(p for p in parts if p) or "-"


def _pm(mean: float | None, std: float | None, digits: int = 3) -> str:
    if mean is None:
        return "-"
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def markdown(experiment: Experiment, settings: dict, summary: dict, pictures: list[Path]) -> str:
    """The report as Markdown."""
    lines = [
        f"# lab {experiment.name}: {experiment.paper}",
        "",
        experiment.question,
        "",
        f"{settings['family']}, preset {settings['preset']}, {settings['seeds']} seed(s); "
        "every cell is an ordinary run directory under `runs/`.",
        "",
    ]
    columns = (
        "variant",
        "depth",
        "val loss",
        "bits/byte",
        "steps to target",
        "grad spread at init",
        "saturated / dead",
        "diverged",
        "time",
        "params",
        "vs best",
    )
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in summary["rows"]:
        cells = [
            r["label"] + (f" (lr {r['lr']:g})" if r["lr"] else ""),
            str(r["depth"] or "-"),
            _pm(r["val_loss_mean"], r["val_loss_std"]),
            _pm(r["val_bpb_mean"], r["val_bpb_std"]),
            "never" if r["steps_to_target"] is None else f"{r['steps_to_target']:.0f}",
            "-" if r["grad_spread"] is None else f"{r['grad_spread']:.3g}",
            _units(r["saturated"], r["dead"]),
            f"{r['diverged']}/{r['seeds']}",
            "-" if r["seconds"] is None else f"{r['seconds']:.0f} s",
            human(r["n_params"]) if r["n_params"] else "-",
            r.get("vs_best", ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    unigram = summary["unigram_loss"]
    lines += [
        "",
        "Validation loss: nats per token, mean ± sample std over seeds"
        + (
            f"; a model that ignores context (the training tokens' unigram distribution) "
            f"scores {unigram:.3f}"
            if unigram is not None
            else ""
        )
        + ". Grad spread at init: the largest block's gradient norm over the smallest at "
        "step 1 (1 = every block learns at the same pace). Saturated / dead: the share of "
        "sigmoid or tanh outputs within 2% of their bounds, and of ReLU outputs that are 0, "
        f"at step 1. Steps to target: the first step whose mean of {SMOOTH} training losses is "
        f"within 10% of the best row's final loss ({summary['target_loss']:.3f}). *Beyond "
        "the seed spread*: the gap to the best row of the same depth exceeds twice the "
        f"standard error of the difference of means; with {settings['seeds']} seed(s) that "
        "is a rough guide, not a test.",
    ]
    if summary["sweep"]:
        lines += ["", "## The learning-rate sweep (first seed)", ""]
        lines += ["| variant | lr | val loss | diverged |", "|---|---|---|---|"]
        edges: dict[str, list[float]] = {}
        for s in summary["sweep"]:
            edges.setdefault(s["variant"], []).append(s["lr"])
        for s in summary["sweep"]:
            loss = f"{s['val_loss']:.3f}" if math.isfinite(s["val_loss"]) else "diverged"
            loss = loss if s["ran"] else "not run"
            best = " (best)" if summary["best_lr"].get(s["variant"]) == s["lr"] else ""
            if best and s["lr"] in (min(edges[s["variant"]]), max(edges[s["variant"]])):
                best = " (best, at the edge of the grid)"
            diverged = "yes" if s["diverged"] else ""
            lines.append(f"| {s['variant']} | {s['lr']:g}{best} | {loss} | {diverged} |")
    for path in pictures:
        lines += ["", f"![{path.stem}]({path.name})"]
    return "\n".join(lines) + "\n"


def _finite(value: Any) -> Any:
    """JSON has no infinity: a diverged run's loss is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_report(out: Path, plan: dict, experiment: Experiment, cells: list) -> Path:
    """Write ``report.md``, ``report.json`` and the pictures; returns report.md."""
    summary = summarise(out, plan, experiment, cells)
    summaries = {c.name: cell_summary(out, plan, c) for c in cells}
    pictures = [
        loss_curves(out, cells, summaries, summary["unigram_loss"]),
        gradient_by_depth(out, cells, summaries),
    ]
    pictures = [p for p in pictures if p is not None]
    write_json(
        out / "report.json",
        _finite({"experiment": experiment.name, "settings": plan["settings"], **summary}),
    )
    path = out / "report.md"
    write_text(path, markdown(experiment, plan["settings"], summary, pictures))
    return path
