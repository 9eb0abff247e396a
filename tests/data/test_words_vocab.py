"""Word vocabulary, pruning, the word-id stream, subsampling and the noise table."""

from __future__ import annotations

import numpy as np
import pytest

from textdecade.data.words import (
    build_word_data,
    keep_probability,
    load_word_data,
    unigram_table,
)
from textdecade.errors import ConfigError, CorpusError

TEXTS = [
    "the cat sat on the mat",
    "",
    "the dog sat on the log",
    "a bird flew over the dog",
]


def test_counts_order_and_stream(tmp_path):
    data = build_word_data(TEXTS, str.split, tmp_path, min_count=2)
    # "the" x5, "sat"/"on"/"dog" x2; ties keep first-occurrence order.
    assert data.words == ["the", "sat", "on", "dog"]
    assert data.counts.tolist() == [5, 2, 2, 2]
    assert data.total_words == 18
    # Pruned words vanish from the stream; the empty line gives no document.
    ids = np.asarray(data.ids).tolist()
    docs = [ids[a:b] for a, b in zip(data.offsets[:-1], data.offsets[1:])]
    assert docs == [[0, 1, 2, 0], [0, 3, 1, 2, 0], [0, 3]]  # "a bird flew over" pruned
    assert data.doc_of(0, len(data)).tolist() == [0] * 4 + [1] * 5 + [2] * 2
    again = load_word_data(tmp_path)
    assert again.words == data.words and np.array_equal(again.ids, data.ids)


def test_max_vocab_size_keeps_most_frequent(tmp_path):
    data = build_word_data(TEXTS, str.split, tmp_path, min_count=1, max_vocab_size=2)
    assert data.words == ["the", "sat"]
    assert set(np.asarray(data.ids).tolist()) == {0, 1}


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="min_count"):
        build_word_data(TEXTS, str.split, tmp_path, min_count=50)
    with pytest.raises(CorpusError, match="no words"):
        build_word_data(["", "   "], str.split, tmp_path)
    with pytest.raises(ConfigError, match="min_count"):
        build_word_data(TEXTS, str.split, tmp_path, min_count=0)


def test_keep_probability_is_word2vec_c_formula():
    counts = np.array([1000, 100, 10, 1])
    sample = 1e-2
    t = sample * counts.sum()
    prob = keep_probability(counts, sample)
    for c, p in zip(counts, prob):
        assert p == pytest.approx(min(1.0, (np.sqrt(c / t) + 1) * t / c), rel=1e-6)
    assert prob[0] < 0.5 and prob[-1] == 1.0  # frequent words are dropped more
    assert np.all(keep_probability(counts, 0.0) == 1.0)


def test_unigram_table_follows_count_power():
    counts = np.array([800, 100, 50, 1])
    table = unigram_table(counts, size=1_000_000)
    freq = np.bincount(table, minlength=4) / table.size
    expected = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(freq, expected, atol=2e-5)
