"""Static word vectors with gensim's ``KeyedVectors`` surface and semantics.

:class:`Vectors` is what analogy and similarity evaluation take, whatever made it: Word2Vec
rows, GloVe's W + W~, or contextual states pooled per word. It is immutable; the
unit-normalized matrix is computed once, on first use. This module holds the container,
its one lookup rule and its files; the gensim queries (``most_similar``,
``evaluate_word_analogies``...) come from :class:`~textdecade.eval.keyed.KeyedQueries`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textdecade.errors import FormatError, OutOfVocabulary
from textdecade.eval.keyed import KEY_TYPES, KeyedQueries
from textdecade.eval.keyed_evaluations import KeyedEvaluations
from textdecade.io import atomic_path

if TYPE_CHECKING:
    from textdecade.models.base import StaticVectors

__all__ = ["Vectors", "case_folding_backoff", "load_vectors_or_none", "VECTOR_SUFFIXES"]

VECTOR_SUFFIXES = (".txt", ".vec", ".bin", ".safetensors")


class Vectors(KeyedQueries, KeyedEvaluations):
    """Words and their vectors, most frequent first (row order is what ``restrict_vocab`` cuts).

    The lookup rule (gensim's ``FastTextKeyedVectors``), one for membership, lookup,
    queries and plots:

    - ``V[word]`` / ``V.get_vector(word)``: the row of the exact key ``word`` (case
      matters), else ``backoff(word)``, else :class:`~textdecade.errors.OutOfVocabulary`.
      No case folding happens here: a case-insensitive backoff folds case if it wants to.
    - ``word in V`` is True exactly when ``V[word]`` returns a vector (an exact key, or a
      backoff vector).
    - ``key_to_index`` / ``index_to_key`` / ``has_index_for`` are the exact vocabulary:
      a backoff word has no row, is never a result of a query, and is never left out of one.
    - Evaluations (``evaluate_word_analogies``, ``evaluate_word_pairs`` and the suite's
      scorers) use gensim's evaluation vocabulary instead: the first ``restrict_vocab``
      rows, matched by upper-cased form when ``case_insensitive`` (no backoff).

    Integer keys are row numbers, as in gensim.

    Args:
        words: V distinct words.
        matrix: (V, D) array (stored as float32).
        counts: optional V corpus counts, kept with the vectors and saved with them.
        backoff: optional function giving a vector for an out-of-vocabulary word (e.g. pooled
            BPE-piece vectors, as fastText does with n-grams), or None when it cannot.
        meta: optional JSON-able facts about how the vectors were made (e.g.
            ``{"method": "context"}`` for vectors pooled from a contextual model); result
            tables name the method; saved in ``.safetensors`` files.
    """

    def __init__(
        self,
        words: Sequence[str],
        matrix: np.ndarray,
        counts: Sequence[int] | None = None,
        backoff: Callable[[str], np.ndarray | None] | None = None,
        meta: dict | None = None,
    ) -> None:
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise ValueError(f"matrix shape {matrix.shape} does not match {len(words)} words")
        self._words = list(words)
        self._index = {w: i for i, w in enumerate(self._words)}
        if len(self._index) != len(self._words):
            raise ValueError("words must be distinct")
        if counts is not None and len(counts) != len(self._words):
            raise ValueError(f"{len(counts)} counts for {len(self._words)} words")
        self._matrix = matrix
        self._matrix.flags.writeable = False
        self._counts = None if counts is None else [int(c) for c in counts]
        self.backoff = backoff
        self.meta = dict(meta or {})
        self._normed: np.ndarray | None = None

    # ----------------------------------------------------------------- container protocol
    @property
    def index_to_key(self) -> list[str]:
        """The vocabulary, in row order (gensim's name)."""
        return self._words

    @property
    def key_to_index(self) -> dict[str, int]:
        """Exact word -> row number (gensim's name; backoff words are not in it)."""
        return self._index

    @property
    def vectors(self) -> np.ndarray:
        """The (V, D) float32 matrix, read-only (gensim's name)."""
        return self._matrix

    words = index_to_key  # the names this project used first
    index = key_to_index
    matrix = vectors

    @property
    def counts(self) -> list[int] | None:
        """Corpus counts per row, when known."""
        return self._counts

    @property
    def vector_size(self) -> int:
        """D, the dimension of the vectors."""
        return self._matrix.shape[1]

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, key: object) -> bool:
        """True exactly when ``self[key]`` returns a vector (exact key, or backoff)."""
        if isinstance(key, str):
            return key in self._index or self._backoff_vector(key) is not None
        return isinstance(key, KEY_TYPES) and self.has_index_for(key)

    def __repr__(self) -> str:
        return f"Vectors({len(self)} words x {self.vector_size} dims)"

    @property
    def normed(self) -> np.ndarray:
        """The (V, D) matrix with unit-length rows (zero rows stay zero), cached."""
        if self._normed is None:
            norms = np.linalg.norm(self._matrix, axis=1, keepdims=True)
            normed = self._matrix / np.maximum(norms, np.finfo(np.float32).tiny)
            normed.flags.writeable = False
            self._normed = normed
        return self._normed

    def get_normed_vectors(self) -> np.ndarray:
        """The (V, D) unit-row matrix (gensim's name for :attr:`normed`)."""
        return self.normed

    def get_index(self, key: Any, default: int | None = None) -> int:
        """The row of an exact key (an int in range is its own row), else ``default``.

        Raises:
            OutOfVocabulary: no such key and no default.
        """
        row = self._index.get(key) if isinstance(key, str) else None
        if row is not None:
            return row
        if isinstance(key, (int, np.integer)) and 0 <= key < len(self._words):
            return int(key)
        if default is not None:
            return default
        raise OutOfVocabulary(f"word {key!r} is not in the vocabulary of {len(self)} words")

    def has_index_for(self, key: Any) -> bool:
        """Whether ``key`` has its own row (an exact key; a backoff word has none)."""
        return self.get_index(key, -1) >= 0

    def _backoff_vector(self, word: str) -> np.ndarray | None:
        vec = self.backoff(word) if self.backoff is not None else None
        return None if vec is None else np.asarray(vec, dtype=np.float32)

    def get_vector(self, key: str | int, norm: bool = False) -> np.ndarray:
        """The vector (D,) of ``key`` by the class's lookup rule (exact key, else backoff).

        Args:
            key: a word, or a row number.
            norm: return it at unit length.

        Raises:
            OutOfVocabulary: the word is unknown and no backoff vector exists.
        """
        row = self.get_index(key, -1)
        if row >= 0:
            return (self.normed if norm else self._matrix)[row]
        vec = self._backoff_vector(key) if isinstance(key, str) else None
        if vec is None:
            raise OutOfVocabulary(f"word {key!r} is not in the vocabulary of {len(self)} words")
        if norm:
            length = float(np.linalg.norm(vec))
            return vec / length if length > 0 else vec
        return vec

    def __getitem__(self, key_or_keys: Any) -> np.ndarray:
        """``get_vector`` of one key (D,), or of a list of keys stacked (N, D)."""
        if isinstance(key_or_keys, KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(k) for k in key_or_keys])

    # ------------------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Save by suffix: ``.txt``/``.vec`` word2vec text, ``.bin`` binary, ``.safetensors``.

        The safetensors file holds the matrix as tensor ``vectors`` and the words (and
        counts) as JSON in its metadata. Writes are atomic.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".txt", ".vec", ".bin"):
            from textdecade.interop.word2vec_format import write_word2vec

            write_word2vec(path, self._words, self._matrix, binary=suffix == ".bin")
        elif suffix == ".safetensors":
            from safetensors.numpy import save_file

            meta = {"format": "textdecade.vectors", "words": json.dumps(self._words)}
            if self._counts is not None:
                meta["counts"] = json.dumps(self._counts)
            if self.meta:
                meta["meta"] = json.dumps(self.meta)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                save_file({"vectors": np.ascontiguousarray(self._matrix)}, str(tmp), metadata=meta)
        else:
            raise FormatError(f"{path}: unknown vectors suffix; use one of {VECTOR_SUFFIXES}")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        binary: bool | None = None,
        limit: int | None = None,
        unicode_errors: str = "strict",
    ) -> Vectors:
        """Load vectors saved by :meth:`save`, gensim, word2vec.c or GloVe (no header).

        Args:
            path: ``.safetensors`` or a word2vec file (``.bin`` binary, else text unless
                ``binary=True``).
            binary: force the word2vec binary (True) or text (False) reader.
            limit: keep only the first ``limit`` vectors.
            unicode_errors: passed to the word2vec reader (``"strict"``, ``"ignore"``...).

        Raises:
            FormatError: a malformed file, naming the line.
        """
        path = Path(path)
        if path.suffix.lower() == ".safetensors":
            return cls._load_safetensors(path, limit)
        from textdecade.interop.word2vec_format import read_word2vec

        words, matrix = read_word2vec(
            path, binary=binary, limit=limit, unicode_errors=unicode_errors
        )
        return cls(words, matrix)

    @classmethod
    def _load_safetensors(cls, path: Path, limit: int | None) -> Vectors:
        from safetensors import safe_open

        if not path.is_file():
            raise FormatError(f"{path}: no such vectors file")
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                matrix = f.get_tensor("vectors")
        except Exception as exc:  # safetensors raises its own error types
            raise FormatError(f"{path}: not a textdecade vectors file ({exc})") from None
        if "words" not in meta:
            raise FormatError(
                f"{path}: safetensors file has no 'words' metadata (not a vectors file; "
                "for a run's model.safetensors, give the run directory)"
            )
        words = json.loads(meta["words"])
        counts = json.loads(meta["counts"]) if "counts" in meta else None
        extra = json.loads(meta["meta"]) if "meta" in meta else None
        if limit is not None:
            words, matrix = words[:limit], matrix[:limit]
            counts = None if counts is None else counts[:limit]
        return cls(words, matrix, counts, meta=extra)

    # ---------------------------------------------------------------------------- gensim
    def to_gensim(self):
        """A ``gensim.models.KeyedVectors`` with the same rows (and counts, when known).

        Raises:
            MissingExtra: gensim (the ``gensim`` extra) is not installed.
        """
        from textdecade.extras import require

        KeyedVectors = require("gensim.models", "Vectors.to_gensim").KeyedVectors

        kv = KeyedVectors(self.vector_size)
        kv.add_vectors(self._words, self._matrix.copy())
        if self._counts is not None:
            for word, count in zip(self._words, self._counts):
                kv.set_vecattr(word, "count", count)
        return kv

    @classmethod
    def from_gensim(cls, kv) -> Vectors:
        """Wrap a gensim ``KeyedVectors`` (or a model's ``.wv``), keeping its row order."""
        words = list(kv.index_to_key)
        counts = None
        if "count" in getattr(kv, "expandos", {}):
            counts = [int(c) for c in kv.expandos["count"][: len(words)]]
        return cls(words, np.asarray(kv.vectors, dtype=np.float32), counts)


def load_vectors_or_none(path: str | os.PathLike) -> Vectors | None:
    """Load ``path`` as vectors when its suffix is a vectors format, else return None.

    The CLI uses this to tell a vectors file (``.txt``, ``.vec``, ``.bin``,
    ``.safetensors`` that is a file) from a run directory.
    """
    path = Path(path)
    if path.suffix.lower() in VECTOR_SUFFIXES and not path.is_dir():
        return Vectors.load(path)
    return None


def vectors_of(model: StaticVectors, tokenizer: Any = None) -> Vectors:
    """A static family's trained word vectors (Word2Vec's syn0, GloVe's W + W~) as Vectors.

    Args:
        model: a Word2Vec or GloVe model (any :class:`~textdecade.models.base.StaticVectors`).
        tokenizer: the run's tokenizer, for the BPE-piece backoff of unknown words.
    """
    table = model.word_table(tokenizer)
    vectors = Vectors(table.words, table.matrix, table.counts)
    # Unknown words: a case variant's row first (datasets vary in case), then the pieces'.
    vectors.backoff = case_folding_backoff(vectors, table.backoff)
    return vectors


def case_folding_backoff(
    vectors: Vectors, then: Callable[[str], np.ndarray | None] | None = None
) -> Callable[[str], np.ndarray | None]:
    """A backoff giving an unknown word the row of its most frequent case variant.

    Rows are most frequent first, so "KING" gets the row of "king" or, when only "King" is
    in the vocabulary, King's. A word with no case variant goes to ``then`` (for example
    the BPE-piece backoff), or gets None.
    """
    folded: dict[str, int] = {}

    def backoff(word: str) -> np.ndarray | None:
        if not folded:
            for row, w in enumerate(vectors.words):
                folded.setdefault(w.lower(), row)
        row = folded.get(word.lower())
        if row is not None:
            return vectors.matrix[row]
        return then(word) if then is not None else None

    return backoff
