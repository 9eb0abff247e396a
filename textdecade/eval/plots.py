"""Pictures: 2-D maps of chosen words, and homograph "sense maps" of occurrence vectors.

Figures are drawn with matplotlib's Agg canvas (no display needed, no global backend
change) and written as PNG atomically. Projections: PCA, or t-SNE (van der Maaten & Hinton
2008) from scikit-learn.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from textdecade.errors import UserError
from textdecade.eval.vectors import Vectors
from textdecade.extras import require
from textdecade.io import atomic_path

#: What needs matplotlib here (the one line of a missing extra).
PURPOSE = "drawing embeddings and sense maps"

__all__ = ["project_2d", "embedding_map", "sense_map"]


def project_2d(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project (N, D) points to (N, 2) with ``"pca"`` or ``"tsne"``."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2 or np.allclose(x, x[0]):
        return np.zeros((len(x), 2))  # one point (or all the same point): nothing to spread
    if method == "pca":
        from sklearn.decomposition import PCA

        out = PCA(n_components=min(2, x.shape[1], len(x)), random_state=seed).fit_transform(x)
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(1, len(x) - 1) / 3))
        # Exact t-SNE for the few hundred points of a map; Barnes-Hut's OpenMP threads were
        # 80x slower on a busy 2-core machine (25 s vs 0.3 s for 12 points).
        exact = "exact" if len(x) <= 500 else "barnes_hut"
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, method=exact, n_jobs=1)
        return tsne.fit_transform(x)
    raise UserError(f"unknown projection {method!r}: use 'pca' or 'tsne'")


def _save(fig, path: str | os.PathLike) -> Path:
    require("matplotlib", PURPOSE)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    return path


def embedding_map(
    vectors: Vectors,
    words: Sequence[str],
    path: str | os.PathLike,
    method: str = "pca",
    title: str | None = None,
) -> Path:
    """Save a labelled 2-D map of ``words``: every word ``in vectors`` is drawn.

    Membership is the vectors' own rule (an exact key, or a backoff vector), so the map
    draws exactly the words ``vectors[w]`` gives; the others are named under the title.

    Args:
        vectors: the word vectors.
        words: the words to map (repeats are drawn once).
        path: the PNG to write.
        method: ``"pca"`` or ``"tsne"``.
        title: the first title line; default ``"N words (PCA[, vectors: method])"`` with N
            the number of words drawn.

    Returns:
        The PNG path.
    """
    require("matplotlib", PURPOSE)
    from matplotlib.figure import Figure

    words = list(dict.fromkeys(words))
    known = [w for w in words if w in vectors]
    missing = [w for w in words if w not in known]
    if len(known) < 2:
        raise UserError(f"need at least two known words to map; known: {known}")
    xy = project_2d(np.stack([vectors[w] for w in known]), method)
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    ax.scatter(xy[:, 0], xy[:, 1], s=18, color="tab:blue")
    for (x, y), w in zip(xy, known):
        ax.annotate(w, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=10)
    if title is None:
        via = vectors.meta.get("method")
        title = f"{len(known)} words ({method.upper()}{', vectors: ' + via if via else ''})"
    if missing:  # every skipped word is named, wrapped to the figure's width
        title += "\n" + textwrap.fill("not in vocabulary: " + ", ".join(missing), 80)
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def sense_map(
    models: Mapping[str, object],
    word: str,
    path: str | os.PathLike,
    data: str | os.PathLike | None = None,
    layers: str = "last",
    method: str = "pca",
    max_per_sense: int = 30,
) -> Path:
    """Save one panel per model: the 2-D map of ``word``'s occurrence vectors by sense.

    A static model gives every occurrence the same vector, so its panel shows one point
    (labelled with the number of occurrences it stands for).

    Args:
        models: panel title -> encoder or :class:`Vectors`.
        word: the homograph.
        data: a CoarseWSD-20 folder or sense TSV (None: the built-in suite).
        layers, method, max_per_sense: as in the homograph evaluation / :func:`project_2d`.
    """
    require("matplotlib", PURPOSE)
    from matplotlib.figure import Figure

    from textdecade.eval.homograph import occurrence_vectors

    fig = Figure(figsize=(5 * len(models), 4.8))
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for k, (name, model) in enumerate(models.items()):
        ax = fig.add_subplot(1, len(models), k + 1)
        vecs, senses = occurrence_vectors(model, word, data, layers, max_per_sense)
        xy = project_2d(vecs, method)
        order = list(dict.fromkeys(senses))
        same = np.allclose(vecs, vecs[0], atol=1e-6)
        for j, sense in enumerate(order):
            pick = np.array([s == sense for s in senses])
            label = f"{sense} ({int(pick.sum())})"
            if same:  # one vector for all: draw it once, in every sense's colour
                ax.scatter(0, 0, s=200 - 60 * j, color=palette[j % 6], label=label)
            else:
                ax.scatter(*xy[pick].T, s=16, color=palette[j % 6], label=label, alpha=0.8)
        if same:
            ax.annotate(
                f"all {len(senses)} occurrences",
                (0, 0),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=10,
            )
        ax.set_title(f"{name}: '{word}' ({method.upper()})", fontsize=11)
        ax.legend(fontsize=9, loc="best")
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)
