"""ELMo's scalar mix of a model's layers (Peters et al. 2018, eq. 1)."""

from __future__ import annotations

import torch
from torch import nn


class ScalarMix(nn.Module):
    """ELMo's eq. 1: ``gamma * sum_j softmax(s)_j h_j`` over the L + 1 layers.

    Uniform (``s = 0``, ``gamma = 1``: the mean of the layers) until a downstream task
    trains it; the LM loss never reaches it, so ELMo keeps it frozen in pretraining.
    """

    def __init__(self, n_layers: int):
        super().__init__()
        self.scalars = nn.Parameter(torch.zeros(n_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """L + 1 tensors (B, T, 2 D) -> (B, T, 2 D)."""
        weights = torch.softmax(self.scalars, dim=0)
        return self.gamma * sum(w * h for w, h in zip(weights, layers))
