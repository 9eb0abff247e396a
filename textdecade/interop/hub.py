"""Hub names (``"gpt2"``, ``"sentence-transformers/all-MiniLM-L6-v2"``) -> a local HF directory.

``td.load`` takes a hub model id where a directory is missing: the HF cache is read first
(no network), and only when the hub is online is the snapshot downloaded, limited to the
files :mod:`textdecade.interop.hf` reads (configs, safetensors, tokenizer files; torch's
``pytorch_model.bin`` only where no safetensors exist), not a repository's TF, Flax or
ONNX weights. The cache folder and offline mode are read from the
environment at each call (``HF_HUB_CACHE``, ``HF_HOME``, ``HF_HUB_OFFLINE``), not from
``huggingface_hub.constants``, which freezes them when it is first imported.

Gensim's own ``.kv`` / ``.model`` files are pickles; :func:`check_not_gensim_pickle` turns
them away with the conversion to a word2vec file, since textdecade never unpickles.
"""

from __future__ import annotations

import os
from pathlib import Path

from textdecade.data.hub import hub_reachable, is_hub_id
from textdecade.errors import UserError, first_line

__all__ = [
    "HubUnavailable",
    "GensimPickle",
    "check_not_gensim_pickle",
    "hub_cache_dir",
    "hub_offline",
    "is_hub_id",
    "model_dir",
    "snapshot_of",
]

#: what the HF importer reads (hf_files.py); the rest of a repository (TF, Flax, ONNX
#: weights, and torch's .bin where safetensors exist) is never fetched
ALLOW_PATTERNS = ["*.json", "*.txt", "*.safetensors"]

_TRUE = {"1", "on", "yes", "true"}


class HubUnavailable(UserError):
    """A hub model id that is not in the HF cache while the hub is offline or unreachable."""


class GensimPickle(UserError):
    """A gensim ``.kv`` / ``.model`` file: a pickle, which textdecade never unpickles."""


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set now."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cache_dir() -> str | None:
    """The hub cache folder the environment names now (None: huggingface_hub's default)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return os.path.expanduser(os.environ[name])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def model_dir(path: str | Path) -> Path:
    """The local directory ``path`` names: itself, or a hub model id's HF-cache snapshot.

    A string that is no existing path but looks like a hub id (``"gpt2"``, ``"ORG/NAME"``)
    is found in the HF cache first, then downloaded when the hub is online
    (:func:`snapshot_of`); gensim's pickled ``.kv`` / ``.model`` files are refused with
    the way to convert them.

    Raises:
        UserError: no such directory (one line, naming ``path``).
    """
    local = Path(path)
    check_not_gensim_pickle(local)
    if local.is_dir():
        return local
    if isinstance(path, str) and not local.exists() and is_hub_id(path):
        return snapshot_of(path)
    raise UserError(f"model directory not found: {local}")


def snapshot_of(name: str) -> Path:
    """The local snapshot directory of hub model ``name`` (the cache first, then the hub).

    Args:
        name: a hub model id (see :func:`is_hub_id`).

    Returns:
        the snapshot folder (``.../models--ORG--NAME/snapshots/<rev>``).

    Raises:
        HubUnavailable: not cached, and the hub is offline or cannot be reached.
        UserError: the hub has no such model (or it is gated).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    cache_dir = hub_cache_dir()
    try:
        return Path(snapshot_download(name, cache_dir=cache_dir, local_files_only=True))
    except LocalEntryNotFoundError:  # not cached (IncompleteSnapshotError is a subclass)
        pass
    except (OSError, ValueError) as exc:  # an unreadable cache folder
        raise UserError(f"cannot read the HF cache for {name!r}: {first_line(exc)}") from None
    if hub_offline():
        raise _unavailable(name, cache_dir, "the hub is offline (HF_HUB_OFFLINE is set)")
    if not hub_reachable():  # one short connect, before huggingface_hub's retries
        raise _unavailable(name, cache_dir, "the hub is unreachable")
    try:
        folder = Path(snapshot_download(name, cache_dir=cache_dir, allow_patterns=ALLOW_PATTERNS))
        if not any(folder.rglob("*.safetensors")):  # an older repository: torch weights
            snapshot_download(name, cache_dir=cache_dir, allow_patterns=["*pytorch_model.bin"])
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise UserError(
            f"model directory not found: {name}, nor a model the HF hub serves "
            f"({type(exc).__name__})"
        ) from None
    except (LocalEntryNotFoundError, OSError) as exc:  # connection refused, DNS, timeout
        why = f"the hub is unreachable ({type(exc).__name__})"
        raise _unavailable(name, cache_dir, why) from None
    return folder


def _unavailable(name: str, cache_dir: str | None, why: str) -> HubUnavailable:
    if cache_dir is None:
        from huggingface_hub.constants import HF_HUB_CACHE as cache_dir
    return HubUnavailable(
        f"model directory not found: {name}, and hub model {name!r} is not in the HF cache "
        f"({cache_dir}) while {why}: download it once online, or pass a local model "
        "directory instead"
    )


def check_not_gensim_pickle(path: Path) -> None:
    """Refuse gensim's pickled ``.kv`` / ``.model`` files with the way to convert them.

    A sentencepiece ``.model`` (protobuf) passes; a pickle starts with the PROTO opcode
    0x80 (protocol 2 and later, all gensim 4 writes).

    Raises:
        GensimPickle: ``path`` is such a file.
    """
    if path.suffix.lower() not in (".kv", ".model") or not path.is_file():
        return
    with open(path, "rb") as f:
        if f.read(1) != b"\x80":
            return
    raise GensimPickle(
        f"{path} is a gensim pickle (KeyedVectors.save / Word2Vec.save), which textdecade "
        "never unpickles; convert it once in gensim: "
        f"KeyedVectors.load({str(path)!r}).save_word2vec_format('w.bin', binary=True) "
        "(a Word2Vec.save file: Word2Vec.load(p).wv.save_word2vec_format(...)), then use w.bin"
    )
