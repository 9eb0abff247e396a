"""``torch.compile`` with a fallback: a backend failure warns once and trains eagerly."""

from __future__ import annotations

import warnings

import torch
from torch import nn


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
