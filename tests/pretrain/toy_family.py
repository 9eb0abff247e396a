"""A tiny language-model family that exercises every part of the engine in seconds.

A bigram model with dropout (so training consumes torch's RNG) over the shared tokenizer's
ids. Its config can make it misbehave on purpose: crash, send itself a signal, or produce
a NaN loss at a given batch, so the tests can check resume, signals and divergence.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from textdecade.models.base import Batcher, Family, PreparedData


@dataclass(frozen=True)
class Config:
    d_model: int = 32
    dropout: float = 0.1
    max_len: int = 16
    crash_at: int = -1  # raise RuntimeError when this batch is drawn
    signal_at: int = -1  # send SIGTERM to this process when this batch is drawn
    nan_at: int = -1  # return a NaN loss for this batch


PRESETS = {
    "tiny": {
        "train": {
            "steps": 30,
            "batch_size": 8,
            "lr": 3e-2,
            "warmup_steps": 3,
            "eval_every": 10,
            "ckpt_every": 5,
            "log_every": 5,
        },
        "tokenizer": {"vocab_size": 300},
    },
    "small": {},
    "base": {},
}


class ToyBatcher(Batcher):
    def __init__(self, tokens: np.ndarray, batch_size: int, max_len: int, seed: int, config):
        self.tokens, self.batch_size, self.max_len, self.seed = tokens, batch_size, max_len, seed
        self.config = config
        self.index = 0
        self.units_per_batch = batch_size * max_len

    @property
    def epoch(self) -> float:
        return self.index * self.units_per_batch / len(self.tokens)

    def __next__(self):
        if self.index == self.config.crash_at:
            raise RuntimeError("simulated crash")
        if self.index == self.config.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
        rng = np.random.default_rng([self.seed, self.index])
        starts = rng.integers(0, len(self.tokens) - self.max_len - 1, self.batch_size)
        rows = np.stack([self.tokens[s : s + self.max_len + 1] for s in starts]).astype(np.int64)
        self.index += 1
        batch = {"ids": torch.from_numpy(rows)}
        if self.index - 1 == self.config.nan_at:
            batch["nan"] = torch.ones(self.batch_size)
        return batch

    def state_dict(self):
        return {"index": self.index}

    def load_state_dict(self, state):
        self.index = state["index"]


class Model(Family):
    name = "toy"
    Config = Config

    def __init__(self, config, meta):
        super().__init__(config, meta)
        self.embed = nn.Embedding(meta["vocab_size"], config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.d_model, meta["vocab_size"])

    @classmethod
    def prepare(cls, corpus, tokenizer, config, workdir):
        ids = [i for ids in tokenizer.encode_batch(list(corpus)) for i in [*ids, tokenizer.eos_id]]
        np.save(workdir / "tokens.npy", np.asarray(ids, dtype=np.int32))
        return cls.load_prepared(workdir, {"vocab_size": tokenizer.vocab_size})

    @classmethod
    def load_prepared(cls, workdir, meta):
        tokens = np.load(workdir / "tokens.npy")
        cut = int(len(tokens) * 0.9)
        return PreparedData(meta=meta, train=tokens[:cut], valid=tokens[cut:], n_units=cut)

    def batcher(self, data, batch_size, *, seed, rank=0, world_size=1):
        return ToyBatcher(data.train, batch_size, self.config.max_len, seed, self.config)

    def loss(self, batch):
        ids = batch["ids"]
        logits = self.out(self.drop(self.embed(ids[:, :-1])))
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        if "nan" in batch:
            loss = loss * float("nan")
        return loss

    def evaluate(self, data, max_batches=20):
        ids = torch.from_numpy(data.valid[: 16 * (self.config.max_len + 1)].astype(np.int64))
        ids = ids.view(16, -1)
        logits = self.out(self.embed(ids[:, :-1]))
        return {"val_loss": float(F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()))}
