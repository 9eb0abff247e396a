"""Static word vectors with gensim's ``KeyedVectors`` query semantics.

:class:`Vectors` is what analogy and similarity evaluation take, whatever made it: Word2Vec
rows, GloVe's W + W~, or contextual states pooled per word. It is immutable; the
unit-normalized matrix is computed once, on first use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textdecade.errors import FormatError, OutOfVocabulary
from textdecade.io import atomic_path

if TYPE_CHECKING:
    from textdecade.models.base import StaticVectors

__all__ = ["Vectors", "load_vectors_or_none", "VECTOR_SUFFIXES"]

VECTOR_SUFFIXES = (".txt", ".vec", ".bin", ".safetensors")

Query = str | np.ndarray


class Vectors:
    """Words and their vectors, most frequent first (row order is what ``restrict_vocab`` cuts).

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
    def words(self) -> list[str]:
        """The vocabulary, in row order."""
        return self._words

    @property
    def index(self) -> dict[str, int]:
        """Word -> row number."""
        return self._index

    @property
    def matrix(self) -> np.ndarray:
        """The (V, D) float32 matrix (read-only)."""
        return self._matrix

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

    def __contains__(self, word: object) -> bool:
        return word in self._index

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

    def get_vector(self, word: str, norm: bool = False) -> np.ndarray:
        """The vector (D,) of ``word``; OOV words go through ``backoff`` when one is given.

        Raises:
            OutOfVocabulary: the word is unknown and no backoff vector exists.
        """
        row = self._index.get(word)
        if row is not None:
            return (self.normed if norm else self._matrix)[row]
        vec = self.backoff(word) if self.backoff is not None else None
        if vec is None:
            raise OutOfVocabulary(f"word {word!r} is not in the vocabulary of {len(self)} words")
        vec = np.asarray(vec, dtype=np.float32)
        return _unit(vec) if norm else vec

    def __getitem__(self, word: str) -> np.ndarray:
        return self.get_vector(word)

    # ----------------------------------------------------------------------------- queries
    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(np.dot(self.get_vector(a, norm=True), self.get_vector(b, norm=True)))

    def _query(self, key: Query) -> tuple[np.ndarray, int | None]:
        """A word's unit vector and row (or a raw vector, used as given as in gensim)."""
        if isinstance(key, str):
            return self.get_vector(key, norm=True), self._index.get(key)
        vec = np.asarray(key, dtype=np.float32)
        if vec.shape != (self.vector_size,):
            raise ValueError(f"query vector of shape {vec.shape}, expected ({self.vector_size},)")
        return vec, None

    def most_similar(
        self,
        positive: Query | Iterable[Query] = (),
        negative: Query | Iterable[Query] = (),
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]] | np.ndarray:
        """Words closest to the mean of ``positive`` minus ``negative`` (gensim semantics).

        Words are unit-normalized before averaging, vectors are used as given; the query
        words themselves are excluded from the result.

        Args:
            positive: words or (D,) vectors that count positively (one word or vector is
                accepted alone).
            negative: words or vectors that count negatively.
            topn: number of results; None returns the (R,) array of all cosines instead.
            restrict_vocab: only search the first R rows (the most frequent words).

        Returns:
            ``[(word, cosine), ...]`` best first.
        """
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one positive or negative word")
        terms, exclude = [], set()
        for sign, keys in ((1.0, positive), (-1.0, negative)):
            for key in keys:
                vec, row = self._query(key)
                terms.append(sign * vec)
                if row is not None:
                    exclude.add(row)
        mean = _unit(np.mean(terms, axis=0))
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        dists = self.normed[:limit] @ mean  # (R,)
        if topn is None:
            return dists
        return self._top(dists, topn, exclude)

    def _top(self, scores: np.ndarray, topn: int, exclude: set[int]) -> list[tuple[str, float]]:
        k = min(topn + len(exclude), len(scores))
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self._words[i], float(scores[i])) for i in best if i not in exclude][:topn]

    def analogy(
        self,
        a: str,
        b: str,
        c: str,
        topn: int = 1,
        method: str = "3cosadd",
        restrict_vocab: int | None = None,
        epsilon: float = 1e-3,
    ) -> list[tuple[str, float]]:
        """Answer "a is to b as c is to ?" (Mikolov et al. 2013; Levy & Goldberg 2014).

        Args:
            a, b, c: the question words.
            topn: number of answers.
            method: ``"3cosadd"`` argmax cos(d, b - a + c), or ``"3cosmul"`` argmax
                cos'(d,b) cos'(d,c) / (cos'(d,a) + epsilon) with cos' = (cos + 1) / 2.
            restrict_vocab: only search the first R rows.
            epsilon: 3CosMul's guard against division by zero; Levy & Goldberg use 0.001
                (gensim's ``most_similar_cosmul`` uses 1e-6).

        Returns:
            ``[(word, score), ...]`` best first, the three question words excluded.
        """
        if method == "3cosadd":
            return self.most_similar([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)
        if method != "3cosmul":
            raise ValueError(f"unknown analogy method {method!r}: use '3cosadd' or '3cosmul'")
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        normed = self.normed[:limit]
        va, vb, vc = (self.get_vector(w, norm=True) for w in (a, b, c))
        shifted = [(1.0 + normed @ v) / 2.0 for v in (va, vb, vc)]  # cosines moved into [0, 1]
        scores = shifted[1] * shifted[2] / (shifted[0] + epsilon)
        exclude = {self._index[w] for w in (a, b, c) if w in self._index}
        return self._top(scores, topn, exclude)

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
        """A ``gensim.models.KeyedVectors`` with the same rows (and counts, when known)."""
        from gensim.models import KeyedVectors

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


def _as_list(keys: Query | Iterable[Query]) -> list[Query]:
    if isinstance(keys, str) or (isinstance(keys, np.ndarray) and keys.ndim == 1):
        return [keys]
    return list(keys)


def _unit(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


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
    return Vectors(table.words, table.matrix, table.counts, backoff=table.backoff)
