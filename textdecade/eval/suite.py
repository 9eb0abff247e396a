"""One entry point per evaluation command, for any model of the decade.

``model`` is whatever a user has: a :class:`~textdecade.eval.vectors.Vectors`, a loaded
``textdecade.load(run)`` handle (static families expose ``.vectors``; contextual ones
implement the ``ContextualEncoder`` protocol), or any ``ContextualEncoder`` such as
:class:`~textdecade.eval.contextual.HFEncoder`. The CLI resolves a path with
:func:`textdecade.api.resolve_model` and calls :func:`run_analogy`, :func:`run_similarity` or
:func:`run_homograph`; each returns a result with ``format()``, ``to_dict()`` and
``summary()`` (see :mod:`textdecade.eval.report` for side-by-side tables).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from textdecade.errors import UserError
from textdecade.eval.analogy import AnalogyResult, evaluate_analogies, read_analogies
from textdecade.eval.contextual import static_vectors
from textdecade.eval.homograph import HomographResult, as_encoder, evaluate_homographs
from textdecade.eval.intervals import DEFAULT_LEVEL
from textdecade.eval.report import compare
from textdecade.eval.similarity import (
    SimilarityResult,
    default_similarity_paths,
    evaluate_similarity,
    read_pairs,
)
from textdecade.eval.vectors import Vectors
from textdecade.eval.wic import WicResult, evaluate_wic

__all__ = [
    "as_vectors",
    "run_analogy",
    "run_similarity",
    "run_homograph",
    "decade_table",
    "is_wic",
    "plot_embeddings",
]


def _sample(corpus: Iterable[str] | None, max_texts: int) -> list[str]:
    if corpus is None:
        from textdecade.data.corpus import Corpus

        corpus = Corpus()  # the built-in sample (gensim's Lee + Wikipedia sample text)
    return list(itertools.islice(iter(corpus), max_texts))


def as_vectors(
    model,
    words: Sequence[str] = (),
    method: str = "input",
    corpus: Iterable[str] | None = None,
    top_k: int = 30000,
    max_texts: int = 2000,
    **options,
) -> Vectors:
    """Static vectors of any model (Vectors as they are; contextual models pooled).

    Args:
        model: Vectors, a static or contextual handle, or a ContextualEncoder.
        words: words the evaluation needs (always included).
        method: for contextual models, ``"input"`` (input embeddings of a word's pieces)
            or ``"context"`` (states averaged over occurrences; Bommasani et al. 2020).
        corpus: texts that rank words by frequency (candidates and distractors beside
            ``words``) and give contexts; None takes the built-in sample corpus.
        top_k: how many frequent corpus words join ``words``.
        max_texts: texts read from ``corpus``.
        options: passed to :func:`~textdecade.eval.contextual.static_vectors`.
    """
    if isinstance(model, Vectors):
        return model
    if getattr(model, "static", False):
        return model.vectors
    encoder = as_encoder(model)
    texts = _sample(corpus, max_texts)
    return static_vectors(encoder, list(words), texts, method=method, top_k=top_k, **options)


def run_analogy(
    model,
    data: str | Path | None = None,
    method: str = "3cosadd",
    restrict_vocab: int | None = 30000,
    vectors_method: str = "input",
    corpus: Iterable[str] | None = None,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> AnalogyResult:
    """``textdecade eval analogy``: Google (default) or MSR analogies; see ``evaluate_analogies``
    (``ci``: confidence level of the intervals, 0 for none; ``progress``: bars on stderr)."""
    questions = read_analogies(data)
    words = list(dict.fromkeys(w for q in questions for w in (q.a, q.b, q.c, q.d)))
    vectors = as_vectors(model, words, vectors_method, corpus, progress=progress)
    name = str(data) if data else "questions-words.txt (Google)"
    result = evaluate_analogies(
        vectors, questions, method, restrict_vocab, ci=ci, progress=progress
    )
    result.data = name
    return result


def run_similarity(
    model,
    data: str | Path | Sequence[str | Path] | None = None,
    restrict_vocab: int | None = None,
    vectors_method: str = "input",
    corpus: Iterable[str] | None = None,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> SimilarityResult:
    """``textdecade eval similarity``: WS-353 + SimLex-999 by default; any listed files
    (``ci``: confidence level of the intervals, 0 for none; ``progress``: a bar on stderr
    while a contextual model's vectors are built)."""
    if data is None:
        paths = default_similarity_paths()
    elif isinstance(data, (str, Path)):
        paths = [Path(data)]
    else:
        paths = [Path(p) for p in data]
    words = list(dict.fromkeys(w for p in paths for q in read_pairs(p) for w in (q.a, q.b)))
    vectors = as_vectors(model, words, vectors_method, corpus, progress=progress)
    return evaluate_similarity(vectors, paths, restrict_vocab, ci=ci)


def is_wic(path: Path) -> bool:
    """Whether ``path`` holds WiC data (``*.data.txt`` files, not a CoarseWSD-20 folder)."""
    if path.is_dir():
        return not any(path.glob("*/classes_map.txt")) and any(path.rglob("*.data.txt"))
    return path.name.endswith(".data.txt")


def run_homograph(
    model,
    data: str | Path | None = None,
    layers: str = "last",
    words: list[str] | None = None,
    max_per_sense: int | None = None,
    max_test_per_sense: int | None = None,
    probe: bool = False,
    release: int | None = None,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> HomographResult | WicResult:
    """``textdecade eval homograph``: CoarseWSD-20 folder, sense TSV, WiC, or built-in suite.

    A static model (Vectors or a Word2Vec/GloVe handle) is scored too: it lands on the
    most-frequent-sense baseline, by construction. ``release`` keeps a sense TSV's rows of
    that release or earlier (``1``: the built-in suite's first 192 sentences).
    ``progress`` shows bars on stderr (encoding, scoring).
    """
    if getattr(model, "static", False):
        model = model.vectors
    path = None if data is None else Path(data)
    if path is not None and not path.exists():
        raise UserError(f"{path}: no such homograph data (a CoarseWSD-20 folder, TSV or WiC)")
    if path is not None and is_wic(path):
        if release is not None:
            raise UserError(f"{path}: a release applies to a sense TSV, not to WiC files")
        return evaluate_wic(model, path, layers=layers, ci=ci, progress=progress)
    return evaluate_homographs(
        model,
        path,
        layers,
        words,
        max_per_sense,
        max_test_per_sense,
        probe=probe,
        release=release,
        ci=ci,
        progress=progress,
    )


def plot_embeddings(
    model,
    words: Sequence[str],
    path: str | Path,
    method: str = "pca",
    vectors_method: str = "input",
    corpus: Iterable[str] | None = None,
) -> Path:
    """``textdecade plot embeddings``: a labelled 2-D map (PCA or t-SNE) of ``words``, as PNG."""
    from textdecade.eval.plots import embedding_map

    vectors = as_vectors(model, words, vectors_method, corpus, top_k=0)
    return embedding_map(vectors, words, path, method)  # its title counts the words drawn


def decade_table(
    models: Mapping[str, object],
    fmt: str = "table",
    homograph_data: str | Path | None = None,
    vectors_method: str = "input",
    corpus: Iterable[str] | None = None,
) -> str:
    """Every model on analogy, similarity and homographs, one row each (the decade table).

    A model that cannot do a task (e.g. no contextual states) gets an empty cell there,
    never a crash.
    """
    results: dict[str, list] = {}
    for name, model in models.items():
        row = []
        for run in (
            lambda m: run_analogy(m, vectors_method=vectors_method, corpus=corpus),
            lambda m: run_similarity(m, vectors_method=vectors_method, corpus=corpus),
            lambda m: run_homograph(m, homograph_data),
        ):
            try:
                row.append(run(model))
            except UserError:
                continue
        results[name] = row
    return compare(results, fmt)
