"""GloVe co-occurrence counts against a brute-force count, with and without spilling."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from textdecade.data import cooccurrence
from textdecade.data.cooccurrence import count_cooccurrences, load_cooccurrences
from textdecade.data.words import build_word_data
from textdecade.errors import ConfigError


def brute_force(docs: list[list[int]], window: int) -> dict[tuple[int, int], float]:
    counts: dict[tuple[int, int], float] = defaultdict(float)
    for ids in docs:
        for i in range(len(ids)):
            for d in range(1, window + 1):
                if i + d < len(ids):
                    counts[ids[i], ids[i + d]] += 1.0 / d
                    counts[ids[i + d], ids[i]] += 1.0 / d
    return counts


@pytest.fixture(scope="module")
def prepared(corpus_lines, tmp_path_factory):
    lines = corpus_lines("gensim_lee.txt", 30)
    workdir = tmp_path_factory.mktemp("words")
    data = build_word_data(lines, str.split, workdir, min_count=2)
    ids = data.ids.tolist()
    docs = [ids[a:b] for a, b in zip(data.offsets[:-1], data.offsets[1:])]
    return workdir, docs


@pytest.mark.parametrize(
    ("memory_mb", "workers", "spills"),
    [(64.0, 1, False), (64.0, 2, False), (0.05, 1, True), (0.05, 2, True)],
)
def test_counts_equal_brute_force(prepared, tmp_path, memory_mb, workers, spills):
    workdir, docs = prepared
    window = 5
    ref = brute_force(docs, window)
    table = count_cooccurrences(workdir, tmp_path, window, memory_mb=memory_mb, workers=workers)
    got = table.to_dict()
    assert set(got) == set(ref)
    assert max(abs(got[k] - v) / v for k, v in ref.items()) < 1e-5
    rows, cols = table.rows.tolist(), table.cols.tolist()
    assert list(zip(rows, cols)) == sorted(zip(rows, cols))  # sorted by (row, col)
    # Without spills, each worker writes at most one sorted run and its frequent pairs.
    if spills:  # a tiny budget forces many sorted runs and the range-wise merge
        assert table.runs > 2 * workers
    else:
        assert workers <= table.runs <= 2 * workers
    reopened = load_cooccurrences(tmp_path)
    assert len(reopened) == len(table) and reopened.to_dict() == got


@pytest.fixture(scope="module")
def news(corpus_lines, tmp_path_factory):
    """3,000 lines of real news text, a vocabulary of a few thousand words."""
    workdir = tmp_path_factory.mktemp("news")
    data = build_word_data(corpus_lines("nltk_abc_news.txt", 3000), str.split, workdir, 2)
    ids = data.ids.tolist()
    docs = [ids[a:b] for a, b in zip(data.offsets[:-1], data.offsets[1:])]
    return workdir, brute_force(docs, 8), data.vocab_size


@pytest.mark.parametrize(
    ("memory_mb", "workers", "dense_share"),
    [
        # (V = 4,602 words; the share of pairs that the frequent-pairs table counts)
        (64.0, 1, 0.0),  # every pair sorted
        (64.0, 2, 1 / 16),  # both paths: 64% in the table (262k cells)
        (64.0, 1, 0.9),  # 95% in the table
        (0.5, 2, 0.0),  # sorted, with many spills
        (0.5, 1, 0.3),  # both paths: 35% in the table, with many spills
    ],
)
def test_frequent_pairs_and_sorting_count_as_a_dict(
    news, tmp_path, memory_mb, workers, dense_share
):
    workdir, ref, vocab = news
    table = count_cooccurrences(workdir, tmp_path, 8, memory_mb, workers, dense_share)
    got = table.to_dict()
    assert set(got) == set(ref)
    keys = np.asarray(table.rows, np.int64) * vocab + table.cols
    assert np.all(np.diff(keys) > 0)  # sorted by (row, col), each pair once
    rel = max(abs(got[k] - v) / v for k, v in ref.items())
    # float32 sums (an ulp is 6e-8): the table rounds a float64 sum once, the sort path
    # once per chunk and once per spilled run
    assert rel < (1e-6 if memory_mb > 1 else 2e-6), rel
    if memory_mb < 1:
        assert table.runs > 4 * workers


def test_many_runs_merge_in_groups(news, tmp_path, monkeypatch):
    """More runs than files to open at once: groups of runs merge into longer ones first."""
    monkeypatch.setattr(cooccurrence, "MAX_OPEN_RUNS", 3)
    workdir, ref, _ = news
    table = count_cooccurrences(workdir, tmp_path, 8, 0.5, 1)
    assert table.runs > 9  # two rounds of grouping
    got = table.to_dict()
    assert set(got) == set(ref)
    assert max(abs(got[k] - v) / v for k, v in ref.items()) < 2e-6
    assert not (tmp_path / "cooc_runs").exists()  # spilled runs removed


def test_window_must_be_positive(prepared, tmp_path):
    with pytest.raises(ConfigError, match="window"):
        count_cooccurrences(prepared[0], tmp_path, window=0)
    with pytest.raises(ConfigError, match="dense_share"):
        count_cooccurrences(prepared[0], tmp_path, dense_share=1.0)
