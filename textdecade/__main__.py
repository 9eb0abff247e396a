"""``python -m textdecade`` (also what torchrun launches)."""

from textdecade.cli import run

run()
