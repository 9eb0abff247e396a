"""gensim 4 ``KeyedVectors`` queries, as a mixin of :class:`~textdecade.eval.vectors.Vectors`.

:class:`KeyedQueries` gives ``Vectors`` gensim's everyday query surface with gensim's
signatures and return shapes: ``most_similar`` (words, vectors and ``(key, weight)``
tuples; ``topn=None`` returns every cosine), ``most_similar_cosmul``, ``similar_by_*``,
``doesnt_match``, ``rank_by_centrality``, ``n_similarity``, ``similarity``,
``distance(s)``, ``closer_than``, ``rank`` and ``get_mean_vector`` (the two evaluations
are in :mod:`~textdecade.eval.keyed_evaluations`). Words are looked up by the host's one rule (see ``Vectors``): a word is usable
when ``word in vectors``; rows are excluded from results only for exact keys.

Differences from gensim 4.4, on purpose: ``most_similar_cosmul`` honours
``restrict_vocab`` (gensim accepts and ignores it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from numbers import Integral
from typing import Any

import numpy as np

from textdecade.errors import OutOfVocabulary, UserError

__all__ = ["KeyedQueries", "EmptyQuery"]

logger = logging.getLogger(__name__)

KEY_TYPES = (str, int, np.integer)  # a word, or a row number (as gensim allows)
_EPSILON = 1e-6  # gensim's most_similar_cosmul guard against division by zero


class EmptyQuery(UserError, ValueError):
    """A query with nothing to compute from (no word given, or none of them known)."""


def _ensure_list(value: Any) -> list:
    """gensim's ``_ensure_list``: one key or (D,) vector alone, rows of a (N, D) array."""
    if value is None:
        return []
    if isinstance(value, KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def _unit(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


class KeyedQueries:
    """gensim ``KeyedVectors`` queries over a host's rows (mixed into ``Vectors``).

    The host provides ``index_to_key``, ``key_to_index``, ``vectors`` (V, D), ``normed``
    (unit rows), ``vector_size``, ``get_vector(key, norm)``, ``get_index``,
    ``has_index_for`` and ``__contains__`` (the lookup rule).
    """

    # ------------------------------------------------------------------------ pairs
    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        return float(np.dot(self.get_vector(w1, norm=True), self.get_vector(w2, norm=True)))

    def distance(self, w1: str, w2: str) -> float:
        """Cosine distance, ``1 - similarity(w1, w2)``."""
        return 1.0 - self.similarity(w1, w2)

    def distances(self, word_or_vector: Any, other_words: Iterable[str] = ()) -> np.ndarray:
        """Cosine distances from a word or (D,) vector to ``other_words`` (default: every row).

        Returns:
            (len(other_words),) or (V,) array of ``1 - cosine``.
        """
        if isinstance(word_or_vector, KEY_TYPES):
            vec = self.get_vector(word_or_vector)
        else:
            vec = self._checked(word_or_vector)
        others = list(other_words)
        rows = np.stack([self.get_vector(w) for w in others]) if others else self.vectors
        norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(vec)
        return 1.0 - (rows @ vec) / norms

    def closer_than(self, key1: str, key2: str) -> list[str]:
        """Every word closer to ``key1`` than ``key2`` is (both must be vocabulary keys)."""
        dists = self.distances(key1)
        i1, i2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.flatnonzero(dists < dists[i2]) if i != i1]

    def rank(self, key1: str, key2: str) -> int:
        """Rank of ``key2`` among the neighbours of ``key1`` (1: the nearest)."""
        return len(self.closer_than(key1, key2)) + 1

    def most_similar_to_given(self, key1: str, keys_list: Sequence[str]) -> str:
        """The word of ``keys_list`` most similar to ``key1``."""
        return keys_list[int(np.argmax([self.similarity(key1, k) for k in keys_list]))]

    # ------------------------------------------------------------------------ means
    def _checked(self, vec: Any) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float32)
        if vec.shape != (self.vector_size,):
            raise ValueError(f"query vector of shape {vec.shape}, expected ({self.vector_size},)")
        return vec

    def get_mean_vector(
        self,
        keys: Sequence[Any],
        weights: Sequence[float] | np.ndarray | None = None,
        pre_normalize: bool = True,
        post_normalize: bool = False,
        ignore_missing: bool = True,
    ) -> np.ndarray:
        """The weighted mean (D,) of words (unit vectors when ``pre_normalize``) and raw vectors.

        Args:
            keys: words, row numbers or (D,) vectors (vectors are used as given).
            weights: one per key (default 1); the sum is divided by the sum of ``|weight|``.
            pre_normalize: average unit-length word vectors.
            post_normalize: return the mean at unit length.
            ignore_missing: leave out unknown words (else raise ``OutOfVocabulary``).
        """
        if len(keys) == 0:
            raise EmptyQuery("cannot compute a mean vector of no keys")
        weights = np.ones(len(keys), np.float32) if weights is None else np.asarray(weights)
        if len(weights) != len(keys):
            raise ValueError(f"{len(weights)} weights for {len(keys)} keys")
        mean = np.zeros(self.vector_size, np.float32)
        total = 0.0
        for key, weight in zip(keys, weights):
            if isinstance(key, np.ndarray):
                vec = self._checked(key)
            elif key in self:
                vec = self.get_vector(key, norm=pre_normalize)
            elif not ignore_missing:
                raise OutOfVocabulary(f"word {key!r} is not in the vocabulary of {len(self)} words")
            else:
                continue
            mean += np.float32(weight) * vec
            total += abs(float(weight))
        if total > 0:
            mean /= np.float32(total)
        return _unit(mean) if post_normalize else mean

    def _exact_rows(self, keys: Iterable[Any]) -> set[int]:
        """Rows of the keys that are vocabulary keys (query words are left out of results)."""
        return {
            self.get_index(k) for k in keys if isinstance(k, KEY_TYPES) and self.has_index_for(k)
        }

    def _limit(self, restrict_vocab: int | None) -> int:
        return min(restrict_vocab, len(self)) if restrict_vocab else len(self)

    def _top(self, scores: np.ndarray, topn: int, exclude: set[int]) -> list[tuple[str, float]]:
        k = min(topn + len(exclude), len(scores))
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.index_to_key[i], float(scores[i])) for i in best if i not in exclude][:topn]

    # ---------------------------------------------------------------------- neighbours
    def most_similar(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]] | np.ndarray:
        """Words closest to the weighted mean of ``positive`` minus ``negative`` (gensim's).

        Words count as unit vectors, vectors as given; query words are left out.

        Args:
            positive: a word or (D,) vector, or a list of words, vectors or ``(key, weight)``
                tuples (weight default 1.0).
            negative: the same, with weight default -1.0 (a tuple's weight is used as given).
            topn: number of results; None returns the (R,) array of every cosine.
            restrict_vocab: only search the first R rows (the most frequent words).

        Returns:
            ``[(word, cosine), ...]`` best first (``[]`` when ``topn < 1``), or an array.
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        keys, weights = [], []
        for default, items in ((1.0, _ensure_list(positive)), (-1.0, _ensure_list(negative))):
            for item in items:
                if isinstance(item, (*KEY_TYPES, np.ndarray)):
                    keys.append(item)
                    weights.append(default)
                else:  # a (key, weight) pair
                    keys.append(item[0])
                    weights.append(float(item[1]))
        mean = self.get_mean_vector(keys, weights, post_normalize=True, ignore_missing=False)
        dists = self.normed[: self._limit(restrict_vocab)] @ mean  # (R,)
        if not topn:
            return dists
        return self._top(dists, topn, self._exact_rows(keys))

    def similar_by_key(self, key: str, topn: int | None = 10, restrict_vocab: int | None = None):
        """``most_similar(positive=[key], ...)``."""
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector, topn: int | None = 10, restrict_vocab: int | None = None):
        """``most_similar(positive=[vector], ...)``."""
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(
        self,
        positive: Any = None,
        negative: Any = None,
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]] | np.ndarray:
        """3CosMul neighbours (Levy & Goldberg 2014, eq. 4), as gensim computes them.

        Scores ``prod_p cos'(x, p) / (prod_n cos'(x, n) + 1e-6)`` with ``cos' = (cos + 1) / 2``;
        words count as unit vectors, vectors as given.

        Args:
            positive, negative: words or (D,) vectors (one alone is accepted).
            topn: number of results; None returns the (R,) array of every score.
            restrict_vocab: only search the first R rows (gensim 4.4 ignores it).

        Returns:
            ``[(word, score), ...]`` best first, the query words left out, or an array.
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        return self._cosmul(
            _ensure_list(positive), _ensure_list(negative), topn, restrict_vocab, _EPSILON
        )

    def _cosmul(self, positive, negative, topn, restrict_vocab, epsilon):
        if not positive:
            raise EmptyQuery("3CosMul needs at least one positive word")
        normed = self.normed[: self._limit(restrict_vocab)]

        def shifted(key):  # cosines moved into [0, 1] (footnote 7)
            vec = self._checked(key) if isinstance(key, np.ndarray) else self.get_vector(key, True)
            return (1.0 + normed @ vec) / 2.0

        num = np.ones(len(normed), np.float32)
        for key in positive:
            num = num * shifted(key)
        den = np.ones(len(normed), np.float32)
        for key in negative:
            den = den * shifted(key)
        scores = num / (den + epsilon)
        if not topn:
            return scores
        return self._top(scores, topn, self._exact_rows([*positive, *negative]))

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
            epsilon: 3CosMul's guard; Levy & Goldberg use 0.001 (gensim 1e-6).

        Returns:
            ``[(word, score), ...]`` best first, the three question words left out.
        """
        if method == "3cosadd":
            return self.most_similar([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)
        if method != "3cosmul":
            raise ValueError(f"unknown analogy method {method!r}: use '3cosadd' or '3cosmul'")
        return self._cosmul([b, c], [a], topn, restrict_vocab, epsilon)

    # ------------------------------------------------------------------------- sets
    def rank_by_centrality(self, words: Sequence[str], use_norm: bool = True):
        """Words by cosine to the centroid of all of them, most central first.

        Unknown words are left out (with a logged warning, as in gensim).

        Returns:
            ``[(cosine, word), ...]`` sorted descending.
        """
        used = [w for w in words if w in self]
        if len(used) != len(words):
            logger.warning("words %s are not in the vectors; ignoring them", set(words) - set(used))
        if not used:
            raise EmptyQuery("cannot select a word from an empty list (no word is known)")
        vecs = np.stack([self.get_vector(w, norm=use_norm) for w in used]).astype(np.float32)
        dists = vecs @ _unit(vecs.mean(axis=0))
        return sorted(zip((float(d) for d in dists), used), reverse=True)

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word furthest from the centroid of ``words`` (unknown words ignored)."""
        return self.rank_by_centrality(words)[-1][1]

    def n_similarity(self, ws1: Sequence[str], ws2: Sequence[str]) -> float:
        """Cosine between the means of two word sets (raw vectors; unknown words ignored)."""
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        mean1 = self.get_mean_vector(ws1, pre_normalize=False)
        mean2 = self.get_mean_vector(ws2, pre_normalize=False)
        return float(np.dot(_unit(mean1), _unit(mean2)))
