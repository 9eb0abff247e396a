"""Memory and CPU-time readings for the benchmarks' worker processes (Linux /proc).

Imported by the benchmark scripts, which run as ``python benchmarks/NAME.py`` and so find
this file beside them.
"""

from __future__ import annotations

import os
import resource
import threading


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (Hogwild workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak RSS of this process's own address space (``VmHWM``), in MiB.

    Not ``ru_maxrss``: Linux carries the spawning process's peak across ``exec``, so a
    worker's ``ru_maxrss`` never reads below the launcher's size.
    """
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024


def tree_pss_mb(pid: int) -> float:
    """Anonymous + shared-memory PSS of ``pid`` and its descendants, in MiB.

    Heap, tensors and shared tables, each shared page counted once across the tree; code
    and file mappings are left out (their PSS depends on unrelated processes).
    """
    total = 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            total += sum(
                int(ln.split()[1]) for ln in f if ln.startswith(("Pss_Anon:", "Pss_Shmem:"))
            )
        total /= 1024
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(tree_pss_mb(int(c)) for c in f.read().split())
    except OSError:
        pass  # a child that just exited
    return total


class Meter:
    """Peak memory of this worker from the moment it is built (right before training)."""

    def __init__(self, interval: float = 0.5):
        self.base = rss_mb()
        self.pss_peak = tree_pss_mb(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.pss_peak = max(self.pss_peak, tree_pss_mb(os.getpid()))

    def read(self) -> dict[str, float]:
        """Peaks so far: ``peak_mb``, ``train_mb``, ``child_mb``, ``pss_mb`` (MiB)."""
        self.pss_peak = max(self.pss_peak, tree_pss_mb(os.getpid()))
        peak = peak_rss_mb()
        return {
            "base_mb": self.base,
            "peak_mb": peak,
            "train_mb": peak - self.base,
            # the largest reaped child (KiB on Linux): a forked child starts with the
            # parent's private pages mapped, an exec'd helper with its spawner's peak
            "child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pss_mb": self.pss_peak,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
