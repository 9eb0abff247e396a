"""Files in and out: atomic writes (a reader sees the old file or the new one, never half of
one), byte-reproducible JSON and safetensors headers, and the one reader of
line-per-sentence text files."""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textdecade.errors import CorpusError, FormatError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        set_default_mode(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def set_default_mode(path: str | Path) -> None:
    """Give ``path`` the mode any new file gets (0666 less the umask).

    Writers such as safetensors create 0600 files, which another user or a container
    cannot read; what textdecade writes is readable as the user's umask says.
    """
    mask = os.umask(0)  # the only way to read the umask is to set it
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically, keys sorted: equal contents
    give equal bytes however the dicts were built."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def sort_safetensors_metadata(path: str | Path) -> None:
    """Rewrite the header of the safetensors file ``path`` in place with its
    ``__metadata__`` keys sorted.

    safetensors keeps the metadata in a Rust ``HashMap``, so its keys come out in an order
    that changes from process to process: equal weights saved by a resumed run and by an
    uninterrupted one would hash differently. The tensors' entries are already in a fixed
    order; the sorted header has the same length, so no tensor bytes move.
    """
    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        meta = header.pop("__metadata__", None)
        if not meta:
            return
        ordered = {"__metadata__": dict(sorted(meta.items())), **header}
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > size:  # cannot happen for a header safetensors wrote; leave it be
            return
        f.seek(8)
        f.write(text.ljust(size, b" "))  # safetensors pads its header with spaces too


def read_text(path: str | Path, error: type[Exception] = FormatError) -> str:
    """A whole UTF-8 text file; a missing, binary (NUL bytes) or non-UTF-8 (Latin-1, say)
    file is one ``error`` naming it, never a ``UnicodeDecodeError`` mid-read."""
    path = Path(path)
    if not path.is_file():
        raise error(f"file not found: {path}")
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise error(f"{path}: a binary file, not text (NUL byte at {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (byte {exc.start}); convert it, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name}"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (one sentence each), stripped; trailing newline removed."""
    lines = read_text(path, CorpusError).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]
