"""Tokenizer and sharding benchmark: textdecade vs raw `tokenizers` / `sentencepiece`.

Runs both sides in one process on the same texts and prints ratios (textdecade / raw):

1. training time of byte-level BPE (textdecade vs the same HF pipeline built by hand) and
   of sentencepiece BPE (textdecade vs a direct ``SentencePieceTrainer.train`` call);
2. ``encode_batch`` throughput (tokens/s) of both backends vs their raw calls;
3. time and peak RSS of ``prepare_shards`` over the corpus vs a raw ``encode_batch`` pass
   over the same files (each in a fresh process, so peak RSS is its own).

Targets: wrapper overhead < 5% (ratios >= 0.95), sharding >= 0.9x raw encode_batch
throughput, sharding peak RSS < 2 GB.

Usage::

    python benchmarks/bench_tokenizer.py                  # whole corpus_en (83 MB)
    python benchmarks/bench_tokenizer.py --limit-mb 10    # a slice
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import sentencepiece as spm
import tokenizers

from textdecade.data.corpus import Corpus
from textdecade.data.shards import prepare_shards
from textdecade.data.shared import shared_path
from textdecade.tokenizer import Tokenizer
from textdecade.tokenizer.bpe import build_pipeline
from textdecade.tokenizer.specials import SPECIAL_TOKENS

BATCH = 4096


def corpus_files(limit_mb: float | None) -> list[Path]:
    root = shared_path("corpus_en")
    if root is None:
        sys.exit("corpus_en not found: set TEXTDECADE_DATA")
    files = sorted(root.glob("*.txt"))
    return files if limit_mb is None else files  # slicing happens on texts


def read_texts(files: list[Path], limit_mb: float | None) -> list[str]:
    texts, size = [], 0
    budget = None if limit_mb is None else limit_mb * 2**20
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    texts.append(line)
                    size += len(line.encode("utf-8")) + 1
                    if budget is not None and size >= budget:
                        return texts
    return texts


CPU: list[float] = []  # best process CPU seconds of each function of the last race


def race(fns, repeat: int) -> list[float]:
    """Best-of-``repeat`` wall seconds of each function, interleaved in ABBA order.

    On a shared machine wall time is noisy; the ratio of best process CPU times (all
    threads) of each function is kept in ``CPU`` as a steadier check.
    """
    best = [float("inf")] * len(fns)
    cpu = [float("inf")] * len(fns)
    for r in range(repeat):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            t, c = time.perf_counter(), time.process_time()
            fns[k]()
            best[k] = min(best[k], time.perf_counter() - t)
            cpu[k] = min(cpu[k], time.process_time() - c)
    CPU[:] = cpu
    return best


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's at fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_hf_train(texts, vocab_size):
    tok = build_pipeline(lowercase=False)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tokenizers.Tokenizer.from_str(tok.to_str())


def raw_spm_train(texts, vocab_size):
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=out,
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=0.9995,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        pad_piece="<pad>",
        unk_piece="<unk>",
        bos_piece="<s>",
        eos_piece="</s>",
        user_defined_symbols=["<cls>", "<sep>", "<mask>"],
        hard_vocab_limit=False,
        max_sentence_length=1 << 20,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=out.getvalue())


def batches(texts):
    for i in range(0, len(texts), BATCH):
        yield texts[i : i + BATCH]


def encode_all(encode, texts) -> int:
    return sum(sum(map(len, encode(b))) for b in batches(texts))


# -- child processes for sharding vs raw encode (own peak RSS) -----------------------------
def _child_shard(tok_path: str, files: list[str], max_texts, q) -> None:
    tok = Tokenizer.load(tok_path)
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        manifest = prepare_shards(Corpus(files, max_texts=max_texts), tok, out)
        dt = time.perf_counter() - t
    q.put((dt, manifest["n_tokens"], peak_rss_mb()))


def _child_raw(tok_path: str, files: list[str], max_texts, q) -> None:
    hf = Tokenizer.load(tok_path)._impl.hf  # the raw tokenizers.Tokenizer inside
    t = time.perf_counter()
    n, chunk, count = 0, [], 0
    for f in files:  # the same streaming read, then raw encode_batch
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                chunk.append(line)
                count += 1
                if len(chunk) == BATCH:
                    n += sum(
                        len(e.ids) + 1 for e in hf.encode_batch(chunk, add_special_tokens=False)
                    )
                    chunk = []
                if max_texts and count >= max_texts:
                    break
        if max_texts and count >= max_texts:
            break
    if chunk:
        n += sum(len(e.ids) + 1 for e in hf.encode_batch(chunk, add_special_tokens=False))
    dt = time.perf_counter() - t
    q.put((dt, n, peak_rss_mb()))


def in_child(target, *args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-mb", type=float, default=None, help="use only this many MB")
    ap.add_argument("--train-mb", type=float, default=20.0, help="MB to train tokenizers on")
    ap.add_argument(
        "--shard-mb", type=float, default=None, help="MB to shard (default: whole corpus)"
    )
    ap.add_argument("--vocab-size", type=int, default=16000)
    ap.add_argument("--train-repeat", type=int, default=2, help="best of N for training")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the encode timings")
    args = ap.parse_args()

    files = corpus_files(args.limit_mb)
    texts = read_texts(files, args.limit_mb)
    mb = sum(len(t.encode("utf-8")) + 1 for t in texts) / 2**20
    train_mb = min(args.train_mb, mb)
    train = read_texts(files, train_mb) if train_mb < mb else texts
    print(
        f"corpus_en: {len(texts):,} texts, {mb:.1f} MB; training on {train_mb:.1f} MB; "
        f"vocab {args.vocab_size}; tokenizers {tokenizers.__version__}, "
        f"sentencepiece {spm.__version__}, {os.cpu_count()} CPUs"
    )

    rows = []
    made = {}

    def keep(key, fn):
        return lambda: made.__setitem__(key, fn())

    t_td, t_raw = race(
        [
            keep("td_bpe", lambda: Tokenizer.train(train, vocab_size=args.vocab_size)),
            keep("raw_bpe", lambda: raw_hf_train(train, args.vocab_size)),
        ],
        args.train_repeat,
    )
    rows.append(("train bpe (s)", t_td, t_raw, t_raw / t_td, CPU[1] / CPU[0]))
    t_td, t_raw = race(
        [
            keep(
                "td_spm",
                lambda: Tokenizer.train(train, vocab_size=args.vocab_size, backend="sentencepiece"),
            ),
            keep("raw_spm", lambda: raw_spm_train(train, args.vocab_size)),
        ],
        args.train_repeat,
    )
    rows.append(("train sentencepiece bpe (s)", t_td, t_raw, t_raw / t_td, CPU[1] / CPU[0]))
    td_bpe, raw_bpe, td_spm, raw_spm = (made[k] for k in ("td_bpe", "raw_bpe", "td_spm", "raw_spm"))

    n_tok = encode_all(td_bpe.encode_batch, texts)
    t_td, t_raw, t_fast = race(
        [
            lambda: encode_all(td_bpe.encode_batch, texts),
            lambda: encode_all(
                lambda b: [e.ids for e in raw_bpe.encode_batch(b, add_special_tokens=False)],
                texts,
            ),
            lambda: encode_all(
                lambda b: [e.ids for e in raw_bpe.encode_batch_fast(b, add_special_tokens=False)],
                texts,
            ),
        ],
        args.repeat,
    )
    rows.append(
        (
            "encode_batch bpe (Mtok/s)",
            n_tok / t_td / 1e6,
            n_tok / t_raw / 1e6,
            t_raw / t_td,
            CPU[1] / CPU[0],
        )
    )
    rows.append(
        (
            "  vs raw encode_batch_fast",
            n_tok / t_td / 1e6,
            n_tok / t_fast / 1e6,
            t_fast / t_td,
            CPU[2] / CPU[0],
        )
    )
    threads = os.cpu_count() or 1
    n_spm = encode_all(td_spm.encode_batch, texts)
    t_td, t_raw = race(
        [
            lambda: encode_all(td_spm.encode_batch, texts),
            lambda: encode_all(lambda b: raw_spm.encode(b, num_threads=threads), texts),
        ],
        args.repeat,
    )
    rows.append(
        (
            "encode_batch spm (Mtok/s)",
            n_spm / t_td / 1e6,
            n_spm / t_raw / 1e6,
            t_raw / t_td,
            CPU[1] / CPU[0],
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        tok_path = str(Path(tmp) / "tokenizer.json")
        td_bpe.save(tok_path)
        shard_mb = args.shard_mb
        max_texts = len(read_texts(files, shard_mb)) if shard_mb is not None else None
        str_files = [str(f) for f in files]
        raw_t, raw_n, raw_rss = in_child(_child_raw, tok_path, str_files, max_texts)
        sh_t, sh_n, sh_rss = in_child(_child_shard, tok_path, str_files, max_texts)
    assert raw_n == sh_n, (raw_n, sh_n)
    rows.append(
        (
            "read+encode -> shards (Mtok/s)",
            sh_n / sh_t / 1e6,
            raw_n / raw_t / 1e6,
            raw_t / sh_t,
            None,
        )
    )
    rows.append(("peak RSS (MB)", sh_rss, raw_rss, raw_rss / sh_rss, None))

    print(
        f"\n{'':32s} {'textdecade':>11s} {'raw':>11s} {'ratio':>7s} {'cpu ratio':>9s}"
        "  (ratios: raw time / textdecade time; >1 = textdecade faster)"
    )
    for name, a, b, r, c in rows:
        cpu = f"{c:9.3f}" if c is not None else f"{'-':>9s}"
        print(f"{name:32s} {a:11.3f} {b:11.3f} {r:7.3f} {cpu}")
    what = "the whole corpus" if args.shard_mb is None else f"{args.shard_mb} MB"
    print(f"\nsharded {what}: {sh_n:,} tokens in {sh_t:.1f} s; peak RSS {sh_rss:.0f} MB")


if __name__ == "__main__":
    main()
