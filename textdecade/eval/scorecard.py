"""Score one trained model on every benchmark of the suite: one row of the decade's table.

Static families (Word2Vec, GloVe) are scored on their own word vectors; contextual ones
(seq2seq and Transformer encoders, BERT, GPT) on static vectors averaged over their
contextual states in a corpus sample (Bommasani et al. 2020), and on homographs with
their contextual states. The row names the method, and coverage stands beside accuracy.

Each score comes with its 95% interval (``KEY_low`` and ``KEY_high`` beside ``KEY``), and
each homograph score with the paired p-value of its difference from the most-frequent-
sense baseline on the same instances (``homograph_vs_mfs_p``, ``homograph_probe_vs_mfs_p``;
sign-flip test), computed from the per-instance results while they are at hand. Validation
loss, perplexity and bits per byte are the run's own (re-evaluated on the final weights with
the run's evaluation settings, for their intervals over evaluation batches).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from textdecade.errors import UserError
from textdecade.eval.analogy import evaluate_analogies, read_analogies
from textdecade.eval.homograph import evaluate_homographs, mfs_difference
from textdecade.eval.intervals import Interval
from textdecade.eval.similarity import default_similarity_paths, evaluate_similarity, read_pairs
from textdecade.eval.suite import as_vectors


def benchmark_words() -> list[str]:
    """Every word of the default analogy and similarity sets (what static vectors need)."""
    words: dict[str, None] = {}
    for q in read_analogies(None):
        for w in (q.a, q.b, q.c, q.d):
            words.setdefault(w.lower())
    for path in default_similarity_paths():
        for p in read_pairs(path):
            words.setdefault(p.a.lower())
            words.setdefault(p.b.lower())
    return list(words)


def word_vectors(
    handle: Any, sample: Iterable[str], max_sentences: int = 4000, progress: bool = False
):
    """The static vectors a model is scored with, and the name of the method
    (``progress``: a bar over the sample's encoding)."""
    if handle.static:
        return handle.vectors, "trained word vectors"
    vectors = as_vectors(
        handle,
        benchmark_words(),
        "context",
        sample,
        top_k=20000,
        max_texts=max_sentences,
        max_occurrences=8,
        progress=progress,
    )
    return vectors, "contextual states averaged over a corpus sample (Bommasani et al. 2020)"


def item_outcomes(analogy: Any, homograph: Any) -> dict[str, Any]:
    """Per item, what the model got right, compact enough for a plan file, so two models
    can be compared on the same items later (the decade's step-by-step table).

    Returns:
        ``{"analogy": "-01..."}`` (per question: ``-`` unanswered, ``0`` wrong, ``1``
        right), ``{"homograph_words": [[word, n], ...], "homograph_accuracy": "01...",
        "homograph_probe_accuracy": "01..."}`` (per instance, word after word); what was
        not scored is absent.
    """
    out: dict[str, Any] = {}
    if analogy is not None:
        marks = np.full(analogy.total.total, "-")
        marks[analogy.answered_index] = np.where(analogy.hits, "1", "0")
        out["analogy"] = "".join(marks)
    if homograph is not None:
        out["homograph_words"] = [[w.word, int(w.n)] for w in homograph.words]
        kinds = ["accuracy"] + (["probe_accuracy"] if homograph.probe_accuracy is not None else [])
        for kind in kinds:
            hits = np.concatenate([w.correct(kind) for w in homograph.words]) > 0.5
            out[f"homograph_{kind}"] = "".join(np.where(hits, "1", "0"))
    return out


def _put(row: dict[str, Any], key: str, value: float | None, ci: Interval | None) -> None:
    """``row[key] = value`` and, with an interval, ``KEY_low`` and ``KEY_high``."""
    row[key] = value
    if ci is not None:
        row[f"{key}_low"], row[f"{key}_high"] = ci.low, ci.high


def _validation(handle: Any, metrics: dict[str, float], row: dict[str, Any], notes) -> None:
    """The run's val_loss / val_ppl / val_bpb, with intervals from a re-evaluation of its
    final weights on its own validation batches (families without a held-out loss skip it)."""
    from textdecade.eval.perplexity import evaluate_perplexity

    for key in ("val_loss", "val_ppl", "val_bpb"):
        if key in metrics and math.isfinite(metrics[key]):
            row[key] = metrics[key]
    run_dir, train = getattr(handle, "run_dir", None), getattr(handle.config, "train", None)
    if run_dir is None or train is None or "val_loss" not in row:
        return
    res = _safe(
        lambda: evaluate_perplexity(
            run_dir, None, train.eval_batches, train.batch_size, str(handle.device)
        ),
        notes,
        "validation intervals",
    )
    if res is None or not res.intervals:
        return
    if not math.isclose(res.loss, row["val_loss"], rel_tol=1e-4):
        notes.append(
            f"validation: the final weights score val_loss {res.loss:.4f} (the last logged "
            f"evaluation said {row['val_loss']:.4f}); the table shows the final weights'"
        )
    for key, value, name in (
        ("val_loss", res.loss, "loss"),
        ("val_ppl", res.ppl, "perplexity"),
        ("val_bpb", res.bpb, "bits_per_byte"),
    ):
        if value is not None:
            _put(row, key, value, res.intervals.get(name))


def _safe(fn, notes: list[str], what: str):
    try:
        return fn()
    except UserError as exc:
        notes.append(f"{what}: {exc}")
        return None


def score_model(
    handle: Any,
    sample: Iterable[str],
    metrics: dict[str, float],
    homograph_data: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a loaded model (:func:`textdecade.api.load`) on the whole suite.

    Args:
        handle: the loaded model.
        sample: corpus texts for contextual static vectors.
        metrics: the run's last training metrics (``val_loss``, ``val_bpb``...).
        homograph_data: a CoarseWSD-20 folder or sense TSV; None: the built-in suite.
        progress: bars on stderr over the long loops (encoding, analogy scoring).

    Returns:
        A JSON-able row: analogy accuracy and coverage, similarity Spearman per set,
        homograph accuracy with the most-frequent-sense baseline, perplexity where it applies.
    """
    notes: list[str] = []
    row: dict[str, Any] = {"family": handle.family}
    vectors, method = word_vectors(handle, sample, progress=progress)
    row["vectors"] = method
    analogy = _safe(lambda: evaluate_analogies(vectors, progress=progress), notes, "analogy")
    if analogy is not None:
        _put(row, "analogy_acc", analogy.accuracy, analogy.interval)
        row["analogy_coverage"] = analogy.coverage
    similarity = _safe(lambda: evaluate_similarity(vectors), notes, "similarity")
    if similarity is not None:
        for s in similarity.sets:
            _put(row, f"{s.name}_spearman", s.spearman, s.spearman_ci)
            row[f"{s.name}_coverage"] = s.coverage
    homograph = _safe(
        lambda: evaluate_homographs(
            handle if not handle.static else vectors,
            homograph_data,
            max_per_sense=40,
            max_test_per_sense=40,
            probe=True,
            progress=progress,
        ),
        notes,
        "homograph",
    )
    if homograph is not None:
        ci = homograph.intervals
        _put(row, "homograph_acc", homograph.accuracy, ci.get("accuracy"))
        _put(row, "homograph_mfs", homograph.mfs_accuracy, ci.get("mfs_accuracy"))
        _put(row, "homograph_probe_acc", homograph.probe_accuracy, ci.get("probe_accuracy"))
        _put(row, "homograph_macro_f1", homograph.macro_f1, ci.get("macro_f1"))
        row["homograph_data"] = homograph.data
        row["homograph_vs_mfs_p"] = mfs_difference(homograph).p_value
        if homograph.probe_accuracy is not None:
            row["homograph_probe_vs_mfs_p"] = mfs_difference(homograph, "probe_accuracy").p_value
    row["items"] = item_outcomes(analogy, homograph)
    # Each family's own validation numbers: its loss, and perplexity / bits per byte where
    # its objective defines them (the language models' cross-entropy).
    _validation(handle, metrics, row, notes)
    row["notes"] = notes
    return row
