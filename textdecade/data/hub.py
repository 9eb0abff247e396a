"""Open a HF ``datasets`` dataset, failing fast and in one line when the hub is out of reach.

``datasets.load_dataset`` on an unreachable hub retries each request with backoff (about
half a minute with no DNS, minutes where packets are dropped) and then fails without a
word about local files. Here a hub name is tried against the local datasets cache when
offline mode is on (``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE``, read at each call); else
one short TCP connect to the hub decides, before ``datasets`` starts retrying (not behind a
proxy, where only the proxy can tell). Every
failure names the dataset and points at ``--corpus FILE`` for local text.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from ..errors import CorpusError, first_line

__all__ = ["datasets_offline", "hub_reachable", "is_hub_id", "open_dataset"]

# ORG/NAME or NAME, as huggingface_hub's validate_repo_id accepts them (no "--", no "..")
_REPO_ID = re.compile(r"^(?:[\w.-]{1,96}/)?[\w.-]{1,96}$")
_TRUE = {"1", "on", "yes", "true"}
#: seconds one connect to the hub may take before it counts as unreachable
CONNECT_TIMEOUT = 3.0


def datasets_offline() -> bool:
    """True when ``HF_DATASETS_OFFLINE`` or ``HF_HUB_OFFLINE`` is set now."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )


def is_hub_id(name: str) -> bool:
    """True when ``name`` could be a hub id: ``NAME`` or ``ORG/NAME``, no spaces, not a path
    that starts with ``/``, ``.`` or ``~``, and not under an existing local folder
    (``runs/missing`` with a ``runs`` folder here is a missing path, not a hub name)."""
    if not _REPO_ID.match(name) or "--" in name or ".." in name or name[0] in "./~":
        return False
    return "/" not in name or not Path(name.split("/", 1)[0]).is_dir()


def hub_reachable(timeout: float = CONNECT_TIMEOUT) -> bool:
    """One TCP connect to the hub (``HF_ENDPOINT``, default huggingface.co): no request is
    sent; False on a DNS failure, a refused connection or ``timeout`` seconds of silence.
    Behind an HTTP(S) proxy the direct connect proves nothing, so it is not tried (True)."""
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    scheme = url.scheme or "https"
    if scheme in getproxies() or "all" in getproxies():
        return True
    port = url.port or (80 if scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def open_dataset(name: str, config: str | None, split: str, streaming: bool) -> Any:
    """``datasets.load_dataset(name, config, split=split, streaming=streaming)``, in one line
    when it fails.

    Args:
        name: a hub dataset name, or a local dataset directory / script.
        config: the dataset's configuration (None: its default).
        split: the split to read.
        streaming: stream the rows (an ``IterableDataset``) instead of preparing them.

    Returns:
        the dataset.

    Raises:
        CorpusError: a hub name while the hub is offline (and the dataset is not cached) or
            unreachable, or any other failure of ``datasets``, naming the dataset.
    """
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise CorpusError("reading a HF dataset needs the `datasets` package") from None
    hub_name = not Path(name).exists() and is_hub_id(name)
    if hub_name and not datasets_offline() and not hub_reachable():
        raise CorpusError(_unreachable(name, offline=False))
    try:
        with _offline_if(hub_name and datasets_offline()):
            return datasets.load_dataset(name, config, split=split, streaming=streaming)
    except Exception as exc:  # datasets raises many types (FileNotFound, ConnectionError, ...)
        if hub_name and (datasets_offline() or _is_connection_error(exc)):
            raise CorpusError(_unreachable(name, offline=datasets_offline())) from None
        raise CorpusError(
            f"cannot load dataset {name!r} split {split!r}: {first_line(exc)}"
        ) from None


@contextlib.contextmanager
def _offline_if(offline: bool) -> Iterator[None]:
    """Hold ``datasets`` and ``huggingface_hub`` offline for one call when the environment
    says so now: both read the offline variables once, at import, so a variable set later
    (a notebook's ``os.environ``, a test's monkeypatch) would otherwise let them retry."""
    if not offline:
        yield
        return
    import datasets.config as dc
    import huggingface_hub.constants as hc

    saved = dc.HF_HUB_OFFLINE, dc.HF_DATASETS_OFFLINE, hc.HF_HUB_OFFLINE
    dc.HF_HUB_OFFLINE = dc.HF_DATASETS_OFFLINE = hc.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        dc.HF_HUB_OFFLINE, dc.HF_DATASETS_OFFLINE, hc.HF_HUB_OFFLINE = saved


def _is_connection_error(exc: BaseException) -> bool:
    # datasets raises the builtin ConnectionError; huggingface_hub its LocalEntryNotFoundError
    # ("cannot find ... on the local disk") when the hub could not be reached
    return isinstance(exc, (ConnectionError, TimeoutError)) or (
        type(exc).__name__ in ("LocalEntryNotFoundError", "OfflineModeIsEnabled")
    )


def _unreachable(name: str, offline: bool) -> str:
    why = (
        "offline mode is on (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE) and it is not in the "
        "local datasets cache"
        if offline
        else "the HF hub cannot be reached (HF_DATASETS_OFFLINE=1 reads a cached copy)"
    )
    return (
        f"cannot load dataset {name!r}: {why}; read local text files with --corpus FILE "
        "instead (corpus= in Python)"
    )
