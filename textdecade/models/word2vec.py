"""Word2Vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling.

The family trains on *words* from the shared tokenizer (``tok.words``), with word2vec.c's
recipe: frequent-word subsampling, a dynamic window, unigram^0.75 negatives and SGD whose
learning rate decays linearly (the engine's ``linear`` schedule, ``min_lr_ratio`` 1e-4).
The update is hand-written and sparse (``manual_update``), batched as matrix products
with negatives shared within small blocks of pairs (see :mod:`textdecade.models.sgns`),
so the same code runs on CPU and CUDA. On CPU, ``workers >= 2`` runs Hogwild worker
processes on shared-memory tables (fast, not bitwise reproducible); ``workers = 1`` is
deterministic and resumes exactly.

The word vectors are the input table (syn0); :meth:`Model.word_table` returns them, with
BPE-piece backoff for unseen words when ``subword`` is on (:mod:`textdecade.models.subword`),
and :func:`textdecade.eval.vectors.vectors_of` wraps them as ``Vectors``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from textdecade.data.words import (
    WordData,
    build_word_data,
    keep_probability,
    load_word_data,
    unigram_table,
)
from textdecade.errors import ConfigError, CorpusError
from textdecade.models.base import Batcher, Family, PreparedData, StaticVectors, WordTable
from textdecade.models.chunk import hogwild_kernel, train_chunk
from textdecade.models.hogwild import PoolOwner
from textdecade.models.sgns import KernelConfig

PROBE_WORDS = 20_000  # words of the corpus the probe loss (``evaluate``) looks at
PROBE_SEED = 12345
# Default pairs per update. On the CPU small updates are both the accurate and the fast
# ones. On a GPU an update's time was about constant whatever its size (H200, measured
# before updates stopped reading back from the device), so skip-gram takes the largest size that kept gensim's accuracy with the same kernel on
# 40 MB of corpus_en: 8,192 pairs 20.3%, 16,384 18.3%, gensim 20.0%. CBOW (a window per
# word, so fewer items per word) already lost 1.8 points at 8,192 windows there (19.9%
# against 20.7% at 2,048 and gensim's 21.7%), so it keeps 2,048 (benchmarks/RESULTS.md).
PAIRS_PER_UPDATE = 2048
ACCELERATOR_SG_PAIRS_PER_UPDATE = 8192


@dataclass(frozen=True)
class Config:
    """Word2Vec hyperparameters (gensim's names where they exist).

    Attributes:
        d_model: vector size (gensim ``vector_size``).
        sg: skip-gram (True) or CBOW (False): the window mean as input, and each context
            word takes the window's whole step, as in word2vec.c, whose CBOW lr is 0.05
            (stable here up to 0.1; see ``cbow.train_cbow``).
        window: maximum window; each position draws its own window in 1..window.
        negative: noise words per pair (the loss and gradient scale use this number).
        sample: subsampling threshold (word2vec.c's formula; 0 turns it off).
        min_count: words seen fewer times are dropped.
        max_vocab_size: keep at most this many of the most frequent words (None: all).
        shared_negatives: noise words drawn per block and shared by its pairs.
        block: pairs that share negatives (skip-gram: pairs dealt round-robin from the
            whole chunk; CBOW: windows spread evenly over the update).
        pairs_per_update: pairs whose updates are applied together (one batched product).
            None (the default): 2,048, and 8,192 for skip-gram on an accelerator.
            Larger updates cost accuracy (the summed gradients are stale for frequent
            words) and save time only where each update has a fixed cost, as a GPU's
            kernel launches (see :data:`ACCELERATOR_SG_PAIRS_PER_UPDATE`).
        max_repeats: a row's summed step within one update is capped at this many
            gradients (see :func:`textdecade.models.sgns.cap_scale`); CBOW's context rows
            at half as many window steps.
        workers: CPU worker processes (1: deterministic; 2+: Hogwild, as word2vec.c's
            threads). Ignored on GPU.
        subword: give out-of-vocabulary words a vector from their BPE pieces.
    """

    d_model: int = 100
    sg: bool = True
    window: int = 5
    negative: int = 5
    sample: float = 1e-3
    min_count: int = 5
    max_vocab_size: int | None = None
    shared_negatives: int = 10
    block: int = 32
    pairs_per_update: int | None = None
    max_repeats: int = 32
    workers: int = 1
    subword: bool = True

    def __post_init__(self) -> None:
        for name in (
            "d_model",
            "window",
            "negative",
            "min_count",
            "shared_negatives",
            "block",
            "max_repeats",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if self.workers < 1:
            raise ConfigError(f"model.workers must be at least 1, got {self.workers}")
        if self.sample < 0:
            raise ConfigError(f"model.sample must be >= 0, got {self.sample}")
        if self.pairs_per_update is not None and self.pairs_per_update < self.block:
            raise ConfigError("model.pairs_per_update must be at least model.block")

    def kernel(self, device_type: str = "cpu", compile: bool = False) -> KernelConfig:
        """The kernel's settings on a device of this type (``pairs_per_update`` resolved)."""
        pairs = self.pairs_per_update
        if pairs is None:
            on_accelerator = self.sg and device_type != "cpu"
            pairs = ACCELERATOR_SG_PAIRS_PER_UPDATE if on_accelerator else PAIRS_PER_UPDATE
        return KernelConfig(
            sg=self.sg,
            window=self.window,
            negative=self.negative,
            shared_negatives=self.shared_negatives,
            block=self.block,
            pairs_per_update=max(pairs, self.block),
            max_repeats=self.max_repeats,
            compile=compile,
        )


_SGD = {"optimizer": "sgd", "schedule": "linear", "warmup_steps": 0, "min_lr_ratio": 1e-4}
PRESETS: dict[str, dict[str, Any]] = {
    # ~0.52M words of the built-in sample, 5 epochs of 10k-word steps: ~20 s (measured).
    "tiny": {
        "model": {"d_model": 100, "workers": 2},
        "train": {**_SGD, "lr": 0.025, "batch_size": 10_000, "steps": 260, "eval_every": 52},
        "data": {},
    },
    # small and base compile the update: ~10 s once, then 1.3x on CPU (see compile_update).
    "small": {
        "model": {"d_model": 100, "workers": 2},
        "train": {
            **_SGD,
            "lr": 0.025,
            "batch_size": 50_000,
            "steps": 1500,
            "eval_every": 100,
            "compile": True,
        },
    },
    # The paper's large setting: 300 dimensions, window 10, sample 1e-5.
    "base": {
        "model": {"d_model": 300, "window": 10, "sample": 1e-5, "workers": 2},
        "train": {
            **_SGD,
            "lr": 0.025,
            "batch_size": 100_000,
            "steps": 20_000,
            "eval_every": 500,
            "compile": True,
        },
    },
}


class WordBatcher(Batcher):
    """Consecutive chunks of the word stream, epoch after epoch.

    A batch is ``{"ids": (n,), "doc": (n,), "seed": (n,)}``: word ids, their document index
    (windows do not cross documents) and the chunk's random seed (repeated on every row,
    so a batch split by rows keeps it). The randomness of subsampling, windows and
    negatives derives from ``(seed, rank, batch index)``, so the state is three counters.
    """

    def __init__(self, data: WordData, batch_size: int, seed: int, rank: int = 0):
        if batch_size < 1:
            raise ConfigError(f"train.batch_size must be at least 1 word, got {batch_size}")
        self.data = data
        self.units_per_batch = batch_size
        self.seed = seed
        self.rank = rank
        self.cursor = 0
        self.epochs_done = 0
        self.index = 0

    @property
    def epoch(self) -> float:
        return self.epochs_done + self.cursor / max(len(self.data), 1)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.data) / self.units_per_batch)

    def __next__(self) -> dict[str, torch.Tensor]:
        n = len(self.data)
        start = self.cursor
        end = min(start + self.units_per_batch, n)
        ids = torch.from_numpy(np.asarray(self.data.ids[start:end], dtype=np.int64))
        doc = torch.from_numpy(self.data.doc_of(start, end))
        seed = int(np.random.default_rng([self.seed, self.rank, self.index]).integers(2**40))
        self.index += 1
        self.cursor = end
        if end >= n:
            self.cursor = 0
            self.epochs_done += 1
        return {"ids": ids, "doc": doc, "seed": torch.full((end - start,), seed)}

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "epochs_done": self.epochs_done, "index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cursor = int(state["cursor"])
        self.epochs_done = int(state["epochs_done"])
        self.index = int(state["index"])


def prepare_words(
    corpus: Iterable[str], tokenizer: Any, min_count: int, max_vocab: int | None, workdir: Path
) -> PreparedData:
    """Shared by Word2Vec and GloVe: the word vocabulary and the memmapped word stream."""
    data = build_word_data(corpus, tokenizer.words, workdir, min_count, max_vocab)
    if data.vocab_size < 2 or len(data) < 2:
        raise CorpusError(
            f"only {data.vocab_size} word(s) reach min_count={min_count} in "
            f"{data.total_words} words of text: lower min_count or give more text"
        )
    meta = {"words": data.words, "counts": data.counts.tolist(), "total_words": data.total_words}
    return PreparedData(meta=meta, train=data, n_units=len(data), unit="words")


def reopen_words(workdir: Path, meta: dict[str, Any]) -> PreparedData:
    """Reopen :func:`prepare_words`' files."""
    data = load_word_data(workdir)
    return PreparedData(meta=meta, train=data, n_units=len(data), unit="words")


def word_table(
    tokenizer: Any, meta: dict[str, Any], matrix: np.ndarray, subword: bool
) -> WordTable:
    """``meta``'s words and ``matrix``, with BPE-piece backoff when asked and possible."""
    from textdecade.models.subword import (
        PieceBackoff,
        fit_piece_vectors,
        piece_lengths,
        word_pieces,
    )

    backoff = None
    if subword and tokenizer is not None:
        pieces = word_pieces(tokenizer, meta["words"])
        weights = piece_lengths(tokenizer)
        table = fit_piece_vectors(pieces, matrix, tokenizer.vocab_size, meta["counts"], weights)
        backoff = PieceBackoff(tokenizer, table, weights)
    return WordTable(list(meta["words"]), matrix, list(meta["counts"]), backoff)


class Model(PoolOwner, Family, StaticVectors):
    """Word2Vec: ``in_vectors`` (syn0, the word vectors) and ``out_vectors`` (syn1neg).

    Args:
        config: a :class:`Config`.
        meta: ``{"words": [...], "counts": [...], "total_words": N}`` from :meth:`prepare`.
    """

    name = "word2vec"
    Config = Config
    manual_update = True
    default_optimizer = "sgd"
    default_schedule = "linear"
    # The sparse update has no gradients to clip or diagnose, no moments or decay, and
    # trains in float32.
    unread_train = ("clip", "weight_decay", "beta1", "beta2", "dtype", "diagnostics_every")

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        v, d = len(meta["words"]), config.d_model
        # word2vec.c: input rows uniform in [-0.5/d, 0.5/d), output rows zero.
        self.in_vectors = nn.Parameter((torch.rand(v, d) - 0.5) / d, requires_grad=False)
        self.out_vectors = nn.Parameter(torch.zeros(v, d), requires_grad=False)
        counts = np.asarray(meta["counts"], dtype=np.int64)
        table = torch.from_numpy(
            unigram_table(counts, size=min(10_000_000, max(1_000_000, 50 * v)))
        )
        self.register_buffer("noise_table", table, persistent=False)
        keep = torch.from_numpy(keep_probability(counts, config.sample))
        self.register_buffer("keep_prob", keep, persistent=False)
        self.last_examples = 0
        self._compile = False
        self._kernels: dict[str, KernelConfig] = {}

    # ------------------------------------------------------------------ engine contract
    @classmethod
    def prepare(cls, corpus, tokenizer, config: Config, workdir: Path) -> PreparedData:
        return prepare_words(corpus, tokenizer, config.min_count, config.max_vocab_size, workdir)

    @classmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        return reopen_words(workdir, meta)

    def batcher(self, data, batch_size, *, seed, rank=0, world_size=1) -> WordBatcher:
        return WordBatcher(data.train, batch_size, seed, rank)

    def manual_step(self, batch: dict[str, torch.Tensor], lr: float) -> float:
        """One sparse SGD pass over a chunk of words; returns its mean SGNS loss per pair."""
        ids, doc = batch["ids"], batch["doc"]
        if ids.numel() == 0:
            return 0.0
        seed = int(batch["seed"][0])
        if self.config.workers > 1 and self.in_vectors.device.type == "cpu":
            loss, count = self._hogwild(ids.numel()).run({"ids": ids, "doc": doc}, seed, lr)
        else:
            loss, count = self._train_chunk(ids, doc, lr, seed)
        self.last_examples = count
        return loss / count if count else 0.0

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """``probe_loss``: the mean SGNS loss on the corpus' first words, fixed randomness."""
        words: WordData = data.train
        end = min(len(words), PROBE_WORDS)
        device = self.in_vectors.device
        ids = torch.from_numpy(np.asarray(words.ids[:end], dtype=np.int64)).to(device)
        doc = torch.from_numpy(words.doc_of(0, end)).to(device)
        # lr = 0: the kernel's updates are exact zeros, so nothing changes.
        loss, count = self._train_chunk(ids, doc, 0.0, PROBE_SEED)
        return {"probe_loss": loss / count} if count else {}

    @property
    def kernel(self) -> KernelConfig:
        """The kernel's settings for the device the tables are on.

        One object per device for the whole run: a compiled update guards on it.
        """
        device_type = self.in_vectors.device.type
        if device_type not in self._kernels:
            self._kernels[device_type] = self.config.kernel(device_type, self._compile)
        return self._kernels[device_type]

    def _train_chunk(self, ids, doc, lr: float, seed: int) -> tuple[float, int]:
        """One chunk through the kernel in this process; its randomness from ``seed``."""
        gen = torch.Generator(device=ids.device).manual_seed(seed)
        tables = (self.in_vectors.data, self.out_vectors.data, self.noise_table, self.keep_prob)
        return train_chunk(*tables, ids, doc, lr, self.kernel, gen)

    def compile_update(self) -> None:
        """The update under ``torch.compile`` (``train.compile``), in Hogwild workers too.

        Eager, an update is some 70 small kernels launched one by one from Python; on a GPU
        the launches, not the arithmetic, then set its time. Compiled, they fuse into a few,
        which is faster on the CPU as well (measured after a one-off compilation of about
        10 s: skip-gram 1.3-1.5x the words/s, CBOW 1.36x; ``bench_static.py
        --compile-pairs``). On more than one thread the compiled scattered adds are
        atomic, so a run is reproducible to float rounding (~1e-7), not bit for bit as the
        eager update on one worker is.
        """
        self._compile, self._kernels = True, {}
        self.close()  # Hogwild workers started with the eager kernel: restart them

    def _hogwild(self, n: int):
        tables = (self.in_vectors.data, self.out_vectors.data, self.noise_table, self.keep_prob)
        kernel = functools.partial(hogwild_kernel, self.kernel)
        buffers = {"ids": torch.int64, "doc": torch.int64}
        return self._hogwild_pool(self.config.workers, tables, kernel, buffers, n)

    # ------------------------------------------------------------------ vectors
    def word_table(self, tokenizer: Any = None) -> WordTable:
        """The word vectors (syn0); wrap them with ``textdecade.eval.vectors.vectors_of``.

        Args:
            tokenizer: the run's tokenizer; with ``config.subword`` it gives BPE-piece
                backoff vectors for out-of-vocabulary words. None: no backoff.
        """
        matrix = self.in_vectors.detach().float().cpu().numpy()
        return word_table(tokenizer, self.meta, matrix, self.config.subword)
