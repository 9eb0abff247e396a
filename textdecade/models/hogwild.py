"""Hogwild worker processes for the static families' kernels on CPU (Recht et al. 2011).

word2vec.c, glove.c and gensim run one thread per core, each updating the shared tables
without locks. PyTorch's intra-op threads are a poor fit for these kernels' small products
(measured here: several times slower than one thread per worker), so each worker is a
process with one torch thread, and the tables live in shared memory. The main process
copies a batch (Word2Vec: word ids; GloVe: nonzeros) into shared buffers, each worker
takes the next contiguous piece of it when it has finished one, and the losses come back
over a pipe.
Lock-free updates make the result depend on timing: a run with ``workers >= 2`` is not
bitwise reproducible (``workers = 1`` is).
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
import weakref
from collections.abc import Callable
from multiprocessing.connection import wait

import torch
import torch.multiprocessing as mp

# kernel(tables, share, seed, lr) -> (loss sum, examples); ``share`` maps each buffer's
# name to this worker's slice of the batch.
Kernel = Callable[[tuple[torch.Tensor, ...], dict[str, torch.Tensor], int, float], tuple]

_REQUEST = struct.Struct("<qqqd")  # start, end, seed, lr
_REPLY = struct.Struct("<dq")  # loss sum, examples

#: Pieces of a batch per worker (see :meth:`HogwildPool.run`).
PIECES_PER_WORKER = 4


#: How often a worker without work checks that its parent is alive (where the kernel
#: cannot tell it: not Linux).
_PARENT_CHECK_S = 1.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:  # pragma: no cover - subprocess
    """Never outlive the parent: a SIGKILLed run must not leave its workers behind.

    The parent's signal handlers are inherited through fork (the Trainer's would make a
    worker ignore SIGTERM): SIGTERM is restored to its default and Ctrl-C is left to the
    parent, which shuts the pool down. On Linux the kernel sends SIGTERM when the parent
    dies; elsewhere the worker polls for it between batches.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # it died before the request took effect
        os._exit(0)


def _worker(
    conn, kernel: Kernel, tables, buffers, parent_pid: int, inherited
) -> None:  # pragma: no cover - subprocess
    _die_with_parent(parent_pid)
    # Fork copied the parent's ends of every pipe made so far (this worker's and its
    # siblings'): closed here, so a dead parent is an EOF rather than a silent hang.
    for other in inherited:
        other.close()
    torch.set_num_threads(1)
    # A forked worker inherits the parent's inductor compile thread pool but none of its
    # threads, so a kernel that calls torch.compile would wait on it forever (seen when the
    # parent had compiled first). One compile thread compiles in-process, with no pool.
    from torch._inductor import config as inductor_config

    inductor_config.compile_threads = 1
    while True:
        while not conn.poll(_PARENT_CHECK_S):
            if os.getppid() != parent_pid:
                return
        try:
            msg = conn.recv_bytes()
        except EOFError:
            return
        if not msg:
            return
        start, end, seed, lr = _REQUEST.unpack(msg)
        share = {name: buf[start:end] for name, buf in buffers.items()}
        loss, count = kernel(tables, share, seed, lr)
        conn.send_bytes(_REPLY.pack(float(loss), int(count)))


def _shutdown(procs, conns) -> None:
    for conn in conns:
        try:
            conn.send_bytes(b"")
            conn.close()
        except (OSError, ValueError):
            pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()


class HogwildPool:
    """``n`` worker processes running ``kernel`` on shared-memory tables.

    Args:
        n: number of workers.
        tables: CPU tensors the kernel reads and updates; moved to shared memory in place,
            so the caller's tensors (e.g. a model's parameters) are the shared ones.
        kernel: the family's update (see :data:`Kernel`); with the fork start method it is
            inherited, not pickled, so a closure or ``functools.partial`` is fine.
        buffers: name -> dtype of the 1-D arrays each batch brings.
        capacity: the largest batch (in entries) one call may pass.
    """

    def __init__(
        self,
        n: int,
        tables: tuple[torch.Tensor, ...],
        kernel: Kernel,
        buffers: dict[str, torch.dtype],
        capacity: int,
    ):
        for t in tables:
            t.share_memory_()
        self.capacity = capacity
        self.buffers = {
            name: torch.zeros(capacity, dtype=dtype).share_memory_()
            for name, dtype in buffers.items()
        }
        # fork, not spawn: spawn re-imports the user's __main__ (unguarded scripts would
        # re-run), and a forked child with one torch thread never enters an OpenMP region.
        ctx = mp.get_context("fork")
        self.procs, self.conns = [], []
        for _ in range(n):
            parent, child = ctx.Pipe()
            inherited = [*self.conns, parent]  # the parent's ends this worker must close
            proc = ctx.Process(
                target=_worker,
                args=(child, kernel, tables, self.buffers, os.getpid(), inherited),
                daemon=True,
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self._finalizer = weakref.finalize(self, _shutdown, self.procs, self.conns)

    def run(self, batch: dict[str, torch.Tensor], seed: int, lr: float) -> tuple[float, int]:
        """Run the kernel on one batch, in contiguous pieces; (loss sum, examples).

        With several workers the batch is cut into :data:`PIECES_PER_WORKER` pieces per
        worker, and each worker takes the next piece when it finishes one: a worker that
        shares its core with another process does less of the batch instead of holding
        the others up at the end of it (a fixed half each ran at the slow one's pace).
        Piece ``j`` draws its randomness from ``seed * 1000 + j``, whichever worker runs it.
        """
        n = next(iter(batch.values())).numel()
        if n > self.capacity:
            raise ValueError(f"batch of {n} exceeds the pool's capacity {self.capacity}")
        for name, buf in self.buffers.items():
            buf[:n].copy_(batch[name])
        k = len(self.conns)
        pieces = 1 if k == 1 else min(k * PIECES_PER_WORKER, max(k, n))
        bounds = [n * j // pieces for j in range(pieces + 1)]
        given = 0

        def give(conn) -> None:
            nonlocal given
            start, end = bounds[given], bounds[given + 1]
            conn.send_bytes(_REQUEST.pack(start, end, seed * 1000 + given, lr))
            given += 1

        working = list(self.conns[:pieces])
        for conn in working:
            give(conn)
        loss, count = 0.0, 0
        while working:
            for conn in wait(working):
                part_loss, part_count = _REPLY.unpack(conn.recv_bytes())
                loss += part_loss
                count += part_count
                if given < pieces:
                    give(conn)
                else:
                    working.remove(conn)
        return loss, count

    def close(self) -> None:
        """Stop the workers (also done when the pool is garbage-collected or at exit)."""
        self._finalizer()


class PoolOwner:
    """Mixin for a model that trains through a :class:`HogwildPool` on CPU.

    The pool starts on first use and is rebuilt for a larger batch; ``close`` stops it.
    """

    _pool: HogwildPool | None = None

    def _hogwild_pool(
        self, workers: int, tables, kernel: Kernel, buffers: dict[str, torch.dtype], n: int
    ) -> HogwildPool:
        if self._pool is None or self._pool.capacity < n:
            self.close()
            self._pool = HogwildPool(workers, tables, kernel, buffers, n)
        return self._pool

    def nondeterminism(self) -> str:
        """Hogwild's lock-free updates interleave by timing: with 2+ workers on CPU two
        runs (and a run and its resume) differ slightly; one worker is bitwise."""
        workers = int(getattr(self.config, "workers", 1))
        if workers < 2 or next(self.parameters()).device.type != "cpu":
            return ""
        return (
            f"Hogwild with {workers} workers: lock-free updates make two runs differ "
            "slightly, so a resume is not bitwise (model.workers=1 is)"
        )

    def close(self) -> None:
        """Stop the Hogwild workers, if any (they also stop at exit)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
