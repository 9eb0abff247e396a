"""Score one trained model on every benchmark of the suite: one row of the decade's table.

Static families (Word2Vec, GloVe) are scored on their own word vectors; contextual ones
(seq2seq and Transformer encoders, BERT, GPT) on static vectors averaged over their
contextual states in a corpus sample (Bommasani et al. 2020), and on homographs with
their contextual states. The row names the method, and coverage stands beside accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from textdecade.errors import UserError
from textdecade.eval.analogy import evaluate_analogies, read_analogies
from textdecade.eval.homograph import evaluate_homographs
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


def word_vectors(handle: Any, sample: Iterable[str], max_sentences: int = 4000):
    """The static vectors a model is scored with, and the name of the method."""
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
    )
    return vectors, "contextual states averaged over a corpus sample (Bommasani et al. 2020)"


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
) -> dict[str, Any]:
    """Evaluate a loaded model (:func:`textdecade.api.load`) on the whole suite.

    Args:
        handle: the loaded model.
        sample: corpus texts for contextual static vectors.
        metrics: the run's last training metrics (``val_loss``, ``val_bpb``...).
        homograph_data: a CoarseWSD-20 folder or sense TSV; None: the built-in suite.

    Returns:
        A JSON-able row: analogy accuracy and coverage, similarity Spearman per set,
        homograph accuracy with the most-frequent-sense baseline, perplexity where it applies.
    """
    notes: list[str] = []
    row: dict[str, Any] = {"family": handle.family}
    vectors, method = word_vectors(handle, sample)
    row["vectors"] = method
    analogy = _safe(lambda: evaluate_analogies(vectors), notes, "analogy")
    if analogy is not None:
        row["analogy_acc"] = analogy.accuracy
        row["analogy_coverage"] = analogy.coverage
    similarity = _safe(lambda: evaluate_similarity(vectors), notes, "similarity")
    if similarity is not None:
        for s in similarity.sets:
            row[f"{s.name}_spearman"] = s.spearman
            row[f"{s.name}_coverage"] = s.coverage
    homograph = _safe(
        lambda: evaluate_homographs(
            handle if not handle.static else vectors,
            homograph_data,
            max_per_sense=40,
            max_test_per_sense=40,
            probe=True,
        ),
        notes,
        "homograph",
    )
    if homograph is not None:
        row["homograph_acc"] = homograph.accuracy
        row["homograph_mfs"] = homograph.mfs_accuracy
        row["homograph_probe_acc"] = homograph.probe_accuracy
        row["homograph_data"] = homograph.data
    # Each family's own validation numbers: its loss, and perplexity / bits per byte where
    # its objective defines them (the language models' cross-entropy).
    for key in ("val_loss", "val_ppl", "val_bpb"):
        if key in metrics and math.isfinite(metrics[key]):
            row[key] = metrics[key]
    row["notes"] = notes
    return row
