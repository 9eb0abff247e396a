"""Homograph scores: per word and overall, beside the most-frequent-sense (MFS) baseline.

:class:`WordScore` keeps each evaluated instance's gold and predicted senses, so every
accuracy and macro-F1 (model, MFS, probe; per word and overall) carries a percentile-
bootstrap interval resampling instances (test sentences, or all of them leave-one-out);
the overall ones resample within each word, which keeps its size, as the overall scores
weigh words. :func:`mfs_difference` is the paired test against the baseline on the same
instances. Scoring itself is in :mod:`~textdecade.eval.homograph`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from textdecade.eval.intervals import (
    Interval,
    PairedDifference,
    bootstrap,
    bootstrap_groups,
    macro_f1,
    mean,
    paired_difference,
)
from textdecade.eval.report import format_table, interval_dict, summary_interval, table_row

__all__ = ["HomographResult", "WordScore", "mfs_difference"]


@dataclass
class WordScore:
    """Scores of one word: the model beside the most-frequent-sense baseline."""

    word: str
    n: int
    senses: int
    accuracy: float
    macro_f1: float
    mfs_accuracy: float
    mfs_macro_f1: float
    probe_accuracy: float | None = None
    #: Per evaluated instance: gold sense, nearest-centroid and probe predictions (ids
    #: into the word's senses, most frequent first: the MFS baseline predicts 0).
    gold: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    pred: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    probe_pred: np.ndarray | None = field(default=None, repr=False)
    intervals: dict[str, Interval] = field(default_factory=dict, repr=False)

    _SCORES = ("accuracy", "macro_f1", "mfs_accuracy", "mfs_macro_f1", "probe_accuracy")

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        keys = ("word", "n", "senses", *self._SCORES)
        return {k: getattr(self, k) for k in keys} | interval_dict(self.intervals)

    def correct(self, which: str = "accuracy") -> np.ndarray:
        """Per instance, 1.0 where ``which`` ("accuracy", "mfs_accuracy", "probe_accuracy")
        got the sense right."""
        pred = {"accuracy": self.pred, "mfs_accuracy": np.zeros_like(self.gold)}.get(
            which, self.probe_pred
        )
        return (pred == self.gold).astype(np.float64)

    def _statistic(self, name: str):
        """(items, statistic) of one score, for the bootstrap."""
        labels = np.unique(self.gold)
        f1 = lambda g, p: macro_f1(g, p, labels)  # noqa: E731
        if name == "macro_f1":
            return (self.gold, self.pred), f1
        if name == "mfs_macro_f1":
            return (self.gold, np.zeros_like(self.gold)), f1
        return self.correct(name), mean

    def add_intervals(self, level: float) -> None:
        """An interval on each score, resampling this word's evaluated instances."""
        if not self.n:
            return
        for name in self._SCORES:
            if name == "probe_accuracy" and self.probe_pred is None:
                continue
            items, stat = self._statistic(name)
            self.intervals[name] = bootstrap(items, stat, level=level)


@dataclass
class HomographResult:
    """Per-word and overall sense-separation scores."""

    data: str
    layers: str
    protocol: str  # "train/test" or "leave-one-out"
    words: list[WordScore] = field(default_factory=list)
    intervals: dict[str, Interval] = field(default_factory=dict, repr=False)

    @property
    def accuracy(self) -> float:
        """Accuracy over all evaluated instances."""
        return _weighted(self.words, "accuracy")

    @property
    def mfs_accuracy(self) -> float:
        """The most-frequent-sense baseline's accuracy over all instances."""
        return _weighted(self.words, "mfs_accuracy")

    @property
    def probe_accuracy(self) -> float | None:
        """The linear probe's accuracy over all instances (None unless it was run)."""
        if not self.words or any(w.probe_accuracy is None for w in self.words):
            return None
        return _weighted(self.words, "probe_accuracy")

    @property
    def macro_f1(self) -> float:
        """Mean over words of the per-word macro-F1."""
        return float(np.mean([w.macro_f1 for w in self.words]))

    @property
    def mfs_macro_f1(self) -> float:
        """Mean over words of the MFS baseline's macro-F1."""
        return float(np.mean([w.mfs_macro_f1 for w in self.words]))

    def add_intervals(self, level: float) -> None:
        """Intervals per word and overall (resampling instances within each word)."""
        for w in self.words:
            w.add_intervals(level)
        words = [w for w in self.words if w.n]  # a word with no instance has no score
        sizes = [w.n for w in words]
        for name in WordScore._SCORES:
            if not words or (name == "probe_accuracy" and self.probe_accuracy is None):
                continue
            parts = [w._statistic(name) for w in words]
            weights = sizes if name in ("accuracy", "mfs_accuracy", "probe_accuracy") else None
            self.intervals[name] = bootstrap_groups(
                [items for items, _ in parts], [stat for _, stat in parts], weights, level=level
            )

    def summary(self) -> dict:
        """Headline metrics for one row of a side-by-side table (:func:`report.compare`)."""
        out: dict = {}
        for key, name in (
            ("homograph acc", "accuracy"),
            ("homograph MFS acc", "mfs_accuracy"),
            ("homograph macro-F1", "macro_f1"),
            ("homograph probe acc", "probe_accuracy"),
        ):
            if getattr(self, name) is not None:
                out[key] = getattr(self, name)
                summary_interval(out, key, self.intervals.get(name))
        return out

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        return {
            "task": "homograph",
            "data": self.data,
            "layers": self.layers,
            "protocol": self.protocol,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "mfs_accuracy": self.mfs_accuracy,
            "mfs_macro_f1": self.mfs_macro_f1,
            "probe_accuracy": self.probe_accuracy,
            **interval_dict(self.intervals),
            "words": [w.to_dict() for w in self.words],
        }

    def format(self) -> str:
        """A readable Markdown table (for ``--format table``)."""
        rows = [table_row(w.to_dict(), w.intervals) for w in self.words]
        overall = {
            "word": "overall",
            "n": sum(w.n for w in self.words),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "mfs_accuracy": self.mfs_accuracy,
            "mfs_macro_f1": self.mfs_macro_f1,
            "probe_accuracy": self.probe_accuracy,
        }
        rows.append(table_row(overall, self.intervals))
        cols = ["word", "n", "senses", "accuracy", "macro_f1", "mfs_accuracy", "mfs_macro_f1"]
        head = (
            f"Homographs on {self.data} ({self.protocol}, layers={self.layers}): accuracy "
            f"{self._pct('accuracy')} vs most-frequent-sense {self._pct('mfs_accuracy')}"
        )
        if self.probe_accuracy is not None:
            cols.append("probe_accuracy")
            head += f"; linear probe {self._pct('probe_accuracy')}"
        return head + "\n\n" + format_table(rows, cols)

    def _pct(self, name: str) -> str:
        ci = self.intervals.get(name)
        return f"{100 * getattr(self, name):.1f}%" if ci is None else f"{ci.format(100)}%"


def mfs_difference(result: HomographResult, which: str = "accuracy", **kw) -> PairedDifference:
    """``which`` (the nearest centroid's or the probe's accuracy) minus the most-frequent-
    sense baseline on the same instances: the difference, its interval and the paired
    sign-flip p-value, pooled over every evaluated instance."""
    a = np.concatenate([w.correct(which) for w in result.words])
    b = np.concatenate([w.correct("mfs_accuracy") for w in result.words])
    return paired_difference(a, b, **kw)


def _weighted(words: list[WordScore], attr: str) -> float:
    total = sum(w.n for w in words)
    return sum(getattr(w, attr) * w.n for w in words) / total if total else 0.0
