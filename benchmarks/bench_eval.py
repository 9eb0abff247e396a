"""Time the full Google analogy set: textdecade's batched scoring vs gensim, side by side.

Vectors: 100-d, the 70,000 most frequent tokens of ``shared/data/corpus_en`` (so coverage
is realistic), random values (speed does not depend on their quality). Both libraries
score the same vectors with the same ``restrict_vocab`` and case-insensitive matching, and
the script checks that they agree before printing the speed ratio.

    python benchmarks/bench_eval.py [--vocab 70000] [--dim 100] [--restrict-vocab 70000]
"""

from __future__ import annotations

import argparse
import collections
import platform
import re
import time

import gensim
import numpy as np

from textdecade.data.shared import shared_path
from textdecade.eval.analogy import default_analogy_path, evaluate_analogies
from textdecade.eval.vectors import Vectors

FILES = ["gensim_enwiki_sample.txt", "nltk_brown.txt", "nltk_abc_news.txt", "bible_web.txt"]


def vocabulary(size: int) -> list[str]:
    counts: collections.Counter[str] = collections.Counter()
    token = re.compile(r"\w+")
    for name in FILES + ["dict_gcide.txt"]:
        path = shared_path("corpus_en", name)
        if path is None:
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(token.findall(line))
        if len(counts) >= 2 * size:
            break
    return [w for w, _ in counts.most_common(size)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=70000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--restrict-vocab", type=int, default=70000)
    ap.add_argument("--method", default="3cosadd", choices=["3cosadd", "3cosmul"])
    args = ap.parse_args()

    words = vocabulary(args.vocab)
    rng = np.random.default_rng(0)
    vectors = Vectors(words, rng.standard_normal((len(words), args.dim)).astype(np.float32))
    kv = vectors.to_gensim()
    data = default_analogy_path()
    print(
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}, gensim {gensim.__version__}"
    )
    print(
        f"{len(words)} words x {args.dim} dims, restrict_vocab={args.restrict_vocab}, {args.method}"
    )

    t = time.perf_counter()
    ours = evaluate_analogies(vectors, data, method=args.method, restrict_vocab=args.restrict_vocab)
    t_ours = time.perf_counter() - t
    print(f"textdecade: {t_ours:.2f} s, accuracy {ours.accuracy:.4f}, coverage {ours.coverage:.4f}")

    if args.method == "3cosadd":
        t = time.perf_counter()
        score, _ = kv.evaluate_word_analogies(str(data), restrict_vocab=args.restrict_vocab)
        t_gensim = time.perf_counter() - t
        print(f"gensim evaluate_word_analogies: {t_gensim:.2f} s, accuracy {score:.4f}")
        print(f"agreement: |diff| = {100 * abs(score - ours.accuracy):.3f} points")
        print(f"speed ratio (gensim / textdecade): {t_gensim / t_ours:.1f}x")


if __name__ == "__main__":
    main()
