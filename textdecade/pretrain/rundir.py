"""Run directories: what is in them, guarding them, and loading a trained model back.

``RUN/`` holds ``config.json`` (the RunConfig), ``tokenizer.json``, ``data_meta.json``
(what the model is built from), ``model.safetensors`` (the latest weights), ``state/``
(complete checkpoints), ``metrics.jsonl`` and ``data/`` (prepared training data).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from textdecade.config import RunConfig, config_from_json
from textdecade.errors import CheckpointError, UserError, first_line
from textdecade.io import atomic_path, sort_safetensors_metadata, write_json
from textdecade.pretrain.lock import LOCK_NAME, RunLock

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
DATA_META = "data_meta.json"
WEIGHTS = "model.safetensors"
DATA_DIR = "data"


def is_run_dir(path: str | Path) -> bool:
    """True when ``path`` holds a textdecade run (a config.json naming a family)."""
    config = Path(path) / CONFIG
    if not config.is_file():
        return False
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, huge ints
        return False
    return isinstance(raw, dict) and "family" in raw


def read_config_dict(run_dir: str | Path) -> dict[str, Any]:
    """The raw ``config.json`` of a run."""
    path = Path(run_dir) / CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{run_dir} is not a textdecade run (no {CONFIG})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        raise CheckpointError(f"{path} is corrupt ({first_line(exc)})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("family", ""), str):
        raise CheckpointError(f"{path} is corrupt (not a JSON object naming a family)")
    return raw


def prepare_run_dir(
    run_dir: Path, family: str, *, resume: bool, overwrite: bool, lock: RunLock | None = None
) -> bool:
    """Make ``run_dir`` ready for a run of ``family``; return True when resuming.

    Refuses a directory that holds another run unless ``resume`` (same family only) or
    ``overwrite``; refuses a non-empty directory that holds no run at all, and ``resume``
    where there is no run to resume (creating nothing).

    Args:
        lock: taken once the arguments are found valid and before anything is written or
            deleted, so a live run is refused, never removed under its writer.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output path {run_dir} is a file, not a directory")
    if resume and not overwrite and not is_run_dir(run_dir):
        # Starting afresh instead would hide a mistyped -o behind a run the user never asked for.
        where = "does not exist" if not run_dir.exists() else "holds no textdecade run"
        raise UserError(
            f"--resume: nothing to resume in {run_dir} (it {where}); drop --resume to start a run"
        )
    if resume and not overwrite:
        existing = read_config_dict(run_dir)["family"]
        if existing != family:
            raise CheckpointError(f"{run_dir} holds a {existing} run; it cannot resume as {family}")
        if lock is not None:
            lock.acquire()
        return True
    claim_output_dir(
        run_dir,
        overwrite=overwrite,
        hint="pass --resume to continue it or --overwrite to replace it",
        lock=lock,
    )
    return False


def claim_output_dir(
    out: Path,
    *,
    overwrite: bool,
    hint: str = "pass --overwrite to replace it",
    lock: RunLock | None = None,
) -> None:
    """Make ``out`` an output directory without losing what a user had in it.

    The one guard of every command that writes a directory (pretrain, ``import hf``,
    ``export hf``): a directory holding a run is refused unless ``overwrite`` (the run is
    then removed), and so is one holding other files (with ``overwrite`` they stay and
    same-named ones are replaced). Creates ``out``.

    Args:
        hint: what the refusal of a directory holding a run tells the user to do.
        lock: ``out``'s lock, taken before anything is deleted (see :func:`prepare_run_dir`).
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} is a file, not a directory")
    if is_run_dir(out):
        if not overwrite:
            existing = read_config_dict(out)["family"]
            raise UserError(f"{out} already holds a {existing} run; {hint}")
    elif _holds_files(out) and not overwrite:
        raise UserError(
            f"{out} is not empty and holds no run; choose another -o directory "
            "(or pass --overwrite to write into it)"
        )
    if lock is not None:
        lock.acquire()
    if is_run_dir(out):
        remove_all_but_the_lock(out)
    out.mkdir(parents=True, exist_ok=True)


def _holds_files(path: Path) -> bool:
    """True for a directory with anything in it but a lock file (which a run that failed
    to start may leave, and which means nothing once no process holds it)."""
    return path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir())


def remove_all_but_the_lock(run_dir: Path) -> None:
    """Empty ``run_dir`` but for its lock file, which the caller holds."""
    # The lock file stays: deleting it would let another process lock a new file of the
    # same name while this one still holds the old one.
    for entry in run_dir.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_data_source(source: Path, family: str) -> None:
    """Refuse a ``data_from`` directory that is not a prepared run of ``family``."""
    if not is_run_dir(source):
        raise UserError(f"data_from: {source} is not a textdecade run directory")
    if (other := read_config_dict(source).get("family")) != family:
        raise UserError(f"data_from: {source} holds {other} data, not {family}'s")
    if not (source / DATA_META).is_file() or not (source / DATA_DIR).is_dir():
        raise UserError(f"data_from: {source} holds no prepared data (it never got that far)")


def link_tree(source: Path, target: Path) -> None:
    """Hard-link the files under ``source`` into ``target`` (copies across file systems).

    Prepared data is only ever read, so one copy on disk serves many runs.
    """
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def read_json(path: str | Path) -> Any:
    """Read a JSON file of a run; a missing or corrupt one is a CheckpointError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    # ValueError: JSONDecodeError, UnicodeDecodeError, an int past 4300 digits
    except (FileNotFoundError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path} is missing or corrupt ({first_line(exc)})") from None


def save_weights(model: torch.nn.Module, run_dir: Path, family: str) -> None:
    """Write ``model.safetensors`` atomically (tied weights stored once)."""
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_model(model, str(tmp), metadata={"family": family, "format": "pt"})
        sort_safetensors_metadata(tmp)


class WeightsHeader(NamedTuple):
    """What a safetensors file says of itself, read once without reading the tensors."""

    metadata: dict[str, str] | None
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]  # safetensors' names: "F32", "BF16", "I64"...


def read_weights_header(path: Path) -> WeightsHeader:
    """The metadata, tensor shapes and dtypes of a safetensors file (tensors not read).

    Raises:
        CheckpointError: the file is missing, truncated or not safetensors (one line).
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            slices = {name: f.get_slice(name) for name in f.keys()}
            return WeightsHeader(
                f.metadata(),
                {name: tuple(s.get_shape()) for name, s in slices.items()},
                {name: s.get_dtype() for name, s in slices.items()},
            )
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({first_line(exc)})"
        ) from None


def weights_header(path: Path) -> tuple[dict[str, str] | None, dict[str, tuple[int, ...]]]:
    """The metadata and tensor shapes of a safetensors file, without reading the tensors.

    Raises:
        CheckpointError: the file is missing, truncated or not safetensors (one line).
    """
    header = read_weights_header(path)
    return header.metadata, header.shapes


def load_weights(
    model: torch.nn.Module,
    path: Path,
    device: str | torch.device = "cpu",
    header: WeightsHeader | None = None,
) -> None:
    """Load the safetensors file ``path`` into ``model``: the one place a run's weights
    (``model.safetensors``, a checkpoint's) are read back (``header``: the file's, when
    the caller read it already).

    Raises:
        CheckpointError: one line for a file that is unreadable (truncated, not
            safetensors), whose tensors have other shapes than the model built from the
            config (the first one named, both shapes), or whose names do not fit.
    """
    _check_shapes(model, path, header or read_weights_header(path))
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device=str(device))
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{path} cannot be loaded ({first_line(exc)})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit this model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )


_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}  # safetensors' names; loading converts among them


def _check_shapes(model: torch.nn.Module, path: Path, header: WeightsHeader) -> None:
    shapes, dtypes = header.shapes, header.dtypes
    state = model.state_dict()
    for name, tensor in state.items():  # the model's order: its first layer first
        if name in shapes and shapes[name] != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: the checkpoint's shapes do not match the config: {name} is "
                f"{shapes[name]} there, {tuple(tensor.shape)} in the model the config builds"
            )
        if name in dtypes and tensor.is_floating_point() and dtypes[name] not in _FLOAT_DTYPES:
            raise CheckpointError(
                f"{path}: {name} is stored as {dtypes[name]}, not as floating-point weights"
            )
    missing = [name for name in state if name not in shapes]
    if missing and len(missing) == len(state):
        raise CheckpointError(f"{path} holds none of this model's tensors (first: {missing[0]})")


def check_config_fits_weights(
    Model: type, model_config: Any, meta: dict, path: Path, header: WeightsHeader | None = None
) -> None:
    """Build the model on the meta device (no memory) and compare it with the weight file,
    so a config whose sizes the file does not hold (a ``d_model`` of 10**6 in a hand-edited
    ``config.json``) is one line instead of an allocation the machine cannot make.

    Raises:
        CheckpointError: a tensor's shape differs (the first one named).
    """
    try:
        with torch.device("meta"):
            skeleton = Model(model_config, meta)
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001 - a family that cannot build on meta is checked after
        return
    _check_shapes(skeleton, path, header or read_weights_header(path))


def write_config(run_dir: Path, config: RunConfig) -> None:
    write_json(run_dir / CONFIG, config.to_dict())


def load_run(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a trained model from a run directory.

    Returns:
        ``(config, model, tokenizer)``: the RunConfig, the family's model (eval mode, on
        ``device``) with the latest weights, and the shared Tokenizer.
    """
    from textdecade.models import get_family
    from textdecade.tokenizer import Tokenizer

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    raw = read_config_dict(run_dir)
    Model, Config, _ = get_family(raw.get("family", "?"))
    config = config_from_json(raw, Config)
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{run_dir} has no {WEIGHTS} yet (was the run interrupted early?)")
    meta = read_json(run_dir / DATA_META)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{run_dir / DATA_META} is corrupt (not a JSON object)")
    header = read_weights_header(weights)  # once: the family, then the shapes
    saved_family = (header.metadata or {}).get("family", config.family)
    if saved_family != config.family:
        raise CheckpointError(f"{weights} holds a {saved_family} model, not {config.family}")
    check_config_fits_weights(Model, config.model, meta, weights, header)
    model = Model(config.model, meta)
    load_weights(model, weights, device, header)
    model.to(device).eval()
    tokenizer = Tokenizer.load(run_dir / TOKENIZER)
    return config, model, tokenizer
