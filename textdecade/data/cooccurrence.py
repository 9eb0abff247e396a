"""GloVe's word-word co-occurrence counts, streamed with bounded memory (Pennington et al. 2014).

Every pair of words ``d <= window`` positions apart in a document adds ``1/d`` to X[a, b]
and, the window being symmetric, to X[b, a] (as glove.c's ``cooccur -symmetric 1``). A
dense |V|^2 table is out of the question (~41 GB at 72k words), so counting works like
glove.c's: pairs of two frequent words (most pairs: ids are frequency ranks) are added in
place into a dense table of those pairs (:class:`FrequentPairs`, a share of the budget);
the other pairs of a chunk of the corpus are aggregated by sorting their keys
``a * V + b``; aggregated runs accumulate in memory and are spilled to disk as sorted runs
when they outgrow the memory budget; the table's nonzeros become one more sorted run; the
runs are then merged range by range (each range of keys small enough for the budget) into
one sorted table. Counting runs in ``workers`` processes, each over a contiguous share of
the documents with its share of the budget.

Values are float32 sums: the table's of float64 sums, a sorted run's of float64 sums per
chunk, the merge's (in float64) of the runs' float32 values, so a value may differ from
the exact float64 count by a few float32 roundings (relative 1e-7 to 1e-6).

Output under ``out_dir``: ``cooc_rows.i32``, ``cooc_cols.i32``, ``cooc_vals.f32`` (nnz
entries sorted by (row, col)) and ``cooc.json`` (``{"nnz", "vocab_size", "window"}``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textdecade.data.frequent_pairs import FrequentPairs
from textdecade.data.words import WordData, load_word_data
from textdecade.errors import ConfigError, CorpusError
from textdecade.io import write_json

ENTRY_BYTES = 12  # an int64 key and a float32 value
META_FILE = "cooc.json"
DENSE_SHARE = 1 / 16  # of the budget, for FrequentPairs (see count_cooccurrences)


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


def _spill(path: Path, keys: np.ndarray, vals: np.ndarray) -> Path:
    keys.tofile(str(path) + ".keys")
    vals.tofile(str(path) + ".vals")
    return path


def _aggregate_packed(packed: np.ndarray, width: int, weight: np.ndarray):
    """:func:`_aggregate` of pairs packed as ``key * width + d`` (weight ``weight[d]``).

    Sorting the packed int64 values alone is about twice as fast as sorting keys and
    gathering their values by the order (no argsort, no permutation of a second array).
    """
    if packed.size == 0:
        return packed, np.zeros(0, np.float32)
    packed.sort()
    keys, dist = np.divmod(packed, width)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(weight[dist], starts).astype(np.float32)


# Bytes per position of a chunk: its ids, room, row limits and offsets (int64), the
# masks and indices of one distance, and the packed keys of the pairs left to sort (2
# per distance, ~15% of them) with their sort's temporaries.
CHUNK_BYTES = 128
MAX_CHUNK = 1 << 16  # positions per chunk: larger gains nothing, numpy's calls are few
MIN_CHUNK = 1 << 10
# Bytes per entry of the held runs while they are re-aggregated: the runs, their
# concatenation, the sort's order, sorted keys and float64 values, the run starts
# (measured: ~75 bytes).
HELD_BYTES = 80
HELD_CAP = 32 << 20
MERGE_RANGE = 1 << 18  # entries merged at once, at most
MAX_OPEN_RUNS = 200  # runs merged at once (two open files each; ulimit -n is often 1024)


def _count_share(
    words_dir: str,
    run_dir: str,
    start: int,
    end: int,
    window: int,
    budget: int,
    dense_share: float = DENSE_SHARE,
) -> list[str]:
    """Count positions ``[start, end)`` of the stream into sorted runs on disk.

    ``dense_share`` of the budget (bytes) goes to the :class:`FrequentPairs` table, an
    eighth at most to a chunk's working arrays (8 MB is enough) and a quarter, up to
    ``HELD_CAP`` but at least a sixteenth, to the aggregated runs held in memory with
    their re-aggregation. Like glove.c (a sixth of its ``-memory`` for the table, a
    seventh for its buffer of other pairs) this leaves much of a large budget unused:
    more would only save spills, which the merge reads back in one sequential pass; a
    small budget's spills are what cost (many short runs).
    """
    data = load_word_data(words_dir)
    vocab = data.vocab_size
    run_path = Path(run_dir)
    frequent = FrequentPairs(vocab, int(budget * dense_share) // 8)
    # Floors for absurdly small budgets: chunks of a few positions, spilled one by one,
    # would make runs by the ten thousand.
    chunk = max(window + 1, MIN_CHUNK, min(MAX_CHUNK, budget // 8 // CHUNK_BYTES))
    held_bytes = max(budget // 16, min(budget // 4, HELD_CAP))
    held_limit = max(MIN_CHUNK, held_bytes // HELD_BYTES)
    width = window + 1
    packed = vocab * vocab * width < 2**63  # else sort keys and values (argsort)
    weight = np.zeros(width)
    weight[1:] = 1.0 / np.arange(1, width)  # 1/d
    ones = np.empty(chunk)
    held_keys: list[np.ndarray] = []
    held_vals: list[np.ndarray] = []
    held = 0
    runs: list[str] = []
    # Run names unique across shares: the share's start, then a count.
    name = (run_path / f"share{start}-{i:05d}" for i in range(2**62))
    pos = start
    while pos < end:
        # Overlap ``window`` positions so pairs across chunk borders are counted once:
        # a chunk adds the pairs whose *left* word lies in [pos, stop).
        stop = min(pos + chunk, end)
        hi = min(stop + window, end)
        ids = np.asarray(data.ids[pos:hi]).astype(np.int64)
        # Words from each position to its document's end: a pair d apart stays inside
        # the document iff d < room.
        room = data.offsets[data.doc_of(pos, hi) + 1] - np.arange(pos, hi)
        n_left = stop - pos
        left = ids[:n_left]
        limit, base = frequent.lengths[left], frequent.offsets[left]
        keys, vals = [], []
        for d in range(1, window + 1):
            n = min(n_left, hi - pos - d)
            if n <= 0:
                break
            right = ids[d : d + n]
            inside = room[:n] > d
            small = right < limit[:n]
            dense = np.flatnonzero(inside & small)
            ones[: dense.size] = weight[d]  # add.at is faster with an array than a scalar
            np.add.at(frequent.table, base[dense] + right[dense], ones[: dense.size])
            sparse = np.flatnonzero(inside & ~small)
            a, b = left[sparse], right[sparse]
            for k in (a * vocab + b, b * vocab + a):
                if packed:
                    keys.append(k * width + d)
                else:
                    keys.append(k)
                    vals.append(np.full(k.size, weight[d]))
        if keys:
            if packed:
                k, v = _aggregate_packed(np.concatenate(keys), width, weight)
            else:
                k, v = _aggregate(np.concatenate(keys), np.concatenate(vals))
            del keys, vals
            held_keys.append(k)
            held_vals.append(v)
            held += k.size
        if held > held_limit:
            k, v = _aggregate(np.concatenate(held_keys), np.concatenate(held_vals))
            if k.size > held_limit // 2:
                runs.append(str(_spill(next(name), k, v)))
                held_keys, held_vals, held = [], [], 0
            else:
                held_keys, held_vals, held = [k], [v], k.size
        pos = stop
    if held:
        k, v = _aggregate(np.concatenate(held_keys), np.concatenate(held_vals))
        runs.append(str(_spill(next(name), k, v)))
    if frequent.nbytes:
        path = next(name)
        frequent.spill(path)
        runs.append(str(path))
    return runs


def _range_ends(keys_of: list[np.ndarray], per_range: int) -> np.ndarray:
    """Where each key range ends in each sorted run: (runs, ranges) int64 positions.

    Candidate bounds are keys sampled from every run, every ``step``-th: between two
    neighbouring candidates each run has fewer than ``step`` entries. The entries below
    each candidate are counted exactly (a binary search per run), and ranges take as many
    candidates as fit ``per_range`` entries. ``step`` shrinks with the number of runs, so a
    range holds at most about ``per_range`` entries even when the runs are many and
    short, up to ~4M candidates (beyond, ranges may grow past ``per_range``).
    """
    total = sum(k.size for k in keys_of)
    sizes = np.array([[k.size] for k in keys_of], dtype=np.int64).reshape(len(keys_of), 1)
    if total <= per_range:
        return sizes
    step = max(1, per_range // (2 * len(keys_of) + 16), total // (1 << 22))
    cands = np.unique(np.concatenate([np.asarray(k[::step]) for k in keys_of if k.size]))
    below = np.zeros(cands.size, dtype=np.int64)  # entries below each candidate
    for k in keys_of:
        below += np.searchsorted(k, cands, "left")
    chosen, base = [], 0
    while True:
        j = int(np.searchsorted(below, base + per_range, "right")) - 1
        if j < 0 or below[j] <= base:  # one gap larger than a range: take it whole
            j = int(np.searchsorted(below, base, "right"))
        if j >= cands.size:
            break
        chosen.append(cands[j])
        base = int(below[j])
        if total - base <= per_range:
            break
    bounds = np.asarray(chosen, dtype=np.int64)
    ends = [np.searchsorted(k, bounds, "left") for k in keys_of]
    return np.concatenate([np.stack(ends).reshape(len(keys_of), -1), sizes], axis=1)


def _merged(runs: list[str], per_range: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The sorted runs merged, one key range at a time: (unique keys, float32 sums).

    Each run is read sequentially, a range's slice at a time, with plain reads: pages of
    a memmap read through stay in the process's resident set (its file pages), so a
    memmapped merge's peak grew with the size of all the runs. The keys are memmapped
    only to place the range bounds, before the merge.
    """
    sizes = [os.path.getsize(r + ".keys") // 8 for r in runs]
    keys_of = [
        np.memmap(r + ".keys", dtype=np.int64, mode="r", shape=(n,)) if n else np.zeros(0, np.int64)
        for r, n in zip(runs, sizes)
    ]
    ends = _range_ends(keys_of, per_range)
    del keys_of  # unmapped: their pages leave the resident set
    counts = np.diff(ends, axis=1, prepend=0)  # (runs, ranges) entries of each
    with ExitStack() as stack:
        files = [
            (
                stack.enter_context(open(r + ".keys", "rb")),
                stack.enter_context(open(r + ".vals", "rb")),
            )
            for r in runs
        ]
        for r in range(counts.shape[1]):
            keys, vals = [], []
            for (fk, fv), count in zip(files, counts[:, r].tolist()):
                keys.append(np.fromfile(fk, dtype=np.int64, count=count))
                vals.append(np.fromfile(fv, dtype=np.float32, count=count))
            yield _aggregate(np.concatenate(keys), np.concatenate(vals))


def _merge(runs: list[str], out_dir: Path, vocab: int, budget: int) -> int:
    """Merge sorted runs into the output files, one key range at a time; returns nnz.

    More than ``MAX_OPEN_RUNS`` runs (two open files each) are first merged in groups
    into longer runs, as often as needed.
    """
    # A range's merge holds ~5 arrays of its entries (ENTRY_BYTES and the sort's order,
    # float64 values, unique keys); more, smaller ranges cost only a few searchsorted.
    per_range = max(1, min(MERGE_RANGE, budget // (ENTRY_BYTES * 5)))
    while len(runs) > MAX_OPEN_RUNS:
        longer = []
        for i in range(0, len(runs), MAX_OPEN_RUNS):
            group, path = runs[i : i + MAX_OPEN_RUNS], runs[i] + "m"
            with open(path + ".keys", "wb") as fk, open(path + ".vals", "wb") as fv:
                for key, val in _merged(group, per_range):
                    key.tofile(fk)
                    val.tofile(fv)
            for run in group:
                os.remove(run + ".keys")
                os.remove(run + ".vals")
            longer.append(path)
        runs = longer
    nnz = 0
    with ExitStack() as stack:
        fr, fc, fv = (
            stack.enter_context(open(out_dir / name, "wb"))
            for name in ("cooc_rows.i32", "cooc_cols.i32", "cooc_vals.f32")
        )
        for key, val in _merged(runs, per_range):
            row, col = np.divmod(key, vocab)
            row.astype(np.int32).tofile(fr)
            col.astype(np.int32).tofile(fc)
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
    dense_share: float = DENSE_SHARE,
) -> Cooccurrence:
    """Count the 1/distance-weighted symmetric co-occurrences of a prepared word stream.

    Args:
        words_dir: where :func:`~textdecade.data.words.build_word_data` wrote the stream.
        out_dir: where the table goes (spilled runs live in a subfolder while counting).
        window: words on each side that count (glove.c's ``-window-size``).
        memory_mb: memory budget for the counting buffers, shared by the workers.
        workers: counting processes (each takes a contiguous share of the documents).
        dense_share: share of the budget for the table of frequent pairs
            (:class:`FrequentPairs`); 0 sorts every pair.

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
    if not 0 <= dense_share < 1:
        raise ConfigError(f"dense_share must be in [0, 1), got {dense_share}")
    data = load_word_data(words_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "cooc_runs"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    budget = int(memory_mb * 2**20)
    cuts = _share_bounds(data, workers)
    jobs = [
        (str(words_dir), str(run_dir), a, b, window, budget // workers, dense_share)
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
