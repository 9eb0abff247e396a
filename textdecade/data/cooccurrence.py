"""GloVe's word-word co-occurrence counts, streamed with bounded memory (Pennington et al. 2014).

Every pair of words ``d <= window`` positions apart in a document adds ``1/d`` to X[a, b]
and, the window being symmetric, to X[b, a] (as glove.c's ``cooccur -symmetric 1``). A
dense |V|^2 table is out of the question (~41 GB at 72k words), so counting works like
glove.c's: pairs of a chunk of the corpus are aggregated by sorting their keys
``a * V + b``; aggregated runs accumulate in memory and are spilled to disk as sorted runs
when they outgrow the memory budget; the runs are then merged range by range (each range
of keys small enough for the budget) into one sorted table. Counting runs in ``workers``
processes, each over a contiguous share of the documents with its share of the budget.

Output under ``out_dir``: ``cooc_rows.i32``, ``cooc_cols.i32``, ``cooc_vals.f32`` (nnz
entries sorted by (row, col)) and ``cooc.json`` (``{"nnz", "vocab_size", "window"}``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textdecade.data.words import WordData, load_word_data
from textdecade.errors import ConfigError, CorpusError
from textdecade.io import write_json

ENTRY_BYTES = 12  # an int64 key and a float32 value
META_FILE = "cooc.json"


@dataclass
class Cooccurrence:
    """A sparse co-occurrence table in COO form (memmapped, sorted by row then column).

    Attributes:
        rows, cols: (nnz,) int32 word ids.
        vals: (nnz,) float32 weighted counts.
        vocab_size: number of words.
        runs: sorted runs that counting spilled to disk before the merge.
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    vocab_size: int
    runs: int = 0

    def __len__(self) -> int:
        return int(self.vals.shape[0])

    def to_dict(self) -> dict[tuple[int, int], float]:
        """{(row, col): value}, for tests on small tables."""
        return {(int(r), int(c)): float(v) for r, c, v in zip(self.rows, self.cols, self.vals)}


def _aggregate(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``vals`` of equal ``keys``; returns (sorted unique keys, float32 sums)."""
    if keys.size == 0:
        return keys, vals.astype(np.float32)
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order].astype(np.float64)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(vals, starts).astype(np.float32)


def _spill(run_dir: Path, index: int, keys: np.ndarray, vals: np.ndarray) -> Path:
    path = run_dir / f"run{index:05d}"
    keys.tofile(str(path) + ".keys")
    vals.tofile(str(path) + ".vals")
    return path


def _count_share(
    words_dir: str, run_dir: str, start: int, end: int, window: int, budget: int
) -> list[str]:
    """Count positions ``[start, end)`` of the stream into sorted runs on disk.

    The budget (bytes) bounds both a chunk's raw pairs and the aggregated runs held in
    memory; each holds at most half of it.
    """
    data = load_word_data(words_dir)
    vocab = data.vocab_size
    run_path = Path(run_dir)
    # Raw pairs of a chunk: 2 * window per position, ENTRY_BYTES each, ~3x for the sort.
    chunk = max(window + 1, budget // 2 // (2 * window * ENTRY_BYTES * 3))
    held_limit = max(1, budget // 2 // ENTRY_BYTES)
    held_keys: list[np.ndarray] = []
    held_vals: list[np.ndarray] = []
    held = 0
    runs: list[str] = []
    tag = start  # unique run names per share
    pos = start
    while pos < end:
        # Overlap ``window`` positions so pairs across chunk borders are counted once:
        # a chunk adds the pairs whose *left* word lies in [pos, stop).
        stop = min(pos + chunk, end)
        hi = min(stop + window, end)
        ids = np.asarray(data.ids[pos:hi])
        docs = data.doc_of(pos, hi)
        keys, vals = [], []
        n_left = stop - pos
        for d in range(1, window + 1):
            if hi - pos <= d:
                break
            left = np.arange(min(n_left, hi - pos - d))
            same = docs[left + d] == docs[left]
            a = ids[left[same]].astype(np.int64)
            b = ids[left[same] + d].astype(np.int64)
            w = np.full(a.size, 1.0 / d, dtype=np.float32)
            keys += [a * vocab + b, b * vocab + a]
            vals += [w, w]
        if keys:
            k, v = _aggregate(np.concatenate(keys), np.concatenate(vals))
            held_keys.append(k)
            held_vals.append(v)
            held += k.size
        if held > held_limit:
            k, v = _aggregate(np.concatenate(held_keys), np.concatenate(held_vals))
            if k.size > held_limit // 2:
                runs.append(str(_spill(run_path, tag, k, v)))
                tag += 1
                held_keys, held_vals, held = [], [], 0
            else:
                held_keys, held_vals, held = [k], [v], k.size
        pos = stop
    if held_keys:
        k, v = _aggregate(np.concatenate(held_keys), np.concatenate(held_vals))
        runs.append(str(_spill(run_path, tag, k, v)))
    return runs


def _open_run(path: str) -> tuple[np.ndarray, np.ndarray]:
    n = os.path.getsize(path + ".keys") // 8
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    keys = np.memmap(path + ".keys", dtype=np.int64, mode="r", shape=(n,))
    vals = np.memmap(path + ".vals", dtype=np.float32, mode="r", shape=(n,))
    return keys, vals


def _merge(runs: list[str], out_dir: Path, vocab: int, budget: int) -> int:
    """Merge sorted runs into the output files, one key range at a time; returns nnz."""
    opened = [_open_run(r) for r in runs]
    total = sum(k.size for k, _ in opened)
    per_range = max(1, budget // (ENTRY_BYTES * 4))
    n_ranges = max(1, -(-total // per_range))
    # Range boundaries from the key quantiles of every run (the runs are sorted).
    probes = [k[np.linspace(0, k.size - 1, 64).astype(np.int64)] for k, _ in opened if k.size]
    sample = np.sort(np.concatenate(probes)) if probes else np.zeros(0, np.int64)
    bounds = [np.iinfo(np.int64).min]
    if sample.size and n_ranges > 1:
        cuts = np.quantile(sample, np.linspace(0, 1, n_ranges + 1)[1:-1], method="lower")
        bounds += sorted(set(int(c) for c in cuts))
    bounds.append(np.iinfo(np.int64).max)  # keys are < V^2, never this
    nnz = 0
    with (
        open(out_dir / "cooc_rows.i32", "wb") as fr,
        open(out_dir / "cooc_cols.i32", "wb") as fc,
        open(out_dir / "cooc_vals.f32", "wb") as fv,
    ):
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            keys, vals = [], []
            for k, v in opened:
                a, b = np.searchsorted(k, lo, "left"), np.searchsorted(k, hi, "left")
                keys.append(np.asarray(k[a:b]))
                vals.append(np.asarray(v[a:b]))
            key, val = _aggregate(np.concatenate(keys), np.concatenate(vals))
            (key // vocab).astype(np.int32).tofile(fr)
            (key % vocab).astype(np.int32).tofile(fc)
            val.tofile(fv)
            nnz += key.size
    return nnz


def _share_bounds(data: WordData, workers: int) -> list[int]:
    """Split the stream into ``workers`` shares at document boundaries."""
    n = len(data)
    cuts = [0]
    for i in range(1, workers):
        target = n * i // workers
        doc = int(np.searchsorted(data.offsets, target, side="right")) - 1
        cuts.append(max(cuts[-1], int(data.offsets[doc])))
    cuts.append(n)
    return cuts


def _default_signals() -> None:  # pragma: no cover - runs in the pool's workers
    """A counting worker dies on SIGTERM and leaves Ctrl-C to its parent.

    Forked workers inherit the parent's Python handlers: with the run's "stop cleanly"
    handler a worker survived the SIGTERM that ``Pool.terminate`` sends it, and the parent
    waited for it forever at the end of counting (seen in the test suite).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def count_cooccurrences(
    words_dir: str | Path,
    out_dir: str | Path,
    window: int = 10,
    memory_mb: float = 512.0,
    workers: int = 2,
) -> Cooccurrence:
    """Count the 1/distance-weighted symmetric co-occurrences of a prepared word stream.

    Args:
        words_dir: where :func:`~textdecade.data.words.build_word_data` wrote the stream.
        out_dir: where the table goes (spilled runs live in a subfolder while counting).
        window: words on each side that count (glove.c's ``-window-size``).
        memory_mb: memory budget for the counting buffers, shared by the workers.
        workers: counting processes (each takes a contiguous share of the documents).

    Returns:
        The :class:`Cooccurrence` table, memmapped from ``out_dir``.

    Raises:
        ConfigError: ``window < 1``, ``workers < 1`` or a budget that is not positive.
    """
    if window < 1:
        raise ConfigError(f"window must be at least 1, got {window}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if memory_mb <= 0:
        raise ConfigError(f"memory_mb must be positive, got {memory_mb}")
    data = load_word_data(words_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "cooc_runs"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    budget = int(memory_mb * 2**20)
    cuts = _share_bounds(data, workers)
    jobs = [
        (str(words_dir), str(run_dir), a, b, window, budget // workers)
        for a, b in zip(cuts[:-1], cuts[1:])
        if b > a
    ]
    try:
        if len(jobs) > 1:
            # fork: numpy-only children, no re-import of the caller's __main__.
            with mp.get_context("fork").Pool(len(jobs), initializer=_default_signals) as pool:
                runs = [r for part in pool.starmap(_count_share, jobs) for r in part]
        else:
            runs = [r for job in jobs for r in _count_share(*job)]
        nnz = _merge(runs, out, data.vocab_size, budget)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if nnz == 0:
        raise CorpusError("no two words co-occur: the corpus is too small or has one-word lines")
    meta = {"nnz": nnz, "vocab_size": data.vocab_size, "window": window, "runs": len(runs)}
    write_json(out / META_FILE, meta)
    return load_cooccurrences(out)


def load_cooccurrences(out_dir: str | Path) -> Cooccurrence:
    """Reopen a table written by :func:`count_cooccurrences` (memmapped, read-only)."""
    out = Path(out_dir)
    try:
        meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{out}: co-occurrence table missing or damaged ({exc})") from None
    n = int(meta["nnz"])

    def mm(name: str, dtype) -> np.ndarray:
        return np.memmap(out / name, dtype=dtype, mode="r", shape=(n,))

    return Cooccurrence(
        mm("cooc_rows.i32", np.int32),
        mm("cooc_cols.i32", np.int32),
        mm("cooc_vals.f32", np.float32),
        int(meta["vocab_size"]),
        int(meta.get("runs", 0)),
    )
