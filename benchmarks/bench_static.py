"""textdecade Word2Vec vs gensim Word2Vec, side by side, on a slice of shared/data/corpus_en.

Both train on the same words (the textdecade tokenizer's ``words``) with gensim's
settings: skip-gram (``--cbow`` for CBOW), negative 5, window 5, dim 100, sample 1e-3,
min_count 5, 5 epochs, 2 workers. Reported for each: training wall time and words/s
(in-vocabulary words x epochs / seconds, the same numerator for both), CPU seconds per
million words (robust when other jobs share the cores), analogy accuracy
(capital-common-countries and all of questions-words.txt, restrict_vocab 30000) and
WordSim-353 Spearman; then the ratios.

    python benchmarks/bench_static.py --mb 10
    python benchmarks/bench_static.py --mb 40 --device cuda --skip-gensim --batch-words 1000000 \
        --pairs-per-update 16384 65536 262144      # a GPU sweep (benchmarks/gpu.sh)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import torch

from textdecade.data.shared import shared_path
from textdecade.eval.analogy import evaluate_analogies
from textdecade.eval.similarity import evaluate_similarity
from textdecade.eval.vectors import Vectors
from textdecade.models import word2vec
from textdecade.models.static_fit import fit_static
from textdecade.tokenizer import Tokenizer


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


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (Hogwild workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def scores(vectors: Vectors) -> dict[str, float]:
    analogy = shared_path("word_analogy", "questions-words.txt")
    ws353 = shared_path("word_similarity", "gensim", "wordsim353.tsv")
    result = evaluate_analogies(vectors, analogy, restrict_vocab=30000)
    capital = next(s for s in result.sections if s.name == "capital-common-countries")
    sim = evaluate_similarity(vectors, ws353)
    return {
        "capital": capital.correct / max(capital.answered, 1),
        "analogy": result.total.correct / max(result.total.answered, 1),
        "answered": result.total.answered,
        "ws353": sim.sets[0].spearman,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes of corpus_en")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cbow", action="store_true", help="CBOW instead of skip-gram")
    parser.add_argument("--batch-words", type=int, default=20_000)
    parser.add_argument("--shared-negatives", type=int, default=None)
    parser.add_argument("--block", type=int, default=None)
    parser.add_argument(
        "--pairs-per-update", type=int, nargs="+", default=[None],
        help="one value, or several to sweep (the data is prepared once)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (workers: CPU only)")
    parser.add_argument("--max-repeats", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="textdecade's initial lr")
    parser.add_argument("--skip-gensim", action="store_true")
    args = parser.parse_args()
    sg = not args.cbow
    lr = 0.025 if sg else 0.05  # gensim uses 0.025 for both; word2vec.c 0.05 for CBOW
    texts = read_slice(args.mb)
    tok = Tokenizer.train(texts, vocab_size=8000)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"corpus: {args.mb} MB of corpus_en, {len(texts)} lines; {'sg' if sg else 'cbow'}")

    rows, data, first = {}, None, None
    for pairs in args.pairs_per_update:
        knobs = {
            "shared_negatives": args.shared_negatives,
            "block": args.block,
            "pairs_per_update": pairs,
            "max_repeats": args.max_repeats,
        }
        cfg = word2vec.Config(
            sg=sg, workers=args.workers, **{k: v for k, v in knobs.items() if v is not None}
        )
        print(f"textdecade on {args.device}: {cfg}")
        cpu0 = cpu_seconds()
        model, history = fit_static(
            word2vec.Model,
            texts,
            tok,
            cfg,
            epochs=args.epochs,
            lr=args.lr or lr,
            batch_size=args.batch_words,
            device=args.device,
            log=print,
            data=data,
        )
        data, first = history.data, first or history  # the first owns the word stream's dir
        ours_cpu = cpu_seconds() - cpu0  # the first includes building the word stream
        n_words = history.data.n_units * args.epochs
        name = "textdecade" if len(args.pairs_per_update) == 1 else f"td ppu={pairs}"
        rows[name] = {
            "seconds": history.train_seconds,
            "words_per_s": n_words / history.train_seconds,
            "cpu_s_per_Mword": ours_cpu / n_words * 1e6,
            "loss_last_epoch": history.epochs[-1]["loss"],
            **scores(model.to_vectors(None)),
        }
        print(json.dumps({"case": name, **rows[name]}), flush=True)
    if not args.skip_gensim:
        from gensim.models import Word2Vec

        sentences = tok.words_batch(texts)
        gm = Word2Vec(
            vector_size=100,
            window=5,
            min_count=5,
            sg=int(sg),
            negative=5,
            sample=1e-3,
            workers=args.workers,
            alpha=lr,
            seed=1,
        )
        gm.build_vocab(sentences)
        cpu0, t0 = time.process_time(), time.perf_counter()
        gm.train(sentences, total_examples=len(sentences), epochs=args.epochs)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        rows["gensim"] = {
            "seconds": seconds,
            "words_per_s": n_words / seconds,
            "cpu_s_per_Mword": cpu / n_words * 1e6,
            "loss_last_epoch": float("nan"),
            **scores(Vectors.from_gensim(gm.wv)),
        }
    keys = ["seconds", "words_per_s", "cpu_s_per_Mword", "capital", "analogy", "ws353"]
    print(f"\n{'':12}" + "".join(f"{k:>16}" for k in keys))
    for name, row in rows.items():
        print(f"{name:12}" + "".join(f"{row[k]:>16.4g}" for k in keys))
    if "gensim" in rows and "textdecade" in rows:
        a, b = rows["textdecade"], rows["gensim"]
        print(
            f"\nwords/s ratio (textdecade / gensim): {a['words_per_s'] / b['words_per_s']:.2f}x | "
            f"CPU-time ratio (gensim / textdecade): {b['cpu_s_per_Mword'] / a['cpu_s_per_Mword']:.2f}x"
            f" | analogy {a['analogy']:.3f} vs {b['analogy']:.3f} | "
            f"WS-353 {a['ws353']:.3f} vs {b['ws353']:.3f} | questions answered {a['answered']}"
        )


if __name__ == "__main__":
    main()
