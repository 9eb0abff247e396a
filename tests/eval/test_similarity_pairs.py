"""Word-pair similarity: every shared format, and agreement with gensim's evaluate_word_pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import data_path
from textdecade.errors import FormatError, UserError
from textdecade.eval.similarity import default_similarity_paths, evaluate_similarity, read_pairs
from textdecade.eval.vectors import Vectors


@pytest.mark.parametrize("restrict_vocab", [None, 3000])
def test_agrees_with_gensim_evaluate_word_pairs(gensim_kv, restrict_vocab):
    v = Vectors.from_gensim(gensim_kv)
    res = evaluate_similarity(v, restrict_vocab=restrict_vocab)
    assert [s.name for s in res.sets] == ["wordsim353.tsv", "simlex999.txt"]
    for path, ours in zip(default_similarity_paths(), res.sets):
        pearson, spearman, oov = gensim_kv.evaluate_word_pairs(
            str(path), restrict_vocab=restrict_vocab or 300000, case_insensitive=True
        )
        assert ours.spearman == pytest.approx(spearman.statistic, abs=1e-4)
        assert ours.pearson == pytest.approx(pearson.statistic, abs=1e-4)
        assert 100 * ours.oov_ratio == pytest.approx(oov, abs=1e-9)
    # Word2Vec on 450k words of Wikipedia: WS-353 correlates weakly but surely (measured 0.17).
    if restrict_vocab is None:
        assert res.sets[0].spearman > 0.08 and res.sets[0].coverage > 0.6


def test_every_shared_format_reads():
    faruqui = read_pairs(data_path("word_similarity", "faruqui", "EN-RW-STANFORD.txt"))
    assert len(faruqui) == 2034 and faruqui[0].a == "squishing"
    assert len(read_pairs(data_path("word_similarity", "faruqui", "EN-VERB-143.txt"))) == 144
    vecto = read_pairs(data_path("word_similarity", "vecto", "semeval17.csv"))
    assert len(vecto) == 500 and vecto[1].a == "Promised Land" and vecto[1].score == 0.42
    assert len(read_pairs(data_path("word_similarity", "gensim", "simlex999.txt"))) == 999


def test_malformed_and_uncovered(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# header\ncat\tdog\t7\ncat\tdog\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.txt:3: expected"):
        read_pairs(bad)
    bad.write_text("cat dog seven\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.txt:1:"):
        read_pairs(bad)
    csv = tmp_path / "p.csv"
    csv.write_text("x,y\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"p.csv:1: expected a CSV header"):
        read_pairs(csv)
    good = tmp_path / "good.txt"
    good.write_text("cat\tdog\t7\ncat\tcar\t2\nsun\tmoon\t5\n", encoding="utf-8")
    v = Vectors(["Cat", "dog", "car"], np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32))
    res = evaluate_similarity(v, good)
    assert res.sets[0].used == 2 and res.oov_ratio == pytest.approx(1 / 3)
    assert math.isnan(res.spearman)  # two pairs: too few for a correlation, and said so
    with pytest.raises(UserError, match="coverage 0"):
        evaluate_similarity(v, good, case_insensitive=False, restrict_vocab=1)
    assert "pairs_used" in res.format()


def test_correlations_carry_intervals_and_pair_on_shared_pairs(tmp_path):
    from textdecade.eval.paired import compare_results

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    m = rng.standard_normal((60, 6)).astype(np.float32)
    pairs = rng.integers(0, 60, (150, 2))
    cos = np.einsum("ij,ij->i", *(m[pairs.T] / np.linalg.norm(m[pairs.T], axis=-1, keepdims=True)))
    gold = cos + rng.normal(scale=0.3, size=150)  # human scores that follow the cosines
    path = tmp_path / "sim.txt"
    path.write_text("".join(f"w{a}\tw{b}\t{g:.4f}\n" for (a, b), g in zip(pairs, gold)))
    res = evaluate_similarity(Vectors(words, m), path)
    s = res.sets[0]
    assert s.spearman_ci.low < s.spearman < s.spearman_ci.high and s.spearman_ci.high < 1
    assert s.pearson_ci.contains(s.pearson)
    assert evaluate_similarity(Vectors(words, m), path).sets[0].spearman_ci == s.spearman_ci
    assert evaluate_similarity(Vectors(words, m), path, ci=0).sets[0].spearman_ci is None
    assert "[" in res.format() and res.to_dict()["sets"][0]["intervals"]["spearman"]["low"] < 1
    noisy = Vectors(words[:50], m[:50] + rng.normal(scale=2.0, size=(50, 6)))  # fewer words too
    diff = compare_results("similarity", res, evaluate_similarity(noisy, path))
    row = diff.rows[0]
    assert row.paired.n < s.used and f"{row.paired.n} pairs of sim.txt in both" in row.items
    assert row.paired.p_value < 0.01 and row.paired.difference.low > 0
