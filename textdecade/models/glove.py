"""GloVe (Pennington et al. 2014): weighted least squares on log co-occurrence counts.

    J = sum_{ij} f(X_ij) (w_i . c_j + b_i + b~_j - log X_ij)^2,
    f(x) = min(1, (x / x_max)^alpha),  x_max = 100, alpha = 0.75

``prepare`` builds the word stream from the shared tokenizer's words and counts the
co-occurrences with 1/distance weighting in a symmetric window, streamed with a memory
budget (:mod:`textdecade.data.cooccurrence`). Training visits the nonzeros in shuffled
batches and applies glove.c's AdaGrad by hand (``manual_update``): per-element squared
gradients accumulated from 1.0, step ``eta * g / sqrt(acc)``, element gradients clipped to
+-100. Why not the engine's ``adagrad``: glove.c's rule is AdaGrad with lr 1 and an
initial accumulator of 1/eta^2 on the eta-scaled gradient, plus element clipping, and a
torch optimizer would carry and update dense (V, D) state every step where this update
touches only the rows of the batch. The accumulators are buffers, so checkpoints hold
them and a resumed run continues exactly. The final vectors are W + W~ (glove.c's
``-model 2``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from textdecade.data.cooccurrence import Cooccurrence, count_cooccurrences, load_cooccurrences
from textdecade.errors import ConfigError
from textdecade.models.base import Batcher, Family, PreparedData, StaticVectors, WordTable
from textdecade.models.hogwild import PoolOwner
from textdecade.models.word2vec import prepare_words, reopen_words, word_table

GRAD_CLIP = 100.0  # glove.c's grad_clip_value
COOC_DIR = "cooccurrence"


@dataclass(frozen=True)
class Config:
    """GloVe hyperparameters (glove.c's names in the comments).

    Attributes:
        d_model: vector size (``-vector-size``).
        window: words on each side that co-occur (``-window-size``).
        x_max: the weighting cutoff (``-x-max``).
        alpha: the weighting exponent (``-alpha``).
        min_count: drop rarer words (``vocab_count -min-count``).
        max_vocab_size: keep at most this many words (``vocab_count -max-vocab``).
        memory_mb: memory budget of co-occurrence counting (``cooccur -memory``).
        count_workers: processes counting co-occurrences.
        nonzeros_per_update: nonzeros updated together within a batch (small enough to
            stay in cache and keep a frequent word's summed step close to glove.c's
            one-at-a-time updates).
        workers: CPU training processes (1: deterministic; 2+: Hogwild on shared tables,
            as glove.c's threads, not bitwise reproducible).
        subword: give out-of-vocabulary words a vector from their BPE pieces.
    """

    d_model: int = 100
    window: int = 10
    x_max: float = 100.0
    alpha: float = 0.75
    min_count: int = 5
    max_vocab_size: int | None = None
    memory_mb: float = 512.0
    count_workers: int = 2
    nonzeros_per_update: int = 4096
    workers: int = 1
    subword: bool = True

    def __post_init__(self) -> None:
        names = ("d_model", "window", "min_count", "count_workers", "nonzeros_per_update")
        for name in (*names, "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if self.x_max <= 0 or self.alpha <= 0 or self.memory_mb <= 0:
            raise ConfigError("model.x_max, model.alpha and model.memory_mb must be positive")


_ADAGRAD = {"optimizer": "adagrad", "schedule": "constant", "warmup_steps": 0, "lr": 0.05}
PRESETS: dict[str, dict[str, Any]] = {
    # The built-in sample (~0.5M words): ~2.5M nonzeros; 800 steps of 65k are ~20 epochs,
    # ~35 s on 2 idle cores (measured: 1.5-2M nonzeros/s through the engine). x_max 10 in
    # tiny and small: the paper's 100 suits billions of words; on smaller corpora nearly
    # every count is far below it, so f(X) weighs almost all pairs down. Measured at lr
    # 0.05 (benchmarks/RESULTS.md): WS-353 0.014 -> 0.195 on the sample; 0.148 -> 0.215 on
    # 1.2M words of corpus_en; 0.288 -> 0.397 (analogy 2.7% -> 4.2%) on 3.5M words, 15 passes.
    "tiny": {
        "model": {"d_model": 50, "window": 10, "x_max": 10.0},
        "train": {**_ADAGRAD, "batch_size": 65_536, "steps": 800, "eval_every": 100},
    },
    "small": {
        "model": {"d_model": 100, "window": 10, "x_max": 10.0},
        # small and base compile the update: ~7 s once, then ~1.4-1.7x (see compile_update).
        "train": {
            **_ADAGRAD,
            "batch_size": 131_072,
            "steps": 5000,
            "eval_every": 250,
            "compile": True,
        },
    },
    # The paper: 300 dimensions, window 10, 50 (d < 300) or 100 iterations.
    "base": {
        "model": {"d_model": 300, "window": 10, "max_vocab_size": 400_000, "memory_mb": 4096},
        "train": {
            **_ADAGRAD,
            "batch_size": 262_144,
            "steps": 100_000,
            "eval_every": 1000,
            "compile": True,
        },
    },
}


class NonzeroBatcher(Batcher):
    """Shuffled batches of nonzeros ``{"row", "col", "val"}``, a fresh permutation per epoch.

    Each run of ``update_size`` nonzeros (one AdaGrad update of :func:`train_nonzeros`)
    is a random draw of the table, sorted by row within. The permutation of epoch ``e``
    comes from ``(seed, rank, e)``, so the state is two counters.
    """

    def __init__(
        self,
        table: Cooccurrence,
        batch_size: int,
        seed: int,
        rank: int = 0,
        update_size: int = 4096,
    ):
        if batch_size < 1:
            raise ConfigError(f"train.batch_size must be at least 1, got {batch_size}")
        self.table = table
        self.update_size = update_size
        self.units_per_batch = batch_size
        self.seed = seed
        self.rank = rank
        self.epochs_done = 0
        self.cursor = 0
        self._perm: np.ndarray | None = None

    @property
    def epoch(self) -> float:
        return self.epochs_done + self.cursor / max(len(self.table), 1)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.table) / self.units_per_batch)

    def _permutation(self) -> np.ndarray:
        if self._perm is None:
            rng = np.random.default_rng([self.seed, self.rank, self.epochs_done])
            self._perm = rng.permutation(len(self.table))
        return self._perm

    def __next__(self) -> dict[str, torch.Tensor]:
        chunk = self._permutation()[self.cursor : self.cursor + self.units_per_batch]
        self.cursor += chunk.size
        if self.cursor >= len(self.table):
            self.cursor, self._perm = 0, None
            self.epochs_done += 1
        # Each update's nonzeros stay a random draw of the table. A whole batch sorted by
        # row (as it once was, for reading) put a frequent word's hundreds of nonzeros
        # into one update, to take their AdaGrad steps at once: on the 500 most frequent
        # words of 1 MB the cost reached 1e13 by the third pass. Within an update the
        # steps are simultaneous anyway, so its nonzeros are sorted: the rows are then
        # gathered and scattered in memory order (25% faster, the same cost to 4 digits).
        full = chunk.size // self.update_size * self.update_size
        chunk = np.concatenate(
            [
                np.sort(chunk[:full].reshape(-1, self.update_size), axis=1).ravel(),
                np.sort(chunk[full:]),
            ]
        )
        # Read in table order (memmap locality), then put the nonzeros back in place.
        sorter = np.argsort(chunk, kind="stable")
        back = np.empty_like(sorter)
        back[sorter] = np.arange(sorter.size)
        idx, t = chunk[sorter], self.table
        return {
            "row": torch.from_numpy(t.rows[idx].astype(np.int64)[back]),
            "col": torch.from_numpy(t.cols[idx].astype(np.int64)[back]),
            "val": torch.from_numpy(np.asarray(t.vals[idx], dtype=np.float32)[back]),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "epochs_done": self.epochs_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cursor = int(state["cursor"])
        self.epochs_done = int(state["epochs_done"])
        self._perm = None


def glove_weights(val: torch.Tensor, x_max: float, alpha: float) -> torch.Tensor:
    """f(X) = min(1, (X / x_max)^alpha)."""
    return (val / x_max).pow_(alpha).clamp_(max=1.0)


class Tables(NamedTuple):
    """GloVe's trained tensors: vectors, biases and their AdaGrad accumulators."""

    w: torch.Tensor  # (V, D) word vectors
    c: torch.Tensor  # (V, D) context vectors
    bw: torch.Tensor  # (V,) word biases
    bc: torch.Tensor  # (V,) context biases
    gw: torch.Tensor  # accumulators of the squared gradients, one per entry above
    gc: torch.Tensor
    gbw: torch.Tensor
    gbc: torch.Tensor


def residuals(t: Tables, row, col, val, x_max: float, alpha: float) -> tuple[torch.Tensor, ...]:
    """``(w rows, c rows, weighted diff f*d, diff d)`` of a batch of nonzeros.

    Each table's rows are gathered once (``index_select``: the advanced-indexing kernel is
    several times slower on CPU), so the update can reuse them for both gradients.
    """
    w, c = t.w.index_select(0, row), t.c.index_select(0, col)  # (B, D)
    diff = (w * c).sum(-1) + t.bw.index_select(0, row) + t.bc.index_select(0, col)
    diff -= val.log()
    fdiff = glove_weights(val, x_max, alpha).mul_(diff)
    return w, c, fdiff, diff


def adagrad_update(t: Tables, row, col, val, lr, x_max: float, alpha: float):
    """glove.c's AdaGrad step on a slice of nonzeros; returns its summed cost (0-d tensor).

    ``lr`` is a float, or a 0-d tensor when compiled (a float would be specialized on).
    """
    w, c, fdiff, diff = residuals(t, row, col, val, x_max, alpha)
    cost = 0.5 * fdiff.dot(diff)
    g = fdiff.mul_(lr)  # (B,): eta-scaled, as glove.c accumulates it
    grad_w = c.mul_(g[:, None]).clamp_(-GRAD_CLIP, GRAD_CLIP)  # (B, D), in c's buffer
    grad_c = w.mul_(g[:, None]).clamp_(-GRAD_CLIP, GRAD_CLIP)
    t.w.index_add_(0, row, grad_w / t.gw.index_select(0, row).sqrt_(), alpha=-1)
    t.c.index_add_(0, col, grad_c / t.gc.index_select(0, col).sqrt_(), alpha=-1)
    t.bw.index_add_(0, row, g / t.gbw.index_select(0, row).sqrt_(), alpha=-1)
    t.bc.index_add_(0, col, g / t.gbc.index_select(0, col).sqrt_(), alpha=-1)
    t.gw.index_add_(0, row, grad_w.square_())
    t.gc.index_add_(0, col, grad_c.square_())
    g.square_()
    t.gbw.index_add_(0, row, g)
    t.gbc.index_add_(0, col, g)
    return cost


@functools.cache
def compiled_adagrad_update():
    """:func:`adagrad_update` under ``torch.compile`` (eager, with a warning, if it fails):
    its dozen elementwise passes over (B, D) rows fuse into a few."""
    from textdecade.models.compiling import try_compile

    return try_compile(adagrad_update, dynamic=False)


def train_nonzeros(
    config: Config,
    tables: Tables,
    batch: dict[str, torch.Tensor],
    seed: int,
    lr: float,
    compiled: bool = False,
) -> tuple[float, int]:
    """AdaGrad over a batch of nonzeros in slices of ``config.nonzeros_per_update``.

    Also a Hogwild worker's kernel (see :mod:`textdecade.models.hogwild`; ``seed`` is
    unused: the order is the batcher's shuffle). ``compiled``: full slices go through
    :func:`compiled_adagrad_update` (one shape, one graph), a shorter last one eagerly.
    Returns ``(summed cost, nonzeros)``.
    """
    row, col, val = batch["row"], batch["col"], batch["val"]
    step, n = config.nonzeros_per_update, row.numel()
    full, rate = adagrad_update, lr
    if compiled:
        full, rate = compiled_adagrad_update(), torch.tensor(lr, device=row.device)
    cost = sum(
        (full if s + step <= n else adagrad_update)(
            tables,
            row[s : s + step],
            col[s : s + step],
            val[s : s + step],
            rate,
            config.x_max,
            config.alpha,
        )
        for s in range(0, n, step)
    )
    return float(cost), n  # one device sync per batch, not per slice


class Model(PoolOwner, Family, StaticVectors):
    """GloVe: word vectors ``w``, context vectors ``c``, biases, AdaGrad accumulators.

    Args:
        config: a :class:`Config`.
        meta: ``{"words", "counts", "total_words", "nnz"}`` from :meth:`prepare`.
    """

    name = "glove"
    Config = Config
    manual_update = True
    default_optimizer = "adagrad"
    default_schedule = "constant"
    # The sparse update has no gradients to clip or diagnose, no moments or decay, and
    # trains in float32.
    unread_train = ("clip", "weight_decay", "beta1", "beta2", "dtype", "diagnostics_every")

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        v, d = len(meta["words"]), config.d_model

        def init(*shape: int) -> nn.Parameter:  # glove.c: uniform in [-0.5/d, 0.5/d)
            return nn.Parameter((torch.rand(*shape) - 0.5) / d, requires_grad=False)

        self.w, self.c, self.bw, self.bc = init(v, d), init(v, d), init(v), init(v)
        for name, shape in (("gw", (v, d)), ("gc", (v, d)), ("gbw", (v,)), ("gbc", (v,))):
            self.register_buffer(name, torch.ones(shape))  # glove.c starts gradsq at 1.0
        self.last_examples = 0
        self.compiled = False

    @classmethod
    def prepare(cls, corpus, tokenizer, config: Config, workdir: Path) -> PreparedData:
        data = prepare_words(corpus, tokenizer, config.min_count, config.max_vocab_size, workdir)
        table = count_cooccurrences(
            workdir, Path(workdir) / COOC_DIR, config.window, config.memory_mb, config.count_workers
        )
        data.meta["nnz"] = len(table)
        return PreparedData(meta=data.meta, train=table, n_units=len(table), unit="nonzeros")

    @classmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        reopen_words(workdir, meta)  # checks the word files are there
        table = load_cooccurrences(Path(workdir) / COOC_DIR)
        return PreparedData(meta=meta, train=table, n_units=len(table), unit="nonzeros")

    def batcher(self, data, batch_size, *, seed, rank=0, world_size=1) -> NonzeroBatcher:
        return NonzeroBatcher(data.train, batch_size, seed, rank, self.config.nonzeros_per_update)

    def tables(self) -> Tables:
        """The trained tensors (their storage: updates through them change the model)."""
        return Tables(
            self.w.data,
            self.c.data,
            self.bw.data,
            self.bc.data,
            self.gw,
            self.gc,
            self.gbw,
            self.gbc,
        )

    @torch.no_grad()
    def manual_step(self, batch: dict[str, torch.Tensor], lr: float) -> float:
        """glove.c's AdaGrad steps over a batch of nonzeros; returns the mean cost per nonzero.

        The batch is applied in slices of ``config.nonzeros_per_update``; on CPU with
        ``workers >= 2``, by that many Hogwild processes, each on its share.
        """
        n = batch["row"].numel()
        if n == 0:
            return 0.0
        if self.config.workers > 1 and self.w.device.type == "cpu":
            kernel = functools.partial(train_nonzeros, self.config, compiled=self.compiled)
            buffers = {"row": torch.int64, "col": torch.int64, "val": torch.float32}
            pool = self._hogwild_pool(self.config.workers, self.tables(), kernel, buffers, n)
            cost, _ = pool.run(batch, 0, lr)
        else:
            cost, _ = train_nonzeros(self.config, self.tables(), batch, 0, lr, self.compiled)
        self.last_examples = n
        return cost / n

    def compile_update(self) -> None:
        """The AdaGrad update under ``torch.compile`` (``train.compile``), in Hogwild workers
        too: after a one-off compilation, fewer passes over the gathered rows (measured:
        1.4-1.7x the nonzeros/s; ``bench_static.py --glove --glove-compile``)."""
        self.compiled = True
        self.close()  # Hogwild workers started with the eager kernel: restart them

    @torch.no_grad()
    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """``cost``: the mean weighted squared error over (up to) the first 1M nonzeros."""
        table: Cooccurrence = data.train
        n, cfg = min(len(table), 1_000_000), self.config
        dev = self.w.device
        row = torch.from_numpy(table.rows[:n].astype(np.int64)).to(dev)
        col = torch.from_numpy(table.cols[:n].astype(np.int64)).to(dev)
        val = torch.from_numpy(np.array(table.vals[:n], dtype=np.float32)).to(dev)
        _, _, fdiff, diff = residuals(self.tables(), row, col, val, cfg.x_max, cfg.alpha)
        return {"cost": 0.5 * float(fdiff.dot(diff)) / max(n, 1)}

    def word_table(self, tokenizer: Any = None) -> WordTable:
        """W + W~, the paper's word vectors (BPE backoff with ``subword``)."""
        matrix = (self.w + self.c).detach().float().cpu().numpy()
        return word_table(tokenizer, self.meta, matrix, self.config.subword)
