"""Per-layer diagnostics: gradient norms and activation statistics, block by block.

Glorot and Bengio (2010) explained why deep networks failed to train by looking inside
them: activations that saturate layer by layer (sigmoids stuck at 0 or 1) and gradients
that shrink (or grow) geometrically with depth. ``train.diagnostics_every = N`` writes
the same measurements into ``metrics.jsonl`` on the first step (the gradients at
initialisation) and every N steps after, for the blocks the family declares
(:meth:`~textdecade.models.base.Family.blocks`), in forward order::

    {"step": 1, ..., "layers": {"grad_norm": [...], "out_mean": [...], "out_std": [...],
                                "dead": [...], "saturated": [...]}}

``grad_norm`` is the L2 norm of each block's parameter gradients (before clipping);
``out_mean``/``out_std`` describe each block's output; ``dead`` is the fraction of a
block's ReLU outputs that are exactly zero, ``saturated`` the fraction of its sigmoid
or tanh outputs within 2% of their bounds (None where the block has no such unit).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: |y| within this share of a bound counts as saturated (sigmoid: y < 0.02 or y > 0.98).
SATURATION = 0.02


class LayerProbe:
    """Hooks on a model's blocks that measure one step when asked.

    :meth:`arm` before the step's forward; the hooks record while ``active`` (the engine
    turns it off after the first micro-batch); :meth:`read` after the backward.

    Args:
        blocks: the model's blocks in forward order (``model.blocks()``).
    """

    def __init__(self, blocks: list[nn.Module]):
        self.blocks = blocks
        self.active = False  # the hooks record
        self.armed = False  # a reading is due
        self._outputs: list[tuple[float, float] | None] = [None] * len(blocks)
        self._units: list[dict[str, list[float]]] = [{} for _ in blocks]
        self._handles = []
        for i, block in enumerate(blocks):
            self._handles.append(block.register_forward_hook(self._block_hook(i)))
            for module in block.modules():
                kind = _unit_kind(module)
                if kind is not None:
                    self._handles.append(module.register_forward_hook(self._unit_hook(i, kind)))

    def arm(self) -> None:
        """Measure the next forward pass and the gradients after it."""
        self.active = self.armed = True

    def _block_hook(self, index: int):
        def hook(module, args, output) -> None:  # noqa: ARG001 - the hook signature
            if self.active and self._outputs[index] is None:
                x = (output[0] if isinstance(output, tuple) else output).detach().float()
                self._outputs[index] = (float(x.mean()), float(x.std()))

        return hook

    def _unit_hook(self, index: int, kind: str):
        def hook(module, args, output) -> None:  # noqa: ARG001 - the hook signature
            if not self.active:
                return
            y = output.detach()
            if kind == "relu":
                share = float((y == 0).float().mean())
            elif kind == "sigmoid":
                share = float(((y < SATURATION) | (y > 1 - SATURATION)).float().mean())
            else:  # tanh: bounds -1 and 1
                share = float((y.abs() > 1 - 2 * SATURATION).float().mean())
            key = "dead" if kind == "relu" else "saturated"
            self._units[index].setdefault(key, []).append(share)

        return hook

    def read(self) -> dict[str, list[Any]]:
        """The measured step's statistics (gradients as they are now), then reset."""
        grads = []
        for block in self.blocks:
            squares = [
                p.grad.detach().float().square().sum()
                for p in block.parameters()
                if p.grad is not None
            ]
            grads.append(float(torch.stack(squares).sum().sqrt()) if squares else 0.0)
        outputs = self._outputs
        record: dict[str, list[Any]] = {
            "grad_norm": grads,
            "out_mean": [o[0] if o else None for o in outputs],
            "out_std": [o[1] if o else None for o in outputs],
        }
        for key in ("dead", "saturated"):
            record[key] = [_mean(unit.get(key)) for unit in self._units]
        self._outputs = [None] * len(self.blocks)
        self._units = [{} for _ in self.blocks]
        self.active = self.armed = False
        return record

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _unit_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.Tanh):
        return "tanh"
    return None


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
