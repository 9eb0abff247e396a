"""``td.train``: one call from texts (or a corpus path) to a trained model handle.

gensim's ``Word2Vec(sentences, vector_size=100, epochs=5)`` and nanoGPT's one command, on
the engine every family shares: the same Trainer, run directory and progress bar as
``textdecade pretrain``, so the run can be resumed, evaluated and exported like any other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textdecade.errors import UserError

__all__ = ["train"]

#: gensim's argument names -> the run config's.
GENSIM_NAMES = {"vector_size": "d_model", "alpha": "lr"}
#: Passes over the user's texts when no length (steps, epochs, minutes) is given, where the
#: reference library has a default (gensim's Word2Vec: 5); other families train their
#: preset's steps.
DEFAULT_EPOCHS = {"word2vec": 5}
_LENGTHS = ("steps", "epochs", "minutes")


def train(
    family: str,
    texts: Iterable[str] | str | os.PathLike | None = None,
    *,
    preset: str = "tiny",
    settings: dict[str, dict[str, Any]] | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str | None = None,
    **options: Any,
):
    """Train ``family`` and return its loaded model handle (:class:`~textdecade.api.TextModel`).

    Args:
        family: "word2vec", "glove", "seq2seq", "transformer", "elmo", "bert", "gpt" or
            "transformer-xl".
        texts: documents (any iterable of strings, kept in memory as a list); a path,
            directory or glob of corpus files (str or Path: what ``--corpus`` takes, read
            as a stream: the way for a large corpus); None: the built-in sample.
        preset: the family's preset to start from ("tiny", "small", "base").
        settings: ``{section: {key: value}}`` for keys several sections share.
        run_dir: where the run goes (resumable, loadable later); None: a temporary
            directory that lives as long as the returned handle.
        overwrite: replace a run already in ``run_dir``.
        progress: the engine's progress bar on stderr.
        device: where to train and load ("cpu", "cuda", ...); None: the config's choice.
        **options: bare config keys (``d_model=64``, ``epochs=3``, ``window=5``,
            ``min_count=5``, ``lr=...``), each belonging to one section of the run config;
            gensim's ``vector_size`` and ``alpha`` are accepted for ``d_model`` and ``lr``.

    Returns:
        the trained model, loaded (``.run_dir`` is where it lives).

    Raises:
        UserError: an unknown family, preset or setting (one line), or bad texts.
    """
    from textdecade.api import load
    from textdecade.config import build_config, merge, nest_flat_settings
    from textdecade.models import get_family
    from textdecade.pretrain.trainer import Trainer

    _, Config, presets = get_family(family)
    flat = {GENSIM_NAMES.get(k, k): v for k, v in options.items()}
    values = merge(nest_flat_settings(Config, flat), settings or {})
    if family in DEFAULT_EPOCHS and not any(k in values.get("train", {}) for k in _LENGTHS):
        values = merge(values, {"train": {"epochs": DEFAULT_EPOCHS[family]}})
    corpus = None
    if isinstance(texts, (str, os.PathLike)):
        values = merge(values, {"data": {"corpus": (os.fspath(texts),)}})
    elif texts is not None:
        corpus = _texts(texts)
    if device is not None:
        values = merge(values, {"train": {"device": device}})
    config = build_config(family, Config, presets, preset, None, (), values)
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"textdecade-{family}-")
        run_dir = Path(tmp.name) / "run"
    Trainer(config, Path(run_dir), corpus=corpus, overwrite=overwrite, progress=progress).fit()
    handle = load(run_dir, device=device)
    handle._temporary_dir = tmp  # the run's folder lives as long as the handle
    return handle


def _texts(texts: Iterable[str]) -> list[str]:
    """The texts as a list (the engine reads them more than once), checked."""
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise UserError(
            f"texts must be strings (one document each), got {type(bad).__name__}; "
            "for tokenized sentences join their words with spaces"
        )
    if not texts:
        raise UserError("texts is empty: pass documents, a corpus path, or None for the sample")
    return texts
