"""GPU measurements of the whole project in one run (see benchmarks/gpu.sh).

Trains each measured family for a short while through the real engine and CLI settings,
then reads throughput and MFU back from the run's metrics.jsonl:

* GPT at GPT-2 124M (12 x 768, context 1024) in bf16 with torch.compile: tokens/s and MFU
  against the detected GPU's peak (target MFU >= 50% on an H100/H200-class GPU);
* BERT-base masked LM in bf16: tokens/s and MFU;
* nanoGPT's character-level Shakespeare config (6 x 384): validation loss after 5000 steps.

Word2Vec and translation on the GPU are measured by bench_static.py and bench_translate.py
(both called from benchmarks/gpu.sh).

Usage: python benchmarks/bench_gpu.py [--steps 60] [--out table.md] [--only GPT]
       python benchmarks/bench_gpu.py --smoke --device cpu     # rehearse on a CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from textdecade.config import build_config
from textdecade.data.shared import shared_path
from textdecade.models import get_family
from textdecade.pretrain.progress import read_metrics
from textdecade.pretrain.trainer import Trainer

# (label, family, preset, overrides): the GPU measurements of issues #3 and #6.
CASES = [
    (
        "GPT-2 124M bf16 compile",
        "gpt",
        "base",
        [
            "model.dropout=0.0",  # nanoGPT's GPT-2 pretraining setting
            "train.batch_size=32",
            "train.grad_accum=1",
            "train.compile=true",
            "train.dtype=bf16",
            "tokenizer.vocab_size=32768",  # a multiple of 64 (nanoGPT pads 50257 to 50304)
        ],
    ),
    (
        "BERT-base MLM bf16",
        "bert",
        "base",
        [
            "train.batch_size=64",
            "train.grad_accum=1",
            "train.dtype=bf16",
            "tokenizer.vocab_size=32768",
        ],
    ),
    # nanoGPT's GPU Shakespeare config on bytes (target: val <= 1.47 nats/char in < 3 min).
    (
        "GPT char Shakespeare 6x384",
        "gpt",
        "tiny",
        [
            "model.n_layers=6",
            "model.n_heads=6",
            "model.d_model=384",
            "model.max_len=256",
            "model.dropout=0.2",
            "model.valid_fraction=0.1",
            "tokenizer.vocab_size=263",
            "train.batch_size=64",
            "train.lr=1e-3",
            "train.dtype=bf16",
            "train.compile=true",
            "train.steps=5000",
            "@tinyshakespeare/input.txt",
        ],
    ),
]

# --smoke: the same cases shrunk to seconds on a CPU, to rehearse the script before a lease.
SMOKE = [
    "model.n_layers=2",
    "model.n_heads=2",
    "model.d_model=32",
    "model.max_len=32",
    "tokenizer.vocab_size=300",
    "train.batch_size=4",
    "train.grad_accum=1",
    "train.dtype=fp32",
    "train.compile=false",
    "train.steps=6",
    "train.threads=2",
]


def measure(label, family, preset, overrides, steps, workdir, device="auto") -> dict:
    _, Config, presets = get_family(family)
    # "@path" names a corpus file under shared/data; a case may fix its own steps.
    corpus = [o[1:] for o in overrides if o.startswith("@")]
    overrides = [o for o in overrides if not o.startswith("@")]
    fixed = [int(o.split("=")[1]) for o in overrides if o.startswith("train.steps=")]
    steps = fixed[-1] if fixed else steps
    overrides = [
        *overrides,
        f"train.steps={steps}",
        "train.log_every=5",
        f"train.eval_every={steps}",
        f"train.ckpt_every={steps}",
        "train.warmup_steps=5",
        f"train.device={device}",
    ]
    if corpus:
        path = shared_path(*corpus[0].split("/"))
        if path is None:
            raise FileNotFoundError(f"shared data {corpus[0]} not found (set TEXTDECADE_DATA)")
        overrides.append(f'data.corpus=["{path}"]')
    config = build_config(family, Config, presets, preset, None, overrides)
    run_dir = Path(workdir) / label.replace(" ", "_")
    t0 = time.perf_counter()
    Trainer(config, run_dir, progress=False).fit()
    wall = time.perf_counter() - t0
    records = read_metrics(run_dir)
    rate_key = next((k for k in records[-1] if k.endswith("_per_s")), None)
    # Skip the first logs (compilation, warm-up) and take the median of the rest.
    logged = [r for r in records if rate_key in r][2:] or [r for r in records if rate_key in r]
    rate = statistics.median(r[rate_key] for r in logged)
    mfus = [r["mfu"] for r in logged if "mfu" in r]
    val = [r["val_loss"] for r in records if "val_loss" in r]
    return {
        "case": label,
        "unit": rate_key,
        "rate": rate,
        "mfu": statistics.median(mfus) if mfus else None,
        "final_loss": val[-1] if val else records[-1]["loss"],
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--only", nargs="*", help="case labels (substring match)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, any device")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU visible; nothing to measure", file=sys.stderr)
        return 1
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for label, family, preset, overrides in CASES:
            if args.only and not any(s in label for s in args.only):
                continue
            try:
                extra = SMOKE if args.smoke else []
                case = (label, family, preset, [*overrides, *extra], args.steps, workdir)
                rows.append(measure(*case, device=args.device))
            except Exception as exc:  # noqa: BLE001 - report every case, keep going
                rows.append({"case": label, "error": f"{type(exc).__name__}: {exc}"})
            print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"GPU: {gpu}; torch {torch.__version__}; {args.steps} steps per case",
        "",
        "| case | throughput | MFU | val loss (else train) | wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | error: {r['error'][:80]} | | | |")
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        lines.append(
            f"| {r['case']} | {r['rate']:,.0f} {r['unit']} | {mfu} | "
            f"{r['final_loss']:.3f} | {r['wall_s']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
