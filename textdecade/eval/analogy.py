"""Word analogies: "a is to b as c is to d" (Mikolov et al. 2013), scored in batches.

Two formats: Google ``questions-words.txt`` (``: section`` headers, then ``a b c d`` lines)
and the MSR CSV (header ``,type,word1,word2,word3,target``; ``type`` becomes the section).
Two methods (Levy & Goldberg 2014, "Linguistic Regularities in Sparse and Explicit Word
Representations"): 3CosAdd, argmax cos(d, b - a + c), and 3CosMul,
argmax cos'(d, b) cos'(d, c) / (cos'(d, a) + eps) with cos' = (cos + 1) / 2, eps = 0.001.

Conventions follow gensim's ``KeyedVectors.evaluate_word_analogies``: only the first
``restrict_vocab`` rows (most frequent words) are in the vocabulary and are candidates;
matching is case-insensitive by default (a question word maps to the most frequent row with
the same upper-cased form; candidates sharing an upper-cased form with a, b or c are left
out); questions with a word outside that vocabulary are not answered and show in the
coverage. The default ``restrict_vocab`` is 30,000 as in word2vec's ``compute-accuracy``
(gensim's default is 300,000). Questions are answered as batched matrix products.

Every accuracy (per section, semantic, syntactic, total) carries a percentile-bootstrap
interval over the answered questions of that row (:mod:`~textdecade.eval.intervals`); the
per-question hits stay on the result (``hits``) for paired comparisons.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textdecade.errors import FormatError, UserError
from textdecade.eval.intervals import DEFAULT_LEVEL, Interval, bootstrap
from textdecade.eval.progress import bar
from textdecade.eval.report import format_table, interval_dict, summary_interval, table_row
from textdecade.extras import require
from textdecade.io import read_text

if TYPE_CHECKING:  # vectors.py mixes in eval.keyed, which runs these scorers
    from textdecade.eval.vectors import Vectors

#: Why the default set needs gensim (the one line of a missing extra).
DEFAULT_PURPOSE = (
    "the default Google analogy questions (the files that come with gensim; or pass --data FILE)"
)

__all__ = [
    "Question",
    "AnalogyResult",
    "SectionScore",
    "default_analogy_path",
    "read_analogies",
    "evaluate_analogies",
]


@dataclass(frozen=True)
class Question:
    """One analogy question ``a : b :: c : d`` from ``section`` (file line ``line``)."""

    a: str
    b: str
    c: str
    d: str
    section: str
    kind: str  # "semantic" or "syntactic"
    line: int


def default_analogy_path() -> Path:
    """Google's ``questions-words.txt`` as shipped inside gensim (available offline).

    Raises:
        MissingExtra: gensim (the ``gensim`` extra) is not installed.
    """
    utils = require("gensim.test.utils", DEFAULT_PURPOSE)
    return Path(utils.datapath("questions-words.txt"))


def _google_kind(section: str) -> str:
    # Mikolov et al.'s five semantic sections; the nine "gram*" sections are syntactic.
    return "syntactic" if section.startswith("gram") else "semantic"


def read_google(path: str | Path) -> list[Question]:
    """Read a ``questions-words.txt``-style file.

    Raises:
        FormatError: a line that is not four words, naming ``file:line``.
    """
    path = Path(path)
    questions: list[Question] = []
    section = path.stem
    with StringIO(read_text(path)) as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(":"):
                section = line[1:].strip() or f"section@{line_no}"
                continue
            words = line.split()
            if len(words) != 4:
                raise FormatError(
                    f"{path}:{line_no}: expected 4 words 'a b c d', found {len(words)}"
                )
            questions.append(Question(*words, section, _google_kind(section), line_no))
    return questions


def read_msr(path: str | Path) -> list[Question]:
    """Read the MSR CSV (``,type,word1,word2,word3,target``; all its relations are syntactic).

    Raises:
        FormatError: a missing column or a short row, naming ``file:line``.
    """
    path = Path(path)
    rows = csv.reader(StringIO(read_text(path)))
    try:
        return _msr_questions(path, rows)
    except csv.Error as exc:  # e.g. a field past the csv module's size limit
        raise FormatError(f"{path}:{rows.line_num}: not readable CSV ({exc})") from None


def _msr_questions(path: Path, rows) -> list[Question]:
    """The questions of an MSR CSV read row by row by ``rows``."""
    header = next(rows, None)
    need = ["word1", "word2", "word3", "target"]
    if header is None or any(col not in header for col in need):
        raise FormatError(f"{path}:1: expected a CSV header with columns {need}")
    cols = [header.index(c) for c in need]
    type_col = header.index("type") if "type" in header else None
    questions = []
    for line_no, row in enumerate(rows, 2):
        if not row:
            continue
        if len(row) < len(header) or any(not row[i].strip() for i in cols):
            raise FormatError(f"{path}:{line_no}: expected {len(header)} columns")
        section = row[type_col] if type_col is not None else path.stem
        words = [row[i].strip() for i in cols]
        questions.append(Question(*words, section, "syntactic", line_no))
    return questions


def read_analogies(path: str | Path | None = None) -> list[Question]:
    """Read analogy questions, choosing the reader by suffix (``.csv`` is MSR-style).

    Args:
        path: the file; None reads the Google set shipped with gensim.
    """
    path = default_analogy_path() if path is None else Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such analogy file")
    return read_msr(path) if path.suffix.lower() == ".csv" else read_google(path)


@dataclass
class SectionScore:
    """Counts for one section (or a total): ``correct`` of ``answered`` of ``total``."""

    name: str
    correct: int = 0
    answered: int = 0
    total: int = 0
    interval: Interval | None = None  # of the accuracy, over this row's answered questions

    @property
    def accuracy(self) -> float:
        """Correct / answered (0.0 when nothing was answered)."""
        return self.correct / self.answered if self.answered else 0.0

    @property
    def coverage(self) -> float:
        """Answered / total questions (the share with every word in the vocabulary)."""
        return self.answered / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        return {
            "section": self.name,
            "accuracy": self.accuracy,
            "coverage": self.coverage,
            "correct": self.correct,
            "answered": self.answered,
            "total": self.total,
            **interval_dict({"accuracy": self.interval}),
        }

    def table_row(self) -> dict:
        """:meth:`to_dict` with the accuracy as ``value [low, high]`` (for tables)."""
        return table_row(self.to_dict(), {"accuracy": self.interval})


@dataclass
class AnalogyResult:
    """Analogy scores: per section, semantic / syntactic, and the total."""

    data: str
    method: str
    restrict_vocab: int | None
    case_insensitive: bool
    sections: list[SectionScore] = field(default_factory=list)
    semantic: SectionScore = field(default_factory=lambda: SectionScore("semantic"))
    syntactic: SectionScore = field(default_factory=lambda: SectionScore("syntactic"))
    total: SectionScore = field(default_factory=lambda: SectionScore("total"))
    vectors_method: str | None = None  # how static vectors were made from a contextual model
    #: Per answered question: its index in the question list and whether it was right.
    answered_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)

    @property
    def accuracy(self) -> float:
        """Overall accuracy over answered questions."""
        return self.total.accuracy

    @property
    def coverage(self) -> float:
        """Share of questions answered (all four words in the vocabulary)."""
        return self.total.coverage

    @property
    def interval(self) -> Interval | None:
        """The overall accuracy's interval (None when intervals were off)."""
        return self.total.interval

    def summary(self) -> dict:
        """Headline numbers for a side-by-side table."""
        out = {}
        for key, row in (
            (f"analogy {self.method} acc", self.total),
            (f"analogy {self.method} coverage", None),
            ("analogy semantic acc", self.semantic),
            ("analogy syntactic acc", self.syntactic),
        ):
            out[key] = self.coverage if row is None else row.accuracy
            summary_interval(out, key, row.interval if row is not None else None)
        return out

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        return {
            "task": "analogy",
            "data": self.data,
            "method": self.method,
            "restrict_vocab": self.restrict_vocab,
            "case_insensitive": self.case_insensitive,
            "vectors_method": self.vectors_method,
            "accuracy": self.accuracy,
            "coverage": self.coverage,
            "sections": [s.to_dict() for s in self.sections],
            "semantic": self.semantic.to_dict(),
            "syntactic": self.syntactic.to_dict(),
            "total": self.total.to_dict(),
        }

    def format(self) -> str:
        """A Markdown table: one row per section, then the totals."""
        rows = [s.table_row() for s in (*self.sections, self.semantic, self.syntactic, self.total)]
        via = f", vectors: {self.vectors_method}" if self.vectors_method else ""
        acc = f"{100 * self.accuracy:.2f}%"
        if self.interval is not None:
            acc = f"{self.interval.format(100, 2)}% ({100 * self.interval.level:g}% interval)"
        title = (
            f"Analogy ({self.method}, restrict_vocab={self.restrict_vocab}{via}) on {self.data}: "
            f"accuracy {acc} at coverage {100 * self.coverage:.1f}%"
        )
        cols = ["section", "accuracy", "coverage", "correct", "answered", "total"]
        return title + "\n\n" + format_table(rows, cols)


def _vocab(vectors: Vectors, restrict_vocab: int | None, case_insensitive: bool):
    """Candidate rows, their match keys, and key -> row (the most frequent row per key)."""
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    words = vectors.words[:limit]
    keys = [w.upper() for w in words] if case_insensitive else list(words)
    lookup: dict[str, int] = {}
    for row, key in enumerate(keys):
        lookup.setdefault(key, row)
    group = np.array([lookup[k] for k in keys], dtype=np.int64)  # (R,) representative row
    return limit, keys, lookup, group


class _Members:
    """Rows of each match group (rows sharing an upper-cased form), to mask them quickly."""

    def __init__(self, group: np.ndarray) -> None:
        self.order = np.argsort(group, kind="stable")  # rows sorted by group
        sorted_group = group[self.order]
        self.start = np.searchsorted(sorted_group, np.arange(len(group)), side="left")
        self.size = np.searchsorted(sorted_group, np.arange(len(group)), side="right") - self.start

    def mask(self, scores: np.ndarray, reps: np.ndarray) -> None:
        """Set ``scores[i, r] = -inf`` for every row r in the group of ``reps[i]``."""
        size = self.size[reps]  # (B,)
        query = np.repeat(np.arange(len(reps)), size)
        offset = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        scores[query, self.order[np.repeat(self.start[reps], size) + offset]] = -np.inf


def _shifted_cos(normed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(cos + 1) / 2 of the given rows against every row: (B, R), in [0, 1]."""
    cos = normed[rows] @ normed.T
    cos += 1.0
    cos *= 0.5
    return cos


def evaluate_analogies(
    vectors: Vectors,
    data: str | Path | Sequence[Question] | None = None,
    method: str = "3cosadd",
    restrict_vocab: int | None = 30000,
    case_insensitive: bool = True,
    epsilon: float = 1e-3,
    batch_size: int = 512,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> AnalogyResult:
    """Score ``vectors`` on an analogy set.

    Args:
        vectors: the word vectors (rows ordered most frequent first).
        data: a file (Google or MSR format), a list of :class:`Question`, or None for the
            Google set shipped with gensim.
        method: ``"3cosadd"`` or ``"3cosmul"``.
        restrict_vocab: the first N rows form the vocabulary (30,000 as in word2vec's
            compute-accuracy; gensim's default is 300,000); None uses every row.
        case_insensitive: match words by their upper-cased form, as gensim does.
        epsilon: 3CosMul's epsilon (Levy & Goldberg use 0.001; gensim 1e-6).
        batch_size: questions scored per matrix product.
        ci: confidence level of the intervals (resampling answered questions); 0: none.
        progress: show a progress bar on stderr over the questions.

    Returns:
        An :class:`AnalogyResult` (accuracy over answered questions, coverage beside it,
        an interval on each accuracy).

    Raises:
        UserError: no question has all four words in the vocabulary.
    """
    if method not in ("3cosadd", "3cosmul"):
        raise UserError(f"unknown analogy method {method!r}: use 3cosadd or 3cosmul")
    if isinstance(data, (str, Path)) or data is None:
        name = str(data) if data is not None else "questions-words.txt (Google)"
        questions = read_analogies(data)
    else:
        name, questions = "questions", list(data)
    limit, keys, lookup, group = _vocab(vectors, restrict_vocab, case_insensitive)
    normed = vectors.normed[:limit]  # (R, D)
    members = _Members(group)

    result = AnalogyResult(name, method, restrict_vocab, case_insensitive)
    result.vectors_method = vectors.meta.get("method")
    by_name: dict[str, SectionScore] = {}
    answerable: list[tuple[int, int, int, int, SectionScore, str]] = []
    index: list[int] = []
    for i, q in enumerate(questions):
        if q.section not in by_name:
            by_name[q.section] = SectionScore(q.section)
            result.sections.append(by_name[q.section])
        score = by_name[q.section]
        score.total += 1
        kind = result.semantic if q.kind == "semantic" else result.syntactic
        kind.total += 1
        result.total.total += 1
        ids = [lookup.get(w.upper() if case_insensitive else w) for w in (q.a, q.b, q.c, q.d)]
        if None not in ids:
            answerable.append((*ids, score, q.kind))
            index.append(i)

    hits: list[bool] = []
    shown = bar(total=len(answerable), desc="analogy", unit="question", enabled=progress)
    for start in range(0, len(answerable), batch_size):
        chunk = answerable[start : start + batch_size]
        a, b, c, d = (np.array([q[i] for q in chunk]) for i in range(4))
        if method == "3cosadd":
            # argmax of cos(x, b - a + c) over unit rows equals argmax of x . (b^ - a^ + c^)
            scores = (normed[b] - normed[a] + normed[c]) @ normed.T  # (B, R)
        else:
            scores = _shifted_cos(normed, b)  # (B, R), in place to spare temporaries
            scores *= _shifted_cos(normed, c)
            scores /= _shifted_cos(normed, a) + epsilon
        # Leave out a, b and c, and (case-insensitively) any row that matches them.
        for ids in (a, b, c):
            members.mask(scores, ids)
        predicted = group[np.argmax(scores, axis=1)]
        hits += (predicted == group[d]).tolist()
        for (*_, score, kind), hit in zip(chunk, predicted == group[d]):
            for s in (score, result.semantic if kind == "semantic" else result.syntactic):
                s.answered += 1
                s.correct += int(hit)
            result.total.answered += 1
            result.total.correct += int(hit)
        shown.update(len(chunk))
    shown.close()
    if result.total.answered == 0:
        raise UserError(
            f"no analogy question in {name} has all four words among the first "
            f"{limit} words of the vectors (coverage 0 of {result.total.total})"
        )
    result.answered_index = np.array(index, dtype=np.int64)
    result.hits = np.array(hits, dtype=bool)
    if ci:
        _add_intervals(result, [q[4] for q in answerable], [q[5] for q in answerable], ci)
    return result


def _add_intervals(result: AnalogyResult, sections, kinds, level: float) -> None:
    """An interval on every row's accuracy, resampling that row's answered questions."""
    hits = result.hits.astype(np.float64)
    section = np.array([id(s) for s in sections])
    kind = np.array(kinds)
    rows = [(s, section == id(s)) for s in result.sections]
    rows += [(result.semantic, kind == "semantic"), (result.syntactic, kind == "syntactic")]
    rows.append((result.total, np.ones(len(hits), bool)))
    for row, mask in rows:
        if mask.any():
            row.interval = bootstrap(hits[mask], level=level)
