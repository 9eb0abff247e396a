"""Two CPU processes (gloo) give the same losses as one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch.multiprocessing as mp

from tests.pretrain import toy_family
from textdecade import models
from textdecade.config import build_config
from textdecade.pretrain.trainer import Trainer

pytestmark = pytest.mark.distributed

OVERRIDES = [
    "train.threads=1",
    "train.steps=8",
    "train.batch_size=8",
    "model.dropout=0.0",
    "train.ckpt_every=4",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, run_dir: str, texts: list[str]) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    models.register_family("toy", "tests.pretrain.toy_family")
    config = build_config("toy", toy_family.Config, toy_family.PRESETS, "tiny", None, OVERRIDES)
    Trainer(config, run_dir, corpus=texts, progress=False).fit()


def _losses(run_dir) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path, corpus_lines):
    texts = corpus_lines("gensim_lee.txt", 120)
    single = tmp_path / "single"
    models.register_family("toy", "tests.pretrain.toy_family")
    try:
        config = build_config("toy", toy_family.Config, toy_family.PRESETS, "tiny", None, OVERRIDES)
        Trainer(config, single, corpus=texts, progress=False).fit()
    finally:
        models.unregister_family("toy")

    double = tmp_path / "double"
    mp.start_processes(
        _worker, args=(2, _free_port(), str(double), texts), nprocs=2, start_method="spawn"
    )
    one, two = _losses(single), _losses(double)
    assert len(one) == len(two) == 8
    for a, b in zip(one, two, strict=True):
        assert abs(a - b) < 1e-5, (one, two)
    assert not any(p.name.startswith(".tmp") for p in (double / "state").iterdir())
