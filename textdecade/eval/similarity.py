"""Word-pair similarity: Spearman and Pearson between cosines and human scores.

Formats (see ``shared/data/word_similarity``): gensim's TSV with ``#`` comment lines,
Faruqui's ``w1<TAB>w2<TAB>score`` (whitespace-separated lines are accepted too), and vecto's
CSV with a header naming ``word1``, ``word2`` and a score column. Conventions follow gensim's
``KeyedVectors.evaluate_word_pairs``: only the first ``restrict_vocab`` rows are the
vocabulary, matching is case-insensitive (a word maps to its most frequent case variant),
and a pair with a word outside the vocabulary is left out and counted in the OOV ratio.
Default data, available offline: WordSim-353 and SimLex-999 as shipped inside gensim.
Spearman and Pearson carry percentile-bootstrap intervals over the pairs used (each
resample recomputes the correlation; :mod:`~textdecade.eval.intervals`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textdecade.errors import FormatError, UserError
from textdecade.eval.intervals import DEFAULT_LEVEL, Interval, bootstrap, pearson, spearman
from textdecade.eval.report import format_table, interval_dict, summary_interval, table_row
from textdecade.extras import require
from textdecade.io import read_text

if TYPE_CHECKING:  # vectors.py mixes in eval.keyed, which runs these scorers
    from textdecade.eval.vectors import Vectors

#: Why the default set needs gensim (the one line of a missing extra).
DEFAULT_PURPOSE = "the default WordSim-353 and SimLex-999 pairs (the files that come with gensim; or pass --data FILE)"

__all__ = [
    "Pair",
    "SetScore",
    "SimilarityResult",
    "default_similarity_paths",
    "read_pairs",
    "evaluate_similarity",
]

_SCORE_COLUMNS = ("similarity", "score", "sim", "relatedness")


@dataclass(frozen=True)
class Pair:
    """A word pair and its human score, from file line ``line``."""

    a: str
    b: str
    score: float
    line: int


def default_similarity_paths() -> list[Path]:
    """WordSim-353 and SimLex-999 as shipped inside gensim (available offline).

    Raises:
        MissingExtra: gensim (the ``gensim`` extra) is not installed.
    """
    utils = require("gensim.test.utils", DEFAULT_PURPOSE)
    return [Path(utils.datapath("wordsim353.tsv")), Path(utils.datapath("simlex999.txt"))]


def _read_csv(path: Path) -> list[Pair]:
    rows = csv.reader(StringIO(read_text(path)))
    try:
        return _csv_pairs(path, rows)
    except csv.Error as exc:  # e.g. a field past the csv module's size limit
        raise FormatError(f"{path}:{rows.line_num}: not readable CSV ({exc})") from None


def _csv_pairs(path: Path, rows) -> list[Pair]:
    header = [h.strip().lower() for h in next(rows, [])]
    score_col = next((c for c in _SCORE_COLUMNS if c in header), None)
    if "word1" not in header or "word2" not in header or score_col is None:
        raise FormatError(f"{path}:1: expected a CSV header with word1, word2 and similarity")
    i, j, k = header.index("word1"), header.index("word2"), header.index(score_col)
    pairs = []
    for line_no, row in enumerate(rows, 2):
        if not row:
            continue
        try:
            pairs.append(Pair(row[i].strip(), row[j].strip(), float(row[k]), line_no))
        except (IndexError, ValueError):
            raise FormatError(f"{path}:{line_no}: expected word1, word2, score") from None
    return pairs


def read_pairs(path: str | Path, delimiter: str | None = None) -> list[Pair]:
    """Read a similarity file (TSV/space separated, or CSV with a header).

    Args:
        path: the file (a ``.csv`` suffix is read as CSV with a header).
        delimiter: the column separator of a non-CSV file; None: a tab where the line has
            one, else whitespace.

    Raises:
        FormatError: a line that is not ``word word score``, naming ``file:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such similarity file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    pairs = []
    with StringIO(read_text(path)) as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if delimiter is not None:
                parts = line.split(delimiter)
            else:
                parts = line.split("\t") if "\t" in line else line.split()
            try:
                a, b, score = parts
                pairs.append(Pair(a.strip(), b.strip(), float(score), line_no))
            except ValueError:
                raise FormatError(
                    f"{path}:{line_no}: expected 'word<TAB>word<TAB>score', got {line[:60]!r}"
                ) from None
    if not pairs:
        raise FormatError(f"{path}: no word pairs in the file")
    return pairs


@dataclass
class SetScore:
    """Scores on one set: correlations over the pairs used, and how many were used."""

    name: str
    spearman: float
    pearson: float
    used: int
    total: int
    spearman_ci: Interval | None = None
    pearson_ci: Interval | None = None
    #: The pairs used: their line in the file, the human score and the model's cosine.
    lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    gold: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    model: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def oov_ratio(self) -> float:
        """Share of pairs left out because a word is out of vocabulary."""
        return 1.0 - self.used / self.total if self.total else 1.0

    @property
    def coverage(self) -> float:
        """Share of pairs scored (1 - oov_ratio)."""
        return self.used / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        return {
            "data": self.name,
            "spearman": self.spearman,
            "pearson": self.pearson,
            "coverage": self.coverage,
            "oov_ratio": self.oov_ratio,
            "pairs_used": self.used,
            "pairs_total": self.total,
            **interval_dict({"spearman": self.spearman_ci, "pearson": self.pearson_ci}),
        }

    def table_row(self) -> dict:
        """:meth:`to_dict` with the correlations as ``value [low, high]``."""
        return table_row(self.to_dict(), {"spearman": self.spearman_ci, "pearson": self.pearson_ci})


@dataclass
class SimilarityResult:
    """Similarity scores, one :class:`SetScore` per dataset."""

    sets: list[SetScore] = field(default_factory=list)
    restrict_vocab: int | None = None
    vectors_method: str | None = None  # how static vectors were made from a contextual model

    @property
    def spearman(self) -> float:
        """Spearman rho of the first (or only) set."""
        return self.sets[0].spearman

    @property
    def pearson(self) -> float:
        """Pearson r of the first (or only) set."""
        return self.sets[0].pearson

    @property
    def oov_ratio(self) -> float:
        """OOV ratio of the first (or only) set."""
        return self.sets[0].oov_ratio

    def summary(self) -> dict:
        """Headline metrics for one row of a side-by-side table (:func:`report.compare`)."""
        out = {}
        for s in self.sets:
            out[f"{s.name} spearman"] = s.spearman
            summary_interval(out, f"{s.name} spearman", s.spearman_ci)
            out[f"{s.name} coverage"] = s.coverage
        return out

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        return {
            "task": "similarity",
            "restrict_vocab": self.restrict_vocab,
            "vectors_method": self.vectors_method,
            "sets": [s.to_dict() for s in self.sets],
        }

    def format(self) -> str:
        """A readable Markdown table (for ``--format table``)."""
        cols = ["data", "spearman", "pearson", "coverage", "pairs_used", "pairs_total"]
        via = f" (vectors: {self.vectors_method})" if self.vectors_method else ""
        return f"Word similarity{via}\n\n" + format_table([s.table_row() for s in self.sets], cols)


def vocab_lookup(
    vectors: Vectors, restrict_vocab: int | None, case_insensitive: bool
) -> dict[str, int]:
    """Match key -> row over the first ``restrict_vocab`` rows (gensim's ``ok_vocab``).

    With ``case_insensitive`` the key is the upper-cased word and the first (most frequent)
    row of each upper-cased form wins.
    """
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    lookup: dict[str, int] = {}
    for row, word in enumerate(vectors.index_to_key[:limit]):
        lookup.setdefault(word.upper() if case_insensitive else word, row)
    return lookup


def _score_set(
    vectors: Vectors,
    pairs: Sequence[Pair],
    name: str,
    lookup: dict[str, int],
    case_insensitive: bool,
    ci: float = DEFAULT_LEVEL,
) -> SetScore:
    from scipy import stats

    normed = vectors.normed
    rows, gold, lines = [], [], []
    for p in pairs:
        a, b = (w.upper() if case_insensitive else w for w in (p.a, p.b))
        if a in lookup and b in lookup:
            rows.append((lookup[a], lookup[b]))
            gold.append(p.score)
            lines.append(p.line)
    if len(rows) < 3:  # two points always correlate perfectly: meaningless
        return SetScore(name, math.nan, math.nan, len(rows), len(pairs))
    ia, ib = np.array(rows).T
    model = np.einsum("ij,ij->i", normed[ia], normed[ib])  # (P,) cosines
    rho = float(stats.spearmanr(gold, model).statistic)
    r = float(stats.pearsonr(gold, model).statistic)
    out = SetScore(name, rho, r, len(rows), len(pairs))
    out.lines, out.gold, out.model = np.array(lines), np.array(gold, np.float64), model
    if ci:
        out.spearman_ci = bootstrap((out.gold, model), spearman, level=ci)
        out.pearson_ci = bootstrap((out.gold, model), pearson, level=ci)
    return out


def evaluate_similarity(
    vectors: Vectors,
    data: str | Path | Sequence[str | Path] | None = None,
    restrict_vocab: int | None = None,
    case_insensitive: bool = True,
    ci: float = DEFAULT_LEVEL,
) -> SimilarityResult:
    """Score ``vectors`` on one or more similarity sets.

    Args:
        vectors: the word vectors.
        data: a file, a list of files, or None for gensim's WordSim-353 and SimLex-999.
        restrict_vocab: only the first N rows count as the vocabulary (None: all rows;
            gensim's ``evaluate_word_pairs`` defaults to 300,000).
        case_insensitive: match by upper-cased form, as gensim does.
        ci: confidence level of the intervals (resampling pairs); 0: none.

    Returns:
        A :class:`SimilarityResult`; a set with fewer than three pairs in vocabulary gets NaN
        correlations and its coverage says why.

    Raises:
        UserError: no pair of any set is in the vocabulary.
    """
    if data is None:
        paths = default_similarity_paths()
    elif isinstance(data, (str, Path)):
        paths = [Path(data)]
    else:
        paths = [Path(p) for p in data]
    lookup = vocab_lookup(vectors, restrict_vocab, case_insensitive)
    result = SimilarityResult(
        restrict_vocab=restrict_vocab, vectors_method=vectors.meta.get("method")
    )
    for path in paths:
        result.sets.append(
            _score_set(vectors, read_pairs(path), path.name, lookup, case_insensitive, ci)
        )
    if all(s.used == 0 for s in result.sets):
        names = ", ".join(p.name for p in paths)
        raise UserError(f"no word pair of {names} is in the vocabulary (coverage 0)")
    return result
