"""BLEU: the same numbers and signature as sacrebleu itself; one-line errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from textdecade.errors import CorpusError, UserError
from textdecade.eval.bleu import corpus_bleu, read_lines

HYPS = [
    "The cat sat on the mat.",
    "A man is riding a red bicycle down the street!",
    "Two dogs play in the snow.",
    "She doesn't like it, does she?",
]
REFS = [
    "The cat is sitting on the mat.",
    "A man rides a red bike down the street.",
    "Two dogs are playing in the snow.",
    "She does not like it, does she?",
]


def test_matches_sacrebleu_on_detokenized_text():
    ours = corpus_bleu(HYPS, REFS)
    theirs = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert 10.0 < ours.score < 90.0  # partial overlap: neither 0 nor perfect
    assert "tok:13a" in ours.signature and "nrefs:1" in ours.signature
    assert ours.n == 4 and "BLEU" in str(ours) and ours.signature in str(ours)


def test_perfect_and_empty_overlap():
    assert corpus_bleu(REFS, REFS).score == pytest.approx(100.0)
    assert corpus_bleu(["xyz qqq"] * 4, REFS).score < 1.0


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(CorpusError, match="3 hypotheses and 4 references"):
        corpus_bleu(HYPS[:3], REFS)
    with pytest.raises(CorpusError, match="empty"):
        corpus_bleu([], [])
    with pytest.raises(CorpusError, match="not found"):
        read_lines(tmp_path / "missing.en")
    (tmp_path / "bad.en").write_bytes(b"ok\n\xff\xfe broken\n")
    with pytest.raises(CorpusError, match="not UTF-8"):
        read_lines(tmp_path / "bad.en")
    (tmp_path / "good.en").write_text("one\r\ntwo\n", encoding="utf-8")
    assert read_lines(tmp_path / "good.en") == ["one", "two"]


def _fixed_corpus(n=120):
    """References of real English and hypotheses dropping about one word in five."""
    from tests.conftest import data_path

    text = data_path("corpus_en", "gensim_lee.txt").read_text(encoding="utf-8")
    refs = [s.strip() for s in text.split(".") if len(s.split()) > 4][:n]
    rng = np.random.default_rng(0)
    hyps = [" ".join(w for w in r.split() if rng.random() > 0.2) for r in refs]
    return hyps, refs


def test_interval_brackets_the_score_and_matches_sacrebleus_own_bootstrap():
    from sacrebleu.metrics import BLEU

    hyps, refs = _fixed_corpus()
    ours = corpus_bleu(hyps, refs, n_resamples=4000)
    assert ours.interval.low < ours.score < ours.interval.high
    assert ours.interval.value == ours.score and ours.interval.level == 0.95
    theirs = BLEU().corpus_score(hyps, [refs], n_bootstrap=4000)
    assert theirs.score == pytest.approx(ours.score)
    # sacrebleu keeps the bootstrap mean and half the 2.5-97.5 percentile range
    half = (ours.interval.high - ours.interval.low) / 2
    assert half == pytest.approx(theirs._ci, rel=0.1)
    assert (ours.interval.high + ours.interval.low) / 2 == pytest.approx(
        theirs._mean, abs=0.3 * half
    )
    assert "[" in str(ours) and "95% interval" in str(ours)
    assert corpus_bleu(hyps, refs) == corpus_bleu(hyps, refs)  # fixed seed: same interval
    assert corpus_bleu(hyps, refs, ci=0).interval is None


def test_paired_bleu_finds_a_planted_difference():
    from textdecade.eval.paired import compare_results

    hyps, refs = _fixed_corpus()
    worse = [" ".join(h.split()[: max(1, len(h.split()) // 2)]) for h in hyps]
    a, b = corpus_bleu(hyps, refs), corpus_bleu(worse, refs)
    cmp = compare_results("bleu", a, b)
    assert cmp.rows[0].paired.p_value < 0.01 and cmp.rows[0].paired.difference.low > 0
    same = compare_results("bleu", a, a).rows[0].paired
    assert same.p_value == 1.0 and same.difference.contains(0.0)
    other = corpus_bleu(hyps[:-1], refs[:-1])
    with pytest.raises(UserError, match="different items"):
        compare_results("bleu", a, other)
