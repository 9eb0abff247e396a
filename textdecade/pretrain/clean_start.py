"""A run that fails or is interrupted before it trains leaves nothing behind.

Preparing a run (training the tokenizer, encoding the corpus) can take minutes. A Ctrl-C
or SIGTERM then must stop it at once with one line, and a start that failed (a bad
``--text-field``, an unreachable dataset, a signal) must not leave a config-only run
directory that refuses the corrected command ("already holds a run").
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from textdecade.errors import Interrupted


class StartInterrupted(Interrupted):
    """A signal arrived while the run was being prepared; nothing of it was kept."""


@contextlib.contextmanager
def clean_start(run_dir: Path, claimed: list[bool]) -> Iterator[None]:
    """Make Ctrl-C and SIGTERM raise :class:`StartInterrupted`, and on any failure remove
    what this process made of ``run_dir``.

    Args:
        run_dir: the run directory being prepared.
        claimed: set ``claimed[0] = True`` once this process has made ``run_dir`` a new
            run (never for a resume, nor before a refusal): only then is it removed. A
            directory the user had made empty stays, empty.
    """
    existed = run_dir.exists()

    def stop(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        raise StartInterrupted(
            f"{signal.Signals(signum).name} received while preparing the run: stopped "
            "before training; nothing was kept"
        )

    main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        yield
    except BaseException:
        if claimed[0] and run_dir.is_dir():
            shutil.rmtree(run_dir, ignore_errors=True)
            if existed:
                run_dir.mkdir(parents=True, exist_ok=True)
        raise
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
