"""Loss and learning-rate curves of a run, as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

from textdecade.errors import UserError
from textdecade.extras import require
from textdecade.pretrain.progress import read_metrics


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``loss.png`` (training and validation loss) and ``lr.png`` for a run.

    Returns:
        The paths written.

    Raises:
        MissingExtra: matplotlib (the ``plots`` extra) is not installed.
    """
    matplotlib = require("matplotlib", "plot (loss and learning-rate curves)")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise UserError(f"{run_dir} has no metrics.jsonl records to plot")
    out = Path(out_dir) if out_dir else run_dir
    out.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in records]
    written = []

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["loss"] for r in records], label="train loss", linewidth=1)
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{run_dir.name}: loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written.append(out / "loss.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(steps, [r["lr"] for r in records])
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"{run_dir.name}: learning rate")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(out / "lr.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    return written
