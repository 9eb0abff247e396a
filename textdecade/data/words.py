"""Word-level data for the static families (Word2Vec, GloVe).

Words come from the shared tokenizer's normalizer and pre-tokenizer (``tok.words(text)``),
so "word" means the same thing in every family. One pass over the corpus counts the words
and writes a provisional id stream; pruning (``min_count``, ``max_vocab_size``) then remaps
it into the final stream of word ids, memmapped from disk:

    workdir/vocab.json     {"words": [...], "counts": [...], "total_words": N_raw}
    workdir/word_ids.u32   all kept words of the corpus in order (uint32)
    workdir/doc_offsets.npy  (n_docs + 1,) int64 start of each document in ``word_ids``

Also here: word2vec.c's subsampling keep-probability and the unigram^0.75 noise table
(Mikolov et al. 2013, "Distributed Representations of Words and Phrases").
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textdecade.errors import ConfigError, CorpusError
from textdecade.io import atomic_path, write_json

VOCAB_FILE = "vocab.json"
IDS_FILE = "word_ids.u32"
OFFSETS_FILE = "doc_offsets.npy"


def _save_npy(path: Path, array_: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a name
        np.save(f, array_)


@dataclass
class WordData:
    """A word vocabulary and the corpus as a memmapped stream of word ids.

    Attributes:
        words: vocabulary, most frequent first.
        counts: corpus count of each word (same order).
        ids: (N,) uint32 memmap of the kept words, documents back to back.
        offsets: (n_docs + 1,) int64 start of each document in ``ids``.
        total_words: words in the corpus before pruning (for reporting).
    """

    words: list[str]
    counts: np.ndarray
    ids: np.ndarray
    offsets: np.ndarray
    total_words: int

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def doc_of(self, start: int, end: int) -> np.ndarray:
        """Document index of each position in ``[start, end)``; shape (end - start,)."""
        pos = np.arange(start, end, dtype=np.int64)
        return np.searchsorted(self.offsets, pos, side="right") - 1

    def index(self) -> dict[str, int]:
        """word -> id."""
        return {w: i for i, w in enumerate(self.words)}


def build_word_data(
    texts: Iterable[str],
    split: Callable[[str], list[str]],
    workdir: str | Path,
    min_count: int = 5,
    max_vocab_size: int | None = None,
) -> WordData:
    """Count words, prune the vocabulary and write the word-id stream under ``workdir``.

    Args:
        texts: documents (re-iterable not needed: one pass).
        split: text -> words, normally ``tokenizer.words``.
        workdir: where the files go (created).
        min_count: drop words seen fewer times (word2vec.c's ``-min-count``).
        max_vocab_size: keep at most this many of the most frequent words (GloVe's
            ``-max-vocab``; gensim's ``max_final_vocab``); None keeps all.

    Returns:
        The :class:`WordData`, its stream memmapped from ``workdir``.

    Raises:
        ConfigError: ``min_count < 1`` or ``max_vocab_size < 1``.
        CorpusError: the corpus is empty, or no word reaches ``min_count``.
    """
    if min_count < 1:
        raise ConfigError(f"min_count must be at least 1, got {min_count}")
    if max_vocab_size is not None and max_vocab_size < 1:
        raise ConfigError(f"max_vocab_size must be at least 1 (or unset), got {max_vocab_size}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    index: dict[str, int] = {}
    stream = array("I")
    doc_lens = array("q")
    for text in texts:
        words = split(text)
        if not words:
            continue
        # setdefault evaluates len(index) first, so a new word gets the next provisional id.
        stream.extend([index.setdefault(w, len(index)) for w in words])
        doc_lens.append(len(words))
    if not stream:
        raise CorpusError("the corpus holds no words: check the files or the dataset")
    prov = np.frombuffer(stream, dtype=np.uint32)
    counts = np.bincount(prov, minlength=len(index)).astype(np.int64)
    # Most frequent first; ties keep first-occurrence order (stable sort on provisional id).
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= min_count]
    if max_vocab_size is not None:
        order = order[:max_vocab_size]
    if order.size == 0:
        raise CorpusError(
            f"no word occurs {min_count} times in the corpus ({len(prov)} words, "
            f"{len(index)} distinct): lower min_count or give more text"
        )
    remap = np.full(len(index), -1, dtype=np.int64)
    remap[order] = np.arange(order.size)
    new = remap[prov]
    keep = new >= 0
    lens = np.frombuffer(doc_lens, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    kept_lens = np.add.reduceat(keep.astype(np.int64), starts)
    kept_lens = kept_lens[kept_lens > 0]
    offsets = np.concatenate([[0], np.cumsum(kept_lens)]).astype(np.int64)
    ids = new[keep].astype(np.uint32)
    words_by_prov = list(index)
    words = [words_by_prov[i] for i in order]
    vocab = {"words": words, "counts": counts[order].tolist(), "total_words": int(len(prov))}
    with atomic_path(workdir / IDS_FILE) as tmp:
        ids.tofile(tmp)
    with atomic_path(workdir / OFFSETS_FILE) as tmp:
        _save_npy(tmp, offsets)
    write_json(workdir / VOCAB_FILE, vocab)
    return load_word_data(workdir)


def load_word_data(workdir: str | Path) -> WordData:
    """Reopen what :func:`build_word_data` wrote (the id stream is memmapped, read-only)."""
    workdir = Path(workdir)
    try:
        vocab = json.loads((workdir / VOCAB_FILE).read_text(encoding="utf-8"))
        offsets = np.load(workdir / OFFSETS_FILE)
        size = (workdir / IDS_FILE).stat().st_size // 4
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{workdir}: prepared word data missing or damaged ({exc})") from None
    ids = (
        np.memmap(workdir / IDS_FILE, dtype=np.uint32, mode="r", shape=(size,))
        if size
        else np.zeros(0, dtype=np.uint32)
    )
    return WordData(
        words=vocab["words"],
        counts=np.asarray(vocab["counts"], dtype=np.int64),
        ids=ids,
        offsets=offsets,
        total_words=int(vocab["total_words"]),
    )


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec.c's subsampling: P(keep w) = (sqrt(f / (s T)) + 1) (s T) / f, capped at 1.

    ``f`` is the word's count and ``T`` the total count (Mikolov et al. 2013 write the
    discard probability as 1 - sqrt(t / f); the C code ships this smoother variant, which
    gensim copies). ``sample <= 0`` keeps every word.

    Args:
        counts: (V,) word counts.
        sample: the threshold ``s`` (1e-3 in gensim, 1e-4 or 1e-5 in the paper).

    Returns:
        (V,) float32 keep probabilities.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(counts.shape, dtype=np.float32)
    threshold = sample * counts.sum()
    prob = (np.sqrt(counts / threshold) + 1.0) * threshold / np.maximum(counts, 1.0)
    return np.minimum(prob, 1.0).astype(np.float32)


def unigram_table(counts: np.ndarray, power: float = 0.75, size: int = 10_000_000) -> np.ndarray:
    """word2vec.c's negative-sampling table: word ids in proportion to count**power.

    Drawing a uniform index into the table samples the noise distribution in O(1).

    Args:
        counts: (V,) word counts.
        power: the exponent (0.75 in the paper).
        size: table length (word2vec.c uses 1e8; 1e7 is ample below a few million words).

    Returns:
        (size,) int32 word ids.
    """
    weights = np.asarray(counts, dtype=np.float64) ** power
    cum = np.cumsum(weights / weights.sum())
    points = (np.arange(size, dtype=np.float64) + 0.5) / size
    table = np.searchsorted(cum, points, side="right")
    return np.minimum(table, len(weights) - 1).astype(np.int32)
