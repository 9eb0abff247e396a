"""The dense table of frequent pairs: its region, and its counts against a dict count."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from textdecade.data.frequent_pairs import FrequentPairs


@pytest.mark.parametrize(("vocab", "cells"), [(50, 0), (50, 7), (300, 2_000), (40, 10_000)])
def test_region_is_the_largest_symmetric_hyperbola_that_fits(vocab, cells):
    table = FrequentPairs(vocab, cells)
    assert table.table.size == table.lengths.sum() <= cells
    assert np.all(np.diff(table.lengths) <= 0)
    inside = np.arange(vocab)[None, :] < table.lengths[:, None]  # [a, b]: b < lengths[a]
    assert np.array_equal(inside, inside.T)  # (a, b) in the region iff (b, a) is
    if cells >= vocab * vocab:
        assert inside.all()
    else:  # the next hyperbola would not fit: it is the largest
        p, ranks = table.max_product, np.arange(1, vocab + 1)
        assert np.array_equal(inside, np.outer(ranks, ranks) <= p)  # (a + 1)(b + 1) <= P
        assert np.array_equal(table.lengths, np.minimum(vocab, p // ranks))
        assert np.minimum(vocab, (p + 1) // ranks).sum() > cells


def test_spill_adds_the_transpose_in_row_col_order(tmp_path):
    rng = np.random.default_rng(0)
    vocab = 60
    table = FrequentPairs(vocab, 900)
    ref: dict[tuple[int, int], float] = defaultdict(float)
    a = rng.integers(0, 20, 5_000)
    b = rng.integers(0, vocab, 5_000)
    keep = b < table.lengths[a]
    a, b = a[keep], b[keep]
    w = rng.random(a.size)
    np.add.at(table.table, table.offsets[a] + b, w)
    for i, j, x in zip(a.tolist(), b.tolist(), w.tolist()):
        ref[i, j] += x
        ref[j, i] += x
    table.spill(tmp_path / "run", block=37)  # blocks of whole rows, smaller than a row
    keys = np.fromfile(tmp_path / "run.keys", dtype=np.int64)
    vals = np.fromfile(tmp_path / "run.vals", dtype=np.float32)
    assert np.all(np.diff(keys) > 0)
    got = {(int(k) // vocab, int(k) % vocab): float(v) for k, v in zip(keys, vals)}
    assert set(got) == set(ref)
    assert max(abs(got[k] - v) / v for k, v in ref.items()) < 1e-6
