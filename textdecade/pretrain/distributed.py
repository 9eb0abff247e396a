"""Data parallelism under torchrun: the only module that reads RANK / WORLD_SIZE.

``torchrun --nproc_per_node=N -m textdecade pretrain ...`` runs the same command in N
processes; each joins a process group (NCCL on GPUs, gloo on CPU), keeps its rows of
every global batch, and averages gradients across ranks. Rank 0 alone writes files.

Two ways to share the model (``train.parallel``):

* ``ddp`` (default): every rank holds the whole model and optimizer; DDP all-reduces the
  gradients (Li et al. 2020, "PyTorch Distributed").
* ``fsdp``: FSDP2 shards parameters, gradients and optimizer state across the ranks
  (see :mod:`textdecade.pretrain.fsdp`).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from textdecade.models.compiling import try_compile
from textdecade.pretrain.fsdp import fsdp_blocks, shard_model


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        use_nccl = (device_type in (None, "cuda")) and torch.cuda.is_available()
        dist.init_process_group(
            backend="nccl" if use_nccl else "gloo",
            timeout=datetime.timedelta(minutes=30),
        )
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def barrier(info: DistInfo) -> None:
    """Wait for every rank (a no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def mean_across_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The element-wise mean of a per-rank tensor over all ranks (one all-reduce)."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / info.world_size


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when ``flag`` is true on any rank (so every rank stops together)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def rank_slice(batch: dict[str, torch.Tensor], info: DistInfo) -> dict[str, torch.Tensor]:
    """This rank's rows of a global batch (every tensor has the examples on dim 0)."""
    if not info.enabled:
        return batch
    out = {}
    for key, tensor in batch.items():
        rows = tensor.shape[0]
        if rows % info.world_size:
            raise ValueError(
                f"batch field '{key}' has {rows} rows, not divisible by {info.world_size} ranks"
            )
        share = rows // info.world_size
        out[key] = tensor[info.rank * share : (info.rank + 1) * share]
    return out


def gather_rows(tensors: dict[str, torch.Tensor], info: DistInfo) -> dict[str, torch.Tensor]:
    """Every rank's tensors joined along dim 0 in rank order: the inverse of
    :func:`rank_slice` (a family's train state of this rank's rows -> the global batch's)."""
    if not info.enabled or not tensors:
        return tensors
    out = {}
    for key in sorted(tensors):
        local = tensors[key].contiguous()
        parts = [torch.empty_like(local) for _ in range(info.world_size)]
        dist.all_gather(parts, local)
        out[key] = torch.cat(parts, 0)
    return out


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------ wrapping the model


def wrap_model(
    model: nn.Module,
    info: DistInfo,
    device: torch.device,
    parallel: str = "ddp",
    precision: Any = None,
    compile: bool = False,
) -> nn.Module:
    """What the trainer calls on a batch: ``model``, compiled if asked, shared across ranks.

    Under ``fsdp`` the model is sharded in place (its parameters become DTensor shards),
    so build the optimizer after this call. A single process trains unsharded: there is
    nothing to shard across, and its losses are what a sharded run must reproduce.

    Args:
        model: the family's model, already on ``device``.
        info: this process's place in the job.
        device: where it trains.
        parallel: ``ddp`` or ``fsdp`` (``train.parallel``).
        precision: the run's :class:`~textdecade.pretrain.device.Precision` (FSDP casts
            the gathered parameters to its autocast dtype).
        compile: ``torch.compile`` the step, warning and staying eager if it fails.

    Returns:
        A module whose ``forward(batch)`` is the training loss.

    Raises:
        ConfigError: ``fsdp`` for a family it cannot shard, or with fp16 loss scaling.
    """
    if parallel == "fsdp":
        fsdp_blocks(model, precision)  # refuse early, even in one process
        if info.enabled:
            shard_model(model, info, device, precision)
        return try_compile(model) if compile else model
    step_fn = try_compile(model) if compile else model
    if info.enabled and not getattr(model, "manual_update", False):
        ddp_ids = [device.index] if device.type == "cuda" else None
        step_fn = nn.parallel.DistributedDataParallel(step_fn, device_ids=ddp_ids)
    return step_fn
