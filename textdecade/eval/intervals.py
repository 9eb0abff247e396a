"""Confidence intervals and paired comparisons: the percentile bootstrap over items.

Every score of the suite is a statistic of items (analogy questions, word pairs, sense
instances, WiC pairs, evaluation batches, sentences). :func:`bootstrap` resamples the items
with replacement ``n_resamples`` times and takes the percentiles of the recomputed
statistic (Efron & Tibshirani 1993, ch. 13); :func:`paired_difference` resamples the *same*
items for two systems and tests their difference (Koehn 2004, "Statistical significance
tests for machine translation evaluation"), or flips the signs of per-item differences (a
paired permutation test) when the score is a mean of per-item values.

Statistics are vectorised: a statistic receives its item arrays with a leading resample
axis, shape ``(R, n, ...)``, and returns ``(R,)``. :func:`mean`, :func:`spearman`,
:func:`pearson`, :func:`macro_f1` and :func:`ratio` are the ones the suite needs; a
statistic that is not a mean (Spearman, macro-F1, corpus BLEU) is recomputed on each
resample. The resampling seed is fixed, so a rerun prints the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from textdecade.errors import UserError

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_RESAMPLES",
    "Interval",
    "PairedDifference",
    "bootstrap",
    "bootstrap_groups",
    "check_level",
    "macro_f1",
    "mean",
    "paired_difference",
    "pearson",
    "ratio",
    "spearman",
]

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
SEED = 20130116  # fixed: reruns print the same interval (word2vec's arXiv date)
_CHUNK_CELLS = 4_000_000  # resampled item indices held at once (memory, not results)

Statistic = Callable[..., np.ndarray]


def check_level(level: float) -> float:
    """``level`` as a float in [0, 1) (0 turns intervals off); a one-line error otherwise."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise UserError(f"confidence level must be a number in [0, 1) (got {level!r})") from None
    if not 0.0 <= value < 1.0:
        raise UserError(
            f"confidence level must be in [0, 1), e.g. 0.95; 0 turns intervals off (got {level})"
        )
    return value


@dataclass(frozen=True)
class Interval:
    """A score and its percentile-bootstrap confidence interval.

    Attributes:
        value: the score on all items.
        low, high: the interval's bounds.
        level: its confidence level (0.95 is a 95% interval).
    """

    value: float
    low: float
    high: float
    level: float

    def format(self, scale: float = 1.0, digits: int = 1) -> str:
        """``value [low, high]`` with each number times ``scale`` (100 for percentages)."""
        v, lo, hi = (scale * x for x in (self.value, self.low, self.high))
        return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, float]:
        """``{"value", "low", "high", "level"}`` (for JSON)."""
        return {"value": self.value, "low": self.low, "high": self.high, "level": self.level}

    def map(self, fn: Callable[[float], float]) -> Interval:
        """The interval of an increasing function of the score (exp of a loss: perplexity)."""
        return Interval(fn(self.value), fn(self.low), fn(self.high), self.level)

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies in [low, high]."""
        return self.low <= x <= self.high


@dataclass(frozen=True)
class PairedDifference:
    """System A minus system B on the same items.

    Attributes:
        difference: A's score minus B's, with its paired-bootstrap interval.
        p_value: two-sided p-value of "no difference".
        n: items compared.
        method: ``"paired bootstrap"`` or ``"sign-flip permutation"``.
        a, b: each system's own score (and interval) on these items.
    """

    difference: Interval
    p_value: float
    n: int
    method: str
    a: Interval
    b: Interval

    def to_dict(self) -> dict:
        """JSON-able dict of every number."""
        return {
            "difference": self.difference.to_dict(),
            "p_value": self.p_value,
            "n": self.n,
            "method": self.method,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
        }


# ----------------------------------------------------------------------------- statistics
def mean(x: np.ndarray) -> np.ndarray:
    """Mean of per-item values: (R, n) -> (R,)."""
    return x.mean(axis=1)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Sum of ``num`` over sum of ``den`` (a loss per token from per-batch sums): (R,)."""
    return num.sum(axis=1) / den.sum(axis=1)


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r of (R, n) arrays (NaN where a row is constant)."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rho: Pearson r of the average ranks, as ``scipy.stats.spearmanr``."""
    from scipy.stats import rankdata

    return pearson(rankdata(x, axis=1), rankdata(y, axis=1))


def macro_f1(gold: np.ndarray, pred: np.ndarray, labels: Sequence[int] | None = None):
    """Row-wise macro-F1 of integer labels (R, n), over ``labels`` (default: those in gold
    on all items, as the suite scores them); a class with no support and no prediction
    scores 0, as scikit-learn's ``zero_division=0``."""
    classes = np.unique(gold) if labels is None else np.asarray(labels)
    f1 = np.zeros((gold.shape[0], len(classes)))
    for j, c in enumerate(classes):
        g, p = gold == c, pred == c
        tp = (g & p).sum(axis=1)
        denom = g.sum(axis=1) + p.sum(axis=1)  # 2 tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):
            f1[:, j] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return f1.mean(axis=1)


# ------------------------------------------------------------------------------ resampling
def _as_items(items) -> tuple[np.ndarray, ...]:
    arrays = items if isinstance(items, tuple) else (items,)
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if n == 0:
        raise UserError("no items to resample: an interval needs at least one")
    if any(len(a) != n for a in arrays):
        raise ValueError(f"item arrays differ in length: {[len(a) for a in arrays]}")
    return arrays


def _resamples(n: int, n_resamples: int, seed: int):
    """Chunks of (r, n) item indices, the same for a given (n, n_resamples, seed)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_resamples:
        r = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(r, n))
        done += r


def _distribution(arrays, statistic: Statistic, n_resamples: int, seed: int) -> np.ndarray:
    """The statistic on each resample: (n_resamples,)."""
    out = [
        np.asarray(statistic(*(a[idx] for a in arrays)), dtype=np.float64)
        for idx in _resamples(len(arrays[0]), n_resamples, seed)
    ]
    return np.concatenate(out)


def _point(arrays, statistic: Statistic) -> float:
    return float(np.asarray(statistic(*(a[None] for a in arrays)))[0])


def _percentiles(dist: np.ndarray, value: float, level: float) -> Interval:
    finite = dist[np.isfinite(dist)]
    if not len(finite):
        return Interval(value, float("nan"), float("nan"), level)
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(low), float(high), level)


def bootstrap(
    items,
    statistic: Statistic = mean,
    *,
    level: float = DEFAULT_LEVEL,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Percentile-bootstrap interval of ``statistic`` over items.

    Args:
        items: an array with the items on dim 0, or a tuple of such arrays (resampled
            together: e.g. gold and model scores of the same word pairs).
        statistic: vectorised, (R, n, ...) arrays -> (R,); default :func:`mean`.
        level: confidence level in (0, 1).
        n_resamples: bootstrap resamples.
        seed: the resampling seed (fixed by default: reruns give the same interval).

    Returns:
        An :class:`Interval` around the statistic of all items.
    """
    if not 0.0 < level < 1.0:
        check_level(level)
        raise UserError("a confidence level of 0 asks for no interval")
    arrays = _as_items(items)
    value = _point(arrays, statistic)
    return _percentiles(_distribution(arrays, statistic, n_resamples, seed), value, level)


def bootstrap_groups(
    groups: Sequence,
    statistic: Statistic | Sequence[Statistic] = mean,
    weights: Sequence[float] | None = None,
    *,
    level: float = DEFAULT_LEVEL,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Interval of a weighted mean over groups of a per-group statistic, resampling items
    within each group (a stratified bootstrap: each group keeps its size).

    The overall macro-F1 of the homograph suite (the mean over words of each word's
    macro-F1) is ``bootstrap_groups(words, macro_f1)``; its overall accuracy, pooled over
    instances, is ``bootstrap_groups(words, mean, weights=sizes)``.

    Args:
        groups: one item array (or tuple of arrays) per group.
        statistic: vectorised, as for :func:`bootstrap`; or one per group (each word's
            macro-F1 over its own senses).
        weights: one per group (default: equal).
    """
    if not 0.0 < level < 1.0:
        check_level(level)
        raise UserError("a confidence level of 0 asks for no interval")
    w = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    stats = [statistic] * len(groups) if callable(statistic) else list(statistic)
    value, dist = 0.0, np.zeros(n_resamples)
    for g, (items, stat, weight) in enumerate(zip(groups, stats, w)):
        arrays = _as_items(items)
        value += weight * _point(arrays, stat)
        dist += weight * _distribution(arrays, stat, n_resamples, seed + g)
    # Divided once at the end: weights normalised first summed to 1 + 1e-15, and an
    # accuracy of 1.0 got an interval just above it.
    return _percentiles(dist / w.sum(), float(value / w.sum()), level)


def paired_difference(
    a_items,
    b_items,
    statistic: Statistic = mean,
    *,
    level: float = DEFAULT_LEVEL,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = SEED,
    method: str = "auto",
) -> PairedDifference:
    """A minus B on the same items: the difference, its interval and a two-sided p-value.

    Both systems are resampled with the same item indices, so what they share (easy and
    hard items) cancels. The interval is the percentile bootstrap of the difference. The
    p-value is the paired bootstrap's (the share of resampled differences at least as far
    from the observed one as the observed one is from 0; Koehn 2004) or, with ``method=
    "permutation"`` (the default for :func:`mean`, per-item scores), a sign-flip test:
    each item's difference keeps or flips its sign at random. Both use (1 + k) / (1 + R).
    Identical systems get p = 1.

    Args:
        a_items, b_items: the two systems' items (arrays or tuples of arrays, as for
            :func:`bootstrap`), aligned item by item.
        statistic: vectorised statistic, default :func:`mean`.
        method: ``"auto"``, ``"bootstrap"`` or ``"permutation"`` (means only).
    """
    a, b = _as_items(a_items), _as_items(b_items)
    if len(a[0]) != len(b[0]):
        raise UserError(f"paired items differ in number: {len(a[0])} and {len(b[0])}")
    if method == "auto":
        method = "permutation" if statistic is mean else "bootstrap"
    if method not in ("bootstrap", "permutation"):
        raise ValueError(f"unknown method {method!r}: use bootstrap or permutation")
    if method == "permutation" and (statistic is not mean or len(a) != 1):
        raise ValueError("the sign-flip test is for means of per-item scores")
    level = level if 0.0 < level < 1.0 else DEFAULT_LEVEL
    n = len(a[0])
    da = _distribution(a, statistic, n_resamples, seed)
    db = _distribution(b, statistic, n_resamples, seed)  # same seed: the same indices
    va, vb = _point(a, statistic), _point(b, statistic)
    observed = va - vb
    diff = _percentiles(da - db, observed, level)
    if method == "bootstrap":
        centred = (da - db) - observed  # the difference's spread around 0 under H0
        k = int(np.sum(np.abs(centred) >= abs(observed) - 1e-12))
        label = "paired bootstrap"
    else:
        d = a[0].astype(np.float64) - b[0].astype(np.float64)  # (n,) per-item differences
        rng = np.random.default_rng(seed + 1)
        chunk, k = max(1, _CHUNK_CELLS // n), 0
        for start in range(0, n_resamples, chunk):
            r = min(chunk, n_resamples - start)
            signs = rng.integers(0, 2, size=(r, n)) * 2 - 1  # (r, n) of +-1
            k += int(np.sum(np.abs((signs * d).mean(axis=1)) >= abs(observed) - 1e-12))
        label = "sign-flip permutation"
    p = (1 + k) / (1 + n_resamples)
    return PairedDifference(
        diff,
        float(min(1.0, p)),
        n,
        label,
        _percentiles(da, va, level),
        _percentiles(db, vb, level),
    )
