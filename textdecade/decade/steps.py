"""What each step of the decade bought: every family against the one before it, on the
same items (issue #20).

The scorecard keeps each run's per-item outcomes (:func:`textdecade.eval.scorecard.
item_outcomes`); here two neighbours in publication order are compared as ``textdecade
eval compare`` compares two runs (:mod:`textdecade.eval.paired`): homographs on every
instance (both classifiers), analogies on the questions both answered, each a difference
with its 95% interval and a sign-flip p-value. Similarity is left out: its pairs are few
(WS-353's intervals span about 0.2), so a step's difference there rarely decides anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textdecade.decade.naming import run_name
from textdecade.eval.intervals import paired_difference

#: (key of the item outcomes, the table's name for it)
TASKS = (
    ("homograph_probe_accuracy", "homograph probe"),
    ("homograph_accuracy", "homograph centroid"),
    ("analogy", "analogy"),
)
#: A difference whose p-value is below this gets * in the table.
SIGNIFICANT = 0.05


def _outcomes(items: dict[str, Any], other: dict[str, Any], key: str):
    """Both runs' per-item hits on the items they share, and how many those are; None
    where one of them was not scored on ``key`` (or on other items)."""
    if key not in items or key not in other:
        return None
    if key == "analogy":
        a, b = np.frombuffer(items[key].encode(), "S1"), np.frombuffer(other[key].encode(), "S1")
        if len(a) != len(b):
            return None
        both = (a != b"-") & (b != b"-")
        return (a[both] == b"1").astype(float), (b[both] == b"1").astype(float)
    if items.get("homograph_words") != other.get("homograph_words"):
        return None
    a, b = (np.frombuffer(x[key].encode(), "S1") == b"1" for x in (items, other))
    return a.astype(float), b.astype(float)


def step_rows(plan: dict, families: list[str]) -> list[dict[str, Any]]:
    """Per pair of neighbours (seed 0's runs) and task: the later family minus the earlier
    one, in points, with its interval, p-value and item count."""
    rows = []
    for earlier, later in zip(families, families[1:]):
        states = [plan["families"].get(run_name(f, 0), {}) for f in (later, earlier)]
        items = [s.get("scores", {}).get("items") or {} for s in states]
        for key, task in TASKS:
            pair = _outcomes(items[0], items[1], key)
            if pair is None or not len(pair[0]):
                continue
            paired = paired_difference(*pair)
            d = paired.difference
            rows.append(
                {
                    "from": earlier,
                    "to": later,
                    "task": task,
                    "items": paired.n,
                    "difference": d.value,
                    "low": d.low,
                    "high": d.high,
                    "p_value": paired.p_value,
                }
            )
    return rows


def markdown_steps(rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    """The step-by-step table: one line per step and task."""
    lines = [
        "| step | task | items | difference, points [95%] | p |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        star = "*" if r["p_value"] < SIGNIFICANT else ""
        diff = f"{100 * r['difference']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"
        lines.append(
            f"| {names.get(r['from'], r['from'])} → {names.get(r['to'], r['to'])} | "
            f"{r['task']} | {r['items']:,} | {diff}{star} | {r['p_value']:.3f} |"
        )
    return "\n".join(lines)
