"""Analogy evaluation: readers, 3CosAdd/3CosMul, agreement with gensim on the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from textdecade.errors import FormatError, UserError
from textdecade.eval.analogy import (
    Question,
    default_analogy_path,
    evaluate_analogies,
    read_analogies,
)
from textdecade.eval.vectors import Vectors


@pytest.fixture(scope="module")
def google_slice(tmp_path_factory):
    """The first 50 questions of each Google section (gensim's loop is slow on all 19,544)."""
    out = tmp_path_factory.mktemp("analogy") / "slice.txt"
    kept, per = [], {}
    section = None
    for line in open(default_analogy_path(), encoding="utf-8"):
        if line.startswith(":"):
            section = line
            kept.append(line)
        elif per.setdefault(section, 0) < 50:
            per[section] += 1
            kept.append(line)
    out.write_text("".join(kept), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def planted(gensim_kv, google_slice):
    """The real vectors with each section's relation planted as a noisy offset.

    A few MB of text cannot solve Google analogies (accuracy ~0), which would make the
    agreement check vacuous; planting b = a + offset(section) + noise on top of real vectors
    gives a mix of right and wrong answers (with real neighbours and case variants around).
    """
    v = Vectors.from_gensim(gensim_kv)
    m = v.matrix.copy()
    rng = np.random.default_rng(0)
    scale = float(np.linalg.norm(m, axis=1).mean())
    offsets = {}
    for q in read_analogies(google_slice):
        if q.section not in offsets:
            offsets[q.section] = rng.standard_normal(m.shape[1]) * scale / np.sqrt(m.shape[1])
        for x, y in ((q.a, q.b), (q.c, q.d)):
            if x in v and y in v:
                noise = rng.standard_normal(m.shape[1]) * 0.3 * scale / np.sqrt(m.shape[1])
                m[v.index[y]] = m[v.index[x]] + offsets[q.section] + noise
    kv = Vectors(v.words, m, v.counts).to_gensim()
    return kv


@pytest.mark.slow
@pytest.mark.parametrize("restrict_vocab", [30000, 5000])
def test_agrees_with_gensim_evaluate_word_analogies(planted, google_slice, restrict_vocab):
    # Same vectors, same restrict_vocab, case-insensitive in both (gensim's default).
    ours = evaluate_analogies(
        Vectors.from_gensim(planted), google_slice, restrict_vocab=restrict_vocab
    )
    score, sections = planted.evaluate_word_analogies(
        str(google_slice), restrict_vocab=restrict_vocab, case_insensitive=True
    )
    assert abs(100 * ours.accuracy - 100 * score) <= 0.1
    theirs = {s["section"]: s for s in sections}
    for sec in ours.sections:
        g = theirs[sec.name]
        assert sec.answered == len(g["correct"]) + len(g["incorrect"])
        assert abs(sec.correct - len(g["correct"])) <= 1  # float32 near-ties at most
    assert 0.15 < ours.accuracy < 0.95  # measured 0.24-0.3: a real mix of right and wrong answers
    assert 0.05 < ours.coverage < 1.0
    assert ours.semantic.total + ours.syntactic.total == ours.total.total == 700


def test_3cosmul_matches_vectors_analogy_and_gensim_cosmul(gensim_kv):
    v = Vectors.from_gensim(gensim_kv)
    qs = [Question("man", "king", "woman", "queen", "s", "semantic", 1)]
    words = [w for w in ("France", "Paris", "Germany", "Berlin") if w in v]
    assert len(words) == 4
    qs.append(Question(*words, "s", "semantic", 2))
    for q in qs:
        res = evaluate_analogies(v, [q], method="3cosmul", restrict_vocab=None)
        best = v.analogy(q.a, q.b, q.c, method="3cosmul")[0][0]
        assert res.total.correct == int(best.upper() == q.d.upper())
        g = gensim_kv.most_similar_cosmul(positive=[q.b, q.c], negative=[q.a], topn=1)[0][0]
        assert v.analogy(q.a, q.b, q.c, method="3cosmul", epsilon=1e-6)[0][0] == g


def test_case_insensitive_excludes_case_variants_of_question_words():
    # "Paris" is the most frequent form; its lower-case twin must not be the answer.
    words = ["Paris", "France", "Berlin", "Germany", "paris"]
    m = np.array([[1, 0, 0.1], [0, 1, 0], [1, 0, 0], [0, 1.2, 0], [1, 0, 0.12]], np.float32)
    v = Vectors(words, m)
    q = [Question("france", "paris", "germany", "berlin", "capitals", "semantic", 1)]
    assert evaluate_analogies(v, q).accuracy == 1.0
    with pytest.raises(UserError, match="coverage 0 of 1"):
        evaluate_analogies(v, q, case_insensitive=False)  # "france" is not "France"
    with pytest.raises(UserError, match="coverage 0"):
        evaluate_analogies(v, q, restrict_vocab=2)


def test_readers_msr_google_and_bad_lines(tmp_path):
    msr = read_analogies(data_path("word_analogy", "msr.csv"))
    assert len(msr) == 8000 and msr[0].section == "JJ_JJR" and msr[0].d == "rougher"
    google = read_analogies()
    assert len(google) == 19544
    assert {q.kind for q in google if q.section == "family"} == {"semantic"}
    assert sum(q.kind == "syntactic" for q in google) == 10675
    bad = tmp_path / "bad.txt"
    bad.write_text(": s\na b c d\na b c\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.txt:3: expected 4 words"):
        read_analogies(bad)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(",type,word1,word2,word3,target\n0,X,a,b,c\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.csv:2:"):
        read_analogies(bad_csv)
    with pytest.raises(FormatError, match=r"bad2.csv:1: expected a CSV header"):
        (tmp_path / "bad2.csv").write_text("a,b,c,d\n", encoding="utf-8")
        read_analogies(tmp_path / "bad2.csv")


def test_result_table_and_dict(gensim_kv):
    v = Vectors.from_gensim(gensim_kv)
    res = evaluate_analogies(v, data_path("word_analogy", "msr.csv"), restrict_vocab=10000)
    d = res.to_dict()
    assert d["coverage"] == res.total.answered / 8000
    assert d["syntactic"]["total"] == 8000 and d["semantic"]["total"] == 0
    text = res.format()
    assert "coverage" in text and "NN_NNS" in text
    assert res.summary()["analogy 3cosadd coverage"] == res.coverage


def _planted_pairs(n=30, noise=0.4, seed=0):
    """Words x_i, y_i with y_i = x_i + one offset + noise; questions x_i : y_i :: x_j : y_j."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16))
    y = x + 2.0 * rng.standard_normal(16) + noise * rng.standard_normal((n, 16))
    words = [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(n)]
    qs = [
        Question(f"x{i}", f"y{i}", f"x{j}", f"y{j}", "rel" if i < n // 2 else "gram-rel",
                 "semantic" if i < n // 2 else "syntactic", i * n + j)
        for i in range(n) for j in range(n) if i != j
    ]  # fmt: skip
    return Vectors(words, np.vstack([x, y]).astype(np.float32)), qs


def test_every_accuracy_carries_an_interval_and_pairs_on_shared_questions():
    from textdecade.eval.paired import compare_results

    v, qs = _planted_pairs()
    res = evaluate_analogies(v, qs, restrict_vocab=None)
    for row in (*res.sections, res.semantic, res.syntactic, res.total):
        assert row.interval.low <= row.accuracy <= row.interval.high, row.name
    assert res.interval.high - res.interval.low < 0.2  # 870 questions: a few points wide
    assert evaluate_analogies(v, qs, restrict_vocab=None).interval == res.interval
    assert evaluate_analogies(v, qs, restrict_vocab=None, ci=0).interval is None
    assert "[" in res.format() and res.to_dict()["total"]["intervals"]["accuracy"]["level"] == 0.95
    assert "analogy 3cosadd acc low" in res.summary()
    # a noisier model that lacks x0: it answers fewer questions, compared on the shared ones
    noisy, _ = _planted_pairs(noise=1.5, seed=0)
    keep = [i for i, w in enumerate(noisy.words) if w != "x0"]
    noisy = Vectors([noisy.words[i] for i in keep], noisy.matrix[keep])
    other = evaluate_analogies(noisy, qs, restrict_vocab=None)
    cmp = compare_results("analogy", res, other).rows[0]
    shared = other.total.answered
    assert shared < res.total.answered
    assert cmp.paired.n == shared and f"{shared} questions answered by both" in cmp.items
    assert cmp.paired.p_value < 0.01 and cmp.paired.difference.low > 0
