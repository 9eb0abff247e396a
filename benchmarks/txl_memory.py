"""Transformer-XL's validation bits per byte against its evaluation memory (Dai et al. 2019, sec. 4.3).

Evaluates one run's held-out split read segment by segment with memories of several
lengths (0: each segment alone), and writes a figure and a Markdown table. With
``--train DIR`` it first trains the run through the engine (on Tiny Shakespeare from the
shared data, else the built-in sample).

Usage::

    python benchmarks/txl_memory.py RUN                      # a trained transformer-xl run
    python benchmarks/txl_memory.py --train /tmp/txl --preset tiny --steps 600
    python benchmarks/txl_memory.py --train /tmp/txl --preset small --device cuda \
        --set train.dtype=bf16 --memories 0 64 128 256 512 1024

Writes ``docs/txl_memory.png`` and ``docs/txl_memory.md`` (``--out`` moves them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch


def train_run(run_dir: Path, preset: str, steps: int | None, overrides: list[str], device: str):
    """Train a transformer-xl run into ``run_dir`` (replacing one there)."""
    from textdecade.config import build_config
    from textdecade.data.shared import shared_path
    from textdecade.models import get_family
    from textdecade.pretrain.trainer import Trainer

    Model, Config, presets = get_family("transformer-xl")
    sets = ["model.valid_fraction=0.05", f"train.device={device}", *overrides]
    sets += [f"train.steps={steps}"] if steps else []
    config = build_config("transformer-xl", Config, presets, preset, None, sets)
    corpus = None
    path = shared_path("tinyshakespeare", "input.txt")
    if path is not None:
        # documents of 50 paragraphs (~9k characters), every 20th held out: long stretches
        # of consecutive text, which is what a memory is for
        paragraphs = [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        corpus = ["\n\n".join(paragraphs[i : i + 50]) for i in range(0, len(paragraphs), 50)]
    t0 = time.perf_counter()
    result = Trainer(config, run_dir, corpus=corpus, overwrite=True).fit()
    print(f"trained {result.step} steps in {time.perf_counter() - t0:.0f} s: {result.metrics}")


@torch.no_grad()
def by_memory(run_dir: Path, memories: list[int], max_batches: int, device: str, batch: int):
    """``[(memory, val_loss, val_bpb)]`` on the run's held-out split."""
    from textdecade.pretrain.device import select_device
    from textdecade.pretrain.rundir import DATA_DIR, load_run

    config, model, _ = load_run(run_dir, device=select_device(device))
    if config.family != "transformer-xl":
        sys.exit(f"{run_dir} holds a {config.family} run, not transformer-xl")
    data = type(model).load_prepared(run_dir / DATA_DIR, model.meta)
    model.batcher(data, batch, seed=0)  # the evaluation's streams: one per row
    rows = []
    for mem in memories:
        metrics = model.eval_metrics(list(model.eval_batches(data, max_batches, mem_len=mem)))
        rows.append((mem, metrics["val_loss"], metrics.get("val_bpb", float("nan"))))
        print(f"memory {mem:5d}: loss {rows[-1][1]:.4f}  bits/byte {rows[-1][2]:.4f}", flush=True)
    return config.model, rows


def write(rows, model_cfg, out: Path, run_dir: Path) -> None:
    """The figure (bits per byte against memory) and the Markdown table."""
    from matplotlib.figure import Figure

    from textdecade.io import atomic_path

    fig = Figure(figsize=(5, 3.2))
    ax = fig.add_subplot()
    ax.plot([r[0] for r in rows], [r[2] for r in rows], "o-")
    ax.axvline(model_cfg.mem_len, ls=":", c="gray", label=f"training memory ({model_cfg.mem_len})")
    ax.set_xlabel("evaluation memory (tokens per layer)")
    ax.set_ylabel("validation bits per byte")
    ax.set_title(
        f"Transformer-XL {model_cfg.n_layers} x {model_cfg.d_model}, segment {model_cfg.segment_len}"
    )
    ax.legend()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    lines = [
        f"Transformer-XL ({run_dir.name}: {model_cfg.n_layers} layers x {model_cfg.d_model}, "
        f"segment {model_cfg.segment_len}, training memory {model_cfg.mem_len}); "
        "held-out split read with memory:",
        "",
        "| eval memory | val loss (nats/token) | val bits/byte |",
        "|---:|---:|---:|",
        *[f"| {m} | {loss:.4f} | {bpb:.4f} |" for m, loss, bpb in rows],
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?", help="a trained transformer-xl run directory")
    ap.add_argument("--train", metavar="DIR", help="train a run here first")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--memories", type=int, nargs="+", help="default: 0, T/2, T, 2T, 4T")
    ap.add_argument("--max-batches", type=int, default=200, help="segments per stream")
    ap.add_argument("--batch", type=int, default=8, help="parallel evaluation streams")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="docs/txl_memory.png")
    args = ap.parse_args()
    if not (args.run or args.train):
        ap.error("give a RUN or --train DIR")
    run_dir = Path(args.train or args.run)
    if args.train:
        train_run(run_dir, args.preset, args.steps, args.set, args.device)
    if args.memories is None:
        from textdecade.pretrain.rundir import load_run

        t = load_run(run_dir)[0].model.segment_len
        args.memories = [0, t // 2, t, 2 * t, 4 * t]
    cfg, rows = by_memory(run_dir, args.memories, args.max_batches, args.device, args.batch)
    write(rows, cfg, Path(args.out), run_dir)


if __name__ == "__main__":
    main()
