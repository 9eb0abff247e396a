"""Training throughput of every family on an idle CPU and beside N busy processes.

A user's machine is rarely idle. Each family trains through the command users run
(``textdecade pretrain FAMILY --preset tiny --steps S``), once alone and once while N
CPU-bound busy loops (``--with-load N``, at ``--nice`` priority) compete for the same
cores, and the script reports the training rate of each (the median of the run's logged
``*_per_s`` after its first log line) and the ratio. A fair share of C cores among the run
and N busy processes is about C / (threads + N) of idle for a run of ``threads`` threads;
the target is at least 0.35x, with no environment variable set.

    python benchmarks/bench_load.py                      # all families, one busy process
    python benchmarks/bench_load.py --families gpt glove --with-load 2 --nice 19

The machine's own load is printed before each run; other jobs make the idle row slower too,
so rerun on a quiet machine before quoting figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Steps that take about 10-30 s of training each on 2 idle cores at the tiny preset.
STEPS = {
    "word2vec": 300,
    "glove": 1500,
    "seq2seq": 40,
    "transformer": 40,
    "elmo": 30,
    "bert": 60,
    "gpt": 80,
    "transformer-xl": 60,
}

BUSY_LOOP = "while True: pass"


def start_load(n: int, nice: int) -> list[subprocess.Popen]:
    """N CPU-bound busy loops at ``nice`` priority."""
    return [
        subprocess.Popen(
            [sys.executable, "-c", BUSY_LOOP],
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        for _ in range(n)
    ]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def rate_of(run_dir: Path) -> tuple[float, str]:
    """The median logged training rate after the first log line, and its unit."""
    rates: list[float] = []
    unit = "units"
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            record = json.loads(line)
            for key, value in record.items():
                if key.endswith("_per_s"):
                    rates.append(float(value))
                    unit = key[: -len("_per_s")]
    if not rates:
        raise SystemExit(f"{run_dir}: no *_per_s in metrics.jsonl")
    return statistics.median(rates[1:] or rates), unit


def train_once(family: str, steps: int, workdir: Path, label: str, sets: list[str]) -> dict:
    """One ``textdecade pretrain`` run through the CLI; its wall time and training rate."""
    out = workdir / f"{family}-{label}"
    cmd = [
        sys.executable,
        "-m",
        "textdecade",
        "pretrain",
        family,
        "--preset",
        "tiny",
        "--steps",
        str(steps),
        "-o",
        str(out),
        "--overwrite",
        "-q",
        *(arg for kv in sets for arg in ("--set", kv)),
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{family} ({label}) failed:\n{done.stderr[-2000:]}")
    rate, unit = rate_of(out)
    threads = next(
        (ln for ln in done.stderr.splitlines() + done.stdout.splitlines() if "threads" in ln),
        "",
    )
    return {"wall_s": wall, "rate": rate, "unit": unit, "threads_line": threads.strip()}


def embed_once(run_dir: Path, texts: Path, workdir: Path, label: str) -> float:
    """Texts per second of ``textdecade embed RUN --input TEXTS`` (model load included)."""
    n = sum(1 for _ in open(texts, encoding="utf-8"))
    out = workdir / f"embed-{label}.npy"
    cmd = [sys.executable, "-m", "textdecade", "embed", str(run_dir), "--input", str(texts)]
    t0 = time.perf_counter()
    done = subprocess.run([*cmd, "-o", str(out), "-q"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"embed ({label}) failed:\n{done.stderr[-2000:]}")
    return n / (time.perf_counter() - t0)


def texts_to_embed(workdir: Path, n: int = 3000) -> Path:
    """The first ``n`` lines of the shared Lee corpus (or the built-in sample)."""
    from textdecade.data.corpus import Corpus
    from textdecade.data.shared import shared_path

    source = shared_path("corpus_en", "gensim_lee.txt")
    texts = Corpus(source if source is not None else ()).head(n)
    path = workdir / "texts.txt"
    path.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    return path


def print_row(row: dict) -> None:
    wall = (
        f" | wall {row['idle_wall_s']:.1f}s -> {row['busy_wall_s']:.1f}s ({row['wall_ratio']:.2f}x)"
        if row["idle_wall_s"]
        else ""
    )
    print(
        f"{row['family']:15s} {row['unit']:>7s}/s idle {row['idle_rate']:>10,.0f}  "
        f"busy {row['busy_rate']:>10,.0f}  ratio {row['rate_ratio']:.2f}x{wall}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--with-load", type=int, default=1, metavar="N")
    parser.add_argument("--nice", type=int, default=0, help="the busy processes' niceness")
    parser.add_argument("--steps-scale", type=float, default=1.0)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to every run (e.g. train.threads=2: a fixed count, as before cpu_share)",
    )
    parser.add_argument(
        "--embed",
        nargs="*",
        default=["bert", "gpt"],
        choices=list(STEPS),
        help="also time `textdecade embed` with these families' idle runs (default: bert gpt)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.with_load < 1:
        parser.error("--with-load must be at least 1")

    cores = len(os.sched_getaffinity(0))
    print(
        f"{cores} cores | load average {os.getloadavg()[0]:.2f} | python "
        f"{sys.version.split()[0]} | {args.with_load} busy at nice {args.nice} | "
        f"sets: {' '.join(args.sets) or 'none'}"
    )

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        workdir = Path(tmp)
        for family in args.families:
            steps = max(2, round(STEPS[family] * args.steps_scale))
            idle = train_once(family, steps, workdir, "idle", args.sets)
            load = start_load(args.with_load, args.nice)
            try:
                time.sleep(1.0)  # let the busy loops reach the run queue
                busy = train_once(family, steps, workdir, "busy", args.sets)
            finally:
                stop_load(load)
            row = {
                "family": family,
                "steps": steps,
                "unit": idle["unit"],
                "idle_rate": idle["rate"],
                "busy_rate": busy["rate"],
                "rate_ratio": busy["rate"] / idle["rate"],
                "idle_wall_s": idle["wall_s"],
                "busy_wall_s": busy["wall_s"],
                "wall_ratio": idle["wall_s"] / busy["wall_s"],
            }
            rows.append(row)
            print_row(row)
        texts = texts_to_embed(workdir)
        for family in (f for f in args.embed if f in args.families):
            run_dir = workdir / f"{family}-idle"
            idle_rate = embed_once(run_dir, texts, workdir, "idle")
            load = start_load(args.with_load, args.nice)
            try:
                time.sleep(1.0)
                busy_rate = embed_once(run_dir, texts, workdir, "busy")
            finally:
                stop_load(load)
            row = {
                "family": f"embed {family}",
                "unit": "texts",
                "idle_rate": idle_rate,
                "busy_rate": busy_rate,
                "rate_ratio": busy_rate / idle_rate,
                "idle_wall_s": 0.0,  # a rate of the whole command already
                "busy_wall_s": 0.0,
                "wall_ratio": busy_rate / idle_rate,
            }
            rows.append(row)
            print_row(row)
    worst = min(rows, key=lambda r: r["rate_ratio"])
    print(
        f"with {args.with_load} busy process(es) at nice {args.nice}: worst "
        f"{worst['family']} {worst['rate_ratio']:.2f}x of idle (target >= 0.35x)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
