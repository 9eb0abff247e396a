"""Pruning masks for the lottery: which weights are prunable, global magnitude pruning,
random masks of the same shape, and the two Trainer callbacks that apply and snapshot.

A mask is ``{parameter name: bool tensor}`` (True = the weight survives), named as
``model.named_parameters()`` names them (a tied matrix once, under its first name), and
saved as ``mask.safetensors``. A masked run keeps its pruned weights exactly zero: the
mask multiplies every gradient (so pruned weights do not count in gradient clipping,
momentum or the diagnostics) and is applied again after every optimizer step (so
nothing, weight decay or an optimizer's epsilon included, can move them off zero).
The optimizer's state for pruned weights is left alone rather than zeroed: every masked
run starts a fresh optimizer and their gradients are zero from its first step, so their
moments stay zero (and the re-applied mask would overrule them anyway).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from textdecade.io import atomic_path
from textdecade.pretrain.callbacks import Callback
from textdecade.pretrain.rundir import load_weights

MASK = "mask.safetensors"

Mask = dict[str, torch.Tensor]


def prunable_names(model: nn.Module, embeddings: bool = False) -> list[str]:
    """The parameters magnitude pruning may remove: every ``nn.Linear`` weight of the
    blocks and heads; an output layer tied to the input embedding, and the embeddings
    themselves, only with ``embeddings``. Norms and biases always stay dense."""
    canonical: dict[int, str] = {}
    for name, param in model.named_parameters():  # a tied tensor once, its first name
        canonical.setdefault(id(param), name)
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    chosen: set[int] = set()
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter):
            continue
        if isinstance(module, nn.Linear) and (embeddings or id(weight) not in embedding_ids):
            chosen.add(id(weight))
        elif isinstance(module, nn.Embedding) and embeddings:
            chosen.add(id(weight))
    return [name for pid, name in canonical.items() if pid in chosen]


def dense_mask(model: nn.Module, names: list[str]) -> Mask:
    """Every prunable weight kept (the mask of the dense run)."""
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in names}


def global_magnitude_mask(weights: dict[str, torch.Tensor], mask: Mask, sparsity: float) -> Mask:
    """Prune the smallest-magnitude surviving weights across all tensors of ``mask`` at
    once (global, not per layer: Frankle & Carbin 2019's choice for deep networks) until
    exactly ``round(sparsity * total)`` of them are pruned. Weights ``mask`` already
    prunes stay pruned; ties go to the earlier position (a stable sort)."""
    names = list(mask)
    sizes = [mask[n].numel() for n in names]
    total = sum(sizes)
    n_pruned = round(sparsity * total)
    already = sum(int((~mask[n]).sum()) for n in names)
    if n_pruned < already:
        raise ValueError(f"sparsity {sparsity} is below the mask's own ({already / total:.4f})")
    scores = torch.cat(
        [
            torch.where(mask[n], weights[n].detach().abs().float(), torch.tensor(-1.0)).flatten()
            for n in names
        ]
    )
    keep = torch.ones(total, dtype=torch.bool)
    keep[torch.argsort(scores, stable=True)[:n_pruned]] = False
    out, start = {}, 0
    for name, size in zip(names, sizes, strict=True):
        out[name] = keep[start : start + size].view_as(mask[name]).clone()
        start += size
    return out


def random_mask_like(mask: Mask, seed: int) -> Mask:
    """A mask pruning as many weights of every tensor as ``mask`` does, at random places
    (the same per-layer sparsity, so only *which* weights survive differs)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, kept in mask.items():
        flat = torch.zeros(kept.numel(), dtype=torch.bool)
        flat[torch.randperm(kept.numel(), generator=generator)[: int(kept.sum())]] = True
        out[name] = flat.view_as(kept)
    return out


def sparsity(mask: Mask) -> float:
    """The share of the mask's weights that are pruned."""
    total = sum(m.numel() for m in mask.values())
    return sum(int((~m).sum()) for m in mask.values()) / max(total, 1)


def zero_fractions(model: nn.Module, names: list[str]) -> dict[str, float]:
    """The share of exact zeros among the prunable weights and among all parameters (a
    tied matrix counted once): the sparsity a saved model really has."""
    params = dict(model.named_parameters())
    prunable = {id(params[n]) for n in names}
    zeros = {"prunable": [0, 0], "overall": [0, 0]}
    for param in params.values():
        counts = [int((param == 0).sum()), param.numel()]
        for key in ("prunable", "overall") if id(param) in prunable else ("overall",):
            zeros[key] = [zeros[key][0] + counts[0], zeros[key][1] + counts[1]]
    return {key: z / max(n, 1) for key, (z, n) in zeros.items()}


def save_mask(mask: Mask, path: Path) -> None:
    """Write ``mask`` as safetensors (bool tensors), atomically."""
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in mask.items()}, str(tmp))


def load_mask(path: Path) -> Mask:
    """A mask written by :func:`save_mask`."""
    return {k: v.bool() for k, v in load_file(str(path)).items()}


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> None:
    """Zero the pruned weights of ``model`` in place."""
    params = dict(model.named_parameters())
    for name, kept in mask.items():
        params[name].mul_(kept.to(params[name].device, params[name].dtype))


class Masked(Callback):
    """Train under ``mask`` from the given start: at step 0 the model's weights become
    ``start`` (a safetensors file: the dense run's step 0 or step k) or, with
    ``reinit_seed``, a fresh initialisation drawn with that seed; then the mask is applied
    and kept (see the module docstring). ``mask.safetensors`` is written to ``run_dir``.
    """

    def __init__(
        self,
        mask: Mask,
        run_dir: Path,
        start: Path | None = None,
        reinit_seed: int | None = None,
    ):
        self.mask, self.run_dir, self.start, self.reinit_seed = (
            mask,
            Path(run_dir),
            start,
            reinit_seed,
        )

    def on_start(self, model: nn.Module, step: int) -> None:
        if step == 0:  # a resumed run's weights come from its own checkpoint
            if self.start is not None:
                load_weights(model, self.start, next(model.parameters()).device)
            elif self.reinit_seed is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.reinit_seed)
                    fresh = type(model)(model.config, model.meta)
                with torch.no_grad():
                    model.load_state_dict(fresh.state_dict())
        params = dict(model.named_parameters())
        for name, kept in self.mask.items():
            factor = kept.to(params[name].device, params[name].dtype)
            params[name].register_hook(lambda grad, factor=factor: grad * factor)
        apply_mask(model, self.mask)
        save_mask(self.mask, self.run_dir / MASK)

    def after_step(self, model: nn.Module, step: int) -> None:
        apply_mask(model, self.mask)


def snapshot_name(step: int) -> str:
    """The file a :class:`Snapshots` callback writes for ``step``."""
    return f"weights_step{step}.safetensors"


class Snapshots(Callback):
    """Save the whole model at each of ``steps`` (0 = before the first update) into
    ``run_dir`` as ``weights_stepN.safetensors``: the points the lottery rewinds to."""

    def __init__(self, run_dir: Path, steps: list[int]):
        self.run_dir, self.steps = Path(run_dir), set(steps)

    def on_start(self, model: nn.Module, step: int) -> None:
        if step == 0 and 0 in self.steps:
            self._save(model, 0)

    def after_step(self, model: nn.Module, step: int) -> None:
        if step in self.steps:
            self._save(model, step)

    def _save(self, model: nn.Module, step: int) -> None:
        with atomic_path(self.run_dir / snapshot_name(step)) as tmp:
            save_model(model, str(tmp))
