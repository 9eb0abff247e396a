"""Optimizers chosen by name, and their state as safetensors + JSON (no pickle)."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

# OPTIMIZERS lives in config so that TrainConfig checks train.optimizer against the same
# names; a new optimizer goes there and into build_optimizer together.
from textdecade.config import OPTIMIZERS, TrainConfig
from textdecade.errors import ConfigError


def build_optimizer(
    name: str, model: nn.Module, train: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (one of :data:`~textdecade.config.OPTIMIZERS`) over
    ``model``'s trainable parameters.

    Every optimizer decays only matrices (embeddings and weights), not biases and norms
    (as nanoGPT and BERT do): AdamW decoupled from the gradient (Loshchilov & Hutter
    2019), the others as an L2 term in it. ``beta1`` is Adam's first-moment decay and the
    momentum of "momentum" (heavy ball, Polyak 1964); ``beta2`` Adam's second-moment decay
    and RMSProp's squared-gradient decay (Tieleman & Hinton 2012). Fused CUDA kernels where
    torch has them.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": train.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    betas = (train.beta1, train.beta2)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=train.lr, betas=betas, fused=fused)
    if name == "adam":
        return torch.optim.Adam(groups, lr=train.lr, betas=betas, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=train.lr)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.beta1)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=train.lr, alpha=train.beta2)
    if name == "adagrad":
        # GloVe's AdaGrad (Pennington et al. 2014) starts the accumulator at 1 as glove.c does.
        return torch.optim.Adagrad(groups, lr=train.lr, initial_accumulator_value=1.0)
    raise ConfigError(f"unknown optimizer '{name}' (allowed: {', '.join(OPTIMIZERS)})")


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON (the rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    meta = {"param_groups": state["param_groups"], "scalars": scalars}
    return tensors, json.dumps(meta)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta_json: str
) -> None:
    """Inverse of :func:`optimizer_state`."""
    meta = json.loads(meta_json)
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, slots in meta["scalars"].items():
        state.setdefault(int(index), {}).update(slots)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
