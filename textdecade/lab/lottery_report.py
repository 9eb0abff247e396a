"""The lottery's report: validation loss (and BLEU) against sparsity, one line per control.

Rows pool a control's seeds at one sparsity (mean ± sample std); the per-seed paired
differences (ticket minus control, same seed, same mask or sparsity) say whether the
rewound ticket beats random reinitialisation and a random mask by more than the seeds
disagree. Written as ``report.md``, ``report.json`` and ``lottery.png``.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.io import write_json, write_text
from textdecade.lab.figures import _figure, _save
from textdecade.lab.report import _finite, _pm
from textdecade.pretrain.progress import read_metrics

LABELS = {
    "dense": "dense",
    "rewind-init": "rewind to init (2019 ticket)",
    "rewind-k": "rewind to step k (2020)",
    "reinit": "random reinit, same mask",
    "random-mask": "random mask, init weights",
}


def final_metrics(out: Path, plan: dict, cell) -> dict[str, Any]:
    """A cell's last validation loss (inf when it diverged or did not run) and the rest
    of what ``plan.json`` recorded of it."""
    state = plan["cells"].get(cell.name, {})
    evals = [r for r in read_metrics(out / "runs" / cell.name) if "val_loss" in r]
    ok = evals and state.get("done") and not state.get("diverged") and not state.get("skipped")
    return {**state, "val_loss": evals[-1]["val_loss"] if ok else math.inf}


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if not all(math.isfinite(v) for v in values):
        return math.inf, None
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def summarise(out: Path, plan: dict, settings, cells: list) -> dict[str, Any]:
    """The rows (control x sparsity) and paired comparisons of the report."""
    metrics = {c.name: final_metrics(out, plan, c) for c in cells}
    groups: dict[tuple[str, float], list] = {}
    for cell in cells:
        groups.setdefault((cell.control, cell.sparsity), []).append(cell)
    dense = {c.seed: metrics[c.name]["val_loss"] for c in cells if c.control == "dense"}
    rows = []
    for (control, level), members in groups.items():
        got = [metrics[c.name] for c in members]
        loss = [m["val_loss"] for m in got]
        row = {"control": control, "label": LABELS[control], "sparsity": level}
        row["seeds"] = len(members)
        row["val_loss_mean"], row["val_loss_std"] = _stats(loss)
        row["vs_dense_mean"], row["vs_dense_std"] = _stats(
            [m["val_loss"] - dense[c.seed] for c, m in zip(members, got, strict=True)]
        )
        bleu = [m["bleu"] for m in got if m.get("bleu") is not None]
        row["bleu_mean"], row["bleu_std"] = _stats(bleu)
        for key in ("sparsity_prunable", "sparsity_overall", "seconds"):
            known = [m[key] for m in got if m.get(key) is not None]
            row[key] = statistics.mean(known) if known else None
        row["cells"] = [c.name for c in members]
        rows.append(row)
    return {
        "rows": rows,
        "comparisons": _comparisons(cells, metrics),
        "line": next((c.control for c in cells if c.round == 1), None),
    }


def _comparisons(cells: list, metrics: dict) -> list[dict[str, Any]]:
    """At each sparsity, each rewound ticket against each random control: the per-seed
    differences of validation loss (negative: the ticket is better)."""
    by = {(c.control, c.sparsity, c.seed): metrics[c.name]["val_loss"] for c in cells}
    seeds = sorted({c.seed for c in cells})
    out = []
    for level in sorted({c.sparsity for c in cells if c.round}):
        for ticket in ("rewind-k", "rewind-init"):
            for other in ("reinit", "random-mask"):
                pairs = [
                    by[(ticket, level, s)] - by[(other, level, s)]
                    for s in seeds
                    if (ticket, level, s) in by and (other, level, s) in by
                ]
                pairs = [d for d in pairs if math.isfinite(d)]
                if not pairs:
                    continue
                mean, std = _stats(pairs)
                out.append(
                    {
                        "sparsity": level,
                        "ticket": ticket,
                        "control": other,
                        "diff_mean": mean,
                        "diff_std": std,
                        "ticket_wins": sum(d < 0 for d in pairs),
                        "seeds": len(pairs),
                    }
                )
    return out


def figure(out: Path, rows: list[dict]) -> Path | None:
    """Validation loss against sparsity, a line per control (error bars: std over seeds),
    the dense loss dashed. The x axis counts halvings of the surviving weights."""
    fig, _, _ = _figure(1)
    fig.set_size_inches(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    dense = next((r for r in rows if r["control"] == "dense"), None)
    levels = sorted({r["sparsity"] for r in rows})
    for control in [c for c in LABELS if c != "dense"]:
        line = sorted((r for r in rows if r["control"] == control), key=lambda r: r["sparsity"])
        line = [
            r for r in line if r["val_loss_mean"] is not None and math.isfinite(r["val_loss_mean"])
        ]
        if not line:
            continue
        if dense is not None:  # every control starts from the same dense point
            line = [dense, *line]
        ax.errorbar(
            [_halvings(r["sparsity"]) for r in line],
            [r["val_loss_mean"] for r in line],
            yerr=[r["val_loss_std"] or 0.0 for r in line],
            marker="o",
            markersize=3,
            capsize=3,
            linewidth=1.2,
            label=LABELS[control],
        )
    if dense is None or not ax.lines:
        return None
    ax.axhline(dense["val_loss_mean"], color="grey", linestyle="--", linewidth=1, label="dense")
    ax.set_xticks([_halvings(s) for s in levels], [f"{100 * s:g}%" for s in levels])
    ax.set_xlabel("sparsity of the prunable weights", fontsize=8)
    ax.set_ylabel("validation loss (nats/token)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(
        fig,
        "Lottery tickets: validation loss against sparsity (mean ± std over seeds)",
        out / "lottery.png",
    )


def _halvings(level: float) -> float:
    return float(np.log2(1.0 / (1.0 - level)))


def markdown(experiment, settings, summary: dict, pictures: list[Path]) -> str:
    """The report as Markdown (``experiment``: the lottery's paper and question)."""
    translation = any(r["bleu_mean"] is not None for r in summary["rows"])
    lines = [
        f"# lab lottery: {experiment.paper}",
        "",
        experiment.question,
        "",
        f"{settings.family}, preset {settings.preset}, {settings.seeds} seed(s), rewind step "
        f"k = {settings.rewind_step}; iterative magnitude pruning (global, over the Linear "
        f"weights{' and embeddings' if settings.prune_embeddings else ''}), each round "
        f"pruning the {summary['line']} run of the round before. Every cell is an ordinary "
        "run directory under `runs/` with its `mask.safetensors`.",
        "",
    ]
    columns = ["control", "sparsity", "val loss", "vs dense"]
    columns += ["BLEU"] if translation else []
    columns += ["zeros (prunable / all)", "time"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in sorted(
        summary["rows"], key=lambda r: (r["sparsity"], list(LABELS).index(r["control"]))
    ):
        vs = "-" if r["control"] == "dense" else _pm(r["vs_dense_mean"], r["vs_dense_std"])
        cells = [
            r["label"],
            f"{100 * r['sparsity']:g}%",
            _pm(r["val_loss_mean"], r["val_loss_std"]),
            vs,
        ]
        cells += [_pm(r["bleu_mean"], r["bleu_std"], 2)] if translation else []
        zeros = (
            "-"
            if r["sparsity_prunable"] is None
            else f"{100 * r['sparsity_prunable']:.1f}% / {100 * r['sparsity_overall']:.1f}%"
        )
        cells += [zeros, "-" if r["seconds"] is None else f"{r['seconds']:.0f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Validation loss: nats per token, mean ± sample std over seeds; *vs dense*: the same "
        "seed's dense run subtracted first. Zeros: the exact zeros of the saved "
        "`model.safetensors` among the prunable weights and among all parameters.",
    ]
    if summary["comparisons"]:
        lines += ["", "## Ticket against control, seed by seed", ""]
        lines += ["| sparsity | ticket | control | loss difference | ticket better |"]
        lines += ["|---|---|---|---|---|"]
        for c in summary["comparisons"]:
            lines.append(
                f"| {100 * c['sparsity']:g}% | {c['ticket']} | {c['control']} | "
                f"{_pm(c['diff_mean'], c['diff_std'])} | {c['ticket_wins']}/{c['seeds']} |"
            )
        lines += [
            "",
            "Loss difference: ticket minus control, same seed (negative: the ticket is "
            "better), mean ± std over seeds.",
        ]
    for path in pictures:
        lines += ["", f"![{path.stem}]({path.name})"]
    return "\n".join(lines) + "\n"


def write_report(out: Path, plan: dict, experiment, settings, cells: list) -> Path:
    """Write ``report.md``, ``report.json`` and ``lottery.png``; returns report.md."""
    summary = summarise(out, plan, settings, cells)
    pictures = [p for p in [figure(out, summary["rows"])] if p is not None]
    write_json(
        out / "report.json",
        _finite({"experiment": "lottery", "settings": plan["settings"], **summary}),
    )
    path = out / "report.md"
    write_text(path, markdown(experiment, settings, summary, pictures))
    return path
