"""Result tables: Markdown, CSV and JSON; one row per model, coverage beside accuracy.

Every result object of the suite (:class:`~textdecade.eval.analogy.AnalogyResult`,
:class:`~textdecade.eval.similarity.SimilarityResult`,
:class:`~textdecade.eval.homograph.HomographResult`, ...) has ``summary()`` (a flat dict of
its headline metrics, e.g. ``{"analogy accuracy": 0.41, "analogy coverage": 0.93}``),
``to_dict()`` and ``format()``. :func:`compare` puts several models side by side.

Scores carry their confidence intervals (:class:`~textdecade.eval.intervals.Interval`): a
table cell shows ``value [low, high]``, ``to_dict()`` adds ``"intervals": {name: {"value",
"low", "high", "level"}}``, and ``summary()`` adds ``"NAME low"`` and ``"NAME high"`` beside
``"NAME"`` (CSV and JSON keep the three columns; the Markdown table joins them in one cell).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from textdecade.eval.intervals import Interval

__all__ = [
    "Result",
    "format_table",
    "compare",
    "render",
    "interval_dict",
    "summary_interval",
    "table_row",
]

FORMATS = ("table", "json", "csv")


class Result(Protocol):
    """What every evaluation result offers."""

    def summary(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]: ...

    def format(self) -> str: ...


def interval_dict(intervals: Mapping[str, Interval | None]) -> dict[str, Any]:
    """``{"intervals": {name: {...}}}`` of the intervals computed (empty when none were)."""
    kept = {k: v.to_dict() for k, v in intervals.items() if v is not None}
    return {"intervals": kept} if kept else {}


def summary_interval(out: dict[str, Any], key: str, interval: Interval | None) -> None:
    """Add ``"KEY low"`` and ``"KEY high"`` to a flat summary (nothing when ``interval`` is None)."""
    if interval is not None:
        out[f"{key} low"] = interval.low
        out[f"{key} high"] = interval.high


def table_row(row: Mapping[str, Any], intervals: Mapping[str, Interval | None]) -> dict:
    """``row`` with each value that has an interval replaced by it (a ``v [lo, hi]`` cell)."""
    return {k: (intervals.get(k) or v) for k, v in row.items()}


def _join_intervals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summary rows with ``X``, ``X low``, ``X high`` joined into one Interval cell ``X``."""
    out = []
    for row in rows:
        joined = {}
        for k, v in row.items():
            if k.endswith((" low", " high")) and k.rsplit(" ", 1)[0] in row:
                continue
            lo, hi = row.get(f"{k} low"), row.get(f"{k} high")
            if isinstance(v, float) and isinstance(lo, float) and isinstance(hi, float):
                v = Interval(v, lo, hi, 0.0)
            joined[k] = v
        out.append(joined)
    return out


def _cell(value: Any) -> str:
    if isinstance(value, Interval):
        return value.format(digits=4)
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (floats to 4 decimals, missing as -)."""
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)


def _flatten(results: Mapping[str, Result | Sequence[Result]]) -> list[dict[str, Any]]:
    rows = []
    for model, res in results.items():
        row: dict[str, Any] = {"model": model}
        for r in res if isinstance(res, (list, tuple)) else [res]:
            row.update(r.summary())
        rows.append(row)
    return rows


def compare(results: Mapping[str, Result | Sequence[Result]], fmt: str = "table") -> str:
    """Side-by-side table: one row per model, one column per metric.

    Args:
        results: model name -> one result or a list of results (several tasks).
        fmt: ``"table"`` (Markdown), ``"csv"`` or ``"json"``.

    Returns:
        The rendered text.
    """
    rows = _flatten(results)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    if fmt == "json":
        full = {
            m: [r.to_dict() for r in (v if isinstance(v, (list, tuple)) else [v])]
            for m, v in results.items()
        }
        return json.dumps({"summary": rows, "results": full}, indent=2, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    if fmt == "table":
        shown = [
            c
            for c in columns
            if not (c.endswith((" low", " high")) and c.rsplit(" ", 1)[0] in columns)
        ]
        return format_table(_join_intervals(rows), shown)
    raise ValueError(f"unknown format {fmt!r}: use one of {FORMATS}")


def render(result: Result, fmt: str = "table") -> str:
    """One result as ``format()`` (table), JSON of ``to_dict()``, or CSV of ``summary()``."""
    if fmt == "table":
        return result.format()
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    if fmt == "csv":
        return compare({"model": result}, "csv")
    raise ValueError(f"unknown format {fmt!r}: use one of {FORMATS}")
