"""How many CPU threads a run should use: the cores that other work leaves free.

PyTorch starts one intra-op thread per core and synchronises them at a barrier in every
parallel operator. When another process holds one of the cores, each barrier waits for the
thread that shares a core with it, a scheduler time slice at a time, and a run on 2 cores
beside one busy process fell to about a quarter of its idle speed instead of the half or
two thirds a fair share would give. A run that uses only the cores that are free never waits
on a barrier for a descheduled thread, so it keeps its fair share.

The free cores are read from ``/proc/stat`` over a short interval before the run starts
(Linux; elsewhere every core counts as free). Time of processes at a positive nice value
counts as free: they yield to a normal-priority run. This process's own time is left out.
"""

from __future__ import annotations

import os
import time

__all__ = ["affinity_cores", "busy_cores_of_others", "threads_for_free_cores"]

_SAMPLE_S = 0.2
_sleep = time.sleep  # a name of our own, so a test can replace it


def affinity_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _cpu_ticks(stat: str, cpus: set[int]) -> tuple[int, int]:
    """(busy, total) clock ticks so far of the given CPUs in ``/proc/stat``'s text; user
    time at a positive nice value counts as idle (it yields to a normal-priority run)."""
    busy = total = 0
    for line in stat.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        if int(name[3:]) not in cpus:
            continue
        ticks = [int(x) for x in fields[:8]]
        user, nice, system, idle, iowait, irq, softirq, steal = ticks + [0] * (8 - len(ticks))
        busy += user + system + irq + softirq + steal
        total += user + nice + system + idle + iowait + irq + softirq + steal
    return busy, total


def _own_ticks(stat_self: str) -> int:
    """User + system clock ticks of this process (all its threads) in ``/proc/self/stat``."""
    fields = stat_self.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def busy_cores_of_others(interval: float = _SAMPLE_S) -> float | None:
    """Cores of this process's affinity set that other normal-priority work kept busy.

    Measured over ``interval`` seconds; None where ``/proc`` cannot tell (not Linux).
    """
    try:
        cpus = os.sched_getaffinity(0)
        before = _read("/proc/stat"), _read("/proc/self/stat")
        _sleep(interval)
        after = _read("/proc/stat"), _read("/proc/self/stat")
        busy0, total0 = _cpu_ticks(before[0], cpus)
        busy1, total1 = _cpu_ticks(after[0], cpus)
        own = _own_ticks(after[1]) - _own_ticks(before[1])
    except (AttributeError, OSError, ValueError, IndexError):
        return None
    elapsed = total1 - total0
    if elapsed <= 0:
        return None
    # All CPUs' ticks add up to elapsed, so a share of them times the CPUs is busy cores.
    others = max(0, (busy1 - busy0) - own)
    return min(len(cpus), others / elapsed * len(cpus))


def threads_for_free_cores(current: int, busy: float | None = None) -> tuple[int, str]:
    """The intra-op thread count for a run: ``current`` lowered to the free cores.

    Never raises the count above ``current`` (the process's own setting, from
    ``OMP_NUM_THREADS`` or ``torch.set_num_threads``), and never goes below one.

    Args:
        current: the process's thread count now.
        busy: other work's busy cores; measured (:func:`busy_cores_of_others`) when None.

    Returns:
        ``(threads, why)``: the count and a few words on how it was chosen, for the run's
        start-up line.
    """
    cores = affinity_cores()
    if busy is None:
        busy = busy_cores_of_others()
    if busy is None:
        return current, thread_count(current)
    free = max(1, round(cores - busy))
    threads = max(1, min(current, free))
    if threads < current:
        return (
            threads,
            f"{thread_count(threads)} ({busy:.1f} of {cores} cores busy with other work)",
        )
    return threads, thread_count(threads)


def thread_count(n: int) -> str:
    """``"1 thread"``, ``"2 threads"``: the start-up line's words for a count."""
    return f"{n} thread{'' if n == 1 else 's'}"
