"""Static vectors from contextual encoders: input-embedding pooling and occurrence averaging."""

from __future__ import annotations

import numpy as np
import pytest

from textdecade.errors import UserError
from textdecade.eval.contextual import ContextualEncoder, StaticEncoder, static_vectors
from textdecade.eval.similarity import default_similarity_paths, evaluate_similarity, read_pairs


class PositionEncoder:
    """A stand-in encoder whose state of a word is onehot(word) + onehot(position)."""

    dim = 16

    def __init__(self, vocab):
        self.id = {w: i for i, w in enumerate(vocab)}

    def word_states(self, sentences, layers="last", batch_size=32):
        eye = np.eye(self.dim, dtype=np.float32)
        return [
            np.stack([eye[self.id[w] % 8] + eye[8 + p % 8] for p, w in enumerate(s)])
            for s in sentences
        ]

    def input_word_vectors(self, words):
        eye = np.eye(self.dim, dtype=np.float32)
        return np.stack([eye[self.id.get(w, 0) % 8] for w in words])


def test_context_vectors_average_the_first_occurrences():
    corpus = ["a b c", "b a", "c c a b", "a", "d e"]
    enc = PositionEncoder(["a", "b", "c", "d", "e", "z"])
    assert isinstance(enc, ContextualEncoder)
    v = static_vectors(enc, ["z"], corpus=corpus, method="context", max_occurrences=2)
    assert v.meta["method"] == "context" and v.meta["words_with_contexts"] == 5
    assert v.words[:3] == ["a", "b", "c"] and v.words[-1] == "z"  # by frequency, unseen last
    assert v.counts[:3] == [4, 3, 3] and v.counts[-1] == 0
    eye = np.eye(16, dtype=np.float32)
    # "a" first occurs at positions 0 ("a b c") and 1 ("b a"): the cap of 2 keeps those.
    np.testing.assert_allclose(v["a"], eye[0] + (eye[8] + eye[9]) / 2)
    # "c": positions 2 ("a b c") then 0 ("c c a b").
    np.testing.assert_allclose(v["c"], eye[2] + (eye[10] + eye[8]) / 2)
    np.testing.assert_allclose(v["z"], eye[5])  # never seen: its input vector
    inp = static_vectors(enc, ["a", "z"], corpus=corpus, method="input", top_k=0)
    assert inp.meta["method"] == "input" and inp.words == ["a", "z"]
    with pytest.raises(UserError, match="unknown static-vector method"):
        static_vectors(enc, ["a"], method="mean")


@pytest.mark.slow
def test_minilm_input_vectors_score_on_wordsim(minilm):
    words = sorted(
        {w.lower() for p in default_similarity_paths() for q in read_pairs(p) for w in (q.a, q.b)}
    )
    v = static_vectors(minilm, words, method="input")
    res = evaluate_similarity(v)
    assert res.vectors_method == "input" and "vectors: input" in res.format()
    assert res.sets[0].coverage == 1.0
    assert res.sets[0].spearman > 0.6  # measured 0.74 on WS-353 (SimLex-999: 0.47)


@pytest.mark.slow
def test_minilm_context_vectors_on_real_text(minilm, corpus_lines):
    lines = corpus_lines("gensim_lee.txt", 6)
    v = static_vectors(
        minilm, ["police"], corpus=lines, top_k=40, max_occurrences=2, lowercase=True
    )
    assert v.meta["method"] == "context" and v.vector_size == 384
    assert v.meta["words_with_contexts"] >= 40
    inp = minilm.input_word_vectors(v.words[:5])
    assert not np.allclose(v.matrix[:5], inp)  # contextual states, not the input rows
    assert StaticEncoder(v).word_states([["the", "police"]])[0].shape == (2, 384)


def test_hf_encoder_pools_pieces_like_transformers_itself(minilm):
    import torch

    words = ["the", "unbelievably", "tall", "crane", "swung"]
    enc = minilm.tokenizer(" ".join(words), return_tensors="pt")
    with torch.inference_mode():
        hs = minilm.model(**enc, output_hidden_states=True).hidden_states
    pieces = minilm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    span = [i for i, p in enumerate(pieces) if p in ("un", "##bel", "##ie", "##va", "##bly")]
    assert len(span) > 1  # "unbelievably" is several pieces
    last, last4 = (minilm.word_states([words], layers=k)[0] for k in ("last", "last4"))
    np.testing.assert_allclose(last[1], hs[-1][0, span].mean(0).numpy(), atol=1e-5)
    padded = minilm.word_states([words, words * 4])[0]  # batched with a longer sentence
    np.testing.assert_allclose(padded, last, atol=1e-4)
    np.testing.assert_allclose(
        last4[3], torch.stack(hs[-4:]).sum(0)[0, pieces.index("crane")].numpy(), atol=1e-4
    )
    table = minilm.model.get_input_embeddings().weight.detach().numpy()
    ids = minilm.tokenizer("unbelievably", add_special_tokens=False)["input_ids"]
    np.testing.assert_allclose(minilm.input_word_vectors(["unbelievably"])[0], table[ids].mean(0))
