"""Score every run of a decade directory and write its report (markdown, JSON, pictures)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textdecade.decade.naming import run_name
from textdecade.errors import UserError
from textdecade.extras import require
from textdecade.io import write_json, write_text
from textdecade.pretrain.progress import human, read_metrics

NAMES = {
    "word2vec": "Word2Vec (2013)",
    "glove": "GloVe (2014)",
    "seq2seq": "Seq2seq+attention (2014)",
    "transformer": "Transformer (2017)",
    "elmo": "ELMo (2018)",
    "bert": "BERT (2018)",
    "gpt": "GPT (2018-19)",
    "transformer-xl": "Transformer-XL (2019)",
}


def score_all(
    out: Path,
    plan: dict,
    corpus: Any,
    settings: Any,
    *,
    device: str | None,
    say: Callable[[str], None],
    progress: bool = False,
) -> None:
    """Evaluate each trained run once (scores are cached in the plan; ``progress``: bars
    on stderr while a run is scored)."""
    from textdecade.api import load
    from textdecade.decade.naming import run_names
    from textdecade.eval.scorecard import score_model

    sample = list(itertools.islice(iter(corpus), settings.sample_texts))
    for _, _, name in run_names(settings):
        state = plan["families"][name]
        if "scores" in state:
            continue
        say(f"decade: scoring {name}")
        run_dir = out / "runs" / name
        records = read_metrics(run_dir)
        last_eval = next((r for r in reversed(records) if "val_loss" in r), {})
        handle = load(run_dir, device=device)
        state["scores"] = score_model(
            handle, sample, last_eval, settings.homograph_data, progress=progress
        )
        state["loss"] = records[-1]["loss"] if records else None


#: Homograph scores whose paired difference from the MFS baseline holds at this level get *.
SIGNIFICANT = 0.05


def _ci(r: dict[str, Any], key: str, kind: str = "pct", star: str | None = None) -> str:
    """``value [low, high]`` of ``r[key]`` (the value alone for rows scored without
    intervals), with ``*`` when ``r[star]``, a paired p-value, is below :data:`SIGNIFICANT`.
    A row over several seeds shows ``mean ± seed std (±within-run half-width)``."""
    text = _fmt(r.get(key), kind)
    if text != "-" and f"{key}_seed_std" in r:
        text += f" ± {_fmt(r[f'{key}_seed_std'], kind)}"
        if f"{key}_ci_half" in r:
            text += f" (±{_fmt(r[f'{key}_ci_half'], kind)})"
    elif text != "-" and f"{key}_low" in r and f"{key}_high" in r:
        text += f" [{_fmt(r[f'{key}_low'], kind)}, {_fmt(r[f'{key}_high'], kind)}]"
    p = r.get(star) if star else None
    if isinstance(p, float) and p < SIGNIFICANT:
        text += "*"
    return text


def _fmt(value: Any, kind: str = "pct") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "rho":
        return f"{value:.3f}"
    return f"{value:.2f}"


def table_rows(plan: dict, families: list[str], seeds: int = 1) -> list[dict[str, Any]]:
    """One flat dict per family: what report.json holds and report.md shows.

    With several seeds a score is their mean, ``KEY_seed_std`` the spread across seeds,
    ``KEY_ci_half`` the mean half-width of the within-run intervals, and a paired p-value
    the largest of the seeds' (a difference is marked only when every seed shows it);
    ``seeds`` holds each seed's own row.
    """
    rows = []
    for family in families:
        names = [run_name(family, k) for k in range(seeds)]
        each = [_run_row(family, plan["families"].get(n, {})) for n in names]
        rows.append(each[0] if seeds == 1 else {**_across_seeds(each), "seeds": each})
    return rows


def _run_row(family: str, state: dict[str, Any]) -> dict[str, Any]:
    s = state.get("scores", {})
    return {
        "family": family,
        "parameters": state.get("n_params"),
        "train_seconds": state.get("seconds"),
        "seen": state.get("units_seen"),
        "unit": state.get("unit"),
        "flops": state.get("flops"),
        "final_loss": state.get("loss"),
        **{k: v for k, v in s.items() if k not in ("family", "items")},
    }


def _across_seeds(each: list[dict[str, Any]]) -> dict[str, Any]:
    """The seeds' rows as one: means, spreads across seeds, the within-run half-widths."""
    row: dict[str, Any] = {"family": each[0]["family"], "unit": each[0]["unit"]}
    for key, first in each[0].items():
        if key in row or not isinstance(first, int | float) or isinstance(first, bool):
            continue
        values = [r.get(key) for r in each]
        if any(not isinstance(v, int | float) for v in values):
            continue
        if key.endswith("_p"):  # paired p-values: the least convincing seed decides
            row[key] = max(values)
        elif not key.endswith(("_low", "_high")):
            row[key] = sum(values) / len(values)
            if len(values) > 1:
                mean = row[key]
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
                row[f"{key}_seed_std"] = math.sqrt(var)
            halves = [
                (r[f"{key}_high"] - r[f"{key}_low"]) / 2
                for r in each
                if isinstance(r.get(f"{key}_low"), int | float)
                and isinstance(r.get(f"{key}_high"), int | float)
            ]
            if halves:
                row[f"{key}_ci_half"] = sum(halves) / len(halves)
    for key in ("notes",):
        if key in each[0]:
            row[key] = each[0][key]
    return row


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The side-by-side table of the decade."""
    head = (
        "| model | params | train time | seen | FLOPs | analogy acc % (coverage %) | WS-353 ρ | "
        "SimLex-999 ρ | homograph acc % (MFS %) | homograph probe % | val ppl | bits/byte |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        ws = next(
            (k for k in r if k.lower().startswith("wordsim353") and k.endswith("spearman")), None
        )
        sl = next((k for k in r if k.lower().startswith("simlex") and k.endswith("spearman")), None)
        seen = f"{human(r['seen'])} {r['unit']}" if r.get("seen") else "-"
        seconds = r.get("train_seconds")
        lines.append(
            f"| {NAMES.get(r['family'], r['family'])} | {human(r['parameters'] or 0)} | "
            f"{(seconds or 0) / 60:.1f} min | {seen} | "
            f"{human(r['flops']) if r.get('flops') else '-'} | "
            f"{_ci(r, 'analogy_acc')} ({_fmt(r.get('analogy_coverage'))}) | "
            f"{_ci(r, ws, 'rho') if ws else '-'} | {_ci(r, sl, 'rho') if sl else '-'} | "
            f"{_ci(r, 'homograph_acc', star='homograph_vs_mfs_p')} "
            f"({_fmt(r.get('homograph_mfs'))}) | "
            f"{_ci(r, 'homograph_probe_acc', star='homograph_probe_vs_mfs_p')} | "
            f"{_ci(r, 'val_ppl', 'num')} | {_ci(r, 'val_bpb', 'num')} |"
        )
    return "\n".join(lines)


def loss_curves(out: Path, families: list[str]) -> Path:
    """All families' training loss on one figure (one panel each: their losses differ)."""
    require("matplotlib", "textdecade decade's pictures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = 3
    rows = math.ceil(len(families) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    FigureCanvasAgg(fig)
    for k, family in enumerate(families):
        ax = fig.add_subplot(rows, cols, k + 1)
        records = read_metrics(out / "runs" / family)
        ax.plot(
            [r["step"] for r in records], [r["loss"] for r in records], linewidth=1, label="train"
        )
        val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
        if val:
            ax.plot(*zip(*val, strict=True), "o-", markersize=3, label="validation")
        ax.set_title(NAMES.get(family, family), fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Training loss of each family (its own objective)")
    fig.tight_layout()
    path = out / "loss_curves.png"
    fig.savefig(path, dpi=110)
    return path


def pictures(out: Path, plan: dict, settings: Any) -> tuple[list[tuple[str, Path]], list[str]]:
    """Loss curves, a homograph sense map (a contextual model beside a static one), and
    the seq2seq attention heatmap; a picture that cannot be drawn is noted, not fatal."""
    from textdecade.api import load

    made: list[tuple[str, Path]] = [("Loss curves", loss_curves(out, settings.families))]
    notes: list[str] = []
    fams = settings.families
    static = next((f for f in ("word2vec", "glove") if f in fams), None)
    contextual = next(
        (f for f in ("bert", "elmo", "gpt", "transformer", "seq2seq") if f in fams), None
    )
    if static and contextual:
        from textdecade.eval.plots import sense_map

        word = "bank"
        try:
            panels = {
                NAMES[contextual]: load(out / "runs" / contextual),
                NAMES[static]: load(out / "runs" / static).vectors,
            }
            path = sense_map(panels, word, out / "sense_map.png", data=settings.homograph_data)
            made.append((f"Sense map of '{word}'", path))
        except UserError as exc:
            notes.append(f"sense map: {exc}")
    if "seq2seq" in fams:
        from textdecade.eval.attention_plot import plot_attention

        handle = load(out / "runs" / "seq2seq")
        source = "the bank raised its rates after the river flooded the town"
        try:
            path = plot_attention(handle.model, handle.tokenizer, source, out / "attention.png")
            made.append(("Seq2seq attention (denoising)", path))
        except UserError as exc:
            notes.append(f"attention map: {exc}")
    return made, notes


def write_report(out: Path, plan: dict, settings: Any) -> Path:
    """Write ``report.json`` and ``report.md`` (with pictures); returns the markdown path."""
    from textdecade.decade.steps import markdown_steps, step_rows

    rows = table_rows(plan, settings.families, settings.seeds)
    steps = step_rows(plan, settings.families)
    figures, notes = pictures(out, plan, settings)
    write_json(
        out / "report.json",
        {
            "settings": plan["settings"],
            "rows": rows,
            "steps": steps,
            "figures": [str(p.name) for _, p in figures],
        },
    )
    corpus = ", ".join(settings.corpus) or settings.dataset or "the built-in sample corpus"
    budget = (
        f"every family trained for the same {settings.minutes:g} minutes of wall-clock time "
        "on this machine (the step count each reached is in `plan.json`; FLOPs are the "
        "engine's 6N + attention estimate, - for the static families)"
        if settings.minutes
        else "each family's own fixed-step budget"
    )
    seeds = (
        f" Each family ran {settings.seeds} times with consecutive seeds: a score is "
        "`mean ± std across seeds (±the within-run 95% half-width, averaged)`, and `*` needs "
        "every seed's paired test to hold."
        if settings.seeds > 1
        else ""
    )
    lines = [
        "# The decade on one corpus",
        "",
        f"Corpus: {corpus}; preset `{settings.preset}`, {budget}; one shared tokenizer "
        "(`tokenizer.json`). Analogy: Google questions-words, 3CosAdd, restrict_vocab 30000, "
        "accuracy over answered questions with coverage beside it. Similarity: Spearman ρ. "
        "Homographs: nearest sense centroid, beside the most-frequent-sense baseline, and a "
        "linear probe (logistic regression) on the same vectors "
        f"({settings.homograph_data or 'built-in suite'}). Contextual models are scored on "
        "static vectors averaged over their states in a corpus sample (Bommasani et al. 2020) "
        "and on homographs with their contextual states.",
        "",
        "Each score shows its 95% interval, `value [low, high]` (percentile bootstrap: "
        "analogy questions, word pairs, homograph instances, validation batches). "
        "`*`: the paired difference from the most-frequent-sense baseline on the same "
        f"instances holds at p < {SIGNIFICANT} (sign-flip test).{seeds}",
        "",
        markdown_table(rows),
        "",
    ]
    if steps:
        lines += [
            "## Step by step",
            "",
            "Each family minus the one before it, on the same items (homographs: every "
            "instance; analogy: the questions both answered), in points with the paired "
            f"95% interval; `*`: p < {SIGNIFICANT} (sign-flip test).",
            "",
            markdown_steps(steps, NAMES),
            "",
        ]
    for title, path in figures:
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    all_notes = notes + [f"{r['family']}: {n}" for r in rows for n in r.get("notes", [])]
    if all_notes:
        lines += ["## Notes", "", *[f"- {n}" for n in all_notes], ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path
