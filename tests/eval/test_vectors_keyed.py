"""Vectors: gensim KeyedVectors semantics on real trained vectors, safetensors, backoff."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from textdecade.errors import FormatError, OutOfVocabulary
from textdecade.eval.vectors import Vectors, load_vectors_or_none


@pytest.fixture(scope="module")
def trained():
    """A gensim Word2Vec trained in ~2 s on the Lee corpus (real English)."""
    from gensim.models import Word2Vec
    from gensim.utils import simple_preprocess

    path = data_path("corpus_en", "gensim_lee.txt")
    sentences = [simple_preprocess(line) for line in open(path, encoding="utf-8")]
    model = Word2Vec(sentences, vector_size=32, min_count=3, epochs=5, seed=1, workers=1)
    return model.wv


def test_most_similar_matches_gensim(trained):
    v = Vectors.from_gensim(trained)
    assert v.words == trained.index_to_key and v.counts is not None
    for query in (dict(positive=["police"]), dict(positive=["man", "king"], negative=["woman"])):
        ours = v.most_similar(**query, topn=10)
        theirs = trained.most_similar(**query, topn=10)
        assert [w for w, _ in ours] == [w for w, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    vec = trained["police"]
    assert [w for w, _ in v.most_similar(vec, topn=5)] == [
        w for w, _ in trained.most_similar(positive=[vec], topn=5)
    ]
    assert [w for w, _ in v.most_similar("police", topn=5, restrict_vocab=200)] == [
        w for w, _ in trained.most_similar("police", topn=5, restrict_vocab=200)
    ]
    assert v.similarity("police", "officers") == pytest.approx(
        float(trained.similarity("police", "officers")), abs=1e-5
    )
    cosmul = v.analogy("man", "king", "woman", topn=3, method="3cosmul", epsilon=1e-6)
    assert [w for w, _ in cosmul] == [
        w for w, _ in trained.most_similar_cosmul(["king", "woman"], ["man"], topn=3)
    ]
    assert v.analogy("man", "king", "woman", topn=3) == v.most_similar(
        ["king", "woman"], ["man"], topn=3
    )


def test_safetensors_roundtrip_keeps_counts(tmp_path, trained):
    v = Vectors.from_gensim(trained)
    v.save(tmp_path / "v.safetensors")
    back = load_vectors_or_none(tmp_path / "v.safetensors")
    assert back.words == v.words and back.counts == v.counts
    np.testing.assert_array_equal(back.matrix, v.matrix)
    kv = back.to_gensim()
    assert kv.get_vecattr(v.words[0], "count") == v.counts[0]
    assert load_vectors_or_none(tmp_path) is None  # a directory is a run, not vectors


def test_oov_and_backoff():
    v = Vectors(["a", "b"], np.eye(2))
    with pytest.raises(OutOfVocabulary, match="'zzz' is not in the vocabulary"):
        v["zzz"]
    assert "zzz" not in v and "a" in v and len(v) == 2 and v.index["b"] == 1
    backed = Vectors(["a", "b"], np.eye(2), backoff=lambda w: np.array([1.0, 1.0]))
    np.testing.assert_allclose(backed["zzz"], [1.0, 1.0])
    assert backed.most_similar("zzz", topn=1)[0][1] == pytest.approx(2**-0.5)
    with pytest.raises(FormatError, match="unknown vectors suffix"):
        v.save("x.npy")
    with pytest.raises(ValueError, match="distinct"):
        Vectors(["a", "a"], np.eye(2))
    assert not v.matrix.flags.writeable


def test_membership_is_lookup_with_backoff():
    """Issue #21: ``"king" in V`` was False while ``V["king"]`` gave King's vector (backoff)."""
    words = ["King", "queen", "man"]
    m = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    folded = {w.lower(): i for i, w in enumerate(words)}

    def backoff(word):  # a case-folding backoff, as a lower-casing tokenizer's pieces give
        row = folded.get(word.lower())
        return None if row is None else m[row]

    v = Vectors(words, m, backoff=backoff)
    assert "king" in v  # V["king"] returns a vector, so the word is in V
    np.testing.assert_array_equal(v["king"], v["King"])
    assert "king" not in v.key_to_index and v.key_to_index["King"] == 0  # exact vocabulary
    assert not v.has_index_for("king") and v.has_index_for("King")
    assert "zzz" not in v  # backoff returns None: neither in V nor a vector
    with pytest.raises(OutOfVocabulary):
        v["zzz"]


def test_a_case_variant_is_found_before_the_pieces_and_membership_agrees():
    from textdecade.eval.vectors import case_folding_backoff

    v = Vectors(["the", "King", "king", "Paris"], np.eye(4, dtype=np.float32))
    pieces = {"xyz": np.full(4, 9.0, dtype=np.float32)}
    v.backoff = case_folding_backoff(v, pieces.get)
    assert np.array_equal(v["KING"], v.matrix[1])  # the most frequent variant (rows are)
    assert np.array_equal(v["PARIS"], v.matrix[3]) and np.array_equal(v["xyz"], pieces["xyz"])
    assert all(w in v for w in ("KING", "paris", "xyz")) and "qqq" not in v
    assert "KING" not in v.key_to_index  # the exact vocabulary is unchanged
