"""Corpus BLEU with sacrebleu (Papineni et al. 2002; Post 2018, "A call for clarity").

Scores are computed on *detokenized* text with sacrebleu's default settings (13a
tokenization, exponential smoothing, mixed case) and always reported with sacrebleu's
signature, so that numbers are comparable across papers and tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textdecade.errors import CorpusError
from textdecade.io import read_lines
from textdecade.models.base import Translates

__all__ = ["BleuResult", "bleu_run", "corpus_bleu", "evaluate_bleu", "read_lines"]


@dataclass(frozen=True)
class BleuResult:
    """A corpus BLEU score.

    Attributes:
        score: BLEU in [0, 100].
        signature: sacrebleu's signature, e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|...``.
        detail: sacrebleu's own line (n-gram precisions, brevity penalty, lengths).
        n: number of sentences scored.
    """

    score: float
    signature: str
    detail: str
    n: int

    def __str__(self) -> str:
        return f"{self.detail}\nsignature: {self.signature}  ({self.n} sentences)"


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> BleuResult:
    """BLEU of detokenized hypotheses against one reference each.

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
    return BleuResult(result.score, str(bleu.get_signature()), str(result), len(hypotheses))


def evaluate_bleu(
    model: Any,
    tokenizer: Any,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    beam: int = 4,
    length_penalty: float = 0.6,
    batch_size: int = 64,
) -> tuple[BleuResult, list[str]]:
    """Translate ``sources`` and score them against ``references``.

    Returns:
        ``(result, hypotheses)``.
    """
    from textdecade.models.decoding import translate

    if len(sources) != len(references):
        raise CorpusError(
            f"source and reference differ in length: {len(sources)} and {len(references)} lines"
        )
    hyps = translate(
        model, tokenizer, list(sources), beam=beam, length_penalty=length_penalty,
        batch_size=batch_size,
    )  # fmt: skip
    return corpus_bleu(hyps, references), hyps


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
) -> BleuResult:
    """BLEU of a trained run on a test set (``textdecade eval bleu RUN --source --reference``).

    Args:
        run_dir: a seq2seq or transformer run directory.
        source, reference: aligned files, one sentence per line.
        beam, length_penalty: decoding settings.
        max_lines: score only the first lines (quick checks).
        device: where to run the model.
        output: also write the translations there (one per line).
    """
    from textdecade.pretrain.device import select_device
    from textdecade.pretrain.rundir import load_run

    sources, references = read_lines(source), read_lines(reference)
    if len(sources) != len(references):
        raise CorpusError(
            f"{source} has {len(sources)} lines but {reference} has {len(references)}; "
            "they must be aligned line by line"
        )
    if max_lines is not None:
        sources, references = sources[:max_lines], references[:max_lines]
    _, model, tokenizer = load_run(run_dir, device=select_device(device or "auto"))
    if not isinstance(model, Translates):
        raise CorpusError(f"{run_dir} is not a translation model (seq2seq or transformer)")
    result, hyps = evaluate_bleu(
        model, tokenizer, sources, references, beam=beam, length_penalty=length_penalty
    )
    if output is not None:
        from textdecade.io import write_text

        write_text(output, "\n".join(hyps) + "\n")
    return result
