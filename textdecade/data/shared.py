"""Find the project's shared real datasets (``../shared/data`` or ``$TEXTDECADE_DATA``).

Tests and benchmarks read real corpora and evaluation sets through this one helper; the
data is never copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """Return the shared data directory, or None when it cannot be found.

    Looks at ``$TEXTDECADE_DATA`` first, then for ``shared/data`` beside any parent of the
    current directory or of this package (a checkout lives next to ``shared/``).
    """
    env = os.environ.get("TEXTDECADE_DATA")
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in [start, *start.parents]:
            candidate = parent / "shared" / "data"
            if candidate.is_dir():
                return candidate
    return None


def shared_path(*parts: str) -> Path | None:
    """Path to ``shared/data/<parts>``, or None when the data (or that file) is absent."""
    root = shared_data_dir()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None
