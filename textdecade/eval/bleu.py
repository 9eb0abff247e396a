"""Corpus BLEU with sacrebleu (Papineni et al. 2002; Post 2018, "A call for clarity").

Scores are computed on *detokenized* text with sacrebleu's default settings (13a
tokenization, exponential smoothing, mixed case) and always reported with sacrebleu's
signature, so that numbers are comparable across papers and tools.

The interval is the percentile bootstrap over sentences that sacrebleu's own
``corpus_score(..., n_bootstrap=N)`` runs (Koehn 2004): sentences are resampled, their
sufficient statistics (n-gram matches and totals, lengths; from sacrebleu) summed and BLEU
recomputed by sacrebleu. sacrebleu reports only a symmetric 95% half-width around the
bootstrap mean; here the percentiles themselves are kept (any level; paired comparisons
resample both systems' sentences together: :func:`bleu_statistic`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.errors import CorpusError
from textdecade.eval.intervals import DEFAULT_LEVEL, Interval, bootstrap
from textdecade.eval.progress import bar
from textdecade.io import read_lines
from textdecade.models.base import Translates

__all__ = [
    "BleuResult",
    "bleu_run",
    "bleu_statistic",
    "corpus_bleu",
    "evaluate_bleu",
    "read_lines",
    "read_test_set",
    "translate_lines",
]


@dataclass(frozen=True)
class BleuResult:
    """A corpus BLEU score.

    Attributes:
        score: BLEU in [0, 100].
        signature: sacrebleu's signature, e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|...``.
        detail: sacrebleu's own line (n-gram precisions, brevity penalty, lengths).
        n: number of sentences scored.
        interval: the score's bootstrap interval over sentences (None when off).
        stats: (n, k) sacrebleu's sufficient statistics per sentence.
    """

    score: float
    signature: str
    detail: str
    n: int
    interval: Interval | None = None
    stats: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False, compare=False)

    def __str__(self) -> str:
        ci = ""
        if self.interval is not None:
            ci = (
                f"\nBLEU {self.interval.format(digits=2)} ({100 * self.interval.level:g}% interval)"
            )
        return f"{self.detail}{ci}\nsignature: {self.signature}  ({self.n} sentences)"

    def to_dict(self) -> dict:
        """JSON-able dict (``score``, ``low``, ``high``, ``level`` when there is an interval)."""
        out = {"task": "bleu", "score": self.score, "n": self.n, "signature": self.signature}
        if self.interval is not None:
            out |= {"low": self.interval.low, "high": self.interval.high}
            out["level"] = self.interval.level
        return out


def bleu_statistic(bleu: Any = None):
    """A vectorised statistic for :mod:`~textdecade.eval.intervals`: (R, n, k) resampled
    sentence statistics -> (R,) corpus BLEU, computed by sacrebleu from their sums."""
    if bleu is None:
        from sacrebleu.metrics import BLEU

        bleu = BLEU()

    def statistic(stats: np.ndarray) -> np.ndarray:
        sums = stats.sum(axis=1)  # (R, k) corpus statistics of each resample
        return np.array([bleu._compute_score_from_stats(row.tolist()).score for row in sums])

    return statistic


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[str],
    ci: float = DEFAULT_LEVEL,
    n_resamples: int = 1000,
) -> BleuResult:
    """BLEU of detokenized hypotheses against one reference each.

    Args:
        ci: confidence level of the bootstrap interval over sentences; 0: none.
        n_resamples: bootstrap resamples (sacrebleu's default ``n_bootstrap`` is 1000).

    Raises:
        CorpusError: when the two lists differ in length or are empty.
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise CorpusError(
            f"BLEU needs one reference per hypothesis: got {len(hypotheses)} hypotheses "
            f"and {len(references)} references"
        )
    if not hypotheses:
        raise CorpusError("BLEU of an empty test set: no sentences to score")
    bleu = BLEU()
    result = bleu.corpus_score(list(hypotheses), [list(references)])
    stats = np.array(
        bleu._extract_corpus_statistics(list(hypotheses), [list(references)]), dtype=np.int64
    )  # (n, k): the sums sacrebleu scores, sentence by sentence
    interval = None
    if ci:
        interval = bootstrap(stats, bleu_statistic(bleu), level=ci, n_resamples=n_resamples)
        interval = Interval(result.score, interval.low, interval.high, ci)  # sacrebleu's own
    signature = str(bleu.get_signature())
    return BleuResult(result.score, signature, str(result), len(hypotheses), interval, stats)


def translate_lines(
    translate: Callable[[list[str]], list[str]],
    tokenizer: Any,
    texts: Sequence[str],
    model_max_len: int,
    *,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "translate",
) -> list[str]:
    """Translate ``texts`` one decoding batch at a time, so a bar can follow.

    The texts go in sorted by source length as :func:`textdecade.models.decoding.translate`
    sorts them (a stable sort on the same key), one of its batches per call: every batch
    holds the same sentences as one call over all texts, so the translations are the same
    bytes, bar or not.

    Args:
        translate: translates a list of texts in batches of ``batch_size`` (e.g.
            ``handle.translate`` or ``decoding.translate`` with its settings bound).
        tokenizer: the run's tokenizer (to sort by source length).
        model_max_len: the model's ``config.max_len`` (sources are cut to it).
        progress: show a bar over sentences on stderr.

    Returns:
        one translation per text, in input order.
    """
    room = model_max_len - 1
    ids = tokenizer.encode_batch(list(texts)) if texts else []
    order = sorted(range(len(ids)), key=lambda i: min(len(ids[i]), room) + 1)
    out = [""] * len(ids)
    # Each call would repeat the run's warnings; they are said once, after the last batch.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with bar(total=len(order), desc=desc, unit="sent", enabled=progress) as shown:
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                for i, line in zip(index, translate([texts[i] for i in index])):
                    out[i] = line
                shown.update(len(index))
    said = set()
    for w in caught:
        text = str(w.message)
        if "source sentences longer than" not in text and text not in said:
            said.add(text)
            warnings.warn(text, w.category, stacklevel=2)
    if cut := sum(len(x) > room for x in ids):
        warnings.warn(
            f"{cut} source sentences longer than {room} tokens were truncated", stacklevel=2
        )
    return out


def evaluate_bleu(
    model: Any,
    tokenizer: Any,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    beam: int = 4,
    length_penalty: float = 0.6,
    batch_size: int = 64,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> tuple[BleuResult, list[str]]:
    """Translate ``sources`` and score them against ``references`` (``progress``: a bar
    over the sentences decoded, on stderr).

    Returns:
        ``(result, hypotheses)``.
    """
    from textdecade.models.decoding import translate

    if len(sources) != len(references):
        raise CorpusError(
            f"source and reference differ in length: {len(sources)} and {len(references)} lines"
        )
    hyps = translate_lines(
        lambda texts: translate(
            model,
            tokenizer,
            texts,
            beam=beam,
            length_penalty=length_penalty,
            batch_size=batch_size,
        ),  # fmt: skip
        tokenizer,
        list(sources),
        model.config.max_len,
        batch_size=batch_size,
        progress=progress,
        desc="bleu: translate",
    )
    return corpus_bleu(hyps, references, ci), hyps


def read_test_set(
    source: str | Path, reference: str | Path, max_lines: int | None = None
) -> tuple[list[str], list[str]]:
    """Aligned source and reference lines (the first ``max_lines`` of them).

    Raises:
        CorpusError: a missing or unreadable file, or files of different lengths.
    """
    sources, references = read_lines(source), read_lines(reference)
    if len(sources) != len(references):
        raise CorpusError(
            f"{source} has {len(sources)} lines but {reference} has {len(references)}; "
            "they must be aligned line by line"
        )
    if max_lines is not None:
        sources, references = sources[:max_lines], references[:max_lines]
    return sources, references


def bleu_run(
    run_dir: str | Path,
    source: str | Path,
    reference: str | Path,
    *,
    beam: int = 4,
    length_penalty: float = 0.6,
    max_lines: int | None = None,
    device: str | None = None,
    output: str | Path | None = None,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> BleuResult:
    """BLEU of a trained run on a test set (``textdecade eval bleu RUN --source --reference``).

    Args:
        run_dir: a seq2seq or transformer run directory.
        source, reference: aligned files, one sentence per line.
        beam, length_penalty: decoding settings.
        max_lines: score only the first lines (quick checks).
        device: where to run the model.
        output: also write the translations there (one per line).
        ci: confidence level of the interval over sentences; 0: none.
        progress: show a bar over the sentences decoded, on stderr.
    """
    from textdecade.pretrain.device import select_device
    from textdecade.pretrain.rundir import load_run

    sources, references = read_test_set(source, reference, max_lines)
    _, model, tokenizer = load_run(run_dir, device=select_device(device or "auto"))
    if not isinstance(model, Translates):
        raise CorpusError(f"{run_dir} is not a translation model (seq2seq or transformer)")
    result, hyps = evaluate_bleu(
        model,
        tokenizer,
        sources,
        references,
        beam=beam,
        length_penalty=length_penalty,
        ci=ci,
        progress=progress,
    )
    if output is not None:
        from textdecade.io import write_text

        write_text(output, "\n".join(hyps) + "\n")
    return result
