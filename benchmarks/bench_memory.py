"""Peak memory of data preparation against the shape of the corpus (issue #22).

The same text (the first ``--mb`` MiB of corpus_en's stripped lines) is written three
ways into a temporary directory:

* ``one line``: every line joined by spaces into a single line;
* ``100 lines``: the lines joined into 100 lines of about equal size (``--long-lines``);
* ``short lines``: the normal text lines, one per line.

On each corpus, each step runs in its own subprocess, so its peak is its own:

* ``tokenizer train``: ``textdecade tokenizer train`` (through ``cli.main``, the CLI's
  code path; BPE, 8000 tokens, the CLI's defaults); its tokenizer serves the other steps;
* ``data prepare``: ``textdecade data prepare`` (``prepare_shards``, through ``cli.main``);
* one row per family: the Trainer's preparation (``pretrain.fit.prepare``, the ``tiny``
  preset, the tokenizer above), what ``textdecade pretrain FAMILY`` does before training.

Reported per cell: the peak RSS of the process (``VmHWM``), the growth over the RSS read
right before the step began (imports, tokenizer and model code already loaded; torch makes
the families' base ~220 MiB) as a ratio to the input size, and the peak anonymous +
shared-memory PSS of the process tree sampled every 0.2 s (GloVe counts co-occurrences in
forked workers, which ``VmHWM`` of the parent does not see). A growth ratio that rises from
short lines to one line means that step holds memory in proportion to the line length.

Usage::

    python benchmarks/bench_memory.py                      # 20 MiB, all eight families
    python benchmarks/bench_memory.py --mb 5 --families word2vec gpt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import Meter, rss_mb

from textdecade.data.shared import shared_path

FAMILIES = ("word2vec", "glove", "seq2seq", "transformer", "elmo", "bert", "gpt", "transformer-xl")
SHAPES = ("one line", "long lines", "short lines")
VOCAB_SIZE = 8000


# ---------------------------------------------------------------------------- the corpora
def read_lines(mb: float) -> list[str]:
    """Stripped non-empty lines of corpus_en's files (sorted) until ``mb`` MiB (UTF-8 + \\n)."""
    root = shared_path("corpus_en")
    if root is None:
        sys.exit("shared/data/corpus_en not found (set TEXTDECADE_DATA)")
    budget, lines = mb * 2**20, []
    for path in sorted(root.glob("*.txt")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                lines.append(line)
                budget -= len(line.encode("utf-8")) + 1
                if budget <= 0:
                    return lines
    return lines  # the whole corpus is smaller than asked


def write_corpora(lines: list[str], out: Path, long_lines: int) -> dict[str, Path]:
    """The three shapes of the same text; sizes differ by at most the separators' bytes."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {shape: out / f"{shape.replace(' ', '_')}.txt" for shape in SHAPES}
    with open(paths["short lines"], "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    with open(paths["one line"], "w", encoding="utf-8") as f:
        f.write(" ".join(lines) + "\n")
    # Cut where the running size passes each k/long_lines of the total.
    sizes = [len(line.encode("utf-8")) + 1 for line in lines]
    total, seen, start, written = sum(sizes), 0, 0, 0
    with open(paths["long lines"], "w", encoding="utf-8") as f:
        for i, size in enumerate(sizes):
            seen += size
            if seen * long_lines >= total * (written + 1) or i == len(lines) - 1:
                f.write(" ".join(lines[start : i + 1]) + "\n")
                start, written = i + 1, written + 1
    return paths


def line_stats(path: Path) -> tuple[int, int, float]:
    """(lines, longest line in bytes, size in MiB) of a file."""
    n, longest = 0, 0
    with open(path, "rb") as f:
        for raw in f:
            n += 1
            longest = max(longest, len(raw))
    return n, longest, path.stat().st_size / 2**20


# ---------------------------------------------------------------------------- the worker
def worker(step: str, corpus: str, work: str) -> dict:
    """Run one step in this (fresh) process and return its memory readings."""
    work_dir = Path(work)
    tok_path = work_dir / "tokenizer.json"
    if step in ("tokenizer", "shards"):
        from textdecade import cli

        if step == "tokenizer":
            argv = ["tokenizer", "train", "--corpus", corpus, "--vocab-size", str(VOCAB_SIZE)]
            argv += ["-o", str(tok_path)]
        else:
            argv = ["data", "prepare", "--corpus", corpus, "--tokenizer", str(tok_path)]
            argv += ["-o", str(work_dir / "shards")]
        run = lambda: cli.main(argv)  # noqa: E731 - the one call measured
    else:
        from textdecade.data.corpus import Corpus
        from textdecade.models import get_family
        from textdecade.pretrain.fit import prepare
        from textdecade.tokenizer import Tokenizer

        get_family(step)  # the family's code loaded before the base is read
        tok = Tokenizer.load(tok_path)
        run_dir = work_dir / f"run-{step}"
        run = lambda: prepare(step, Corpus(corpus), run_dir=run_dir, tokenizer=tok) and 0  # noqa: E731
    meter = Meter(interval=0.2)
    t0 = time.perf_counter()
    rc = run()
    seconds = time.perf_counter() - t0
    out = meter.read()
    meter.close()
    if rc:
        raise SystemExit(f"{step} failed (exit {rc})")
    out["seconds"] = seconds
    return out


def measure(step: str, corpus: Path, work: Path) -> dict:
    """One step in its own subprocess (its own VmHWM); its readings."""
    cmd = [sys.executable, __file__, "--worker", step, "--corpus", str(corpus), "--work", str(work)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode:
        return {"error": f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the table
def cell(r: dict, in_mb: float) -> str:
    """``peak grow tree`` of one reading (or its error)."""
    if "error" in r:
        return f"{r['error']:>20s}"
    growth = (r["peak_mb"] - r["base_mb"]) / in_mb
    return f"{r['peak_mb']:7.0f} {growth:5.1f}x {r['pss_mb']:6.0f}"


def print_table(results: dict, sizes: dict[str, float]) -> None:
    """The memory table (one row per step, a column group per corpus), then the seconds."""
    steps = list(results)
    names = {"tokenizer": "tokenizer train", "shards": "data prepare"}
    head = " | ".join(f"{s:^20s}" for s in SHAPES)
    sub = " | ".join(f"{'peak':>7s} {'grow':>6s} {'tree':>6s}" for _ in SHAPES)
    print(f"{'step':18s} {'base':>5s} | {head}")
    print(f"{'':18s} {'MiB':>5s} | {sub}")
    for step in steps:
        row = results[step]
        base = min((r["base_mb"] for r in row.values() if "base_mb" in r), default=float("nan"))
        cells = " | ".join(cell(row[s], sizes[s]) for s in SHAPES)
        print(f"{names.get(step, step):18s} {base:5.0f} | {cells}")
    print(
        "peak: VmHWM MiB; grow: (peak - RSS before the step) / input MiB; tree: peak anon+shmem "
        "PSS of the process tree, MiB"
    )
    secs = " | ".join(f"{s:>11s}" for s in SHAPES)
    print(f"\nseconds (wall, noisy: shared cores)\n{'step':18s} | {secs}")
    for step in steps:
        row = results[step]
        cells = " | ".join(f"{row[s].get('seconds', float('nan')):11.1f}" for s in SHAPES)
        print(f"{names.get(step, step):18s} | {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="MiB of text in each corpus")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--long-lines", type=int, default=100, help="lines of the long corpus")
    parser.add_argument("--json", help="also write the readings to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.corpus, args.work)))
        return

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        lines = read_lines(args.mb)
        paths = write_corpora(lines, Path(tmp) / "corpora", args.long_lines)
        del lines
        stats = {shape: line_stats(p) for shape, p in paths.items()}
        sizes = {shape: s[2] for shape, s in stats.items()}
        print(f"corpus_en, {os.cpu_count()} CPUs; parent RSS {rss_mb():.0f} MiB")
        for shape, (n, longest, mib) in stats.items():
            print(f"  {shape:12s}: {mib:6.2f} MiB, {n:>9,} lines, longest {longest:>12,} bytes")
        steps = ["tokenizer", "shards", *args.families]
        results: dict[str, dict[str, dict]] = {step: {} for step in steps}
        for shape in SHAPES:
            work = Path(tmp) / shape.replace(" ", "_")
            work.mkdir()
            for step in steps:
                results[step][shape] = measure(step, paths[shape], work)
                print(f"  {shape:12s} {step:15s} {cell(results[step][shape], sizes[shape])}",
                      flush=True)  # fmt: skip
    print()
    print_table(results, sizes)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": sizes, "results": results}, indent=1))


if __name__ == "__main__":
    main()
