"""gensim 4's two ``KeyedVectors`` evaluations, as a mixin of
:class:`~textdecade.eval.vectors.Vectors`.

``evaluate_word_analogies`` and ``evaluate_word_pairs`` run the suite's own scorers
(:mod:`~textdecade.eval.analogy`, :mod:`~textdecade.eval.similarity`) and return gensim's
tuples. Differences from gensim 4.4, on purpose: ``evaluate_word_analogies`` honours
``similarity_function="most_similar_cosmul"`` (gensim always uses 3CosAdd); malformed
evaluation lines are a :class:`~textdecade.errors.FormatError` naming the line (gensim
skips them); a pair set with fewer than three pairs in vocabulary gets NaN correlations.
"""

from __future__ import annotations

import math
import os

import numpy as np

from textdecade.errors import ConfigError, UserError
from textdecade.eval.analogy import evaluate_analogies, read_analogies
from textdecade.eval.keyed import _EPSILON, EmptyQuery
from textdecade.eval.similarity import _score_set, read_pairs, vocab_lookup

__all__ = ["KeyedEvaluations"]


class KeyedEvaluations:
    """``evaluate_word_analogies`` and ``evaluate_word_pairs`` for a host with gensim's
    query surface (:class:`~textdecade.eval.keyed.KeyedQueries`)."""

    def evaluate_word_analogies(
        self,
        analogies: str | os.PathLike,
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
        similarity_function: str = "most_similar",
    ) -> tuple[float, list[dict]]:
        """gensim's analogy evaluation, scored by :func:`~textdecade.eval.analogy.evaluate_analogies`.

        Args:
            analogies: a ``questions-words.txt``-style file (or an MSR ``.csv``).
            restrict_vocab: the first N rows are the vocabulary and the candidates.
            case_insensitive: match words by their upper-cased form (tuples are upper-cased).
            dummy4unknown: count questions with an unknown word as incorrect (else skip them).
            similarity_function: ``"most_similar"`` (3CosAdd) or ``"most_similar_cosmul"``.

        Returns:
            ``(score, sections)``: the total accuracy, and per section (then a last
            ``"Total accuracy"`` one) ``{"section", "correct", "incorrect"}`` with lists of
            ``(a, b, c, expected)`` tuples.
        """
        methods = {"most_similar": "3cosadd", "most_similar_cosmul": "3cosmul"}
        if similarity_function not in methods:
            raise ConfigError(f"similarity_function must be one of {sorted(methods)}")
        questions = read_analogies(analogies)
        try:
            result = evaluate_analogies(
                self,
                questions,
                method=methods[similarity_function],
                restrict_vocab=restrict_vocab,
                case_insensitive=case_insensitive,
                epsilon=_EPSILON,
                ci=0,
            )
            hits = dict(zip(result.answered_index.tolist(), result.hits.tolist()))
        except UserError:  # its one refusal here: no question answerable (gensim scores 0)
            hits = {}
        sections: dict[str, dict] = {}
        for i, q in enumerate(questions):
            section = sections.setdefault(
                q.section, {"section": q.section, "correct": [], "incorrect": []}
            )
            words = tuple(w.upper() if case_insensitive else w for w in (q.a, q.b, q.c, q.d))
            if i in hits or dummy4unknown:
                section["correct" if hits.get(i) else "incorrect"].append(words)
        out = list(sections.values())
        total = {
            "section": "Total accuracy",
            "correct": [t for s in out for t in s["correct"]],
            "incorrect": [t for s in out for t in s["incorrect"]],
        }
        answered = len(total["correct"]) + len(total["incorrect"])
        return (len(total["correct"]) / answered if answered else 0.0), [*out, total]

    def evaluate_word_pairs(
        self,
        pairs: str | os.PathLike,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[tuple[float, float], tuple[float, float], float]:
        """gensim's word-pair evaluation, scored by :mod:`~textdecade.eval.similarity`.

        Args:
            pairs: a ``w1<delimiter>w2<delimiter>score`` file, ``#`` lines are comments.
            delimiter: the column separator.
            encoding: only UTF-8 is read.
            restrict_vocab: the first N rows are the vocabulary.
            case_insensitive: match words by their upper-cased form.
            dummy4unknown: score pairs with an unknown word as cosine 0 (else skip them).

        Returns:
            ``((pearson_r, p), (spearman_r, p), oov_ratio)``; the OOV ratio is in percent.
        """
        from scipy import stats

        if encoding.lower().replace("-", "").replace("_", "") != "utf8":
            raise ConfigError(f"evaluate_word_pairs reads UTF-8 files only, not {encoding!r}")
        items = read_pairs(pairs, delimiter=delimiter)
        lookup = vocab_lookup(self, restrict_vocab, case_insensitive)
        scored = _score_set(self, items, os.fspath(pairs), lookup, case_insensitive, ci=0)
        oov = len(items) - scored.used
        if scored.used == 0 and not dummy4unknown:
            raise EmptyQuery(f"no word pair of {os.fspath(pairs)} is in the vocabulary")
        oov_ratio = 100.0 * oov / len(items)
        if scored.used < 3:  # too few pairs for a correlation (the scorer's rule)
            return (math.nan, math.nan), (math.nan, math.nan), oov_ratio
        gold, model = scored.gold, scored.model.astype(np.float64)
        if dummy4unknown:
            key = str.upper if case_insensitive else str
            missed = [p.score for p in items if key(p.a) not in lookup or key(p.b) not in lookup]
            gold = np.concatenate([gold, missed])
            model = np.concatenate([model, np.zeros(len(missed))])
        pearson = stats.pearsonr(gold, model)
        spearman = stats.spearmanr(gold, model)
        return (
            (float(pearson.statistic), float(pearson.pvalue)),
            (float(spearman.statistic), float(spearman.pvalue)),
            oov_ratio,
        )
