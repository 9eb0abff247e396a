"""Hogwild workers die with their parent: a SIGKILLed run leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and POSIX signals")

SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    import torch
    from textdecade.models.hogwild import HogwildPool

    def kernel(tables, share, seed, lr):
        tables[0][share["ids"]] += lr
        return 0.0, int(share["ids"].numel())

    # as in a training run: the Trainer's SIGTERM handler is installed before the pool forks
    signal.signal(signal.SIGTERM, lambda *_: None)
    pool = HogwildPool(2, (torch.zeros(10),), kernel, {"ids": torch.int64}, 8)
    pool.run({"ids": torch.arange(8) % 10}, seed=0, lr=1.0)
    print(" ".join(str(p.pid) for p in pool.procs), flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    if status.exists():  # a zombie waiting for a reaper has exited
        return "State:\tZ" not in status.read_text()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_exit_when_their_parent_is_killed():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, env=env)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), workers
    finally:
        proc.kill()
        for pid in locals().get("workers", []):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _slow_first_worker_kernel(tables, share, seed, lr):
    """Marks each entry of its piece with the piece's seed; the first worker is slow, as a
    worker sharing its core with another process would be."""
    ids = share["ids"]
    if os.getpid() == int(tables[1][0]):
        time.sleep(0.05)
    tables[0][ids] = float(seed)
    tables[2][ids] = float(os.getpid())
    return float(ids.numel()), int(ids.numel())


def test_a_slow_worker_takes_fewer_pieces_and_every_piece_runs_once():
    import torch

    from textdecade.models.hogwild import PIECES_PER_WORKER, HogwildPool

    n = 64
    seed_of, slow_pid, pid_of = torch.zeros(n), torch.zeros(1), torch.zeros(n)
    pool = HogwildPool(
        2, (seed_of, slow_pid, pid_of), _slow_first_worker_kernel, {"ids": torch.int64}, n
    )
    try:
        slow_pid[0] = pool.procs[0].pid  # shared memory: the workers see it
        loss, count = pool.run({"ids": torch.arange(n)}, seed=3, lr=0.0)
        assert (loss, count) == (float(n), n)
        pieces = 2 * PIECES_PER_WORKER
        expected = torch.tensor([3000 + j * pieces // n for j in range(n)], dtype=torch.float32)
        assert torch.equal(seed_of, expected)  # piece j's seed, whoever ran it
        slow_share = int((pid_of == pool.procs[0].pid).sum())
        assert 0 < slow_share < n // 2  # the fast worker took more than a fixed half
    finally:
        pool.close()
