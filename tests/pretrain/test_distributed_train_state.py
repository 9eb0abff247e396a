"""A family's train state under two gloo ranks: Transformer-XL's memory, rows joined and split.

Each rank carries the memory of its own rows of the global batch; the checkpoint holds all
rows (what one process would hold) and a two-rank resume gives each rank its rows back.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from tests.pretrain.test_distributed import _free_port
from textdecade.config import build_config
from textdecade.models import transformer_xl
from textdecade.pretrain.trainer import Trainer

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.data]

OVERRIDES = [
    "model.d_model=32",
    "model.n_heads=2",
    "model.n_layers=2",
    "model.segment_len=16",
    "model.mem_len=16",
    "tokenizer.vocab_size=400",
    "train.batch_size=4",
    "train.steps=8",
    "train.ckpt_every=4",
    "train.eval_every=0",
    "train.threads=1",
]


def _fit(run_dir, texts, resume=False):
    config = build_config(
        "transformer-xl", transformer_xl.Config, transformer_xl.PRESETS, "tiny", None, OVERRIDES
    )
    Trainer(config, run_dir, corpus=texts, progress=False, resume=resume).fit()


def _worker(rank, world_size, port, run_dir, texts, resume) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    _fit(run_dir, texts, resume)


def _two_ranks(run_dir, texts, resume=False):
    args = (2, _free_port(), str(run_dir), texts, resume)
    mp.start_processes(_worker, args=args, nprocs=2, start_method="spawn")


def _losses(run_dir):
    return [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_ranks_save_every_rows_memory_and_resume_on_their_own(tmp_path, corpus_lines):
    texts = corpus_lines("gensim_lee.txt", 120)
    single, double = tmp_path / "single", tmp_path / "double"
    _fit(single, texts)
    _two_ranks(double, texts)
    for a, b in zip(_losses(single), _losses(double), strict=True):
        assert abs(a - b) < 1e-5
    step4 = "state/step_00000004/train_state.safetensors"
    one, two = load_file(str(single / step4)), load_file(str(double / step4))
    assert one.keys() == two.keys() and one["memory.0"].shape == (4, 16, 32)  # all 4 rows
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)
    # resume both ranks from step 4: each must get its own rows back to land where it did
    shutil.rmtree(double / "state" / "step_00000008")
    before = load_file(str(double / "model.safetensors"))
    _two_ranks(double, texts, resume=True)
    after = load_file(str(double / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
