"""Token shards: a corpus encoded once into raw token arrays on disk, read by memmap.

``prepare_shards`` streams texts in chunks through ``Tokenizer.encode_batch`` (parallel in
Rust / sentencepiece threads) and appends the ids to ``shard_00000.bin``, ``shard_00001.bin``
... (raw little-endian ``uint16`` when the vocabulary fits, else ``uint32``; nanoGPT's
format), with ``</s>`` after every document, then writes ``manifest.json``. Memory is
bounded by one chunk of texts, so a corpus larger than RAM works. Every file is written
under a temporary name and moved into place; the manifest goes last, so a directory with
a manifest is always complete.

``TokenShards`` reads them back. Access across shards: ``.array`` is the single shard's
read-only ``np.memmap`` when there is one shard (the usual case below 2**26 tokens per
shard), otherwise a :class:`ShardedArray` that indexes and slices across shards without
concatenating them. ``.slice(start, stop)`` returns an ``np.ndarray`` in both cases (a
view within one shard, a copy across a boundary).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.io import set_default_mode, write_json

from ..errors import CorpusError, FormatError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def dtype_for(vocab_size: int) -> np.dtype:
    """``uint16`` when every id fits (vocab_size <= 65535), else ``uint32``."""
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


#: The most text one ``encode_batch`` call takes: its Encodings cost ~50x their text's
#: size, so a count of long texts alone (4,096 pieces of 64 KiB) would not bound them.
BATCH_CHARS = 4 << 20


def _chunks(texts: Iterable[str], size: int, chars: int = BATCH_CHARS) -> Iterator[list[str]]:
    """Lists of at most ``size`` texts holding at most ``chars`` characters (or one text)."""
    chunk: list[str] = []
    held = 0
    for text in texts:
        if chunk and (len(chunk) >= size or held + len(text) > chars):
            yield chunk
            chunk, held = [], 0
        chunk.append(text)
        held += len(text)
    if chunk:
        yield chunk


def _prefetched(chunks: Iterator[list[str]], depth: int = 2) -> Iterator[list[str]]:
    """Read the next chunks in a thread while the caller encodes this one.

    ``encode_batch`` releases the GIL while Rust encodes, so reading and decoding the
    corpus (Python) overlaps with encoding instead of adding to it. At most ``depth``
    chunks wait in memory; an error raised while reading is re-raised here.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=read, name="textdecade-shard-reader", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class _ShardWriter:
    """Append token arrays, rolling over to a new shard file every ``shard_tokens``."""

    def __init__(self, out_dir: Path, dtype: np.dtype, shard_tokens: int):
        self.out_dir, self.dtype, self.shard_tokens = out_dir, dtype, shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._file = None
        self._tmp = ""
        self._count = 0

    def _open(self) -> None:
        fd, self._tmp = tempfile.mkstemp(dir=self.out_dir, prefix=".shard.", suffix=".tmp")
        self._file = os.fdopen(fd, "wb")
        self._count = 0

    def _close(self) -> None:
        assert self._file is not None
        self._file.close()
        name = f"shard_{len(self.shards):05d}.bin"
        set_default_mode(self._tmp)  # mkstemp makes 0600 files
        os.replace(self._tmp, self.out_dir / name)
        self.shards.append({"name": name, "n_tokens": self._count})
        self._file = None

    def write(self, arr: np.ndarray) -> None:
        while arr.size:
            if self._file is None:
                self._open()
            room = self.shard_tokens - self._count
            head, arr = arr[:room], arr[room:]
            self._file.write(head.tobytes())
            self._count += head.size
            if self._count >= self.shard_tokens:
                self._close()

    def finish(self) -> list[dict[str, Any]]:
        if self._file is not None and self._count:
            self._close()
        elif self._file is not None:  # opened but empty: drop it
            self._file.close()
            os.unlink(self._tmp)
            self._file = None
        return self.shards

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)


def prepare_shards(
    texts: Iterable[str],
    tokenizer,
    out_dir: str | os.PathLike,
    append_eos: bool = True,
    shard_tokens: int = 2**26,
    batch_texts: int = 4096,
) -> dict[str, Any]:
    """Encode texts into token shards on disk.

    Args:
        texts: documents (a :class:`~textdecade.data.corpus.Corpus` or any iterable).
        tokenizer: a :class:`~textdecade.tokenizer.Tokenizer` (``encode_batch``,
            ``vocab_size``, ``eos_id``, ``fingerprint``).
        out_dir: directory to write (created; an older manifest and shards are replaced).
        append_eos: put ``</s>`` after every document (separates documents in the stream).
        shard_tokens: tokens per shard file (2**26 = 128 MiB of uint16).
        batch_texts: texts per ``encode_batch`` call (bounds memory).

    Returns:
        The manifest: ``{"format", "dtype", "vocab_size", "eos_id", "append_eos",
        "shards": [{"name", "n_tokens"}], "n_documents", "n_tokens", "tokenizer_sha256"}``.

    Raises:
        CorpusError: no document in ``texts``.
    """
    if shard_tokens < 1 or batch_texts < 1:
        raise ValueError("shard_tokens and batch_texts must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = dtype_for(tokenizer.vocab_size)
    eos = tokenizer.eos_id
    if append_eos and eos is None:
        raise CorpusError("the tokenizer has no end-of-text token; use append_eos=False")
    (out / MANIFEST).unlink(missing_ok=True)  # the directory is incomplete from here on
    writer = _ShardWriter(out, dtype, shard_tokens)
    n_docs = 0
    try:
        for chunk in _prefetched(_chunks(texts, batch_texts)):
            batch = tokenizer.encode_batch(chunk)
            n_docs += len(batch)
            if append_eos:
                for ids in batch:
                    ids.append(eos)
            total = sum(map(len, batch))
            arr = np.fromiter(itertools.chain.from_iterable(batch), dtype=dtype, count=total)
            writer.write(arr)
        shards = writer.finish()
    except BaseException:
        writer.abort()
        raise
    if n_docs == 0:
        raise CorpusError(f"nothing to shard into {out}: the corpus has no text")
    keep = {s["name"] for s in shards}
    for stale in out.glob("shard_*.bin"):  # leftovers of an earlier, larger run
        if stale.name not in keep:
            stale.unlink()
    manifest = {
        "format": FORMAT_VERSION,
        "dtype": dtype.name,
        "vocab_size": int(tokenizer.vocab_size),
        "eos_id": eos,
        "append_eos": bool(append_eos),
        "shards": shards,
        "n_documents": n_docs,
        "n_tokens": int(sum(s["n_tokens"] for s in shards)),
        "tokenizer_sha256": getattr(tokenizer, "fingerprint", None),
    }
    write_json(out / MANIFEST, manifest)
    return manifest


class ShardedArray:
    """A read-only 1-D view over several shard memmaps, indexable like one array.

    ``a[i]`` and ``a[start:stop]`` (step 1) work across shard boundaries; slices return
    an ``np.ndarray`` (a view inside one shard, a copy across a boundary).
    """

    def __init__(self, shards: list[np.memmap]):
        self._shards = shards
        self._starts = np.cumsum([0] + [len(s) for s in shards])
        self.dtype = shards[0].dtype
        self.shape = (int(self._starts[-1]),)
        self.ndim = 1

    def __len__(self) -> int:
        return self.shape[0]

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` (clipped to the array, as Python slicing does)."""
        start, stop, _ = slice(start, stop).indices(len(self))
        if stop <= start:
            return np.empty(0, dtype=self.dtype)
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left")) - 1
        if first == last:
            base = self._starts[first]
            return self._shards[first][start - base : stop - base]
        parts = []
        for k in range(first, last + 1):
            base = self._starts[k]
            parts.append(
                self._shards[k][max(start - base, 0) : min(stop - base, len(self._shards[k]))]
            )
        return np.concatenate(parts)

    def __getitem__(self, key):
        if isinstance(key, slice):
            if key.step not in (None, 1):
                return np.concatenate(self._shards)[key]
            return self.slice(*key.indices(len(self))[:2])
        i = int(key)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {key} out of range for {len(self)} tokens")
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._shards[k][i - self._starts[k]]

    def __array__(self, dtype=None, copy=None):
        arr = np.concatenate(self._shards)  # reads everything: avoid on big corpora
        return arr.astype(dtype) if dtype is not None else arr


class TokenShards:
    """Read the shards written by :func:`prepare_shards`.

    Args:
        out_dir: the shard directory.

    Attributes:
        manifest: the parsed ``manifest.json``.
        dtype: numpy dtype of the ids.
        shards: one read-only ``np.memmap`` per shard file.
        array: all tokens as one 1-D read-only view (see the module docstring).

    Raises:
        FormatError: a missing/malformed manifest or a shard whose size disagrees with it.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.dir = Path(out_dir)
        mpath = self.dir / MANIFEST
        if not mpath.is_file():
            raise FormatError(
                f"{self.dir}: no {MANIFEST}; not a (complete) shard directory, prepare it first"
            )
        try:
            self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
            self.dtype = np.dtype(self.manifest["dtype"])
            entries = self.manifest["shards"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise FormatError(f"{mpath}: malformed shard manifest ({exc})") from None
        self.shards: list[np.memmap] = []
        for entry in entries:
            path = self.dir / entry["name"]
            want = int(entry["n_tokens"]) * self.dtype.itemsize
            if not path.is_file() or path.stat().st_size != want:
                raise FormatError(
                    f"{path}: missing or truncated (expected {want} bytes); prepare the shards again"
                )
            self.shards.append(np.memmap(path, dtype=self.dtype, mode="r"))
        if not self.shards:
            raise FormatError(f"{mpath}: no shards listed")
        self.array = self.shards[0] if len(self.shards) == 1 else ShardedArray(self.shards)
        self._sharded = ShardedArray(self.shards)

    def __len__(self) -> int:
        return int(self.manifest["n_tokens"])

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

    @property
    def n_documents(self) -> int:
        return int(self.manifest["n_documents"])

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` as an ``np.ndarray`` (across shards if needed)."""
        return self._sharded.slice(start, stop)

    def __repr__(self) -> str:
        return (
            f"TokenShards({str(self.dir)!r}, n_tokens={len(self)}, dtype={self.dtype.name}, "
            f"shards={len(self.shards)})"
        )
