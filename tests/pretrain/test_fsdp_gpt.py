"""FSDP (``train.parallel=fsdp``): two CPU ranks (gloo) shard a tiny GPT and match one process.

The sharded run must give the same per-step losses as an unsharded process that sees the
same global batch, write the same files (one full ``model.safetensors``, index-keyed
optimizer state), and resume from its checkpoint onto the uninterrupted run's losses.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from tests.conftest import data_path
from textdecade.config import build_config
from textdecade.errors import ConfigError
from textdecade.models import gpt
from textdecade.pretrain import distributed as dist
from textdecade.pretrain import fsdp
from textdecade.pretrain.device import select_precision
from textdecade.pretrain.rundir import load_run
from textdecade.pretrain.trainer import Trainer

pytestmark = pytest.mark.distributed

# Two blocks (two FSDP units plus the root with the tied embedding), two micro-batches
# per step (FSDP's no-sync path), clipping on, evaluation every 4 steps (root unshard).
OVERRIDES = [
    "train.parallel=fsdp",
    "train.threads=1",
    "train.steps=8",
    "train.batch_size=8",
    "train.grad_accum=2",
    "train.lr=1e-2",
    "train.warmup_steps=2",
    "train.ckpt_every=4",
    "train.eval_every=4",
    "train.eval_batches=2",
    "model.d_model=32",
    "model.n_heads=2",
    "model.n_layers=2",
    "model.max_len=32",
    "model.dropout=0.0",
    "tokenizer.vocab_size=300",
]


def _config(extra=()):
    return build_config("gpt", gpt.Config, gpt.PRESETS, "tiny", None, [*OVERRIDES, *extra])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, run_dir: str, texts: list[str], resume: bool) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    Trainer(_config(), run_dir, corpus=texts, resume=resume, progress=False).fit()


def _two_ranks(run_dir, texts, resume=False) -> None:
    args = (_free_port(), str(run_dir), texts, resume)
    mp.start_processes(_worker, args=args, nprocs=2, start_method="spawn")


def _records(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _close(a: list[float], b: list[float], tol: float = 1e-5) -> bool:
    return len(a) == len(b) and all(abs(x - y) < tol for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One unsharded process and two FSDP ranks, same config and the same global batches."""
    path = data_path("corpus_en", "gensim_lee.txt")
    with open(path, encoding="utf-8") as f:
        texts = [line.strip() for line in f if line.strip()][:150]
    root = tmp_path_factory.mktemp("fsdp")
    Trainer(_config(), root / "single", corpus=texts, progress=False).fit()
    _two_ranks(root / "double", texts)
    return root, texts


@pytest.mark.slow
def test_fsdp_two_ranks_match_one_process(runs):
    root, _ = runs
    one, two = _records(root / "single"), _records(root / "double")
    assert [r["step"] for r in two] == list(range(1, 9))
    assert _close([r["loss"] for r in one], [r["loss"] for r in two]), (one, two)
    assert two[-1]["loss"] < two[0]["loss"] - 0.5  # it learns, not just agrees
    evals = [[r["val_loss"] for r in run if "val_loss" in r] for run in (one, two)]
    assert len(evals[1]) == 2 and _close(*evals)

    # The same files as an unsharded run: tied weights stored once, the same names,
    # and the same optimizer layout; load_run rebuilds the model like any other.
    for name in ("model.safetensors", "state/step_00000008/model.safetensors"):
        a, b = load_file(str(root / "single" / name)), load_file(str(root / "double" / name))
        assert sorted(a) == sorted(b)
        assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
    a = load_file(str(root / "single/state/step_00000008/optimizer.safetensors"))
    b = load_file(str(root / "double/state/step_00000008/optimizer.safetensors"))
    assert sorted(a) == sorted(b) and all(a[k].shape == b[k].shape for k in a)
    assert torch.allclose(a["0.exp_avg"], b["0.exp_avg"], atol=1e-5)
    meta = [
        json.loads((root / run / "state/step_00000008/optimizer.json").read_text())
        for run in ("single", "double")
    ]
    assert [g["params"] for g in meta[0]["param_groups"]] == [
        g["params"] for g in meta[1]["param_groups"]
    ]
    _, model, tokenizer = load_run(root / "double")
    ids = torch.tensor([tokenizer.encode("The government said on Tuesday")])
    logits = model.logits(ids)
    assert torch.isfinite(logits).all() and logits.shape[-1] == model.vocab_size


@pytest.mark.slow
def test_fsdp_resume_lands_on_the_uninterrupted_losses(runs):
    root, texts = runs
    resumed = root / "resumed"
    shutil.copytree(root / "double", resumed)
    shutil.rmtree(resumed / "state" / "step_00000008")  # as if killed after step 4's save
    _two_ranks(resumed, texts, resume=True)
    full, again = _records(root / "double"), _records(resumed)
    assert [r["step"] for r in again] == list(range(1, 9))
    assert _close([r["loss"] for r in full], [r["loss"] for r in again]), (full, again)
    assert _close([full[-1]["val_loss"]], [again[-1]["val_loss"]])


def test_fsdp_refusals_are_one_line():
    with pytest.raises(ConfigError, match="one of ddp, fsdp"):
        _config(["train.parallel=zero"])

    class Bigram(torch.nn.Module):
        name = "bigram"

        def __init__(self):
            super().__init__()
            self.out = torch.nn.Linear(4, 4)

    class Sparse(Bigram):
        manual_update = True

    cpu = torch.device("cpu")
    one = dist.DistInfo()
    with pytest.raises(ConfigError, match="bigram has none; use train.parallel=ddp"):
        dist.wrap_model(Bigram(), one, cpu, "fsdp")
    with pytest.raises(ConfigError, match="updates its own weights"):
        dist.wrap_model(Sparse(), one, cpu, "fsdp")
    model = gpt.Model(gpt.Config(d_model=16, n_heads=2, n_layers=3, max_len=8), {"vocab_size": 20})
    assert len(fsdp.fsdp_blocks(model)) == 3
    assert dist.wrap_model(model, one, cpu, "fsdp") is model  # one process: nothing to shard
    fp16 = select_precision("fp16", cpu)
    object.__setattr__(fp16, "needs_scaler", True)  # as on a CUDA GPU without bf16
    with pytest.raises(ConfigError, match="train.dtype=bf16"):
        fsdp.fsdp_blocks(model, fp16)
