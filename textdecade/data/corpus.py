"""Read a text corpus from files, a HF ``datasets`` name, or the built-in sample.

A :class:`Corpus` is a re-iterable stream of non-empty, stripped texts (documents): every
pass re-reads the sources, so corpora larger than memory work and a trainer can take
several epochs. Sources:

* ``.txt`` (and any other plain-text file): one document per line;
* ``.jsonl``: one JSON object per line, the text under ``text_field``;
* ``.parquet``: the ``text_field`` column, streamed by record batches (pyarrow);
* any of those compressed as ``.gz``, ``.bz2`` or ``.xz``;
* directories (recursively, files with the suffixes above, sorted) and glob patterns;
* ``dataset="NAME"`` or ``"NAME:CONFIG"`` through ``datasets.load_dataset(streaming=True)``
  (a hub name, or a local dataset directory/script);
* nothing at all: the built-in sample corpus (:mod:`textdecade.data.sample`).

A document longer than :data:`MAX_TEXT_BYTES` (64 KiB) comes as several texts, cut at
whitespace (plain-text files are even read in pieces of that size), so tokenizer training,
sharding and word counting hold a bounded amount of text at a time, however long a line is:
a 20 MB file of one line took 1.7 GB to train a tokenizer on as one text, 284 MB in 1 MiB
pieces and 78 MB in 64 KiB ones (the tokenizer's trainer buffers 256 texts). For a language
model the cut costs one end-of-text mark per 64 KiB.

Every mistake is a one-line :class:`~textdecade.errors.CorpusError`. Bytes that are not
UTF-8 are replaced with U+FFFD, counted, and reported once per file as a
:class:`CorpusWarning`.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import json
import lzma
import os
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import CorpusError, first_line

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_TEXT_SUFFIXES = {".txt", ".text", ".jsonl", ".parquet"}
_BINARY_PROBE = 1024

#: The longest text a Corpus yields, in UTF-8 bytes (characters, for non-file sources).
MAX_TEXT_BYTES = 1 << 16


class CorpusWarning(UserWarning):
    """Something recoverable in a corpus file (e.g. invalid UTF-8 bytes were replaced)."""


def _kind(path: Path) -> tuple[str, Any]:
    """(kind, opener) of a file: kind is "txt", "jsonl" or "parquet"."""
    suffixes = [s.lower() for s in path.suffixes]
    opener = _OPENERS.get(suffixes[-1]) if suffixes else None
    if opener is not None:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    kind = {"jsonl": "jsonl", "parquet": "parquet"}.get(last.lstrip("."), "txt")
    return kind, (opener or open)


def _wanted_in_dir(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _OPENERS:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in _TEXT_SUFFIXES


def resolve_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, directories and globs into a sorted-per-source list of files.

    Raises:
        CorpusError: a path that does not exist, a glob that matches nothing, or a
            directory without corpus files.
    """
    files: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _wanted_in_dir(f))
            if not found:
                raise CorpusError(
                    f"{p}: directory holds no corpus files (.txt, .jsonl, .parquet, "
                    "optionally .gz/.bz2/.xz)"
                )
            files.extend(found)
        elif any(c in str(raw) for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(str(p), recursive=True))
            found = [f for f in found if f.is_file()]
            if not found:
                raise CorpusError(f"{raw}: no file matches this pattern")
            files.extend(found)
        else:
            raise CorpusError(f"{raw}: no such file or directory")
    return files


class Corpus:
    """A re-iterable stream of texts (str), one per document.

    Args:
        paths: files, directories or glob patterns (a single path is accepted too).
        dataset: a HF ``datasets`` name, ``"NAME:CONFIG"``, or a local dataset directory.
        split: the dataset split to read.
        text_field: the JSON key / parquet column / dataset field holding the text.
        max_texts: stop after this many texts (None: all).

    Raises:
        CorpusError: bad paths at construction; an empty, binary or unreadable source
            when iterated.

    Example::

        for text in Corpus(["data/*.txt.gz"], max_texts=1000): ...
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike] | str | os.PathLike = (),
        dataset: str | None = None,
        split: str = "train",
        text_field: str = "text",
        max_texts: int | None = None,
    ):
        if isinstance(paths, (str, os.PathLike)):
            paths = (paths,)
        paths = tuple(paths)
        if max_texts is not None and max_texts < 1:
            raise CorpusError(f"max_texts must be >= 1, got {max_texts}")
        self.dataset = dataset
        self.split = split
        self.text_field = text_field
        self.max_texts = max_texts
        self.is_sample = not paths and dataset is None
        if self.is_sample:
            from .sample import sample_path

            paths = (sample_path(),)
        self.files = resolve_paths(paths)

    def __repr__(self) -> str:
        if self.is_sample:
            src = "sample"
        elif self.dataset is not None:
            src = f"dataset={self.dataset!r}, split={self.split!r}"
        else:
            src = f"{len(self.files)} file(s)"
        return f"Corpus({src}, max_texts={self.max_texts})"

    def __iter__(self) -> Iterator[str]:
        n = 0
        for text in self._texts():
            yield text
            n += 1
            if self.max_texts is not None and n >= self.max_texts:
                return
        if n == 0:
            raise CorpusError(f"corpus is empty: {self._describe()} holds no non-empty text")

    def _describe(self) -> str:
        if self.dataset is not None:
            return f"dataset {self.dataset!r} (split {self.split!r})"
        return ", ".join(str(f) for f in self.files[:3]) + (" ..." if len(self.files) > 3 else "")

    def _texts(self) -> Iterator[str]:
        for path in self.files:
            kind, opener = _kind(path)
            if kind == "parquet":
                yield from _in_pieces(_read_parquet(path, opener, self.text_field))
            elif kind == "jsonl":
                yield from _in_pieces(_read_lines(path, opener, self.text_field))
            else:
                yield from _read_lines(path, opener, None)  # read in pieces already
        if self.dataset is not None:
            yield from _in_pieces(_read_dataset(self.dataset, self.split, self.text_field))

    def count_words(self, limit: int | None = None) -> int:
        """Whitespace-separated words in the corpus (stops counting past ``limit``)."""
        total = 0
        for text in self:
            total += len(text.split())
            if limit is not None and total >= limit:
                break
        return total

    def head(self, n: int) -> list[str]:
        """The first ``n`` texts."""
        out = []
        for text in self:
            out.append(text)
            if len(out) >= n:
                break
        return out


def _open_binary(path: Path, opener) -> IO[bytes]:
    try:
        return opener(path, "rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot open ({exc.strerror or exc})") from None


def _in_pieces(texts: Iterable[str], limit: int = MAX_TEXT_BYTES) -> Iterator[str]:
    """Each text, or a text longer than ``limit`` characters in pieces cut at whitespace."""
    for text in texts:
        while len(text) > limit:
            cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
            cut = cut if cut > 0 else limit
            head, text = text[:cut].strip(), text[cut:].lstrip()
            if head:
                yield head
        if text:
            yield text


def _bounded_lines(f: IO[bytes], limit: int = MAX_TEXT_BYTES) -> Iterator[bytes]:
    """The lines of ``f``, a line longer than ``limit`` bytes in pieces of at most that many,
    cut after the last space or tab of each (or, in a run without one, before the last
    character that might be incomplete: never inside a UTF-8 sequence)."""
    carry = b""
    while True:
        chunk = carry + f.readline(limit - len(carry))
        if not chunk:
            return
        carry = b""
        if chunk.endswith(b"\n") or len(chunk) < limit:
            yield chunk  # a whole line (or the file's last)
            continue
        cut = max(chunk.rfind(b" "), chunk.rfind(b"\t")) + 1
        if cut <= 0:
            cut = len(chunk) - 1
            while cut > 0 and chunk[cut] & 0xC0 == 0x80:  # a continuation byte
                cut -= 1
        carry = chunk[cut:]
        yield chunk[:cut]


def _read_lines(path: Path, opener, text_field: str | None) -> Iterator[str]:
    """Plain text (a document per line, a long one in pieces) or JSON lines (``text_field``
    of each object)."""
    bad = 0
    try:
        with _open_binary(path, opener) as f:
            lineno = seen = 0
            for raw in f if text_field is not None else _bounded_lines(f):
                lineno += 1
                if seen < _BINARY_PROBE:
                    if b"\x00" in raw[: _BINARY_PROBE - seen]:
                        raise CorpusError(f"{path}: looks binary (NUL bytes), not a text corpus")
                    seen += len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = raw.decode("utf-8", errors="replace")
                    bad += line.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
                if text_field is None:
                    text = line.strip()
                else:
                    if not line.strip():
                        continue
                    text = _json_text(line, path, lineno, text_field)
                if text:
                    yield text
    except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:  # zlib: a damaged .gz
        raise CorpusError(f"{path}: cannot read ({first_line(exc)})") from None
    finally:
        if bad:
            warnings.warn(
                f"{path}: {bad} invalid UTF-8 byte sequence(s) replaced with U+FFFD",
                CorpusWarning,
                stacklevel=2,
            )


def _json_text(line: str, path: Path, lineno: int, text_field: str) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # an int past 4300 digits, nesting too deep
        raise CorpusError(f"{path}:{lineno}: not readable JSON ({first_line(exc)})") from None
    if not isinstance(obj, dict) or text_field not in obj:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise CorpusError(f"{path}:{lineno}: no {text_field!r} field (found {keys})")
    value = obj[text_field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CorpusError(f"{path}:{lineno}: {text_field!r} is {type(value).__name__}, not text")
    return value.strip()


def _read_parquet(path: Path, opener, text_field: str) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A damaged file fails anywhere: opening, a page header mid-file, a string's bytes.
    damaged = (pa.ArrowException, OSError, EOFError, UnicodeDecodeError, lzma.LZMAError, zlib.error)
    source = path if opener is open else _open_binary(path, opener)
    try:
        try:
            pf = pq.ParquetFile(source)
        except damaged as exc:
            raise CorpusError(f"{path}: not a readable parquet file ({first_line(exc)})") from None
        names = pf.schema_arrow.names
        if text_field not in names:
            raise CorpusError(f"{path}: no column {text_field!r} (columns: {names})")
        batches = pf.iter_batches(batch_size=4096, columns=[text_field])
        while True:
            try:
                batch = next(batches, None)
                values = [] if batch is None else batch.column(0).to_pylist()
            except damaged as exc:
                raise CorpusError(f"{path}: damaged parquet data ({first_line(exc)})") from None
            if batch is None:
                return
            for value in values:
                if isinstance(value, str):
                    value = value.strip()
                    if value:
                        yield value
                elif value is not None:
                    raise CorpusError(
                        f"{path}: column {text_field!r} holds {type(value).__name__}, not text"
                    )
    finally:
        if source is not path:
            source.close()


def _read_dataset(name: str, split: str, text_field: str) -> Iterator[str]:
    """Stream a HF ``datasets`` dataset: ``NAME``, ``NAME:CONFIG`` or a local directory."""
    from .hub import open_dataset

    path, config = name, None
    if ":" in name and not Path(name).exists():
        path, config = name.split(":", 1)
    ds = open_dataset(path, config, split, streaming=True)  # fails fast when offline
    try:
        it = iter(ds)
        first = next(it, None)
    except Exception as exc:  # datasets raises many types (FileNotFound, ConnectionError, ...)
        raise CorpusError(
            f"cannot load dataset {name!r} split {split!r}: {first_line(exc)}"
        ) from None
    if first is None:
        return
    if text_field not in first:
        raise CorpusError(
            f"dataset {name!r}: no field {text_field!r} (fields: {sorted(first)}); "
            "choose one with text_field"
        )
    for row in _chain_first(first, it):
        value = row.get(text_field)
        if isinstance(value, str):
            value = value.strip()
            if value:
                yield value


def _chain_first(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
