"""textdecade: a decade of NLP (Word2Vec to GPT) on one tokenizer, one engine, one eval suite.

Public surface::

    import textdecade as td
    model = td.load("runs/bert-tiny")          # a run directory or a HF BERT/GPT-2 directory
    vecs = model.embed(["a sentence", "another"])
    vecs = td.embed(["a sentence"], model="runs/bert-tiny")
    w2v = td.train("word2vec", "corpus.txt", vector_size=100)  # one call: the engine, then load
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "embed", "load", "train"]

if TYPE_CHECKING:  # pragma: no cover
    from textdecade.api import embed, load
    from textdecade.quick_train import train


def __getattr__(name: str) -> Any:
    # Imported lazily: `import textdecade` (and the CLI's --help) must not pull in torch.
    if name in ("load", "embed"):
        from textdecade import api

        return getattr(api, name)
    if name == "train":
        from textdecade.quick_train import train

        return train
    raise AttributeError(f"module 'textdecade' has no attribute {name!r}")
