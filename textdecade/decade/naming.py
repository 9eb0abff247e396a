"""Where each run of a decade lives: one name per (family, seed)."""

from __future__ import annotations

from typing import Any


def run_name(family: str, seed_index: int) -> str:
    """The run directory's name under ``runs/``: the family's own for the first seed."""
    return family if seed_index == 0 else f"{family}-seed{seed_index}"


def run_names(settings: Any) -> list[tuple[str, int, str]]:
    """``(family, seed index, run name)`` of every run: seed 0 is ``runs/FAMILY`` (as
    without seeds), seed k ``runs/FAMILY-seedK``."""
    return [
        (family, k, run_name(family, k))
        for family in settings.families
        for k in range(settings.seeds)
    ]
