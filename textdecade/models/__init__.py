"""The registry of model families: name -> (model class, Config, presets).

Families are imported lazily so that ``textdecade --help`` stays fast. A new family is a
module that defines ``Model`` (a :class:`~textdecade.models.base.Family`), ``Config`` and
``PRESETS``, and one line here, or a :func:`register_family` call from outside (see
CONTRIBUTING.md).
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
    "elmo": "textdecade.models.elmo",
    "bert": "textdecade.models.bert",
    "gpt": "textdecade.models.gpt",
    "transformer-xl": "textdecade.models.transformer_xl",
}


def register_family(name: str, module: str, *, replace: bool = False) -> None:
    """Make family ``name`` known to the engine, the CLI and ``textdecade.load``.

    Args:
        name: the family's name (``textdecade pretrain NAME``; saved in run configs).
        module: the importable module path that defines ``Model``, ``Config``, ``PRESETS``.
        replace: allow re-registering an existing name (a built-in family included).

    Raises:
        UserError: ``name`` is taken (and not ``replace``) or not a plain lowercase name.
    """
    if not name or not all(ch.islower() or ch.isdigit() or ch in "-_" for ch in name):
        raise UserError(f"family name {name!r}: use lowercase letters, digits, '-' or '_'")
    if name in FAMILIES and not replace and FAMILIES[name] != module:
        raise UserError(f"family '{name}' is already registered ({FAMILIES[name]})")
    FAMILIES[name] = module


def unregister_family(name: str) -> None:
    """Forget family ``name`` (the inverse of :func:`register_family`; tests use it)."""
    FAMILIES.pop(name, None)


def family_module(name: str) -> Any:
    """The module of family ``name``; an unknown name is a one-line error listing the valid ones."""
    if name not in FAMILIES:
        raise UserError(f"unknown model family '{name}' (choose from: {', '.join(FAMILIES)})")
    module = importlib.import_module(FAMILIES[name])
    missing = [n for n in ("Model", "Config", "PRESETS") if not hasattr(module, n)]
    if missing:
        raise UserError(f"family '{name}' ({FAMILIES[name]}) defines no {', '.join(missing)}")
    return module


def get_family(name: str) -> tuple[type, type, dict[str, dict[str, Any]]]:
    """Return ``(Model, Config, PRESETS)`` of family ``name``."""
    module = family_module(name)
    return module.Model, module.Config, module.PRESETS
