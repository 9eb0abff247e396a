"""The lab's two pictures: every variant's loss curve, and gradient norm against depth.

Drawn with matplotlib's Agg canvas (no display, no global backend state). A panel per
depth where the experiment crosses variants with depths.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from textdecade.extras import require

#: Training steps averaged in a curve (and when the report looks for a target loss).
SMOOTH = 10


def _figure(n_panels: int):
    require("matplotlib", "the lab's pictures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n_panels, 4)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(4.4 * cols, 3.4 * rows))
    FigureCanvasAgg(fig)
    return fig, rows, cols


def _by_depth(cells: list) -> dict[int | None, list]:
    panels: dict[int | None, list] = {}
    for cell in cells:
        panels.setdefault(cell.depth, []).append(cell)
    return panels


def _smooth(curve: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array([s for s, _ in curve], dtype=float)
    loss = np.array([v for _, v in curve], dtype=float)
    if len(loss) >= SMOOTH:
        loss = np.convolve(loss, np.ones(SMOOTH) / SMOOTH, mode="valid")
        steps = steps[SMOOTH - 1 :]
    return steps, loss


def _panels(cells: list, summaries: dict, key: str):
    """A figure with a panel per depth (shallow first), and for each panel its axes,
    depth and every variant's ``key`` values, one per seed; (None, []) without any."""
    panels = _by_depth([c for c in cells if summaries[c.name][key]])
    if not panels:
        return None, []
    fig, rows, cols = _figure(len(panels))
    out = []
    for k, (depth, members) in enumerate(sorted(panels.items(), key=lambda kv: kv[0] or 0)):
        variants: dict[str, list] = {}
        for cell in members:
            variants.setdefault(cell.variant.label, []).append(summaries[cell.name][key])
        out.append((fig.add_subplot(rows, cols, k + 1), depth, variants))
    return fig, out


def loss_curves(
    out: Path, cells: list, summaries: dict, unigram: float | None = None
) -> Path | None:
    """Training loss (running mean of ``SMOOTH`` steps) of each variant: the mean over its
    seeds as a line, their range shaded; the unigram baseline dashed."""
    fig, panels = _panels(cells, summaries, "curve")
    for ax, depth, variants in panels:
        for label, curves in variants.items():
            smoothed = [_smooth(c) for c in curves]
            n = min(len(s[1]) for s in smoothed)
            if n == 0:
                continue
            stack = np.stack([s[1][:n] for s in smoothed])
            steps = smoothed[0][0][:n]
            (line,) = ax.plot(steps, stack.mean(axis=0), linewidth=1.2, label=label)
            if len(curves) > 1:
                ax.fill_between(
                    steps, stack.min(axis=0), stack.max(axis=0), color=line.get_color(), alpha=0.2
                )
        if unigram is not None:
            ax.axhline(unigram, color="grey", linestyle="--", linewidth=1, label="unigram")
        _finish(ax, f"{depth} layers" if depth else "training loss", "step")
    if fig is None:
        return None
    title = "Training loss (mean over seeds, range shaded; log scale)"
    return _save(fig, title, out / "loss_curves.png")


def gradient_by_depth(out: Path, cells: list, summaries: dict) -> Path | None:
    """Each block's gradient norm at step 1 (initialisation), against its depth: the
    vanishing and exploding gradients of Glorot & Bengio 2010 (their figures 6-7)."""
    fig, panels = _panels(cells, summaries, "init_layers")
    for ax, depth, variants in panels:
        for label, layers in variants.items():
            runs = np.array([x["grad_norm"] for x in layers])
            norms = np.exp(np.log(np.maximum(runs, 1e-30)).mean(axis=0))  # geometric mean
            ax.plot(np.arange(1, len(norms) + 1), norms, "o-", markersize=3, label=label)
        title = f"{depth} layers" if depth else "gradient norm at step 1"
        _finish(ax, title, "block (input side = 1)")
    if fig is None:
        return None
    title = "Gradient norm of each block at initialisation (geometric mean over seeds)"
    return _save(fig, title, out / "gradient_by_depth.png")


def _finish(ax, title: str, xlabel: str) -> None:
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(fig, title: str, path: Path) -> Path:
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
