"""BART noise: span masking statistics (Poisson lambda=3, 30%), sentence shuffling, packing."""

from __future__ import annotations

import numpy as np

from textdecade.data.denoising import (
    encode_documents,
    noise,
    shuffle_sentences,
    span_mask,
    split_sentences,
)
from textdecade.data.parallel import BucketBatcher
from textdecade.tokenizer.specials import MASK_ID


class WordTokenizer:
    """A stand-in tokenizer: one id per whitespace word (hashed into 7..999)."""

    vocab_size = 1000

    def encode_batch(self, texts):
        return [[7 + hash(w) % 993 for w in t.split()] for t in texts]


def test_span_mask_removes_30_percent_in_poisson_spans():
    rng = np.random.default_rng(0)
    ids = list(range(100, 300))  # 200 distinct tokens, none equal to MASK_ID
    span_lengths, masks = [], []
    for _ in range(300):
        out, spans = span_mask(ids, rng, return_spans=True)
        assert len(ids) - sum(n for _, n in spans) == len(out) - len(spans)
        assert sum(n for _, n in spans) == 60  # exactly round(0.3 * 200) tokens removed
        assert out.count(MASK_ID) == len(spans)
        # The kept tokens are the original ones, in order, and the spans don't overlap.
        covered = np.zeros(len(ids), dtype=int)
        for start, n in spans:
            covered[start : start + n] += 1
        assert covered.max() <= 1
        assert [t for t in out if t != MASK_ID] == [t for t, c in zip(ids, covered) if not c]
        span_lengths += [n for _, n in spans[:-1]]  # the last one is cut to fit the budget
        masks.append(len(spans))
    lengths = np.array(span_lengths)
    assert abs(lengths.mean() - 3.0) < 0.15  # Poisson(3): mean 3 ...
    assert abs(lengths.var() - 3.0) < 0.4  # ... and variance 3
    assert 0.03 < (lengths == 0).mean() < 0.07  # P(0) = e^-3 ~ 0.05: inserted masks
    # Span starts are spread over the whole sequence, not bunched at one end.
    starts = np.array([s for _ in range(50) for s, _ in span_mask(ids, rng, return_spans=True)[1]])
    assert 70 < np.median(starts) < 130


def test_shuffle_keeps_every_sentence_and_changes_the_order():
    rng = np.random.default_rng(1)
    sents = [[10 + i] * (i + 1) for i in range(6)]
    orders = set()
    for _ in range(50):
        flat = shuffle_sentences(sents, rng)
        assert sorted(flat) == sorted(t for s in sents for t in s)
        orders.add(tuple(dict.fromkeys(flat)))
    assert len(orders) > 20  # 720 permutations; 50 draws hit many of them


def test_noise_is_reproducible_from_the_seed():
    sents = [[11, 12, 13, 14], [21, 22, 23], [31, 32, 33, 34, 35]]
    a = noise(sents, np.random.default_rng([5, 0, 7]))
    b = noise(sents, np.random.default_rng([5, 0, 7]))
    assert a == b and MASK_ID in a


def test_split_sentences():
    text = 'He said "stop." Then he left! Did she? Yes. e.g.x stays'
    assert split_sentences(text) == [
        'He said "stop."',
        "Then he left!",
        "Did she?",
        "Yes.",
        "e.g.x stays",
    ]


def test_documents_pack_whole_sentences_and_batches_restore_the_text():
    docs = [
        "The cat sat on the mat. It was warm. The dog barked at the door.",
        "One short line",
        "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron.",
    ]
    arrays = encode_documents(docs, WordTokenizer(), max_len=9)
    assert all(length <= 8 for length in arrays.lengths)
    # Sentences of one document are packed while they fit; a long one is cut to 8 ids.
    per_example = [[len(s) for s in arrays.sentences(i)] for i in range(len(arrays))]
    assert per_example == [[6], [3], [6], [3], [8]]
    rng = np.random.default_rng(0)
    src, tgt = arrays.get(0, rng)
    assert list(tgt) == WordTokenizer().encode_batch(["The cat sat on the mat."])[0]
    assert MASK_ID in src and len(src) < len(tgt) + 2
    batch = next(BucketBatcher(arrays, 2, seed=0))
    assert batch["src"].shape[0] == 2 and (batch["tgt_out"] >= 0).all()
