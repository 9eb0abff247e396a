"""Read and write the word2vec C tool's text and binary formats, as gensim does.

The text format is a header line ``<count> <dim>`` and then one ``word v1 ... vD`` line per
word (values separated by single spaces). The binary format has the same header, then for
each word its UTF-8 bytes, one space, and ``dim`` little-endian float32 values; the original C
tool writes a newline after each vector and gensim writes none, so the reader accepts both.
Files written here load with ``gensim.models.KeyedVectors.load_word2vec_format`` and files
gensim (or word2vec.c, or GloVe without a header) wrote load here.

Malformed files raise :class:`~textdecade.errors.FormatError` naming the file and the line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from textdecade.errors import FormatError
from textdecade.io import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["read_word2vec", "write_word2vec"]


def _parse_header(line: bytes) -> tuple[int, int] | None:
    """Return ``(count, dim)`` when ``line`` is a word2vec header, else None."""
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        count, dim = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if count < 0 or dim <= 0:
        return None
    return count, dim


#: No embedding has more values per word (the largest published ones have a few thousand);
#: a header beyond it is corrupt, and numpy cannot shape even an empty matrix that wide.
MAX_DIM = 1 << 24


def _check_dim(path: Path, dim: int) -> None:
    # A huge count needs no check: records are read one by one, so a count the file cannot
    # hold ends at its last record ("file ends after N vectors"), allocating nothing more.
    if dim > MAX_DIM:
        raise FormatError(f"{path}:1: header's dimension {dim} is beyond any vector size")


def _dedupe(words: list[str], rows: list[np.ndarray], path: Path) -> tuple[list[str], list]:
    """Keep the first occurrence of each word (gensim's rule), warning about the rest."""
    seen: set[str] = set()
    keep_words, keep_rows = [], []
    for word, row in zip(words, rows):
        if word in seen:
            logger.warning("%s: duplicate word %r, keeping the first", path, word)
            continue
        seen.add(word)
        keep_words.append(word)
        keep_rows.append(row)
    return keep_words, keep_rows


def _read_text(path: Path, encoding: str, errors: str, limit: int | None):
    words: list[str] = []
    rows: list[np.ndarray] = []
    with open(path, "rb") as f:
        first = f.readline()
        header = _parse_header(first)
        count = dim = None
        pending = [] if header else [first]  # a GloVe file has no header: line 1 is data
        if header:
            count, dim = header
            _check_dim(path, dim)
        start = 2 if header else 1
        lines = iter(pending)
        line_no = start - 1
        for raw in _chain(lines, f):
            line_no += 1
            if limit is not None and len(words) >= limit:
                break
            if count is not None and len(words) >= count:
                if raw.strip():
                    raise FormatError(
                        f"{path}:{line_no}: more vectors than the header's count {count}"
                    )
                continue
            try:
                text = raw.decode(encoding, errors=errors)
            except UnicodeDecodeError as exc:
                raise FormatError(
                    f"{path}:{line_no}: word is not valid {encoding} ({exc.reason})"
                ) from None
            parts = text.rstrip().split(" ")
            if not text.strip():
                raise FormatError(f"{path}:{line_no}: empty line where a vector was expected")
            word, values = parts[0], parts[1:]
            if dim is None:
                dim = len(values)
                if dim == 0:
                    raise FormatError(f"{path}:{line_no}: a word with no vector values")
            if len(values) != dim:
                raise FormatError(
                    f"{path}:{line_no}: expected {dim} values after {word!r}, found {len(values)}"
                )
            try:
                row = np.array(values, dtype=np.float32)
            except ValueError:
                raise FormatError(
                    f"{path}:{line_no}: a value after {word!r} is not a number"
                ) from None
            words.append(word)
            rows.append(row)
    if count is not None and len(words) < count and (limit is None or len(words) < limit):
        raise FormatError(
            f"{path}:{line_no + 1}: file ends after {len(words)} vectors, header says {count}"
        )
    if dim is None:
        raise FormatError(f"{path}:1: no vectors in the file")
    return words, rows, dim


def _chain(first, rest):
    yield from first
    yield from rest


def _read_binary(path: Path, encoding: str, errors: str, limit: int | None):
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"\n")
    header = _parse_header(data[: end if end >= 0 else len(data)])
    if header is None:
        raise FormatError(f"{path}:1: binary word2vec file must start with '<count> <dim>'")
    count, dim = header
    _check_dim(path, dim)
    if limit is not None:
        count = min(count, limit)
    width = 4 * dim
    pos = end + 1
    words: list[str] = []
    rows: list[np.ndarray] = []
    for n in range(count):
        # "Line" numbers in a binary file are vector records: header is line 1.
        where = f"{path}:{n + 2}"
        while pos < len(data) and data[pos : pos + 1] in (b"\n", b"\r"):
            pos += 1  # word2vec.c writes a newline after each vector; gensim does not
        space = data.find(b" ", pos)
        if space < 0 or len(data) - (space + 1) < width:
            raise FormatError(f"{where}: file ends after {n} vectors, header says {header[0]}")
        try:
            word = data[pos:space].decode(encoding, errors=errors)
        except UnicodeDecodeError as exc:
            raise FormatError(f"{where}: word is not valid {encoding} ({exc.reason})") from None
        if not word:
            raise FormatError(f"{where}: empty word in binary record")
        words.append(word)
        rows.append(np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1))
        pos = space + 1 + width
    return words, rows, dim


def read_word2vec(
    path: str | os.PathLike,
    binary: bool | None = None,
    encoding: str = "utf-8",
    unicode_errors: str = "strict",
    limit: int | None = None,
) -> tuple[list[str], np.ndarray]:
    """Read a word2vec text or binary file.

    Args:
        path: the file.
        binary: True for the binary format; None guesses from the suffix (``.bin`` is binary).
        encoding: encoding of the words (the C tool writes UTF-8).
        unicode_errors: ``"strict"`` raises on bad bytes; ``"ignore"``/``"replace"`` help
            with word2vec.c files whose words were truncated inside a multibyte character.
        limit: read at most this many vectors (the most frequent come first).

    Returns:
        ``(words, matrix)`` with matrix float32 of shape (V, D); a duplicated word keeps its
        first vector, as in gensim.

    Raises:
        FormatError: naming the file and line of the first malformed record.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such vectors file")
    if binary is None:
        binary = path.suffix.lower() == ".bin"
    reader = _read_binary if binary else _read_text
    words, rows, dim = reader(path, encoding, unicode_errors, limit)
    words, rows = _dedupe(words, rows, path)
    matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return words, matrix


def write_word2vec(
    path: str | os.PathLike,
    words: list[str],
    matrix: np.ndarray,
    binary: bool | None = None,
) -> None:
    """Write ``words`` and their rows of ``matrix`` (V, D) in word2vec format, atomically.

    Args:
        path: destination; ``binary=None`` picks binary for a ``.bin`` suffix.
        words: V words; none may contain whitespace (the format splits on spaces).
        matrix: (V, D) array, stored as float32.
        binary: the binary format (True) or text (False).
    """
    path = Path(path)
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(f"matrix shape {matrix.shape} does not match {len(words)} words")
    for word in words:
        if not word or any(ch.isspace() for ch in word):
            raise FormatError(f"word {word!r} cannot be stored in word2vec format (whitespace)")
    if binary is None:
        binary = path.suffix.lower() == ".bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(f"{matrix.shape[0]} {matrix.shape[1]}\n".encode())
        little = matrix.astype("<f4")
        # Nine significant digits round-trip any float32 exactly; one %-format per row is
        # ~10x faster than str() per value (gensim's way) on 70k x 100 vectors.
        fmt = " ".join(["%.9g"] * matrix.shape[1])
        for word, row in zip(words, little):
            if binary:
                # As word2vec.c: word, space, raw floats, newline (gensim skips the newline).
                f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
            else:
                f.write(f"{word} {fmt % tuple(row.tolist())}\n".encode())
