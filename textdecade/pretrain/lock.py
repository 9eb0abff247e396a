"""A run directory belongs to one process at a time: an OS lock on ``RUN/.lock``.

Two trainers writing one run would interleave ``metrics.jsonl`` and overwrite each other's
checkpoints, and ``--overwrite`` would delete a directory another process is writing. The
Trainer, ``import hf`` and ``export hf`` therefore hold an exclusive ``flock`` on the lock
file while they write a run directory, and refuse one another in one line naming the
holder's pid (written into the file). The kernel drops the lock when the holder's file is
closed, however the process ends: a SIGKILLed run never leaves a stale lock behind, and
the file itself means nothing once no one holds it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from textdecade.errors import UserError

try:
    import fcntl
except ImportError:  # Windows has no flock: there, runs are not locked (the one gap).
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLocked(UserError):
    """Another live process is writing this run directory."""


class RunLock:
    """The exclusive lock of one run directory (a context manager; re-entrant per object).

    Args:
        run_dir: the directory to lock; :meth:`acquire` creates it (and the lock file).
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock now or refuse; never waits.

        Raises:
            RunLocked: another process holds it (its pid is named).
        """
        if fcntl is None or self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(
                f"{self.run_dir} is in use by another textdecade process (pid {holder}); "
                "wait for it to finish or stop it, then try again"
            ) from None
        except OSError:
            # A file system without locks (some network mounts): run unlocked, as on
            # Windows, rather than refuse every run on it.
            os.close(fd)
            return self
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock (explicitly: forked workers share the open file)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
