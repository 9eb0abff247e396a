"""The search's report: every trial, the loss-against-size front, the best config as a recipe.

``report.md``/``report.json`` hold the trials table (params, validation loss, pruned or
complete, parameter count, seconds) and the comparison with the family's tiny preset
trained on the same budget; ``search.png`` plots validation loss against parameters and
against seconds (the Pareto front of complete trials drawn through them); ``best.toml``
is the best trial's configuration as a recipe for ``textdecade pretrain FAMILY --config``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from textdecade.config import merge, parse_override
from textdecade.extras import require
from textdecade.io import write_json, write_text
from textdecade.lab.report import _finite
from textdecade.lab.space import Dimension
from textdecade.pretrain.progress import human


def trial_rows(study) -> list[dict[str, Any]]:
    """One row per finished trial: its params, state, loss (a pruned trial's last
    reported one, at the fraction of the budget it reached), size and seconds."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = t.state.name.lower()
        if state not in ("complete", "pruned"):
            continue
        loss = t.value if state == "complete" else _last(t.intermediate_values)
        rows.append(
            {
                "trial": t.number,
                "state": "diverged" if t.user_attrs.get("diverged") else state,
                "val_loss": loss,
                "reached": max(t.intermediate_values, default=0),
                "params": dict(t.params),
                "n_params": t.user_attrs.get("n_params"),
                "seconds": t.user_attrs.get("seconds"),
                "steps": t.user_attrs.get("steps"),
            }
        )
    return sorted(rows, key=lambda r: (r["state"] != "complete", _key(r["val_loss"])))


def _last(values: dict[int, float]) -> float | None:
    return values[max(values)] if values else None


def _key(loss: float | None) -> float:
    return math.inf if loss is None or not math.isfinite(loss) else loss


def pareto(rows: list[dict], x: str) -> list[dict]:
    """The complete trials no other complete trial beats on both ``x`` and loss."""
    done = sorted(
        (r for r in rows if r["state"] == "complete" and r[x] and math.isfinite(r["val_loss"])),
        key=lambda r: (r[x], r["val_loss"]),
    )
    front, best = [], math.inf
    for row in done:
        if row["val_loss"] < best:
            front.append(row)
            best = row["val_loss"]
    return front


def recipe(overrides: list[str]) -> dict[str, Any]:
    """``--set`` overrides as the nested tables of a TOML recipe."""
    values: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        values = merge(values, nested)
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # strings and lists of them: JSON's spelling is TOML's


def to_toml(tables: dict[str, dict[str, Any]], header: str) -> str:
    """A recipe as TOML text: one table per section, ``header`` as comments."""
    lines = [f"# {line}" for line in header.splitlines()]
    for section, values in tables.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(v)}" for key, v in values.items()]
    return "\n".join(lines) + "\n"


def _figure(out: Path, rows: list[dict], baseline: dict) -> Path | None:
    require("matplotlib", "the lab's pictures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    if not any(r["n_params"] for r in rows):
        return None
    fig = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(fig)
    for k, (x, label) in enumerate((("n_params", "parameters"), ("seconds", "seconds"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for state, style in (("complete", "o"), ("pruned", "x")):
            pts = [r for r in rows if r["state"] == state and r[x] and r["val_loss"]]
            pts = [r for r in pts if math.isfinite(r["val_loss"])]
            ax.plot(
                [r[x] for r in pts],
                [r["val_loss"] for r in pts],
                style,
                markersize=5,
                alpha=0.8,
                label=f"{state} ({len(pts)})" + (" at its last rung" if state == "pruned" else ""),
            )
        front = pareto(rows, x)
        if front:
            ax.step(
                [r[x] for r in front],
                [r["val_loss"] for r in front],
                where="post",
                color="black",
                linewidth=1,
                label="front",
            )
        if baseline.get("val_loss") and baseline.get(x):
            ax.plot(baseline[x], baseline["val_loss"], "*", markersize=12, label="tiny preset")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # no crowded minor-tick labels
        ax.set_xlabel(label, fontsize=9)
        ax.set_ylabel("validation loss (nats/token)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Search trials: validation loss against size and time at one budget")
    fig.tight_layout()
    path = out / "search.png"
    fig.savefig(path, dpi=110)
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def markdown(settings, space: dict[str, Dimension], budget: int, rows, baseline, best, picture):
    """The report as Markdown."""
    complete = [r for r in rows if r["state"] == "complete"]
    lines = [
        "# lab search: budgeted architecture and hyperparameter search",
        "",
        f"{settings.family}, preset {settings.preset}; {len(rows)} trials ({len(complete)} "
        f"complete, {sum(r['state'] == 'pruned' for r in rows)} pruned), sampler "
        f"{settings.sampler}, pruner {settings.pruner}. Every trial trains on {budget} "
        "sequences (steps x batch size) of the lab's context, scored on the same 64 "
        "validation windows; each is an ordinary run directory under `runs/`. The budget "
        "is sequences, not seconds: on a shared machine seconds depend on what else runs, "
        "so a seconds budget would make trials incomparable and a resumed search "
        "unrepeatable; each trial's seconds are reported beside its loss instead.",
        "",
        "Space: " + "; ".join(f"{k} {d.describe()}" for k, d in space.items()) + ".",
        "",
    ]
    if best is not None and baseline.get("val_loss") is not None:
        gap = baseline["val_loss"] - best["val_loss"]
        verdict = "at least as good as" if gap >= 0 else "worse than"
        lines += [
            f"**Best trial {best['trial']}: validation loss {best['val_loss']:.4f} "
            f"({human(best['n_params'])} parameters, {best['seconds']:.0f} s) against "
            f"{baseline['val_loss']:.4f} for the tiny preset on the same budget "
            f"({human(baseline['n_params'])} parameters, {baseline['seconds']:.0f} s): "
            f"{verdict} the preset by {abs(gap):.4f} nats/token** (one seed each; the "
            "search also spent its trials choosing).",
            "",
        ]
    keys = list(space)
    columns = ("trial", "state", "val loss", "params", "seconds", *keys)
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        loss = "diverged" if r["state"] == "diverged" else f"{r['val_loss']:.4f}"
        if r["state"] == "pruned":
            loss += f" (rung {r['reached']})"
        cells = [
            str(r["trial"]),
            r["state"],
            loss,
            human(r["n_params"]) if r["n_params"] else "-",
            "-" if r["seconds"] is None else f"{r['seconds']:.0f}",
            *(_fmt(r["params"].get(k)) for k in keys),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "A pruned trial's loss is the last it reported, at rung k of 4 (k quarters of the "
        "budget), so it is not comparable with a complete one's; the pruner judged it "
        "against other trials at the same rung.",
    ]
    if best is not None:
        lines += [
            "",
            f"The best configuration is `best.toml`: `textdecade pretrain {settings.family} "
            "--config best.toml` trains it again.",
        ]
    if picture is not None:
        lines += ["", f"![{picture.stem}]({picture.name})"]
    return "\n".join(lines) + "\n"


def write_search_report(
    out: Path, plan: dict, settings, space, study, budget: int, overrides_of
) -> Path:
    """Write ``report.md``, ``report.json``, ``search.png`` and ``best.toml``
    (``overrides_of(params)``: a trial's ``--set`` overrides, for the recipe)."""
    rows = trial_rows(study)
    complete = [r for r in rows if r["state"] == "complete"]
    best = min(complete, key=lambda r: r["val_loss"]) if complete else None
    baseline = plan.get("baseline", {})
    if best is not None:
        header = (
            f"lab search: the best of {len(rows)} trials (trial {best['trial']}, validation "
            f"loss {best['val_loss']:.4f}).\ntextdecade pretrain {settings.family} --config "
            "best.toml"
        )
        tables = recipe(overrides_of(best["params"]))
        write_text(out / "best.toml", to_toml(tables, header))
    picture = _figure(out, rows, baseline)
    write_json(
        out / "report.json",
        _finite(
            {
                "experiment": "search",
                "settings": plan["settings"],
                "trials": rows,
                "best": best,
                "baseline": baseline,
            }
        ),
    )
    path = out / "report.md"
    write_text(path, markdown(settings, space, budget, rows, baseline, best, picture))
    return path
