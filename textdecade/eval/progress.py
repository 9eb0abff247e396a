"""Progress of the evaluation suite's long loops, on stderr (never stdout, which carries
the results: a JSON or CSV table must be the same bytes with and without a bar).

The bar is the trainer's (:class:`textdecade.pretrain.progress.Progress`): tqdm on stderr,
shown whenever it is asked for, terminal or not, so a log of a long run shows that it
moves; the CLI asks unless ``-q``. Library functions take ``progress: bool = False``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["bar", "chunked_word_states"]

#: Forward passes per encoder call when states are read in chunks (one bar step each):
#: large enough that the per-call overhead does not show, small enough that the bar moves.
BATCHES_PER_CHUNK = 8


def bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str = "it",
    enabled: bool = False,
):
    """A tqdm bar on stderr (a silent pass-through when not ``enabled``).

    Args:
        iterable: what to iterate (None: call ``update`` on the bar yourself).
        total: the number of steps (default: ``len(iterable)`` when it has one).
        desc: the label, e.g. ``"homograph: encode"``.
        unit: what one step is.
        enabled: show it.

    Returns:
        a ``tqdm`` object (iterable, with ``update`` and ``close``).
    """
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )


def chunked_word_states(
    encoder: Any,
    sentences: Sequence[Sequence[str]],
    *,
    layers: str,
    batch_size: int,
    progress: bool = False,
    desc: str = "encode",
) -> list[np.ndarray]:
    """``encoder.word_states`` over many sentences, a few batches per call, so a bar can
    follow it (any :class:`~textdecade.eval.contextual.ContextualEncoder`, no new method).

    The sentences go in longest first (stable), as the encoders sort them themselves, so
    each chunk's batches pad about as little as one call over everything would. The
    chunks are the same whether the bar is shown or not: results never depend on it.

    Returns:
        per sentence its (n_words, D) states, in input order.
    """
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    size = max(1, batch_size) * BATCHES_PER_CHUNK
    out: list[np.ndarray | None] = [None] * len(sentences)
    with bar(total=len(order), desc=desc, unit="sent", enabled=progress) as shown:
        for start in range(0, len(order), size):
            index = order[start : start + size]
            states = encoder.word_states(
                [list(sentences[i]) for i in index], layers=layers, batch_size=batch_size
            )
            for i, s in zip(index, states):
                out[i] = s
            shown.update(len(index))
    return out  # type: ignore[return-value]
