"""The one corpus opener: what a ``DataConfig`` names, as texts or sentence pairs.

The trainer, ``textdecade tokenizer train``/``data prepare`` and the decade all open their
corpus here, so a path, a dataset name or the built-in sample means the same everywhere.
"""

from __future__ import annotations

from typing import Any

from textdecade.config import DataConfig
from textdecade.data.corpus import Corpus
from textdecade.data.parallel import ParallelCorpus


def names_sample(data: DataConfig) -> bool:
    """True when ``data`` names no corpus, so :func:`open_corpus` reads the built-in sample
    (which needs gensim unless it was built here before: :func:`~textdecade.data.sample.check_sample`)."""
    return not data.corpus and data.dataset is None and not data.source and not data.target


def open_corpus(data: DataConfig) -> Any:
    """Parallel files or a translation dataset (``source``/``target``, for the
    encoder-decoders), else text files, a HF dataset name, or the built-in sample.

    Paths are resolved now (a missing file is one line before any work); a dataset is read
    when iterated.
    """
    parallel = ParallelCorpus.from_config(data)
    if parallel is not None:
        return parallel
    return Corpus(
        paths=data.corpus,
        dataset=data.dataset,
        split=data.split,
        text_field=data.text_field,
        max_texts=data.max_texts,
    )
