"""The optional extras: what ``pip install textdecade`` leaves out, and the one line that says
which extra to install when a command needs it.

The card's dependencies (torch, tokenizers, datasets, sentencepiece, scikit-learn, ...)
are always installed; packages that only some commands use come as extras of
``pyproject.toml``. Every import of one of them goes through :func:`require` (lazily, at
the point of use, so ``import textdecade`` stays light), and commands that would spend
minutes before reaching that point call :func:`check` first, so a missing extra costs
nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from textdecade.errors import UserError

#: Top-level package -> the extra of ``pyproject.toml`` that installs it.
EXTRAS: dict[str, str] = {
    "matplotlib": "plots",
    "gensim": "gensim",
    "transformers": "hf",
    "optuna": "lab",
}


class MissingExtra(UserError):
    """A package of an optional extra that is not installed; says which extra to install."""


def message(package: str, purpose: str) -> str:
    """The one line for ``purpose`` missing ``package`` (a top-level name of :data:`EXTRAS`)."""
    return (
        f"{purpose} needs {package}, which is not installed: "
        f"pip install 'textdecade[{EXTRAS[package]}]'"
    )


def _top(module: str) -> str:
    top = module.split(".", 1)[0]
    if top not in EXTRAS:  # a programming mistake, not the user's
        raise KeyError(f"{top} is no optional extra's package (see textdecade.extras.EXTRAS)")
    return top


def require(module: str, purpose: str) -> ModuleType:
    """Import and return ``module`` (e.g. ``"matplotlib.figure"``) of an optional extra.

    Args:
        module: a dotted module name whose top-level package is in :data:`EXTRAS`.
        purpose: what needs it, as the start of a sentence ("plot curves").

    Raises:
        MissingExtra: the package (or a part of it) cannot be imported; one line naming
            the extra to install.
    """
    top = _top(module)
    try:
        # The package first: a submodule imported earlier would be found in sys.modules
        # even where the package itself no longer imports.
        importlib.import_module(top)
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(message(top, purpose)) from None


def check(module: str, purpose: str) -> None:
    """Refuse now, before any work, when ``module``'s package is not installed.

    Cheaper than :func:`require`: it finds the package without importing it (a command
    checks what its last step will need at its first).

    Raises:
        MissingExtra: as :func:`require`.
    """
    top = _top(module)
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a broken install, or a stub module without a spec
        found = False
    if not found:
        raise MissingExtra(message(top, purpose))
