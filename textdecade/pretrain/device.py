"""Device and precision selection, and the peak FLOP/s that MFU is measured against."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from textdecade.config import DTYPES, check_device
from textdecade.errors import ConfigError

#: Dense bf16/fp16 tensor-core peaks (FLOP/s) by GPU name fragment, from the vendors' sheets.
#: Checked in order, so the more specific names come first.
_GPU_PEAKS: tuple[tuple[str, float], ...] = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),
    ("T4", 65e12),
)


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None = plain fp32) and loss scaling."""

    name: str  # fp32 | bf16 | fp16
    autocast_dtype: torch.dtype | None
    needs_scaler: bool

    def autocast(self, device: torch.device):
        """An autocast context for ``device`` (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks cuda > mps > cpu; otherwise as named. ``auto`` and a bare ``cuda``
    take the GPU of this process's local rank (``cuda:LOCAL_RANK`` under torchrun)."""
    check_device(name)  # the spelling TrainConfig checks too
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA GPU")
    if device.type == "cuda" and device.index is None:
        # A bare "cuda" under torchrun: each rank takes its own GPU, as "auto" does.
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available")
    return device


def select_precision(name: str, device: torch.device) -> Precision:
    """``auto``: bf16 autocast on GPUs that have it, fp16 + loss scaling on older ones, fp32 on CPU."""
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", None, False)
    if name == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if name == "fp16":
        return Precision("fp16", torch.float16, device.type == "cuda")
    raise ConfigError(f"unknown dtype '{name}' (use {', '.join(DTYPES)})")


def peak_flops(device: torch.device) -> float | None:
    """Peak dense half-precision FLOP/s of ``device``, or None when unknown (CPU, MPS)."""
    if device.type != "cuda":
        return None
    gpu = torch.cuda.get_device_name(device)
    for fragment, peak in _GPU_PEAKS:
        if fragment in gpu:
            return peak
    return None
