"""The bootstrap against scipy and closed forms; paired tests find what is planted, no more."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from textdecade.errors import UserError
from textdecade.eval import intervals as iv
from textdecade.eval.report import compare


def test_mean_interval_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(3).exponential(size=150)  # skewed: percentiles matter
    ours = iv.bootstrap(x, n_resamples=4000)
    theirs = stats.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=4000, random_state=0
    ).confidence_interval
    se = x.std(ddof=1) / np.sqrt(len(x))
    # Two Monte-Carlo estimates of the same percentiles: equal within a tenth of an SE.
    assert ours.low == pytest.approx(theirs.low, abs=0.1 * se)
    assert ours.high == pytest.approx(theirs.high, abs=0.1 * se)
    assert ours.value == pytest.approx(x.mean()) and ours.level == 0.95


def test_spearman_interval_matches_scipy_recomputing_the_statistic():
    rng = np.random.default_rng(4)
    gold = rng.normal(size=120)
    model = gold + rng.normal(scale=1.5, size=120)
    ours = iv.bootstrap((gold, model), iv.spearman, n_resamples=3000)
    assert ours.value == pytest.approx(stats.spearmanr(gold, model).statistic)
    theirs = stats.bootstrap(
        (gold, model),
        lambda a, b: stats.spearmanr(a, b).statistic,
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=3000,
        random_state=0,
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.02)
    assert ours.high == pytest.approx(theirs.high, abs=0.02)


def test_large_sample_mean_matches_the_normal_approximation():
    x = np.random.default_rng(5).normal(loc=2.0, scale=3.0, size=20000)
    ours = iv.bootstrap(x, n_resamples=2000)
    half = 1.959964 * x.std(ddof=1) / np.sqrt(len(x))
    assert ours.low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert ours.high == pytest.approx(x.mean() + half, abs=0.1 * half)
    acc = (np.random.default_rng(6).random(5000) < 0.3).astype(float)  # a proportion
    ci = iv.bootstrap(acc, level=0.9)
    half = 1.644854 * np.sqrt(acc.mean() * (1 - acc.mean()) / len(acc))
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.1)


def test_vectorised_statistics_equal_their_references():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(7)
    gold = rng.integers(0, 3, 90)
    pred = np.where(rng.random(90) < 0.6, gold, rng.integers(0, 4, 90))
    f1 = f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert iv.macro_f1(gold[None], pred[None])[0] == pytest.approx(f1)
    x, y = rng.normal(size=(2, 50))
    assert iv.pearson(x[None], y[None])[0] == pytest.approx(stats.pearsonr(x, y).statistic)
    num, den = rng.random(10), rng.integers(1, 9, 10)
    assert iv.ratio(num[None], den[None])[0] == pytest.approx(num.sum() / den.sum())


def test_fixed_seed_reruns_give_identical_intervals():
    x = np.random.default_rng(8).random(300)
    assert iv.bootstrap(x) == iv.bootstrap(x)
    assert iv.bootstrap(x, seed=1) != iv.bootstrap(x, seed=2)
    a, b = x > 0.4, x > 0.5
    assert iv.paired_difference(a, b) == iv.paired_difference(a, b)


def test_paired_test_finds_a_planted_difference_and_not_identical_systems():
    rng = np.random.default_rng(9)
    hard = rng.random(400)  # shared item difficulty: what pairing cancels
    a = (hard < 0.6).astype(float)
    b = ((hard < 0.6) & (rng.random(400) > 0.15)).astype(float)  # A minus ~9 points
    for method in ("permutation", "bootstrap"):
        found = iv.paired_difference(a, b, method=method)
        assert found.p_value < 0.01 and found.difference.low > 0, method
        same = iv.paired_difference(a, a, method=method)
        assert same.p_value == 1.0 and same.difference.contains(0.0), method
    # a statistic that is not a mean: Spearman of the same pairs, recomputed
    gold = rng.normal(size=200)
    good, noisy = gold + rng.normal(scale=0.5, size=200), gold + rng.normal(scale=3, size=200)
    diff = iv.paired_difference((gold, good), (gold, noisy), iv.spearman)
    assert diff.method == "paired bootstrap" and diff.p_value < 0.01
    assert iv.paired_difference((gold, good), (gold, good), iv.spearman).p_value == 1.0
    assert json.loads(json.dumps(diff.to_dict()))["difference"]["value"] > 0


def test_format_json_and_levels():
    ci = iv.Interval(0.328, 0.319, 0.337, 0.95)
    assert ci.format(100) == "32.8 [31.9, 33.7]"
    assert ci.to_dict() == {"value": 0.328, "low": 0.319, "high": 0.337, "level": 0.95}
    assert ci.map(lambda v: 2 * v).high == pytest.approx(0.674)
    for bad in (1.0, 1.5, -0.1, "x"):
        with pytest.raises(UserError, match=r"confidence level must be"):
            iv.check_level(bad)
    assert iv.check_level(0) == 0.0
    with pytest.raises(UserError, match="no items"):
        iv.bootstrap(np.array([]))


class _Flat:
    def __init__(self, d):
        self.d = d

    def summary(self):
        return self.d

    def to_dict(self):
        return self.d


def test_side_by_side_table_joins_interval_columns():
    row = {"acc": 0.5, "acc low": 0.4, "acc high": 0.6, "coverage": 0.9}
    table = compare({"m": _Flat(row)})
    assert "0.5000 [0.4000, 0.6000]" in table and "acc low" not in table
    assert "acc low" in compare({"m": _Flat(row)}, "csv")
