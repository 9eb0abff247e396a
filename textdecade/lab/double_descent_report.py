"""The double-descent report: errors and losses against width, the threshold marked.

A row per width pools its seeds (mean ± sample std). The interpolation threshold is the
narrowest width whose mean training error on the noisy labels is at most 1%; the peak is
the width of the highest mean test error. The curve counts as double descent when the
peak's test error exceeds both the best narrower width's and the best wider width's by
more than twice the larger of their seed spreads.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.extras import require
from textdecade.io import write_json, write_text

INTERPOLATED = 0.01
METRICS = ("test_error", "test_loss", "train_error", "train_loss", "noisy_fit")


def rows(widths: list[int], results: dict) -> list[dict[str, Any]]:
    """One row per width with every seed that has finished."""
    out = []
    for width in widths:
        runs = [r for r in results.values() if r["width"] == width]
        if not runs:
            continue
        row: dict[str, Any] = {"width": width, "seeds": len(runs), "n_params": runs[0]["n_params"]}
        for key in METRICS:
            values = [r[key] for r in runs if r.get(key) is not None]
            row[key] = statistics.mean(values) if values else None
            row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["seconds"] = statistics.mean(r["seconds"] for r in runs)
        out.append(row)
    return out


def verdict(table: list[dict]) -> dict[str, Any]:
    """The threshold, the peak, and whether the test error is non-monotone beyond noise."""
    threshold = next((r["width"] for r in table if r["train_error"] <= INTERPOLATED), None)
    if len(table) < 3:
        return {"threshold": threshold, "peak": None, "double_descent": False}
    inner = table[1:-1]
    peak = max(inner, key=lambda r: r["test_error"])
    k = table.index(peak)
    left = min(table[:k], key=lambda r: r["test_error"])
    right = min(table[k + 1 :], key=lambda r: r["test_error"])
    spread = max(peak["test_error_std"], left["test_error_std"], right["test_error_std"])
    rise = peak["test_error"] - left["test_error"]
    fall = peak["test_error"] - right["test_error"]
    return {
        "threshold": threshold,
        "peak": peak["width"],
        "best_narrow": left["width"],
        "best_wide": right["width"],
        "rise": rise,
        "fall": fall,
        "spread": spread,
        "double_descent": rise > 2 * spread and fall > 2 * spread,
    }


def _figure(out: Path, table: list[dict], results: dict, found: dict) -> Path:
    require("matplotlib", "the lab's pictures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(13, 3.8))
    FigureCanvasAgg(fig)
    widths = np.array([r["width"] for r in table], dtype=float)
    panels = (
        ("error", ("test_error", "train_error")),
        ("loss (nats)", ("test_loss", "train_loss")),
    )
    for k, (ylabel, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        for key in keys:
            mean = np.array([r[key] for r in table])
            std = np.array([r[key + "_std"] for r in table])
            (line,) = ax.plot(widths, mean, "o-", markersize=3, label=key.replace("_", " "))
            ax.fill_between(widths, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        if found["threshold"] is not None:
            ax.axvline(
                found["threshold"],
                color="grey",
                linestyle="--",
                linewidth=1,
                label="interpolation threshold",
            )
        ax.set_xscale("log", base=2)
        if "loss" in ylabel:
            ax.set_yscale("log")
        ax.set_xlabel("hidden width", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 3)
    widest = max(r["width"] for r in table)
    for run in (r for r in results.values() if r["width"] == widest):
        steps = [c["step"] for c in run["curve"]]
        ax.plot(steps, [c["test_error"] for c in run["curve"]], color="C0", linewidth=1)
        ax.plot(steps, [c["train_error"] for c in run["curve"]], color="C1", linewidth=1)
    ax.plot([], [], color="C0", label="test error")
    ax.plot([], [], color="C1", label="train error (noisy labels)")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # no crowded 2x10^1, 3x10^1 ... labels
    ax.set_xlabel("step (= epoch, full batch)", fontsize=9)
    ax.set_title(f"width {widest}, each seed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("Model-wise double descent: a one-hidden-layer MLP on frozen sentence embeddings")
    fig.tight_layout()
    path = out / "double_descent.png"
    fig.savefig(path, dpi=110)
    return path


def _pm(mean, std, digits=3) -> str:
    return "-" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(settings, table: list[dict], found: dict, picture: Path, senses) -> str:
    """The report as Markdown."""
    s = settings
    lines = [
        "# lab double-descent: model-wise double descent (Nakkiran et al. 2019)",
        "",
        f"A one-hidden-layer ReLU MLP on frozen sentence embeddings ({s.encoder}, mean-pooled, "
        f"first {s.dims} principal components) of CoarseWSD-20 sentences, labelled with "
        f"the {s.classes} most frequent senses ({', '.join(map(str, senses))}); "
        f"{s.train_size} training sentences with {s.noise:.0%} of their labels replaced by "
        f"another class, {s.test_size} clean test sentences; full-batch Adam (lr {s.lr:g}) "
        f"for {s.steps} steps, no weight decay, no early stopping; {s.seeds} seed(s) "
        "(each its own noise draw and initialisation). Why not a language model: a width "
        "sweep trained to interpolation through the engine would take hours on 2 CPU cores; "
        "frozen features keep every model small enough to train to zero training error.",
        "",
        "| width | params | test error | test loss | train error (noisy) | train loss "
        "| noisy labels fitted | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        mark = " (threshold)" if r["width"] == found["threshold"] else ""
        mark += " (peak)" if r["width"] == found.get("peak") else ""
        lines.append(
            f"| {r['width']}{mark} | {r['n_params']} | {_pm(r['test_error'], r['test_error_std'])} "
            f"| {_pm(r['test_loss'], r['test_loss_std'])} "
            f"| {_pm(r['train_error'], r['train_error_std'])} "
            f"| {_pm(r['train_loss'], r['train_loss_std'], 4)} "
            f"| {_pm(r['noisy_fit'], r['noisy_fit_std'], 2)} | {r['seconds']:.1f} |"
        )
    lines.append("")
    if found.get("peak") is not None:
        lines.append(
            f"Interpolation threshold (narrowest width with mean training error <= 1%): "
            f"{found['threshold']}. Test error peaks at width {found['peak']}: "
            f"{found['rise']:+.3f} over the best narrower width ({found['best_narrow']}) and "
            f"{found['fall']:+.3f} over the best wider one ({found['best_wide']}), against a "
            f"seed spread of {found['spread']:.3f}: "
            + (
                "**double descent, beyond the seed spread**."
                if found["double_descent"]
                else "**not beyond twice the seed spread**: no double descent shown here."
            )
        )
    lines += ["", f"![{picture.stem}]({picture.name})"]
    return "\n".join(lines) + "\n"


def write_report(out: Path, settings, data: dict, results: dict) -> Path:
    """Write ``report.md``, ``report.json`` and ``double_descent.png``."""
    from dataclasses import asdict

    table = rows(settings.widths, results)
    found = verdict(table)
    picture = _figure(out, table, results, found)
    write_json(
        out / "report.json",
        {"experiment": "double-descent", "settings": asdict(settings), "rows": table, **found},
    )
    path = out / "report.md"
    write_text(path, markdown(settings, table, found, picture, list(data["senses"])))
    return path
