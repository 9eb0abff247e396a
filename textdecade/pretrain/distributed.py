"""Data parallelism under torchrun: the only module that reads RANK / WORLD_SIZE.

``torchrun --nproc_per_node=N -m textdecade pretrain ...`` runs the same command in N
processes; each joins a process group (NCCL on GPUs, gloo on CPU), keeps its rows of
every global batch, and averages gradients across ranks. Rank 0 alone writes files.

Two ways to share the model (``train.parallel``):

* ``ddp`` (default): every rank holds the whole model and optimizer; DDP all-reduces the
  gradients (Li et al. 2020, "PyTorch Distributed").
* ``fsdp``: FSDP2 (``fully_shard``) splits parameters, gradients and optimizer state
  across the ranks, one unit per transformer block and one for the rest (ZeRO-3,
  Rajbhandari et al. 2020; Zhao et al. 2023, "PyTorch FSDP"). Families without such
  blocks, or with a hand-written update (Word2Vec, GloVe), refuse it with one line.
  Checkpoints stay the same on disk: the full weights and optimizer state are gathered
  on rank 0 to be written (:func:`full_state`) and broadcast from it to be read back
  (:func:`load_full_state`), so an FSDP run loads with ``load_run`` like any other.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from textdecade.errors import ConfigError


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


def fsdp_blocks(model: nn.Module, precision: Any = None) -> list[nn.Module]:
    """The transformer blocks FSDP shards one by one; a one-line ConfigError when none fit."""
    from textdecade.models import layers

    name = getattr(model, "name", "") or type(model).__name__
    if getattr(model, "manual_update", False):
        raise ConfigError(
            f"train.parallel=fsdp: {name} updates its own weights by hand, which FSDP cannot "
            "shard; use train.parallel=ddp"
        )
    if precision is not None and precision.needs_scaler:
        raise ConfigError(
            "train.parallel=fsdp trains in bf16 or fp32, not fp16 with loss scaling; "
            "set train.dtype=bf16 (or fp32)"
        )
    kinds = (layers.PreLNBlock, layers.PostLNBlock, layers.PreLNDecoderBlock)
    kinds += (layers.PostLNDecoderBlock,)
    blocks = [m for m in model.modules() if isinstance(m, kinds)]
    if not blocks:
        raise ConfigError(
            f"train.parallel=fsdp shards transformer blocks and {name} has none; "
            "use train.parallel=ddp"
        )
    return blocks


def shard_model(model: nn.Module, info: DistInfo, device: torch.device, precision=None) -> None:
    """Shard ``model`` in place with FSDP2 over the ``info.world_size`` ranks of the job's
    process group (already joined): each transformer block is a unit, the root the rest.

    Args:
        precision: the run's Precision; bf16 runs gather bf16 parameters.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # the mesh and NCCL use the current device
    mesh = init_device_mesh(device.type, (info.world_size,))
    blocks = fsdp_blocks(model, precision)
    dtype = getattr(precision, "autocast_dtype", None)
    # bf16 runs gather bf16 parameters (half the traffic) but reduce gradients in fp32, as
    # torchtitan does: a bf16 sum over many ranks loses the small updates.
    policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32 if dtype else None)
    for i, block in enumerate(blocks):
        # The last block's parameters are needed again at once by backward: keep them.
        fully_shard(block, mesh=mesh, mp_policy=policy, reshard_after_forward=i < len(blocks) - 1)
    fully_shard(model, mesh=mesh, mp_policy=policy)


def is_sharded(model: nn.Module) -> bool:
    """True when ``model`` was sharded by :func:`wrap_model` (FSDP2)."""
    if not dist.is_available():
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def grad_sync(step_fn: nn.Module, model: nn.Module, sync: bool):
    """Context for one micro-batch's forward and backward: without ``sync`` gradients
    accumulate locally (DDP ``no_sync``; FSDP ``set_requires_gradient_sync(False)``) and
    are averaged across ranks with the last micro-batch."""
    if sync:
        return contextlib.nullcontext()
    if isinstance(step_fn, nn.parallel.DistributedDataParallel):
        return step_fn.no_sync()
    if is_sharded(model):
        return _fsdp_no_sync(model)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_no_sync(model):
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


@contextlib.contextmanager
def full_params(model: nn.Module):
    """Gather the root's shards (embeddings, heads) for calls that bypass ``forward``,
    such as ``evaluate``; blocks still gather themselves when called. Every rank enters."""
    if not is_sharded(model):
        yield
        return
    # FSDP2 sets up its units on the root's first forward; a block called before that
    # would claim to be a root. No public call does it (torch 2.11-2.13): use the private.
    state = model._get_fsdp_state()
    if hasattr(state, "_lazy_init"):
        state._lazy_init()
    model.unshard()
    try:
        yield
    finally:
        # Every unit, not only the root: the last block keeps its parameters gathered
        # after a forward (see shard_model), which an evaluation has no backward to end.
        for module in model.modules():
            if is_sharded(module):
                module.reshard()


# ------------------------------------------------------------------ full state dicts


class StateSnapshot:
    """A gathered state dict that stands in for a module or an optimizer where only
    ``state_dict()`` is read (``safetensors.torch.save_model``, ``optim.optimizer_state``)."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


def _param_names(model: nn.Module) -> dict[int, list[str]]:
    """id(parameter) -> every name it has (tied weights have several)."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return names


def _retie(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Point every name of a tied parameter at one tensor, as ``model.state_dict()`` does,
    so safetensors stores it once and under the same name as an unsharded run."""
    for names in _param_names(model).values():
        present = [n for n in names if n in state]
        if present:
            for name in names:
                state[name] = state[present[0]]
    return state


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, info: DistInfo):
    """The whole model and optimizer state, for rank 0 to write (collective under FSDP).

    Returns:
        ``(weights, optimizer_state)``: objects whose ``state_dict()`` reads like an
        unsharded model's and optimizer's (optimizer state keyed by parameter index).
        Without FSDP, ``model`` and ``optimizer`` themselves.
    """
    if not is_sharded(model):
        return model, optimizer
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    optim = None
    if optimizer is not None:
        full = get_optimizer_state_dict(model, optimizer, options=options)
        optim = StateSnapshot(_by_index(full) if info.is_main else {})
    return StateSnapshot(_retie(model, weights) if info.is_main else {}), optim


def _by_index(full: dict[str, Any]) -> dict[str, Any]:
    """Parameter names -> the indices ``optimizer.state_dict()`` uses (order of groups)."""
    index: dict[str, int] = {}
    groups = []
    for group in full["param_groups"]:
        ids = [index.setdefault(fqn, len(index)) for fqn in group["params"]]
        groups.append({**group, "params": ids})
    return {"state": {index[k]: v for k, v in full["state"].items()}, "param_groups": groups}


def load_full_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    weights: dict[str, torch.Tensor],
    optim_state: dict[str, Any] | None,
    info: DistInfo,
) -> None:
    """Load full state dicts that rank 0 read into a sharded model and its optimizer.

    Args:
        weights: the full weights on rank 0 (tied names may appear once); ``{}`` elsewhere.
        optim_state: ``optimizer.state_dict()``-shaped state on rank 0; ``{}`` elsewhere.
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, _retie(model, weights) if info.is_main else {}, options=options)
    if optimizer is None:
        return
    names = _param_names(model)
    order = [names[id(p)][0] for group in optimizer.param_groups for p in group["params"]]
    by_name: dict[str, Any] = {}
    if info.is_main and optim_state:
        by_name = {
            "state": {order[int(i)]: slots for i, slots in optim_state["state"].items()},
            "param_groups": [
                {**g, "params": [order[int(i)] for i in g["params"]]}
                for g in optim_state["param_groups"]
            ],
        }
    set_optimizer_state_dict(model, optimizer, by_name, options=options)


# ------------------------------------------------------------------ torch.compile


def try_compile(model: nn.Module) -> nn.Module:
    """``torch.compile`` the model, or warn and stay eager when it cannot."""
    try:
        compiled = torch.compile(model)
    except Exception as exc:  # noqa: BLE001 - any backend failure falls back to eager
        warnings.warn(f"torch.compile failed ({exc}); training eagerly", stacklevel=2)
        return model
    return CompileFallback(compiled, model)


class CompileFallback(nn.Module):
    """Calls the compiled model; on a compilation error, warns once and goes eager."""

    def __init__(self, compiled, eager):
        super().__init__()
        self.compiled = compiled
        self.eager = eager
        self.failed = False

    def forward(self, batch):
        if not self.failed:
            try:
                return self.compiled(batch)
            except Exception as exc:  # noqa: BLE001 - inductor/dynamo errors vary
                self.failed = True
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly",
                    stacklevel=2,
                )
        return self.eager(batch)
