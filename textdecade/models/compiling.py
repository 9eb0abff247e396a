"""``torch.compile`` with a fallback: a backend failure warns once and runs eagerly."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def try_compile(fn: nn.Module | Callable[..., Any], **options: Any) -> Any:
    """``torch.compile`` a model or a function, or warn and stay eager when it cannot.

    Args:
        fn: the module (its ``forward``) or function to compile.
        options: passed to ``torch.compile`` (e.g. ``dynamic=False``).
    """
    try:
        compiled = torch.compile(fn, **options)
    except Exception as exc:  # noqa: BLE001 - any backend failure falls back to eager
        warnings.warn(f"torch.compile failed ({exc}); running eagerly", stacklevel=2)
        return fn
    return CompileFallback(compiled, fn)


class CompileFallback(nn.Module):
    """Calls the compiled callable; on a compilation error, warns once and goes eager."""

    def __init__(self, compiled: Callable[..., Any], eager: Callable[..., Any]):
        super().__init__()
        self.compiled = compiled
        self.eager = eager
        self.failed = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - inductor/dynamo errors vary
                self.failed = True
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {exc}); running eagerly",
                    stacklevel=2,
                )
        return self.eager(*args, **kwargs)
