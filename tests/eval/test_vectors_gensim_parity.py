"""Vectors against gensim's KeyedVectors on the same words and matrix: every query, both
evaluations (sections, tuples, scores) on the shared analogy and similarity files."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from textdecade.errors import OutOfVocabulary
from textdecade.eval.analogy import evaluate_analogies
from textdecade.eval.keyed import EmptyQuery
from textdecade.eval.similarity import read_pairs
from textdecade.eval.vectors import Vectors

SECTIONS = ("capital-common-countries", "currency", "family", "gram1-adjective-to-adverb")
PER_SECTION = 15
V, D = 300, 20


@pytest.fixture(scope="module")
def analogy_file(tmp_path_factory):
    """The first questions of four sections of the shared questions-words.txt."""
    out, section, kept = [], None, 0
    for line in open(data_path("word_analogy", "questions-words.txt"), encoding="utf-8"):
        if line.startswith(":"):
            section, kept = line[1:].strip(), 0
            if section in SECTIONS:
                out.append(line)
        elif section in SECTIONS and kept < PER_SECTION:
            out.append(line)
            kept += 1
    path = tmp_path_factory.mktemp("analogy") / "questions.txt"
    path.write_text("".join(out), encoding="utf-8")
    return path


def _analogy_words(path):
    return [line.split() for line in open(path, encoding="utf-8") if not line.startswith(":")]


@pytest.fixture(scope="module")
def pair(analogy_file):
    """(Vectors, gensim KeyedVectors) over the same 300 real English words x 20 dims.

    The analogy relations are planted as noisy offsets (a mix of right and wrong answers),
    WS-353 pairs as noisy copies scaled by their human score, and case variants sit beside
    their words (lower-cased capitals after them, capitalized "Tiger"/"Money" before theirs)
    so the case-insensitive rules are exercised.
    """
    questions = _analogy_words(analogy_file)
    ws = data_path("word_similarity", "gensim", "wordsim353.tsv")
    sim = [(p.a, p.b, p.score) for p in read_pairs(ws)][:90]
    words = list(dict.fromkeys(w for q in questions for w in q))
    capitals = [w for w in words if w[0].isupper()][:8]
    sim_words = [w for a, b, _ in sim for w in (a, b) if w not in words]
    words += ["Tiger", "Money"] + list(dict.fromkeys(sim_words))
    words += [w.lower() for w in capitals]
    more = [w for q in _analogy_words(data_path("word_analogy", "questions-words.txt")) for w in q]
    words += [w for w in dict.fromkeys(more) if w not in set(words)][: V - len(words)]
    words = list(dict.fromkeys(words))
    assert len(words) == V
    row = {w: i for i, w in enumerate(words)}
    rng = np.random.default_rng(21)
    m = rng.standard_normal((V, D)).astype(np.float32)
    offsets = {}
    section = None
    for line in open(analogy_file, encoding="utf-8"):
        if line.startswith(":"):
            section = line
            offsets[section] = rng.standard_normal(D)
            continue
        a, b, c, d = line.split()
        for x, y in ((a, b), (c, d)):
            m[row[y]] = m[row[x]] + offsets[section] + 1.2 * rng.standard_normal(D)
    analogy_words = {w for q in questions for w in q}
    for a, b, score in sim:
        if b not in analogy_words:  # keep the planted analogies intact
            m[row[b]] = m[row[a]] * score / 10 + (1 - score / 10) * rng.standard_normal(D)
    for w in (*capitals, "tiger", "money"):
        variant = w.lower() if w[0].isupper() else w.capitalize()
        m[row[variant]] = m[row[w]] + 1.2 * rng.standard_normal(D)
    counts = list(range(10 * V, 0, -10))
    v = Vectors(words, m, counts)
    return v, v.to_gensim()


def _same(ours, theirs):
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_surface_attributes(pair):
    v, kv = pair
    assert v.index_to_key == kv.index_to_key and v.key_to_index == kv.key_to_index
    np.testing.assert_array_equal(v.vectors, kv.vectors)
    np.testing.assert_allclose(v.get_normed_vectors(), kv.get_normed_vectors(), atol=1e-6)
    keys = ["Athens", "euro", 3]
    np.testing.assert_array_equal(v[keys], kv[keys])  # (3, D); an int key is a row
    assert v.get_index("Greece") == kv.get_index("Greece") and v.get_index("zzz", 7) == 7
    assert "Athens" in v and "athens" in v and "zzz" not in v and 5 in v and V not in v
    with pytest.raises(KeyError):  # OutOfVocabulary is a KeyError, as gensim's is
        v["zzz"]


def _queries(v):
    vec = v["Greece"] + 0.5 * v["euro"]
    return [
        dict(positive="Athens"),
        dict(positive=["Athens", "Greece"], negative=["Baghdad"]),
        dict(positive=[("Athens", 2.0), "Greece"], negative=[("Baghdad", -0.5), "Iraq"]),
        dict(positive=[vec], negative="Greece"),
        dict(positive=[vec, "Athens"]),
        dict(positive=np.stack([vec, v["Iraq"]])),  # the rows of a (N, D) array
        dict(positive=["boy", "queen"], negative=["girl"], restrict_vocab=120),
        dict(negative=["dinar"]),
    ]


def test_most_similar_matches_gensim(pair):
    v, kv = pair
    for query in _queries(v):
        _same(v.most_similar(**query, topn=10), kv.most_similar(**query, topn=10))
        np.testing.assert_allclose(
            v.most_similar(**query, topn=None), kv.most_similar(**query, topn=None), atol=1e-5
        )
    assert v.most_similar("Athens", topn=0) == kv.most_similar("Athens", topn=0) == []
    _same(v.similar_by_word("euro", topn=5), kv.similar_by_word("euro", topn=5))
    _same(v.similar_by_vector(v["euro"], 5), kv.similar_by_vector(kv["euro"], 5))
    with pytest.raises(OutOfVocabulary):
        v.most_similar(["Athens", "zzz"])
    with pytest.raises(EmptyQuery):
        v.most_similar()


def test_most_similar_cosmul_matches_gensim(pair):
    v, kv = pair
    vec = v["Greece"] + 0.5 * v["euro"]
    for pos, neg in (
        (["Greece", "Baghdad"], ["Athens"]),
        ("boy", "girl"),
        (["king"], None),
        ([vec, "Iraq"], ["Athens", "dinar"]),
    ):
        _same(v.most_similar_cosmul(pos, neg, topn=10), kv.most_similar_cosmul(pos, neg, topn=10))
        full = kv.most_similar_cosmul(pos, neg, topn=None)
        ours = v.most_similar_cosmul(pos, neg, topn=None)
        np.testing.assert_allclose(ours, full, rtol=1e-5, atol=1e-5)
        # gensim 4.4 ignores restrict_vocab here; ours searches the first R rows only
        cut = v.most_similar_cosmul(pos, neg, topn=None, restrict_vocab=100)
        np.testing.assert_allclose(cut, full[:100], rtol=1e-5, atol=1e-5)
    three = v.analogy("Athens", "Greece", "Baghdad", topn=3, method="3cosmul", epsilon=1e-6)
    _same(three, kv.most_similar_cosmul(["Greece", "Baghdad"], ["Athens"], topn=3))


def test_sets_pairs_and_ranks_match_gensim(pair):
    v, kv = pair
    for words in (["Athens", "Greece", "Baghdad", "euro"], ["boy", "girl", "king", "dinar"]):
        assert v.doesnt_match(words) == kv.doesnt_match(words)
        ours, theirs = v.rank_by_centrality(words), kv.rank_by_centrality(words)
        assert [w for _, w in ours] == [w for _, w in theirs]
        np.testing.assert_allclose([s for s, _ in ours], [s for s, _ in theirs], atol=1e-5)
    assert v.doesnt_match(["boy", "girl", "zzz", "euro"]) == "euro"  # unknown words ignored
    for ws1, ws2 in ((["boy", "king"], ["girl", "queen"]), (["euro"], ["dinar", "zzz"])):
        assert v.n_similarity(ws1, ws2) == pytest.approx(float(kv.n_similarity(ws1, ws2)), abs=1e-5)
    for a, b in (("boy", "girl"), ("Athens", "athens"), ("euro", "Iraq")):
        assert v.similarity(a, b) == pytest.approx(float(kv.similarity(a, b)), abs=1e-5)
        assert v.distance(a, b) == pytest.approx(float(kv.distance(a, b)), abs=1e-5)
        assert v.rank(a, b) == kv.rank(a, b)
        assert v.closer_than(a, b) == kv.closer_than(a, b)
    np.testing.assert_allclose(v.distances("boy"), kv.distances("boy"), atol=1e-5)
    others = ["girl", "euro", "Athens"]
    np.testing.assert_allclose(v.distances("boy", others), kv.distances("boy", others), atol=1e-5)
    np.testing.assert_allclose(v.distances(v["euro"]), kv.distances(kv["euro"]), atol=1e-5)
    assert v.most_similar_to_given("boy", others) == kv.most_similar_to_given("boy", others)
    for kw in (dict(), dict(pre_normalize=False, post_normalize=True)):
        keys, weights = ["boy", v["euro"], "girl"], [1.0, 2.0, -0.5]
        np.testing.assert_allclose(
            v.get_mean_vector(keys, weights, **kw),
            kv.get_mean_vector(keys, weights, **kw),
            atol=1e-6,
        )


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(restrict_vocab=90),
        dict(restrict_vocab=90, dummy4unknown=True),
        dict(case_insensitive=False),
    ],
)
def test_evaluate_word_analogies_matches_gensim(pair, analogy_file, options):
    v, kv = pair
    score, sections = v.evaluate_word_analogies(analogy_file, **options)
    g_score, g_sections = kv.evaluate_word_analogies(str(analogy_file), **options)
    assert [s["section"] for s in sections] == [*SECTIONS, "Total accuracy"]
    assert sections == g_sections  # the same (a, b, c, expected) tuples, right and wrong
    assert score == pytest.approx(g_score, abs=1e-12)
    total = sections[-1]
    assert total["correct"] and total["incorrect"]  # a real mix, not a vacuous agreement
    answered = len(total["correct"]) + len(total["incorrect"])
    if "restrict_vocab" in options and not options.get("dummy4unknown"):
        assert answered < len(SECTIONS) * PER_SECTION  # questions with a rare word are skipped
    else:
        assert answered == len(SECTIONS) * PER_SECTION
    if options.get("case_insensitive", True):
        assert total["correct"][0][0].isupper()  # gensim's tuples are upper-cased


def test_evaluate_word_analogies_cosmul_is_the_suites_3cosmul(pair, analogy_file):
    v, _ = pair  # gensim 4.4 ignores similarity_function; ours runs 3CosMul (eps 1e-6)
    score, sections = v.evaluate_word_analogies(
        analogy_file, similarity_function="most_similar_cosmul"
    )
    suite = evaluate_analogies(v, analogy_file, "3cosmul", restrict_vocab=None, epsilon=1e-6)
    assert score == suite.accuracy and len(sections[-1]["correct"]) == suite.total.correct
    assert score != v.evaluate_word_analogies(analogy_file)[0]  # not 3CosAdd's answers


def test_evaluate_word_analogies_with_no_answerable_question(pair, tmp_path):
    v, kv = pair
    path = tmp_path / "oov.txt"
    path.write_text(": made-up\nzzz yyy xxx www\nAthens Greece qqq Iraq\n", encoding="utf-8")
    for dummy in (False, True):
        ours = v.evaluate_word_analogies(path, dummy4unknown=dummy)
        assert ours == kv.evaluate_word_analogies(str(path), dummy4unknown=dummy)


def _pairs_equal(ours, theirs):
    (r, rp), (rho, rhop), oov = ours
    (gr, grp), (grho, grhop), goov = theirs
    assert r == pytest.approx(gr, abs=1e-5) and rho == pytest.approx(grho, abs=1e-5)
    assert rp == pytest.approx(grp, rel=1e-3, abs=1e-12)
    assert rhop == pytest.approx(grhop, rel=1e-3, abs=1e-12)
    assert oov == pytest.approx(goov, abs=1e-9)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(restrict_vocab=200),
        dict(restrict_vocab=200, dummy4unknown=True),
        dict(case_insensitive=False),
    ],
)
def test_evaluate_word_pairs_matches_gensim(pair, options):
    v, kv = pair
    ws = data_path("word_similarity", "gensim", "wordsim353.tsv")
    ours = v.evaluate_word_pairs(ws, **options)
    _pairs_equal(ours, kv.evaluate_word_pairs(str(ws), **options))
    (r, _), (rho, p), oov = ours
    assert rho > 0.2 and p < 1e-3  # the planted scores come through: not a vacuous check
    assert 50 < oov < 100  # 90 of 353 pairs planted; the rest mostly out of vocabulary


def test_evaluate_word_pairs_other_delimiter(pair, tmp_path):
    v, kv = pair
    ws = data_path("word_similarity", "gensim", "wordsim353.tsv")
    path = tmp_path / "ws.csv.txt"
    path.write_text(open(ws, encoding="utf-8").read().replace("\t", ","), encoding="utf-8")
    _pairs_equal(
        v.evaluate_word_pairs(path, delimiter=","), kv.evaluate_word_pairs(str(path), delimiter=",")
    )
    with pytest.raises(EmptyQuery):
        v.evaluate_word_pairs(path, delimiter=",", restrict_vocab=1)
