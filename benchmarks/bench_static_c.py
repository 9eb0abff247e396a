"""textdecade Word2Vec / GloVe vs the original C programs (word2vec.c, Stanford GloVe).

A sibling of ``bench_static.py``: its textdecade and gensim rows come from that script's
workers (the engine, ``textdecade pretrain word2vec|glove``'s Trainer), the tables and
scores from its helpers, and this script adds the C references, built into a scratch
folder from ``shared/tools`` (never part of textdecade; a tool that is missing or fails to
build is skipped with one line). fastText is added only if ``import fasttext`` works.

Word2Vec (default): the tokenizer's words (the words gensim trains on, one corpus line per
line, words separated by spaces) are written to a file for word2vec.c, run with
``-cbow 0|1 -negative 5 -window 5 -sample 1e-3 -iter E -size 100 -min-count 5 -threads W
-binary 1 -alpha 0.025|0.05`` (row ``word2vec.c``). That program (tmikolov/word2vec at
20c129a) never resets its ``eof`` flag between iterations (github.com/tmikolov/word2vec
issue #47), so its last thread trains one epoch only and ``-iter E -threads 2`` does about
(E + 1) / 2E of the work: ``trained_share`` reads how much from its progress line. Row
``word2vec.c repeat`` (``--w2v-c repeat|both``) sidesteps it without touching the code: the
words written E times, ``-iter 1 -min-count 5E`` (the same vocabulary, updates, linear lr
decay and subsampling as ``-iter E``). Its vocabulary pass (``-save-vocab``, no
``-output``: the program stops after counting) and its training run (``-read-vocab``:
reading the vocabulary, building the 1e8-entry unigram table, training, writing the
vectors) are timed separately; the training run is the ``seconds`` column. words/s is the
numerator of every row: in-vocabulary words (count >= 5, ``</s>`` line ends not counted,
before subsampling) x epochs / training seconds; beside it, word2vec.c's own rate from its
``-debug 2`` progress line (``loop_words_per_cpu_s``: words read, ``</s>`` and subsampled
words included, per CPU-second of the training threads, so without the setup). The vectors
are read with ``textdecade.interop.read_word2vec`` (``</s>`` dropped) and scored as the
other rows (analogy, restrict_vocab 30000; WS-353).

GloVe (``--glove``): the full vocabulary (min_count 5), window ``--glove-window`` with
1/distance weights, x_max 100, alpha 0.75, d ``--dim``, AdaGrad lr ``--glove-lr``, ``--epochs``
iterations, ``--workers`` threads, the same memory budget for counting. (a) counting:
textdecade's ``prepare`` (words, vocabulary, co-occurrences) in its own process, and
vocab_count + cooccur + shuffle; (b) training: textdecade through the engine on that prepared
table, and ``glove``. Nonzeros: textdecade's table; C's ``cooccurrence.bin`` size / 16 bytes
(int, int, double). nonzeros/s = nonzeros x iterations / training seconds. The final cost
(0.5 f(X) (w.c + b + b~ - log X)^2, mean over the nonzeros) is computed by one function on
each one's parameters and its own table (C's from ``vectors.bin``); the vectors scored are
W + W~ for both (glove's ``-model 2``; ``<unk>`` dropped).

Memory of a C program: its peak RSS from GNU time (``/usr/bin/time -f %M``; time forks a
small process, so the peak is the program's own); without GNU time, ``wait4``'s ru_maxrss,
which also holds the spawning worker's size (marked in the log). CPU seconds: user + sys.

    python benchmarks/bench_static_c.py --mb 10            # sg: textdecade, gensim, word2vec.c x2
    python benchmarks/bench_static_c.py --mb 10 --cbow
    python benchmarks/bench_static_c.py --mb 10 --glove --epochs 15
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import bench_static as bs
import numpy as np
from measure import Meter, cpu_seconds

from textdecade.data.shared import shared_data_dir

GNU_TIME = "/usr/bin/time"


def tools_dir() -> Path | None:
    """``shared/tools`` beside ``shared/data``, or None."""
    data = shared_data_dir()
    path = data.parent / "tools" if data is not None else None
    return path if path is not None and path.is_dir() else None


def build_tool(folder: str, target: str, scratch: Path) -> Path | None:
    """Copy ``shared/tools/<folder>`` into ``scratch`` and ``make`` it; None (and one line
    on stdout) when the sources are missing or the build fails."""
    root = tools_dir()
    if root is None or not (root / folder).is_dir():
        print(f"{folder}: not found in shared/tools; its rows are skipped")
        return None
    dest = scratch / folder
    shutil.copytree(root / folder, dest)
    cmd = ["make", "-C", str(dest)] + ([target] if target else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"{folder}: build failed ({last}); its rows are skipped")
        return None
    return dest


def timed(cmd: list[str], stdin=None, stdout=None, stderr=None) -> dict[str, float]:
    """Run ``cmd`` to completion; its wall seconds, CPU seconds and peak RSS (MiB).

    Raises:
        subprocess.CalledProcessError: the program failed.
    """
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as report:
        gnu = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-f", "%U %S %M", "-o", report.name, *cmd] if gnu else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdin=stdin, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
        if gnu:
            user, system, kib = report.read().split()[-3:]
            cpu, peak = float(user) + float(system), int(kib) / 1024
        else:  # ru_maxrss carries this process's size across exec: an upper bound
            print(f"no {GNU_TIME}: {cmd[0]}'s peak RSS includes its launcher", file=sys.stderr)
            cpu, peak = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": peak}


def write_words(spec: dict, path: Path, copies: int = 1) -> Counter:
    """The words gensim trains on (``bench_static.work_word2vec_gensim``), one corpus line
    per line, ``copies`` times over, for the C programs; returns the counts of one copy."""
    from textdecade.tokenizer import Tokenizer

    sentences = Tokenizer.load(spec["tokenizer"]).words_batch(bs.read_slice(spec["mb"]))
    counts: Counter = Counter()
    for words in sentences:
        if any(not w or w.split() != [w] for w in words):
            raise ValueError("a word with whitespace cannot go to the C tools unchanged")
        counts.update(words)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(copies):
            f.writelines(" ".join(words) + "\n" for words in sentences)
    return counts


def read_vocab(path: Path, drop: str) -> tuple[list[str], list[int]]:
    """A C tool's ``word count`` vocabulary file (frequency order), without ``drop``."""
    words, counts = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            word, count = line.rstrip("\n").rsplit(" ", 1)
            if word != drop:
                words.append(word)
                counts.append(int(count))
    return words, counts


def row_word2vec_c(spec: dict, exe: Path, work: Path, repeat: bool) -> dict:
    """word2vec.c, the vocabulary pass and the training run timed apart.

    ``repeat``: the words written ``epochs`` times and trained with ``-iter 1`` (and
    ``-min-count 5 x epochs``, the same vocabulary): the same number of updates, the same
    linear lr decay over them and the same subsampling as ``-iter epochs``, without
    word2vec.c's bug that the last thread trains one epoch only (its ``eof`` flag is not
    reset between iterations: github.com/tmikolov/word2vec/issues/47), which leaves
    ``-iter E -threads 2`` doing about (E + 1) / 2E of the work (``trained_share``).
    """
    from textdecade.eval.vectors import Vectors
    from textdecade.interop.word2vec_format import read_word2vec

    epochs, sg = spec["epochs"], spec["sg"]
    copies, iters = (epochs, 1) if repeat else (1, epochs)
    work.mkdir()
    corpus = work / "corpus.txt"
    counts = write_words(spec, corpus, copies)
    common = ["-train", str(corpus), "-min-count", str(5 * copies), "-debug", "0"]
    save = [str(exe), *common, "-save-vocab", str(work / "vocab.txt")]
    vocab = timed(save, stdout=subprocess.DEVNULL)
    out = work / "vectors.bin"
    flags = f"-cbow {int(not sg)} -negative 5 -hs 0 -window 5 -sample 1e-3 -size 100 -binary 1"
    flags += f" -iter {iters} -threads {spec['workers']} -alpha {0.025 if sg else 0.05}"
    common[-1] = "2"  # -debug 2: its progress line carries its own rate and progress
    cmd = [str(exe), *common, "-read-vocab", str(work / "vocab.txt"), *flags.split()]
    with open(work / "train.log", "wb") as log:
        run = timed([*cmd, "-output", str(out)], stdout=log)
    # "Progress: 59.14%  Words/thread/sec: 301.87k": words tallied (every 10,000 a thread
    # reads) over iter x train words, and words read (</s> and subsampled ones included)
    # per CPU-second of the process since the training threads started (no setup: the
    # vocabulary, the 1e8-entry unigram table, the output)
    log = (work / "train.log").read_bytes()
    rates = re.findall(rb"Words/thread/sec: ([0-9.]+)k", log)
    progress = [float(x) for x in re.findall(rb"Progress: ([0-9.]+)%", log)]
    words, matrix = read_word2vec(out, binary=True, unicode_errors="replace")
    keep = [i for i, w in enumerate(words) if w != "</s>"]
    vocab_words, vocab_counts = read_vocab(work / "vocab.txt", "</s>")
    in_vocab = sum(c for c in counts.values() if c >= 5)  # gensim's and textdecade's count
    if sum(vocab_counts) != in_vocab * copies or len(vocab_words) != len(keep):
        print("WARNING: word2vec.c's vocabulary differs from the written words'", file=sys.stderr)
    n_words = in_vocab * epochs
    row = {
        "seconds": run["seconds"],
        "words_per_s": n_words / run["seconds"],
        "later_words_per_s": n_words / run["seconds"],  # no first-epoch cost to leave out
        "cpu_s_per_Mword": run["cpu_s"] / n_words * 1e6,
        "loop_words_per_cpu_s": float(rates[-1]) * 1e3 if rates else float("nan"),
        "trained_share": max(progress, default=float("nan")) / 100,
        "vocab_s": vocab["seconds"],
        "vocab": len(keep),
        "in_vocab_words": in_vocab,
        "peak_mb": run["peak_mb"],
        "vocab_peak_mb": vocab["peak_mb"],
    }
    by_word = dict(zip(vocab_words, vocab_counts))
    vectors = Vectors(
        [words[i] for i in keep], matrix[keep], [by_word.get(words[i], 0) for i in keep]
    )
    return {**row, **bs.scores(vectors)}


C_W2V = {"iter": "word2vec.c", "repeat": "word2vec.c repeat"}
FASTTEXT = "fastText"

#: Run in a child process (its peak RSS is then its own): fastText's training, timed apart
#: from its import and the writing of the vectors, which go out as a word2vec text file.
FASTTEXT_CHILD = """
import json, sys, time
import fasttext
corpus, out, model, epochs, threads, lr = sys.argv[1:7]
t0 = time.perf_counter()
ft = fasttext.train_unsupervised(
    corpus, model=model, dim=100, ws=5, epoch=int(epochs), minCount=5, neg=5, t=1e-3,
    minn=0, maxn=0, wordNgrams=1, loss="ns", lr=float(lr), thread=int(threads), verbose=0)
seconds = time.perf_counter() - t0
words, counts = ft.get_words(include_freq=True)
with open(out, "w", encoding="utf-8") as f:
    f.write(f"{len(words)} 100\\n")
    for w in words:
        f.write(w + " " + " ".join(f"{x:.6f}" for x in ft.get_word_vector(w)) + "\\n")
json.dump({"train_s": seconds, "counts": dict(zip(words, map(int, counts)))}, sys.stderr)
"""


def row_fasttext(spec: dict, work: Path) -> dict:
    """fastText ``skipgram``/``cbow`` with word2vec.c's settings and no subwords
    (``minn=0 maxn=0``): the same words file, epochs, threads and learning rate."""
    from textdecade.eval.vectors import Vectors
    from textdecade.interop.word2vec_format import read_word2vec

    epochs, sg = spec["epochs"], spec["sg"]
    work.mkdir()
    corpus, out = work / "corpus.txt", work / "vectors.txt"
    counts = write_words(spec, corpus)
    args = [str(corpus), str(out), "skipgram" if sg else "cbow", str(epochs)]
    args += [str(spec["workers"]), str(0.025 if sg else 0.05)]
    with open(work / "child.json", "wb") as report:
        run = timed([sys.executable, "-c", FASTTEXT_CHILD, *args], stderr=report)
    child = json.loads((work / "child.json").read_text(encoding="utf-8").splitlines()[-1])
    words, matrix = read_word2vec(out, binary=False, unicode_errors="replace")
    keep = [i for i, w in enumerate(words) if w != "</s>"]
    in_vocab = sum(c for c in counts.values() if c >= 5)
    n_words = in_vocab * epochs
    row = {
        "seconds": child["train_s"],
        "words_per_s": n_words / child["train_s"],
        "later_words_per_s": n_words / child["train_s"],
        "cpu_s_per_Mword": run["cpu_s"] / n_words * 1e6,
        "vocab": len(keep),
        "in_vocab_words": in_vocab,
        "peak_mb": run["peak_mb"],
    }
    vectors = Vectors(
        [words[i] for i in keep], matrix[keep], [child["counts"].get(words[i], 0) for i in keep]
    )
    return {**row, **bs.scores(vectors)}


def run_word2vec(args, spec: dict, scratch: Path) -> None:
    rows = bs.word2vec_rows(args, spec)
    exe = build_tool("word2vec-c", "word2vec", scratch)
    modes = ["iter", "repeat"] if args.w2v_c == "both" else [args.w2v_c]
    for mode in modes if exe is not None else []:
        name = C_W2V[mode]
        try:
            rows[name] = row_word2vec_c(
                spec, exe / "word2vec", scratch / f"w2v-{mode}", mode == "repeat"
            )
            print(json.dumps({"case": name, **rows[name]}), flush=True)
        except subprocess.CalledProcessError as exc:
            print(f"{name} failed ({exc}); its row is skipped")
    if importlib.util.find_spec("fasttext") is None:
        print("fasttext is not importable here: no fastText row")
    else:
        try:
            rows[FASTTEXT] = row_fasttext(spec, scratch / "fasttext")
            print(json.dumps({"case": FASTTEXT, **rows[FASTTEXT]}), flush=True)
        except (subprocess.CalledProcessError, ValueError) as exc:
            print(f"{FASTTEXT} failed ({exc}); its row is skipped")
    bs.report_word2vec(rows)
    keys = ["trained_share", "vocab_s", "vocab_peak_mb", "loop_words_per_cpu_s"]
    c_rows = {n: rows[n] for n in [*C_W2V.values(), FASTTEXT] if n in rows}
    if c_rows:
        bs.table(c_rows, keys)
    for cname, c in c_rows.items():
        for name, a in rows.items():
            if name in c_rows:
                continue
            print(
                f"{name} / {cname}: words/s {a['words_per_s'] / c['words_per_s']:.2f}x"
                f" | CPU-time ratio ({cname} / {name}): "
                f"{c['cpu_s_per_Mword'] / a['cpu_s_per_Mword']:.2f}x | analogy "
                f"{a['analogy']:.3f} vs {c['analogy']:.3f} | WS-353 {a['ws353']:.3f} vs "
                f"{c['ws353']:.3f} | peak RSS {a['peak_mb'] / c['peak_mb']:.2f}x"
            )


def work_glove_count(spec: dict) -> list[dict]:
    """textdecade's GloVe counting (``prepare``: words, vocabulary, co-occurrences) into
    ``spec["prepared"]``, timed, with this process's memory from right after reading."""
    from textdecade.pretrain.fit import prepare
    from textdecade.tokenizer import Tokenizer

    texts, tok = bs.read_slice(spec["mb"]), Tokenizer.load(spec["tokenizer"])
    meter, cpu0, t0 = Meter(), cpu_seconds(), time.perf_counter()
    data = prepare(
        "glove", texts, run_dir=spec["prepared"], tokenizer=tok, settings={"model": spec["config"]}
    )
    row = {"seconds": time.perf_counter() - t0, "cpu_s": cpu_seconds() - cpu0, **meter.read()}
    meter.close()
    return [{**row, "vocab": len(data.meta["words"]), "nonzeros": len(data.train)}]


class CRecs:
    """glove's co-occurrence records (int32 word1, int32 word2, float64 count; 1-based) as
    ``bench_static.wls_cost`` takes a table: 0-based ``rows``, ``cols``, ``vals``."""

    def __init__(self, path: Path):
        recs = np.fromfile(path, dtype=np.dtype([("i", "<i4"), ("j", "<i4"), ("x", "<f8")]))
        self.rows, self.cols, self.vals = recs["i"] - 1, recs["j"] - 1, recs["x"]

    def __len__(self) -> int:
        return len(self.vals)


def row_glove_c(spec: dict, build: Path, corpus: Path) -> dict:
    """vocab_count, cooccur, shuffle (counting) and glove (training), timed apart."""
    from textdecade.eval.vectors import Vectors
    from textdecade.interop.word2vec_format import read_word2vec

    cfg, work, exe = spec["config"], corpus.parent, build / "build"
    mem = f"{cfg['memory_mb'] / 1024:g}"
    vocab, cooc, shuf = work / "vocab.txt", work / "cooccurrence.bin", work / "cooc.shuf.bin"
    steps = []
    with open(corpus, "rb") as fin, open(vocab, "wb") as fout:
        steps.append(
            timed([str(exe / "vocab_count"), "-min-count", "5", "-verbose", "0"], fin, fout)
        )
    with open(corpus, "rb") as fin, open(cooc, "wb") as fout:
        cmd = [str(exe / "cooccur"), "-memory", mem, "-vocab-file", str(vocab), "-verbose", "0"]
        cmd += ["-window-size", str(cfg["window"])]
        steps.append(timed(cmd, fin, fout))
    with open(cooc, "rb") as fin, open(shuf, "wb") as fout:
        cmd = [str(exe / "shuffle"), "-memory", mem, "-verbose", "0", "-seed", "1"]
        steps.append(timed(cmd, fin, fout))
    cmd = [
        str(exe / "glove"),
        "-save-file",
        str(work / "vectors"),
        "-threads",
        str(spec["workers"]),
    ]
    cmd += ["-input-file", str(shuf), "-x-max", f"{cfg['x_max']:g}", "-alpha", f"{cfg['alpha']:g}"]
    cmd += ["-iter", str(spec["epochs"]), "-vector-size", str(cfg["d_model"]), "-binary", "2"]
    cmd += ["-eta", f"{spec['lr']:g}", "-vocab-file", str(vocab), "-verbose", "2", "-seed", "1"]
    log = work / "glove.log"
    with open(log, "wb") as ferr:
        train = timed(cmd, stdout=subprocess.DEVNULL, stderr=ferr)
    costs = [ln for ln in log.read_text(errors="replace").splitlines() if "cost:" in ln]
    nnz, iters = cooc.stat().st_size // 16, spec["epochs"]
    words, counts = read_vocab(vocab, "<unk>")
    v, d = len(words), cfg["d_model"]
    # vectors.bin: 2V rows of (d + 1) doubles: word vectors and bias, then context ones
    params = np.fromfile(work / "vectors.bin", dtype="<f8").reshape(2 * v, d + 1)
    w, c = params[:v, :d], params[v:, :d]
    cost = bs.wls_cost(w, c, params[:v, d], params[v:, d], CRecs(cooc), cfg["x_max"], cfg["alpha"])
    text_words, matrix = read_word2vec(work / "vectors.txt", binary=False, unicode_errors="replace")
    keep = [i for i, word in enumerate(text_words) if word != "<unk>"]
    row = {
        "count_s": sum(s["seconds"] for s in steps),
        "count_peak_mb": max(s["peak_mb"] for s in steps),
        "vocab": v,
        "nonzeros": nnz,
        "passes": iters,
        "seconds": train["seconds"],
        "nonzeros_per_s": nnz * iters / train["seconds"],
        "nonzeros_per_cpu_s": nnz * iters / train["cpu_s"],
        "cost_reported": float(costs[-1].rsplit("cost:", 1)[1]) if costs else float("nan"),
        "cost_final": cost,
        "peak_mb": train["peak_mb"],
    }
    vectors = Vectors([text_words[i] for i in keep], matrix[keep], counts)
    return {**row, **bs.scores(vectors)}


def run_glove(args, spec: dict, scratch: Path) -> None:
    config = {"d_model": args.dim, "window": args.glove_window, "x_max": 100.0, "alpha": 0.75}
    config.update(min_count=5, memory_mb=args.glove_memory_mb, count_workers=args.workers)
    config.update(workers=args.workers)  # Hogwild processes, as glove.c's threads
    prepared = scratch / "td-prepared"
    spec.update(prepared=str(prepared), config=config, lr=args.glove_lr)
    spec.update(glove_batch=args.glove_batch, td_threads=args.glove_td_threads)
    counted = bs.spawn("glove-count", spec, __file__)[0]
    td = bs.spawn("glove-td", spec)[0]
    rows = {"textdecade": {**td, "count_s": counted["seconds"], "vocab": counted["vocab"]}}
    rows["textdecade"].update(nonzeros=counted["nonzeros"], count_peak_mb=counted["peak_mb"])
    print(
        f"GloVe: min_count 5, window {args.glove_window} (1/d), d {args.dim}, x_max 100, "
        f"alpha 0.75, AdaGrad lr {args.glove_lr}, {args.epochs} iterations, {args.workers} "
        f"threads / Hogwild processes, counting memory {args.glove_memory_mb:g} MB"
    )
    build = build_tool("glove-c", "", scratch)
    if build is not None:
        corpus = scratch / "glove-run" / "corpus.txt"
        corpus.parent.mkdir()
        write_words(spec, corpus)
        try:
            rows["glove.c"] = row_glove_c(spec, build, corpus)
        except subprocess.CalledProcessError as exc:
            print(f"glove.c failed ({exc}); its row is skipped")
    for name, r in rows.items():
        print(json.dumps({"case": name, **r}), flush=True)
    bs.table(rows, ["vocab", "nonzeros", "count_s", "count_peak_mb", "passes", "seconds"])
    keys = ["nonzeros_per_s", "nonzeros_per_cpu_s", "cost_reported", "cost_final", "peak_mb"]
    bs.table(rows, keys + ["analogy", "ws353"])
    if "glove.c" in rows:
        a, c = rows["textdecade"], rows["glove.c"]
        if (a["vocab"], a["nonzeros"]) != (c["vocab"], c["nonzeros"]):
            print("note: the vocabularies or nonzeros differ; rates compare different tables")
        print(
            f"\ntextdecade / glove.c: counting time {a['count_s'] / c['count_s']:.2f}x, peak "
            f"{a['count_peak_mb'] / c['count_peak_mb']:.2f}x | training nonzeros/s "
            f"{a['nonzeros_per_s'] / c['nonzeros_per_s']:.2f}x, peak RSS "
            f"{a['peak_mb'] / c['peak_mb']:.2f}x | final cost {a['cost_final']:.4f} vs "
            f"{c['cost_final']:.4f} | analogy {a['analogy']:.3f} vs {c['analogy']:.3f} | "
            f"WS-353 {a['ws353']:.3f} vs {c['ws353']:.3f}"
        )


WORKERS = {"glove-count": work_glove_count}


def main() -> None:
    parser = bs.build_parser(__doc__.split("\n")[0], WORKERS)
    parser.add_argument("--glove-memory-mb", type=float, default=512.0, help="counting memory")
    parser.add_argument(
        "--w2v-c", choices=["iter", "repeat", "both"], default="both",
        help="word2vec.c as asked (-iter E), on the words written E times with -iter 1 "
        "(around its last-thread bug), or both",
    )  # fmt: skip
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(args.spec))), flush=True)
        return
    from textdecade.tokenizer import Tokenizer

    texts = bs.read_slice(args.mb)
    tok = Tokenizer.train(texts, vocab_size=8000)  # once, loaded by every worker
    scratch = tempfile.TemporaryDirectory(prefix="bench-static-c-")
    tok.save(Path(scratch.name) / "tokenizer.json")
    peers = {n: bs._version(n) for n in ("gensim", "fasttext")}
    print(f"{os.cpu_count()} CPUs, " + ", ".join(f"{n} {v}" for n, v in peers.items()))
    what = "glove" if args.glove else ("cbow" if args.cbow else "sg")
    print(f"corpus: {args.mb} MB of corpus_en, {len(texts)} lines; {what}")
    spec = {"mb": args.mb, "epochs": args.epochs, "workers": args.workers}
    spec["tokenizer"] = str(Path(scratch.name) / "tokenizer.json")
    if args.glove:
        run_glove(args, spec, Path(scratch.name))
    else:
        run_word2vec(args, spec, Path(scratch.name))
    scratch.cleanup()


if __name__ == "__main__":
    main()
