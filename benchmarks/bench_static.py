"""textdecade Word2Vec / GloVe vs gensim / mittens, side by side, on a slice of corpus_en.

textdecade trains through the engine, the Trainer that ``textdecade pretrain word2vec`` and
``textdecade pretrain glove`` run (``textdecade.pretrain.fit.train``), so its rows time the
code path users run: per-step scheduling, metrics and the final checkpoint included.

Word2Vec (default): both train on the same words (the textdecade tokenizer's ``words``,
the tokenizer trained once here and loaded by both) with gensim's settings: skip-gram
(``--cbow`` for CBOW), negative 5, window 5, dim 100, sample 1e-3, min_count 5, 5 epochs,
2 workers. GloVe (``--glove``): textdecade's GloVe and mittens' NumPy ``GloVe`` (the
reference implementation that installs here: ``pip install mittens``; skipped with a
message when absent) on the same co-occurrence counts, restricted to the top
``--glove-vocab`` words because mittens needs a dense V x V matrix: window 10 with
1/distance weights, x_max 100, alpha 0.75, AdaGrad lr 0.05 (constant), the same number of
passes (textdecade: epochs of shuffled stochastic updates; mittens: full-batch steps).

Each contender runs in its own subprocess, so each reports its own memory, read before
scoring: its peak RSS (``VmHWM``; ``ru_maxrss`` would carry the launcher's peak across
exec), the training part (peak minus RSS right before training, the input already held:
texts for textdecade, token lists for gensim), the largest peak of its reaped children
(``RUSAGE_CHILDREN``: textdecade's Hogwild workers; a forked child counts the pages it
shares with its parent, so the peaks do not add up; gensim's is a short helper it forks),
and the peak anonymous + shared-memory PSS of the whole process tree, sampled every 0.5 s
(each page counted once; code and file mappings left out). Also reported: training wall
time, words/s (in-vocabulary words x epochs / seconds, the same numerator for both) or
nonzeros/s, CPU seconds per million words (robust when other jobs share the cores),
analogy accuracy (questions-words, restrict_vocab 30000, coverage) and WordSim-353
Spearman; then the ratios.

    python benchmarks/bench_static.py --mb 10
    python benchmarks/bench_static.py --mb 10 --glove --glove-vocab 5000 --epochs 20 \
        --mittens-iters 65          # mittens given about textdecade's training time
    python benchmarks/bench_static.py --mb 40 --device cuda --skip-gensim --batch-words 1000000 \
        --pairs-per-update 16384 65536 262144      # a GPU sweep (benchmarks/gpu.sh)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from measure import Meter, cpu_seconds, rss_mb

from textdecade.data.shared import shared_path
from textdecade.eval.vectors import vectors_of

# torch and the models are imported inside the textdecade workers only, so the gensim and
# mittens workers' RSS does not carry torch.


def read_slice(mb: float) -> list[str]:
    """The first ``mb / total`` share of every corpus_en file (all 18 genres represented)."""
    root = shared_path("corpus_en")
    if root is None:
        sys.exit("shared/data/corpus_en not found (set TEXTDECADE_DATA)")
    paths = sorted(root.glob("*.txt"))
    share = min(1.0, mb * 2**20 / sum(p.stat().st_size for p in paths))
    texts = []
    for path in paths:
        budget = share * path.stat().st_size
        with open(path, encoding="utf-8") as f:
            for line in f:
                if budget <= 0:
                    break
                budget -= len(line.encode())
                if line.strip():
                    texts.append(line.strip())
    return texts


def later_rate(run) -> float:
    """Units per second after the first epoch (without torch.compile's compilation); the
    whole run's rate when there is one epoch."""
    later = run.epochs[1:] or run.epochs
    return run.data.n_units * len(later) / max(sum(e["seconds"] for e in later), 1e-9)


def log_epochs(run) -> None:
    """The engine's per-pass loss and throughput, and this process's RSS, on stderr."""
    for e in run.epochs:
        print(
            f"epoch {e['epoch']}/{len(run.epochs)}: loss {e['loss']:.4f} | "
            f"{e['units_per_s']:,.0f} {run.data.unit}/s | {e['seconds']:.1f}s | "
            f"RSS {rss_mb():.0f} MiB",
            file=sys.stderr,
            flush=True,
        )


# What every textdecade row shares: the engine's settings for a timed run (no evaluation
# between steps, and the one checkpoint a run always writes at its end).
ENGINE = {"seed": 1, "eval_every": 0, "ckpt_every": 1_000_000}


def scores(vectors) -> dict[str, float]:
    from textdecade.eval.analogy import evaluate_analogies
    from textdecade.eval.similarity import evaluate_similarity

    analogy = shared_path("word_analogy", "questions-words.txt")
    ws353 = shared_path("word_similarity", "gensim", "wordsim353.tsv")
    result = evaluate_analogies(vectors, analogy, restrict_vocab=30000)
    capital = next(s for s in result.sections if s.name == "capital-common-countries")
    sim = evaluate_similarity(vectors, ws353).sets[0]
    return {
        "capital": capital.correct / max(capital.answered, 1),
        "analogy": result.total.correct / max(result.total.answered, 1),
        "answered": result.total.answered,
        "ws353": sim.spearman,
        "ws353_pairs": sim.used,
    }


def work_word2vec_td(spec: dict) -> list[dict]:
    """textdecade Word2Vec through the engine (``textdecade pretrain word2vec``'s Trainer),
    a row per ``pairs_per_update``, eager then compiled; the later rows train on the first
    one's prepared words (``data_from``)."""
    import torch

    from textdecade.pretrain.fit import train
    from textdecade.tokenizer import Tokenizer

    texts, tok = read_slice(spec["mb"]), Tokenizer.load(spec["tokenizer"])
    meter, rows, first = Meter(), [], None
    runs = [(p, False) for p in spec["pairs_per_update"]]
    runs += [(p, True) for p in spec["compile_pairs"]]
    for pairs, compiled in runs:
        knobs = {k: spec[k] for k in ("shared_negatives", "block", "max_repeats")}
        knobs["pairs_per_update"] = pairs
        model = {"sg": spec["sg"], "workers": spec["workers"]}
        model.update({k: v for k, v in knobs.items() if v is not None})
        settings = {
            "model": model,
            "train": {
                **ENGINE,
                "epochs": spec["epochs"],
                "lr": spec["lr"],
                "batch_size": spec["batch_words"],
                "device": spec["device"],
                "compile": compiled,
            },
        }
        how = "compiled" if compiled else "eager"
        print(f"textdecade on {spec['device']}, {how}: {model}", file=sys.stderr)
        cpu0 = cpu_seconds()
        if spec["device"].startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        if first is None:  # the first row also builds the word stream (vocabulary, ids)
            run = first = train("word2vec", texts, tokenizer=tok, settings=settings)
        else:
            run = train("word2vec", data_from=first.run_dir, settings=settings)
        log_epochs(run)
        n_words = run.data.n_units * spec["epochs"]
        row = {
            "seconds": run.seconds,
            "words_per_s": n_words / run.seconds,
            "later_words_per_s": later_rate(run),
            "cpu_s_per_Mword": (cpu_seconds() - cpu0) / n_words * 1e6,
            "loss_last_epoch": run.epochs[-1]["loss"],
            "vocab": len(run.data.meta["words"]),
            "in_vocab_words": run.data.n_units,
            "pairs_per_update": pairs,
            "compiled": compiled,
            **meter.read(),  # cumulative over a sweep; before scoring
        }
        if spec["device"].startswith("cuda"):
            row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        rows.append({**row, **scores(vectors_of(run.model, None))})
    meter.close()
    return rows


def work_word2vec_gensim(spec: dict) -> list[dict]:
    """gensim's Word2Vec on the same words, in-memory token lists (its usual input)."""
    from gensim.models import Word2Vec

    from textdecade.tokenizer import Tokenizer

    sentences = Tokenizer.load(spec["tokenizer"]).words_batch(read_slice(spec["mb"]))
    meter = Meter()
    gm = Word2Vec(
        vector_size=100,
        window=5,
        min_count=5,
        sg=int(spec["sg"]),
        negative=5,
        sample=1e-3,
        workers=spec["workers"],
        alpha=spec["lr"],
        seed=1,
    )
    gm.build_vocab(sentences)
    in_vocab = int(sum(gm.wv.get_vecattr(w, "count") for w in gm.wv.index_to_key))
    n_words = in_vocab * spec["epochs"]
    cpu0, t0 = time.process_time(), time.perf_counter()
    gm.train(sentences, total_examples=len(sentences), epochs=spec["epochs"])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    row = {
        "seconds": seconds,
        "words_per_s": n_words / seconds,
        "later_words_per_s": n_words / seconds,  # no first-epoch cost to leave out
        "cpu_s_per_Mword": cpu / n_words * 1e6,
        "loss_last_epoch": float("nan"),
        "vocab": len(gm.wv),
        "in_vocab_words": in_vocab,
        **meter.read(),
    }
    meter.close()
    from textdecade.eval.vectors import Vectors

    return [{**row, **scores(Vectors.from_gensim(gm.wv))}]


def wls_cost(w, c, bw, bc, table, x_max: float, alpha: float) -> float:
    """GloVe's cost 0.5 f(X) (w.c + b + b~ - log X)^2, mean over the nonzeros (float64).

    One function for both contenders, on their final parameters.
    """
    total, n, step = 0.0, len(table), 1 << 20
    for s in range(0, n, step):
        r = np.asarray(table.rows[s : s + step], dtype=np.int64)
        k = np.asarray(table.cols[s : s + step], dtype=np.int64)
        x = np.asarray(table.vals[s : s + step], dtype=np.float64)
        d = np.einsum("ij,ij->i", w[r], c[k]) + bw[r] + bc[k] - np.log(x)
        total += float((0.5 * np.minimum(1.0, (x / x_max) ** alpha) * d * d).sum())
    return total / n


def work_glove_td(spec: dict) -> list[dict]:
    """textdecade GloVe through the engine on the prepared co-occurrence table (training
    only: the run trains on the parent's prepared run, ``data_from``)."""
    from textdecade.pretrain.fit import train

    settings = {
        "model": spec["config"],
        "train": {
            **ENGINE,
            "epochs": spec["epochs"],
            "lr": spec["lr"],  # constant, as glove.c and mittens (the family's schedule)
            "batch_size": spec["glove_batch"],
            "threads": spec["td_threads"],
            "device": "cpu",
            "compile": spec.get("compiled", False),
        },
    }
    meter, cpu0 = Meter(), cpu_seconds()
    run = train("glove", data_from=spec["prepared"], settings=settings)
    log_epochs(run)
    nnz, seconds = len(run.data.train), run.seconds
    row = {
        "seconds": seconds,
        "passes": spec["epochs"],
        "nonzeros_per_s": nnz * spec["epochs"] / seconds,
        "later_nonzeros_per_s": later_rate(run),
        "cpu_s": cpu_seconds() - cpu0,
        "nonzeros_per_cpu_s": nnz * spec["epochs"] / (cpu_seconds() - cpu0),
        "cost_reported": run.epochs[-1]["loss"],  # mean step cost over the last epoch
        **meter.read(),
    }
    meter.close()
    model, cfg = run.model, run.model.config
    params = [t.detach().double().numpy() for t in (model.w, model.c, model.bw, model.bc)]
    row["cost_final"] = wls_cost(*params, run.data.train, cfg.x_max, cfg.alpha)
    return [{**row, **scores(vectors_of(model, None))}]


def work_glove_mittens(spec: dict) -> list[dict]:
    """mittens' NumPy GloVe on the same counts as a dense V x V float64 matrix."""
    from mittens.np_mittens import GloVe

    from textdecade.data.cooccurrence import load_cooccurrences
    from textdecade.eval.vectors import Vectors

    prepared = Path(spec["prepared"])
    meta = json.loads((prepared / "data_meta.json").read_text(encoding="utf-8"))
    table = load_cooccurrences(prepared / "data" / "cooccurrence")
    v = len(meta["words"])
    meter, cpu0 = Meter(), cpu_seconds()
    x = np.zeros((v, v))  # (V, V): building it counts as mittens' memory
    x[np.asarray(table.rows), np.asarray(table.cols)] = np.asarray(table.vals)
    cfg = spec["config"]
    model = GloVe(
        n=cfg["d_model"],
        xmax=cfg["x_max"],
        alpha=cfg["alpha"],
        max_iter=spec["mittens_iters"],
        learning_rate=spec["lr"],
        display_progress=0,
    )
    t0 = time.perf_counter()
    matrix = model.fit(x)
    seconds, nnz = time.perf_counter() - t0, len(table)
    row = {
        "seconds": seconds,
        "passes": spec["mittens_iters"],
        "nonzeros_per_s": nnz * spec["mittens_iters"] / seconds,
        "later_nonzeros_per_s": nnz * spec["mittens_iters"] / seconds,  # no compilation
        "cpu_s": cpu_seconds() - cpu0,
        "nonzeros_per_cpu_s": nnz * spec["mittens_iters"] / (cpu_seconds() - cpu0),
        "cost_reported": model.errors[-1] / nnz,  # its error before the last step, per nonzero
        **meter.read(),
    }
    meter.close()
    row["cost_final"] = wls_cost(
        model.W, model.C, model.bw[:, 0], model.bc[:, 0], table, cfg["x_max"], cfg["alpha"]
    )
    vectors = Vectors(meta["words"], matrix.astype(np.float32), meta["counts"])
    return [{**row, **scores(vectors)}]


WORKERS = {
    "w2v-td": work_word2vec_td,
    "w2v-gensim": work_word2vec_gensim,
    "glove-td": work_glove_td,
    "glove-mittens": work_glove_mittens,
}


def spawn(name: str, spec: dict, script: str = __file__) -> list[dict]:
    """Run one worker (of ``script``'s ``WORKERS``) in a fresh interpreter; its logs pass
    through on stderr."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(spec["workers"])  # numpy's BLAS (mittens) on the same cores as torch
    cmd = [sys.executable, script, "--worker", name, "--spec", json.dumps(spec)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _cell(value, width: int) -> str:
    if isinstance(value, int):
        return f"{value:>{width},}"
    return f"{value:>{width}.4g}" if abs(value) < 1e5 else f"{value:>{width},.0f}"


def table(rows: dict[str, dict], keys: list[str]) -> None:
    widths = [max(12, len(k) + 2) for k in keys]
    first = max(14, *(len(name) + 1 for name in rows))
    print(f"\n{'':{first}}" + "".join(f"{k:>{w}}" for k, w in zip(keys, widths)))
    for name, row in rows.items():
        cells = (_cell(row[k], w) if k in row else f"{'-':>{w}}" for k, w in zip(keys, widths))
        print(f"{name:{first}}" + "".join(cells))


def memory_ratio(a: dict, b: dict, names: str) -> str:
    """Ratios of the memory readings both rows have (a C program's row has peak RSS only)."""
    parts = [("peak RSS", "peak_mb"), ("training part", "train_mb"), ("tree PSS", "pss_mb")]
    return f"{names}: " + ", ".join(
        f"{label} {a[k] / max(b[k], 1e-9):.2f}x" for label, k in parts if k in a and k in b
    )


def run_word2vec(args, spec: dict) -> None:
    report_word2vec(word2vec_rows(args, spec))


def word2vec_rows(args, spec: dict) -> dict[str, dict]:
    """textdecade's rows (one per swept setting) and gensim's, by name."""
    sg = not args.cbow
    spec.update(sg=sg, lr=args.lr or (0.025 if sg else 0.05))  # word2vec.c: 0.05 for CBOW
    spec.update(pairs_per_update=args.pairs_per_update, device=args.device)
    spec["compile_pairs"] = args.compile_pairs
    for k in ("shared_negatives", "block", "max_repeats", "batch_words"):
        spec[k] = getattr(args, k)
    rows = {}
    td = spawn("w2v-td", spec)
    for r in td:
        name = "textdecade" if len(td) == 1 else f"td ppu={r['pairs_per_update']}"
        name += " compiled" if r["compiled"] else ""
        rows[name] = r
        print(json.dumps({"case": name, **r}), flush=True)
    if not args.skip_gensim:
        spec["lr"] = 0.025 if sg else 0.05  # gensim at its own (word2vec.c's) rate
        rows["gensim"] = spawn("w2v-gensim", spec)[0]
        print(json.dumps({"case": "gensim", **rows["gensim"]}), flush=True)
    return rows


def report_word2vec(rows: dict[str, dict]) -> None:
    """The two tables, then each row's ratios to gensim's (when there is a gensim row)."""
    keys = ["seconds", "words_per_s", "later_words_per_s", "cpu_s_per_Mword", "analogy", "ws353"]
    table(rows, keys)
    table(rows, ["vocab", "in_vocab_words", "base_mb", "peak_mb", "train_mb", "child_mb", "pss_mb"])
    for name, a in rows.items():
        if name == "gensim" or "gensim" not in rows:
            continue
        b = rows["gensim"]
        if (a["vocab"], a["in_vocab_words"]) != (b["vocab"], b["in_vocab_words"]):
            print("WARNING: the two vocabularies differ; the ratios compare different data")
        print(
            f"\n{name} / gensim: words/s {a['words_per_s'] / b['words_per_s']:.2f}x "
            f"(after the first epoch {a['later_words_per_s'] / b['later_words_per_s']:.2f}x) | "
            f"CPU-time ratio (gensim / {name}): {b['cpu_s_per_Mword'] / a['cpu_s_per_Mword']:.2f}x"
            f" | analogy {a['analogy']:.3f} vs {b['analogy']:.3f} | "
            f"WS-353 {a['ws353']:.3f} vs {b['ws353']:.3f} | questions answered {a['answered']}"
        )
        print(memory_ratio(a, b, f"memory ({name} / gensim)"))


def run_glove(args, spec: dict, texts: list[str], tok) -> None:
    from textdecade.pretrain.fit import prepare

    config = {"d_model": args.dim, "window": args.glove_window, "x_max": 100.0, "alpha": 0.75}
    config.update(min_count=5, max_vocab_size=args.glove_vocab, count_workers=args.workers)
    config.update(workers=args.workers)  # Hogwild processes, as glove.c's threads
    work = tempfile.TemporaryDirectory(prefix="bench-glove-")
    prepared = Path(work.name) / "prepared"
    t0 = time.perf_counter()
    data = prepare("glove", texts, run_dir=prepared, tokenizer=tok, settings={"model": config})
    count_s = time.perf_counter() - t0
    v, nnz = len(data.meta["words"]), len(data.train)
    print(
        f"GloVe: top {v} words (min_count 5), window {args.glove_window}, {nnz:,} nonzeros "
        f"({nnz / v**2:.1%} of the dense {v}x{v}), counted by textdecade in {count_s:.1f} s; "
        f"d {args.dim}, x_max 100, alpha 0.75, AdaGrad lr {args.glove_lr}, "
        f"{args.epochs} passes (mittens {args.mittens_iters or args.epochs}); threads: "
        f"textdecade {args.workers} Hogwild processes, mittens' BLAS {args.workers}"
    )
    spec.update(prepared=str(prepared), config=config, lr=args.glove_lr)
    spec.update(glove_batch=args.glove_batch, td_threads=args.glove_td_threads)
    spec["mittens_iters"] = args.mittens_iters or args.epochs
    rows = {"textdecade": spawn("glove-td", spec)[0]}
    if args.glove_compile:
        rows["textdecade compiled"] = spawn("glove-td", {**spec, "compiled": True})[0]
    if importlib.util.find_spec("mittens") is None:
        print("mittens is not installed (pip install mittens): no reference GloVe row")
    else:
        rows["mittens"] = spawn("glove-mittens", spec)[0]
    for name, r in rows.items():
        print(json.dumps({"case": name, **r}), flush=True)
    keys = ["passes", "seconds", "nonzeros_per_s", "later_nonzeros_per_s", "cost_reported"]
    table(rows, keys + ["cost_final", "answered", "analogy", "ws353", "ws353_pairs"])
    table(rows, ["base_mb", "peak_mb", "train_mb", "child_mb", "pss_mb"])
    for name, a in rows.items():
        if name == "mittens" or "mittens" not in rows:
            continue
        b = rows["mittens"]
        print(
            f"\nnonzeros/s ratio ({name} / mittens): "
            f"{a['nonzeros_per_s'] / b['nonzeros_per_s']:.2f}x | final cost {a['cost_final']:.4f}"
            f" vs {b['cost_final']:.4f} | analogy {a['analogy']:.3f} vs {b['analogy']:.3f} "
            f"({a['answered']} answered) | WS-353 {a['ws353']:.3f} vs {b['ws353']:.3f} "
            f"({a['ws353_pairs']} pairs)"
        )
        print(memory_ratio(a, b, "memory (textdecade / mittens)"))
    work.cleanup()


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def build_parser(
    description: str = __doc__.split("\n")[0], workers=None
) -> argparse.ArgumentParser:
    """The options (shared with ``bench_static_c.py``, which adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes of corpus_en")
    parser.add_argument("--epochs", type=int, default=5, help="epochs (GloVe: passes)")
    parser.add_argument("--workers", type=int, default=2, help="workers / threads each")
    parser.add_argument("--cbow", action="store_true", help="CBOW instead of skip-gram")
    parser.add_argument("--batch-words", type=int, default=20_000)
    parser.add_argument("--shared-negatives", type=int, default=None)
    parser.add_argument("--block", type=int, default=None)
    parser.add_argument(
        "--pairs-per-update", type=int, nargs="+", default=[None],
        help="one value, or several to sweep (the data is prepared once)",
    )  # fmt: skip
    parser.add_argument(
        "--compile-pairs", type=int, nargs="*", default=[],
        help="pairs-per-update values to run again with the update compiled (train.compile)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (workers: CPU only)")
    parser.add_argument("--max-repeats", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="textdecade's initial lr")
    parser.add_argument("--skip-gensim", action="store_true")
    parser.add_argument("--glove", action="store_true", help="GloVe vs mittens instead")
    parser.add_argument("--glove-vocab", type=int, default=5000, help="top words (dense V^2)")
    parser.add_argument("--glove-window", type=int, default=10)
    parser.add_argument("--glove-lr", type=float, default=0.05)
    parser.add_argument("--glove-batch", type=int, default=65_536, help="nonzeros per step")
    parser.add_argument(
        "--glove-td-threads", type=int, default=1,
        help="torch threads of textdecade GloVe's main process (it trains in --workers "
        "Hogwild processes of one thread each)",
    )  # fmt: skip
    parser.add_argument(
        "--mittens-iters", type=int, default=None,
        help="mittens' full-batch steps (default: --epochs; more to match textdecade's time)",
    )  # fmt: skip
    parser.add_argument("--dim", type=int, default=100, help="GloVe vector size")
    parser.add_argument(
        "--glove-compile", action="store_true",
        help="run textdecade's GloVe again with its update compiled (train.compile)",
    )  # fmt: skip
    parser.add_argument("--worker", choices=sorted(workers or WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(args.spec))), flush=True)
        return
    from textdecade.tokenizer import Tokenizer

    texts = read_slice(args.mb)
    tok = Tokenizer.train(texts, vocab_size=8000)  # once, loaded by every worker
    tok_dir = tempfile.TemporaryDirectory(prefix="bench-static-")
    tok.save(Path(tok_dir.name) / "tokenizer.json")
    import torch

    peers = {n: _version(n) for n in ("gensim", "mittens")}
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, " + ", ".join(f"{n} {v}" for n, v in peers.items())
    )
    what = "glove" if args.glove else ("cbow" if args.cbow else "sg")
    print(f"corpus: {args.mb} MB of corpus_en, {len(texts)} lines; {what}")
    spec = {"mb": args.mb, "epochs": args.epochs, "workers": args.workers}
    spec["tokenizer"] = str(Path(tok_dir.name) / "tokenizer.json")
    if args.glove:
        run_glove(args, spec, texts, tok)
    else:
        run_word2vec(args, spec)
    tok_dir.cleanup()


if __name__ == "__main__":
    main()
