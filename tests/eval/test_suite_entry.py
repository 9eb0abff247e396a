"""The command-level entry points: any model in, a formatted result out."""

from __future__ import annotations

import numpy as np
import pytest

from textdecade.api import resolve_model
from textdecade.errors import FormatError, UserError
from textdecade.eval.analogy import evaluate_analogies
from textdecade.eval.suite import (
    as_vectors,
    decade_table,
    plot_embeddings,
    run_analogy,
    run_homograph,
    run_similarity,
)
from textdecade.eval.vectors import Vectors
from textdecade.eval.wsd_data import read_sense_tsv


class CharEncoder:
    """A stand-in contextual encoder: a word's state is its letters' counts plus context."""

    def _vec(self, word):
        v = np.zeros(27, np.float32)
        for ch in word.lower():
            v[min(ord(ch) - 97, 26) if ch.isalpha() else 26] += 1
        return v

    def word_states(self, sentences, layers="last", batch_size=32):
        out = []
        for s in sentences:
            ctx = sum((self._vec(w) for w in s), np.zeros(27, np.float32))
            out.append(np.stack([self._vec(w) + 0.5 * ctx for w in s]))
        return out

    def input_word_vectors(self, words):
        return np.stack([self._vec(w) for w in words])


def test_entry_points_on_static_vectors(gensim_kv, tmp_path):
    v = Vectors.from_gensim(gensim_kv)
    path = tmp_path / "w2v.bin"
    v.save(path)
    loaded = resolve_model(path)
    assert isinstance(loaded, Vectors) and len(loaded) == len(v)
    res = run_analogy(loaded, restrict_vocab=5000)
    same = evaluate_analogies(v, restrict_vocab=5000)
    assert (res.total.correct, res.total.answered) == (same.total.correct, same.total.answered)
    assert "questions-words" in res.format()
    sim = run_similarity(loaded)
    assert [s.name for s in sim.sets] == ["wordsim353.tsv", "simlex999.txt"]
    hom = run_homograph(loaded)
    assert hom.accuracy == hom.mfs_accuracy  # static: exactly the baseline
    with pytest.raises(UserError, match="no such homograph data"):
        run_homograph(loaded, tmp_path / "nothing")
    with pytest.raises(FormatError, match="unknown vectors suffix|no such vectors file"):
        resolve_model(tmp_path / "missing.vec")


def test_contextual_models_get_vectors_and_wic(tmp_path):
    enc = CharEncoder()
    corpus = ["the bank of the river", "the bank raised rates", "a river runs"]
    v = as_vectors(enc, ["zebra"], corpus=corpus, top_k=3)
    assert v.words[0] == "the" and "zebra" in v and v.meta["method"] == "input"
    ctx = as_vectors(enc, ["bank"], method="context", corpus=corpus, top_k=2)
    assert ctx.meta["method"] == "context" and not np.allclose(ctx["bank"], v.matrix[0] * 0)
    # WiC dispatch: a *.data.txt file (own sentences) with its gold file beside it.
    bank = next(t for t in read_sense_tsv() if t.word == "bank")
    lines, gold = [], []
    for a, b in zip(bank.train[:8], bank.train[8:]):
        lines.append(f"bank\tN\t{a.index}-{b.index}\t{' '.join(a.words)}\t{' '.join(b.words)}")
        gold.append("F")
    for a, b in zip(bank.train[:4], bank.train[4:8]):
        lines.append(f"bank\tN\t{a.index}-{b.index}\t{' '.join(a.words)}\t{' '.join(b.words)}")
        gold.append("T")
    (tmp_path / "x.data.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "x.gold.txt").write_text("\n".join(gold) + "\n", encoding="utf-8")
    png = plot_embeddings(enc, ["river", "bank", "rates"], tmp_path / "e.png", corpus=corpus)
    assert png.read_bytes()[:4] == b"\x89PNG"
    wic = run_homograph(enc, tmp_path / "x.data.txt")
    assert wic.n == 12 and "optimistic" in wic.fit_on and wic.fit_accuracy >= wic.majority
    assert wic.interval.contains(wic.accuracy) and "[" in wic.format()
    assert wic.to_dict()["intervals"]["accuracy"]["level"] == 0.95
    from textdecade.eval.paired import compare_results

    same = compare_results("wic", wic, wic).rows[0].paired
    assert same.p_value == 1.0 and same.n == 12


def test_decade_table_leaves_blank_what_a_model_cannot_do(gensim_kv):
    table = decade_table({"word2vec": Vectors.from_gensim(gensim_kv), "nothing": object()})
    lines = table.splitlines()
    assert "homograph MFS acc" in lines[0] and "wordsim353.tsv spearman" in lines[0]
    nothing = next(line for line in lines if line.startswith("| nothing"))
    assert set(nothing.replace("nothing", "").replace("|", "").split()) == {"-"}
