"""FSDP's pieces in one process on TEXTDECADE_TEST_DEVICE (cpu here; cuda in benchmarks/gpu.sh).

A one-rank process group (gloo on CPU, NCCL on CUDA) shards a tiny GPT for real, so the
device-specific parts run: bf16 gathered parameters on GPUs, fused AdamW and clipping on
DTensor shards, accumulation without gradient sync, gathering the full state for the
checkpoint files and broadcasting it back into a fresh sharded model.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as tdist
from safetensors.torch import load_file

from textdecade.config import TrainConfig
from textdecade.models import gpt
from textdecade.pretrain import checkpoint as ckpt
from textdecade.pretrain import distributed as dist
from textdecade.pretrain import fsdp
from textdecade.pretrain.device import select_device, select_precision
from textdecade.pretrain.optim import build_optimizer

pytestmark = pytest.mark.distributed

DEVICE = select_device(os.environ.get("TEXTDECADE_TEST_DEVICE", "cpu"))
if DEVICE.type == "cuda" and DEVICE.index is None:
    DEVICE = torch.device("cuda", 0)
PRECISION = select_precision("auto", DEVICE)  # bf16 on GPUs, fp32 on CPU
# Sharded bf16 casts every parameter while autocast keeps some ops in fp32: close, not equal.
TOL = 1e-5 if PRECISION.autocast_dtype is None else 5e-2
# Resumed vs uninterrupted: the same kernels, but GPU attention backward may use atomics.
RESUME_TOL = 1e-5 if DEVICE.type == "cpu" else 1e-3
TRAIN = TrainConfig(lr=1e-2, weight_decay=0.1)


@pytest.fixture
def one_rank():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = "nccl" if DEVICE.type == "cuda" else "gloo"
    if DEVICE.type == "cuda":
        torch.cuda.set_device(DEVICE)
    tdist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only contend (10x slower here)
    try:
        yield dist.DistInfo()
    finally:
        torch.set_num_threads(threads)
        tdist.destroy_process_group()


def _model(seed: int, sharded: bool, info) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    config = gpt.Config(d_model=32, n_heads=2, n_layers=2, max_len=16)
    model = gpt.Model(config, {"vocab_size": 64}).to(DEVICE)
    if sharded:
        fsdp.shard_model(model, info, DEVICE, PRECISION)
    return model, build_optimizer("adamw", model, TRAIN, DEVICE)


def _batches(step: int) -> list[dict[str, torch.Tensor]]:
    """Two micro-batches of 4 random 17-token windows, the same for every model; two sets
    in turn, so that the loss can fall (by memorising them)."""
    seed = step % 2
    ids = torch.randint(0, 64, (2, 4, 17), generator=torch.Generator().manual_seed(seed))
    return [{"input_ids": x[:, :-1].to(DEVICE), "labels": x[:, 1:].to(DEVICE)} for x in ids]


def _step(model, optimizer, step: int) -> float:
    """The trainer's optimizer step: no gradient sync on the first micro-batch, clipping."""
    total = 0.0
    micros = _batches(step)
    for i, batch in enumerate(micros):
        with fsdp.grad_sync(model, model, sync=i == len(micros) - 1):
            with PRECISION.autocast(DEVICE):
                loss = model(batch) / len(micros)
            loss.backward()
        total += float(loss.detach())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def test_sharded_gpt_trains_saves_and_restores_like_an_unsharded_one(one_rank, tmp_path):
    plain, plain_opt = _model(0, False, one_rank)
    sharded, sharded_opt = _model(0, True, one_rank)
    assert fsdp.is_sharded(sharded) and not fsdp.is_sharded(plain)
    assert type(sharded.wte.weight).__name__ == "DTensor"
    a = [_step(plain, plain_opt, s) for s in range(4)]
    b = [_step(sharded, sharded_opt, s) for s in range(4)]
    assert all(abs(x - y) < TOL for x, y in zip(a, b, strict=True)), (a, b)
    assert b[-1] < b[0] - 0.1, b

    # An evaluation (root gathered by hand) just before the checkpoint, as in the trainer.
    ids = _batches(1)[1]["input_ids"]
    with torch.no_grad(), PRECISION.autocast(DEVICE), fsdp.full_params(sharded):
        before = sharded.logits(ids).float()

    # The files of a sharded model are those of an unsharded one (tied weights once, fp32).
    weights, optim = fsdp.full_state(sharded, sharded_opt, one_rank)
    ckpt.save_checkpoint(tmp_path / "sharded", 4, weights, optim, {"batcher": {}}, 2)
    ckpt.save_checkpoint(tmp_path / "plain", 4, plain, plain_opt, {"batcher": {}}, 2)
    for name in ("model.safetensors", "optimizer.safetensors"):
        x = load_file(str(tmp_path / "sharded/state/step_00000004" / name))
        y = load_file(str(tmp_path / "plain/state/step_00000004" / name))
        assert sorted(x) == sorted(y)
        assert all(x[k].dtype == y[k].dtype == torch.float32 for k in x if k[-4:] != "step")

    # A fresh sharded model (other init) restored from the checkpoint continues exactly.
    fresh, fresh_opt = _model(1, True, one_rank)
    ckpt.restore(ckpt.latest_checkpoint(tmp_path / "sharded"), fresh, fresh_opt, one_rank)
    with torch.no_grad(), PRECISION.autocast(DEVICE), fsdp.full_params(fresh):
        after = fresh.logits(ids).float()
    assert torch.allclose(before, after, atol=RESUME_TOL)
    go_on = [_step(sharded, sharded_opt, s) for s in range(4, 7)]
    resumed = [_step(fresh, fresh_opt, s) for s in range(4, 7)]
    assert all(abs(x - y) < RESUME_TOL for x, y in zip(go_on, resumed, strict=True)), (
        go_on,
        resumed,
    )
