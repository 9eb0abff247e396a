"""Checkpoints: complete training state in ``RUN/state/step_NNNNNNNN/``, written atomically.

A checkpoint directory is written under a temporary name and renamed into place once
every file in it (weights, optimizer, RNG states, batcher cursor) is on disk and a
``COMPLETE`` marker has been written, so a run killed at any instant leaves either the
previous checkpoints or the new one, never half of one. The marker records every file's
size and sha256; loading verifies them all and skips (with one warning line) a checkpoint
that is partial, truncated, altered or unreadable, falling back to the previous one.

The files are the same however the run was parallelised: under FSDP, rank 0 writes the
full state that :func:`textdecade.pretrain.distributed.full_state` gathered, and reads it
back for the other ranks on resume.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file, save_model

from textdecade.errors import CheckpointError, DiskFull, first_line, is_disk_full
from textdecade.io import set_default_mode, sort_safetensors_metadata
from textdecade.pretrain import distributed as dist
from textdecade.pretrain import fsdp
from textdecade.pretrain.optim import load_optimizer_state, optimizer_state
from textdecade.pretrain.rundir import load_weights

STATE_DIR = "state"
TRAIN_STATE = "train_state.safetensors"  # Family.train_state(): what training carries along
_PREFIX = "step_"
_MARKER = "COMPLETE"
_CHUNK = 1 << 20  # hash in 1 MiB reads: constant memory whatever the model's size


@dataclass
class Checkpoint:
    """A complete checkpoint found on disk."""

    path: Path
    step: int
    trainer: dict[str, Any]


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def rng_state() -> dict[str, torch.Tensor]:
    """Every global random state training may touch, as tensors."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = state
    np_state = np.random.get_state()
    tensors["numpy.keys"] = torch.from_numpy(np_state[1].astype(np.int64))
    tensors["numpy.pos"] = torch.tensor([np_state[2], np_state[3]], dtype=torch.int64)
    tensors["numpy.gauss"] = torch.tensor([np_state[4]], dtype=torch.float64)
    py_version, py_internal, py_gauss = random.getstate()
    tensors["python.internal"] = torch.tensor(py_internal, dtype=torch.int64)
    tensors["python.meta"] = torch.tensor([py_version, 0 if py_gauss is None else 1])
    tensors["python.gauss"] = torch.tensor([0.0 if py_gauss is None else py_gauss])
    return tensors


def set_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    pos = tensors["numpy.pos"].tolist()
    np.random.set_state(
        (
            "MT19937",
            tensors["numpy.keys"].numpy().astype(np.uint32),
            pos[0],
            pos[1],
            float(tensors["numpy.gauss"][0]),
        )
    )
    version, has_gauss = tensors["python.meta"].tolist()
    gauss = float(tensors["python.gauss"][0]) if has_gauss else None
    random.setstate((version, tuple(tensors["python.internal"].tolist()), gauss))


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: torch.nn.Module | fsdp.StateSnapshot,
    optimizer: torch.optim.Optimizer | fsdp.StateSnapshot | None,
    trainer_state: dict[str, Any],
    keep_last: int,
    train_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the checkpoint of ``step`` atomically, then prune all but the last ``keep_last``.

    ``model`` and ``optimizer`` are read through ``state_dict()`` only, so the full state
    gathered from FSDP shards (:func:`~textdecade.pretrain.distributed.full_state`) is
    written exactly as an unsharded model's. ``train_state`` is the family's
    :meth:`~textdecade.models.base.Family.train_state` (its own file, when not empty).

    Raises:
        DiskFull: the disk is full (the temporary folder is removed, the previous
            checkpoints are untouched).
    """
    state_dir = run_dir / STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    final = state_dir / f"{_PREFIX}{step:08d}"
    tmp = state_dir / f".tmp-{_PREFIX}{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with disk_full_is_user_error(run_dir, step):
        _write(tmp, final, step, model, optimizer, trainer_state, train_state)
    _prune(state_dir, keep_last)
    return final


def _write(tmp: Path, final: Path, step: int, model, optimizer, trainer_state, train_state) -> None:
    """Write every file under ``tmp``, record their digests, then rename it to ``final``."""
    try:
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        if optimizer is not None:
            tensors, meta = optimizer_state(optimizer)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "optimizer.json").write_text(meta, encoding="utf-8")
        save_file(rng_state(), str(tmp / "rng.safetensors"))
        if train_state:
            tensors = {k: v.detach().cpu().contiguous() for k, v in train_state.items()}
            save_file(tensors, str(tmp / TRAIN_STATE))
        (tmp / "trainer.json").write_text(json.dumps({"step": step, **trainer_state}))
        files = {}
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".safetensors"):
                sort_safetensors_metadata(tmp / name)
            set_default_mode(tmp / name)
            files[name] = _digest_and_sync(tmp / name)
        marker = tmp / _MARKER
        marker.write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")
        set_default_mode(marker)
        with open(marker, "rb") as f:
            os.fsync(f.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        # Whatever stopped the write (a full disk, Ctrl-C), the half-written folder goes:
        # each retry would otherwise leave another one behind.
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def disk_full_is_user_error(run_dir: Path, step: int):
    """Turn a full disk while checkpointing ``step`` into one line (:class:`DiskFull`)
    that says which checkpoint survived."""
    try:
        yield
    except (OSError, SafetensorError) as exc:
        if not is_disk_full(exc):
            raise
        previous = latest_checkpoint(run_dir, quiet=True)
        kept = f"step {previous.step}" if previous else "none yet"
        raise DiskFull(
            f"no space left on device while writing the checkpoint of step {step} in "
            f"{run_dir}; the last complete checkpoint ({kept}) is intact: free some space, "
            "then continue with --resume"
        ) from None


def remove_stale_temporaries(run_dir: Path) -> None:
    """Remove what writers killed mid-write left behind: ``state/.tmp-step_*`` folders and
    atomic writes' ``.NAME.tmp-PID`` files. Only safe while this process holds the run."""
    for tmp in Path(run_dir, STATE_DIR).glob(f".tmp-{_PREFIX}*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for tmp in Path(run_dir).glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _digest_and_sync(path: Path) -> dict[str, Any]:
    """Size and sha256 of a file just written, and fsync it: one pass over bytes still in
    the page cache (the fsync needed the open file anyway)."""
    size, sha = _digest(path, sync=True)
    return {"bytes": size, "sha256": sha}


def _digest(path: Path, sync: bool = False) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(f.fileno())
    return size, digest.hexdigest()


def _verify_files(path: Path) -> None:
    """Check every file the marker records against its size and sha256.

    A marker written before checksums were recorded (the text ``ok``) records nothing;
    such a checkpoint is checked only by opening its files in :func:`_read`, so runs
    written by older versions still resume.
    """
    text = (path / _MARKER).read_text(encoding="utf-8")
    if text.strip() == "ok":
        return
    try:
        files = json.loads(text)["files"]
        records = {name: (int(w["bytes"]), str(w["sha256"])) for name, w in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{_MARKER} marker is corrupt") from None
    for name, (want_size, want_sha) in sorted(records.items()):
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{name} is missing")
        size = file.stat().st_size
        if size != want_size:
            raise CheckpointError(f"{name} is {size} bytes, {want_size} were written")
        if _digest(file)[1] != want_sha:
            raise CheckpointError(f"{name} has changed since it was written (sha256 differs)")


def _prune(state_dir: Path, keep_last: int) -> None:
    complete = sorted(p for p in state_dir.glob(f"{_PREFIX}*") if (p / _MARKER).exists())
    for old in complete[: max(len(complete) - max(keep_last, 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)


def _read(path: Path) -> Checkpoint:
    if not (path / _MARKER).exists():
        raise CheckpointError("no COMPLETE marker (the write was interrupted)")
    _verify_files(path)
    trainer = json.loads((path / "trainer.json").read_text())
    names = ["model.safetensors", "rng.safetensors"]
    if (path / TRAIN_STATE).exists():
        names.append(TRAIN_STATE)
    if (path / "optimizer.json").exists() or (path / "optimizer.safetensors").exists():
        names.append("optimizer.safetensors")
        json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
    for name in names:
        try:
            with safe_open(str(path / name), framework="pt") as f:
                list(f.keys())
        except SafetensorError as exc:
            raise CheckpointError(
                f"{name} is not a readable safetensors file ({first_line(exc)})"
            ) from None
    return Checkpoint(path=path, step=int(trainer["step"]), trainer=trainer)


def latest_checkpoint(run_dir: Path, quiet: bool = False) -> Checkpoint | None:
    """The newest readable checkpoint of ``run_dir``, skipping broken ones with a warning."""
    state_dir = Path(run_dir) / STATE_DIR
    if not state_dir.is_dir():
        return None
    for path in sorted(state_dir.glob(f"{_PREFIX}*"), reverse=True):
        try:
            return _read(path)
        except (CheckpointError, OSError, ValueError, KeyError, TypeError) as exc:
            if not quiet:
                warnings.warn(f"skipping checkpoint {path.name}: {first_line(exc)}", stacklevel=2)
    return None


def restore(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    info: dist.DistInfo | None = None,
) -> None:
    """Load weights, optimizer, RNG states and the family's train state of ``checkpoint``.

    Args:
        info: this process's place in a job; an FSDP-sharded model is loaded by rank 0
            reading the files and broadcasting them to the shards of every rank.
    """
    if fsdp.is_sharded(model):
        _restore_sharded(checkpoint, model, optimizer, info or dist.DistInfo())
        set_rng_state(_load_file(checkpoint.path / "rng.safetensors"))
        _restore_train_state(checkpoint, model, info)
        return
    device = next(iter(model.parameters())).device
    load_weights(model, checkpoint.path / "model.safetensors", device)
    if optimizer is not None:
        tensors = _load_file(checkpoint.path / "optimizer.safetensors", device=str(device))
        meta = (checkpoint.path / "optimizer.json").read_text()
        load_optimizer_state(optimizer, tensors, meta)
    set_rng_state(_load_file(checkpoint.path / "rng.safetensors"))
    _restore_train_state(checkpoint, model, info)


def _restore_train_state(checkpoint: Checkpoint, model: torch.nn.Module, info) -> None:
    """Hand the saved train state (empty when the checkpoint has none) to the family: this
    rank's rows of it, as the trainer saved the global batch's."""
    if hasattr(model, "load_train_state"):
        path = checkpoint.path / TRAIN_STATE
        state = _load_file(path) if path.exists() else {}
        model.load_train_state(dist.rank_slice(state, info or dist.DistInfo()))


def _load_file(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file``, its errors (a file damaged after the checks of
    :func:`latest_checkpoint`) said in one line."""
    try:
        return load_file(str(path), device=device)
    except SafetensorError as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({first_line(exc)})"
        ) from None


class _Captured:
    """Receives what :func:`load_optimizer_state` would load into an optimizer."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state


def _restore_sharded(checkpoint: Checkpoint, model, optimizer, info: dist.DistInfo) -> None:
    weights: dict[str, torch.Tensor] = {}
    captured = _Captured()
    if info.is_main:
        weights = _load_file(checkpoint.path / "model.safetensors")
        if optimizer is not None:
            tensors = _load_file(checkpoint.path / "optimizer.safetensors")
            meta = (checkpoint.path / "optimizer.json").read_text()
            load_optimizer_state(captured, tensors, meta)
    try:
        fsdp.load_full_state(model, optimizer, weights, captured.state, info)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {checkpoint.path} does not fit this model ({first_line(exc)})"
        ) from None
