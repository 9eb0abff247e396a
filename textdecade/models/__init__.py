"""The registry of model families: name -> (model class, Config, presets).

Families are imported lazily so that ``textdecade --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from textdecade.errors import UserError

#: family name -> module that defines ``Model``, ``Config`` and ``PRESETS``.
FAMILIES: dict[str, str] = {
    "word2vec": "textdecade.models.word2vec",
    "glove": "textdecade.models.glove",
    "seq2seq": "textdecade.models.seq2seq",
    "transformer": "textdecade.models.transformer",
    "bert": "textdecade.models.bert",
    "gpt": "textdecade.models.gpt",
}


def family_module(name: str) -> Any:
    """The module of family ``name``; an unknown name is a one-line error listing the valid ones."""
    if name not in FAMILIES:
        raise UserError(f"unknown model family '{name}' (choose from: {', '.join(FAMILIES)})")
    return importlib.import_module(FAMILIES[name])


def get_family(name: str) -> tuple[type, type, dict[str, dict[str, Any]]]:
    """Return ``(Model, Config, PRESETS)`` of family ``name``."""
    module = family_module(name)
    return module.Model, module.Config, module.PRESETS
