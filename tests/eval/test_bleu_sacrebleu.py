"""BLEU: the same numbers and signature as sacrebleu itself; one-line errors on bad input."""

from __future__ import annotations

import pytest
import sacrebleu

from textdecade.errors import CorpusError
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
