"""FSDP2 for the language models (``train.parallel=fsdp``): which units to shard, the
micro-batch gradient-sync context, and full state dicts gathered and scattered.

``fully_shard`` splits parameters, gradients and optimizer state across the ranks, one
unit per transformer block and one for the rest (ZeRO-3, Rajbhandari et al. 2020; Zhao
et al. 2023, "PyTorch FSDP"). Families without such blocks, or with a hand-written update
(Word2Vec, GloVe), refuse it with one line. Checkpoints stay the same on disk: the full
weights and optimizer state are gathered on rank 0 to be written (:func:`full_state`) and
broadcast from it to be read back (:func:`load_full_state`), so an FSDP run loads with
``load_run`` like any other.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from textdecade.errors import ConfigError
from textdecade.models.base import Family

if TYPE_CHECKING:
    from textdecade.pretrain.distributed import DistInfo


def fsdp_blocks(model: nn.Module, precision: Any = None) -> list[nn.Module]:
    """The blocks FSDP shards one by one, as the family declares them
    (:meth:`~textdecade.models.base.Family.blocks`); a one-line ConfigError when none."""
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
    blocks = model.blocks() if isinstance(model, Family) else []
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
