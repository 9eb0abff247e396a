"""GloVe co-occurrence counts against a brute-force count, with and without spilling."""

from __future__ import annotations

from collections import defaultdict

import pytest

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
    if spills:  # a tiny budget forces many sorted runs and the range-wise merge
        assert table.runs > workers
    else:
        assert table.runs == workers
    reopened = load_cooccurrences(tmp_path)
    assert len(reopened) == len(table) and reopened.to_dict() == got


def test_window_must_be_positive(prepared, tmp_path):
    with pytest.raises(ConfigError, match="window"):
        count_cooccurrences(prepared[0], tmp_path, window=0)
