"""Two models on the same items: the difference, its interval and a paired p-value.

``textdecade eval compare RUN_A RUN_B --task ...`` scores both models with the suite and
hands the two results here. The items are aligned first, and a comparison on items that
differ is refused with one line saying how:

- **analogy**: a question counts only when *both* models answered it (vocabulary coverage
  differs between models, and with it the answered questions); the comparison says how
  many questions that is of how many each answered, and is refused when none is shared.
  Accuracy on that intersection, sign-flip test.
- **similarity**: per set, the pairs both models had in vocabulary (said likewise);
  Spearman rho recomputed on each resample, paired bootstrap.
- **homograph**: the same words with the same instances and gold senses (same data and
  caps), else refused; nearest-centroid accuracy over every instance, sign-flip test.
- **wic**: the same test pairs, else refused; accuracy, sign-flip test.
- **bleu**: the same references, else refused; corpus BLEU recomputed by sacrebleu on each
  resample of sentences, paired bootstrap (Koehn 2004).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textdecade.errors import UserError
from textdecade.eval.intervals import DEFAULT_LEVEL, PairedDifference, paired_difference, spearman

__all__ = ["TASKS", "Comparison", "Row", "compare_results"]

TASKS = ("homograph", "analogy", "similarity", "wic", "bleu")


@dataclass
class Row:
    """One compared score: what it is, on which items, and the paired result."""

    score: str  # e.g. "accuracy", "wordsim353.tsv spearman"
    items: str  # e.g. "812 questions answered by both (A 900, B 850, of 19544)"
    paired: PairedDifference
    scale: float = 100.0  # shown in points (percentages) unless 1 (correlations, BLEU)


@dataclass
class Comparison:
    """A minus B on a task (``format()``, ``to_dict()``, ``summary()`` as every result)."""

    task: str
    a: str
    b: str
    level: float  # 0: intervals off (the p-value stays)
    rows: list[Row] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Flat: per score, the difference, its bounds and the p-value."""
        out: dict[str, Any] = {}
        for r in self.rows:
            out[f"{r.score} A-B"] = r.paired.difference.value
            if self.level:
                out[f"{r.score} A-B low"] = r.paired.difference.low
                out[f"{r.score} A-B high"] = r.paired.difference.high
            out[f"{r.score} p"] = r.paired.p_value
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every number (for ``--format json``)."""
        rows = []
        for r in self.rows:
            d = r.paired.to_dict()
            if not self.level:
                for key in ("difference", "a", "b"):
                    d[key] = {"value": d[key]["value"]}
            rows.append({"score": r.score, "items": r.items, **d})
        return {"task": self.task, "a": self.a, "b": self.b, "level": self.level, "rows": rows}

    def _num(self, interval, scale: float, sign: bool = False) -> str:
        digits = 1 if scale == 100 else 3 if scale == 1 and abs(interval.value) <= 1 else 2
        value = f"{scale * interval.value:{'+' if sign else ''}.{digits}f}"
        if not self.level:
            return value
        return f"{value} [{scale * interval.low:.{digits}f}, {scale * interval.high:.{digits}f}]"

    def format(self) -> str:
        """One block per score: both scores, A - B with its interval, the p-value."""
        level = f", {100 * self.level:g}% intervals" if self.level else ""
        lines = [f"Compare ({self.task}{level}): A = {self.a}, B = {self.b}"]
        for r in self.rows:
            p = r.paired
            unit = " points" if r.scale == 100 else ""
            lines += [
                "",
                f"{r.score} on {r.items}",
                f"  A      {self._num(p.a, r.scale)}",
                f"  B      {self._num(p.b, r.scale)}",
                f"  A - B  {self._num(p.difference, r.scale, sign=True)}{unit}, "
                f"p = {p.p_value:.4g} ({p.method}, {p.n} items)",
            ]
        return "\n".join(lines)


def _differ(what: str) -> UserError:
    return UserError(f"the two runs were scored on different items: {what}; cannot pair them")


def _analogy(a, b, kw) -> list[Row]:
    common, ia, ib = np.intersect1d(a.answered_index, b.answered_index, return_indices=True)
    if a.total.total != b.total.total:
        raise _differ(f"{a.total.total} and {b.total.total} analogy questions")
    if not len(common):
        raise _differ("no analogy question was answered by both (vocabulary coverage)")
    items = (
        f"{len(common)} questions answered by both "
        f"(A {len(a.answered_index)}, B {len(b.answered_index)}, of {a.total.total})"
    )
    paired = paired_difference(a.hits[ia].astype(float), b.hits[ib].astype(float), **kw)
    return [Row(f"analogy {a.method} accuracy", items, paired)]


def _similarity(a, b, kw) -> list[Row]:
    if [s.name for s in a.sets] != [s.name for s in b.sets]:
        raise _differ(f"similarity sets {[s.name for s in a.sets]} and {[s.name for s in b.sets]}")
    rows = []
    for sa, sb in zip(a.sets, b.sets):
        common, ia, ib = np.intersect1d(sa.lines, sb.lines, return_indices=True)
        if len(common) < 3:
            raise _differ(f"{sa.name}: {len(common)} pairs in both vocabularies (need 3)")
        items = f"{len(common)} pairs of {sa.name} in both vocabularies (A {sa.used}, B {sb.used}, of {sa.total})"
        gold = sa.gold[ia]
        paired = paired_difference((gold, sa.model[ia]), (gold, sb.model[ib]), spearman, **kw)
        rows.append(Row(f"{sa.name} spearman", items, paired, scale=1.0))
    return rows


def _homograph(a, b, kw) -> list[Row]:
    if a.data != b.data or [w.word for w in a.words] != [w.word for w in b.words]:
        raise _differ(
            f"homograph data {a.data} ({len(a.words)} words) and {b.data} ({len(b.words)})"
        )
    for wa, wb in zip(a.words, b.words):
        if wa.n != wb.n or not np.array_equal(wa.gold, wb.gold):
            raise _differ(f"{wa.word!r} has {wa.n} and {wb.n} instances or other gold senses")
    ca = np.concatenate([w.correct("accuracy") for w in a.words])
    cb = np.concatenate([w.correct("accuracy") for w in b.words])
    items = f"{len(ca)} instances of {len(a.words)} words ({a.data}, {a.protocol})"
    return [Row("homograph accuracy", items, paired_difference(ca, cb, **kw))]


def _wic(a, b, kw) -> list[Row]:
    if a.data != b.data or a.n != b.n:
        raise _differ(f"WiC test files {a.data} ({a.n} pairs) and {b.data} ({b.n})")
    items = f"{a.n} test pairs of {a.data}"
    return [Row("WiC accuracy", items, paired_difference(a.correct, b.correct, **kw))]


def _bleu(a, b, kw) -> list[Row]:
    from textdecade.eval.bleu import bleu_statistic

    if a.n != b.n or a.signature != b.signature:
        raise _differ(f"BLEU of {a.n} and {b.n} sentences ({a.signature} vs {b.signature})")
    # stats columns hold the reference lengths too: equal references give equal columns
    if not np.array_equal(a.stats[:, 1], b.stats[:, 1]):
        raise _differ("BLEU against different references")
    paired = paired_difference(a.stats, b.stats, bleu_statistic(), **kw)
    return [Row("BLEU", f"{a.n} sentences", paired, scale=1.0)]


_PAIRS = {
    "analogy": _analogy,
    "similarity": _similarity,
    "homograph": _homograph,
    "wic": _wic,
    "bleu": _bleu,
}


def compare_results(
    task: str,
    a: Any,
    b: Any,
    names: tuple[str, str] = ("A", "B"),
    level: float = DEFAULT_LEVEL,
    n_resamples: int | None = None,
) -> Comparison:
    """Pair two results of ``task`` on the same items (see the module docstring).

    Args:
        task: one of :data:`TASKS`.
        a, b: the two models' results of that task.
        names: how to call them.
        level: confidence level of the intervals (0: only the difference and p-value).
        n_resamples: resamples (default: the bootstrap's).

    Raises:
        UserError: the items differ (said how), or the task is unknown.
    """
    if task not in _PAIRS:
        raise UserError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    kw: dict[str, Any] = {"level": level or DEFAULT_LEVEL}
    if n_resamples is not None:
        kw["n_resamples"] = n_resamples
    return Comparison(task, names[0], names[1], level, _PAIRS[task](a, b, kw))
