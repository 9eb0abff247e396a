"""Hogwild worker processes for the Word2Vec kernel on CPU (Recht et al. 2011).

word2vec.c and gensim run one thread per core, each updating the shared tables without
locks. PyTorch's intra-op threads are a poor fit for the kernel's small products (measured
here: several times slower than one thread per worker), so each worker is a process with
one torch thread, and the tables live in shared memory. The main process copies a chunk of
word ids into a shared buffer, each worker trains on its contiguous share, and the losses
come back over a pipe. Lock-free updates make the result depend on timing: a run with
``workers >= 2`` is not bitwise reproducible (``workers = 1`` is).
"""

from __future__ import annotations

import struct
import weakref

import torch
import torch.multiprocessing as mp

from textdecade.models.sgns import KernelConfig, train_chunk

_REQUEST = struct.Struct("<qqqd")  # start, end, seed, lr
_REPLY = struct.Struct("<dq")  # loss sum, examples


def _worker(conn, tables, buffers, cfg: KernelConfig) -> None:  # pragma: no cover - subprocess
    torch.set_num_threads(1)
    in_w, out_w, table, keep_prob = tables
    ids, doc = buffers
    while True:
        try:
            msg = conn.recv_bytes()
        except EOFError:
            return
        if not msg:
            return
        start, end, seed, lr = _REQUEST.unpack(msg)
        gen = torch.Generator().manual_seed(seed)
        loss, count = train_chunk(
            in_w, out_w, table, keep_prob, ids[start:end], doc[start:end], lr, cfg, gen
        )
        conn.send_bytes(_REPLY.pack(loss, count))


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
    """``n`` worker processes training on shared-memory tables.

    Args:
        n: number of workers.
        tables: ``(in_w, out_w, table, keep_prob)`` CPU tensors; moved to shared memory in
            place, so the caller's tensors (e.g. a model's parameters) are the shared ones.
        cfg: the kernel settings.
        capacity: the largest chunk (in words) one call may pass.
    """

    def __init__(self, n: int, tables: tuple[torch.Tensor, ...], cfg: KernelConfig, capacity: int):
        for t in tables:
            t.share_memory_()
        self.capacity = capacity
        self.ids = torch.zeros(capacity, dtype=torch.int64).share_memory_()
        self.doc = torch.zeros(capacity, dtype=torch.int64).share_memory_()
        # fork, not spawn: spawn re-imports the user's __main__ (unguarded scripts would
        # re-run), and a forked child with one torch thread never enters an OpenMP region.
        ctx = mp.get_context("fork")
        self.procs, self.conns = [], []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker, args=(child, tables, (self.ids, self.doc), cfg), daemon=True
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self._finalizer = weakref.finalize(self, _shutdown, self.procs, self.conns)

    def run(self, ids: torch.Tensor, doc: torch.Tensor, seed: int, lr: float) -> tuple[float, int]:
        """Train on one chunk split into contiguous shares; returns (loss sum, examples)."""
        n = ids.numel()
        if n > self.capacity:
            raise ValueError(f"chunk of {n} words exceeds the pool's capacity {self.capacity}")
        self.ids[:n].copy_(ids)
        self.doc[:n].copy_(doc)
        k = len(self.conns)
        bounds = [n * i // k for i in range(k + 1)]
        for i, conn in enumerate(self.conns):
            conn.send_bytes(_REQUEST.pack(bounds[i], bounds[i + 1], seed * 1000 + i, lr))
        loss, count = 0.0, 0
        for conn in self.conns:
            part_loss, part_count = _REPLY.unpack(conn.recv_bytes())
            loss += part_loss
            count += part_count
        return loss, count

    def close(self) -> None:
        """Stop the workers (also done when the pool is garbage-collected or at exit)."""
        self._finalizer()
