"""The handle's sentence-transformers surface (``textdecade.st_compat``): ``encode``,
``similarity``, ``max_seq_length`` and ``semantic_search`` against sentence-transformers
itself on all-MiniLM-L6-v2, and the same calls on a tiny textdecade model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_api_support import minilm_dir, tiny_gpt, tiny_tokenizer
from textdecade.api import TextModel
from textdecade.errors import ConfigError, UserError
from textdecade.st_compat import quantize, semantic_search

# ours warns when a text is cut to the context; sentence-transformers cuts silently
pytestmark = pytest.mark.filterwarnings("ignore:.*truncated:UserWarning")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def pair():
    """(ours, sentence-transformers') all-MiniLM-L6-v2: the one load of each here."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    import textdecade as td

    path = str(minilm_dir())
    return td.load(path, device="cpu"), SentenceTransformer(path, device="cpu")


@pytest.fixture(scope="module")
def texts(corpus_lines):
    # real sentences of all lengths, plus a Lee document of 381 tokens, longer than the
    # 256-token context (both sides must cut it the same way)
    return corpus_lines("nltk_brown.txt", 120)[::7][:16] + corpus_lines("gensim_lee.txt", 1)


@pytest.fixture(scope="module")
def encoded(pair, texts):
    """Both sides' normalized sentence embeddings of ``texts`` (computed once)."""
    ours, st = pair
    return (
        ours.encode(texts, normalize_embeddings=True),
        st.encode(texts, normalize_embeddings=True),
    )


def test_encode_matches_sentence_transformers(pair, texts, encoded):
    ours, ref = encoded
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32 and ours.shape == ref.shape
    assert _cosines(ours, ref).min() >= 0.9999
    # a prompt is prepended to each text, on both sides
    short = texts[:4]
    mine = pair[0].encode(short, prompt="query: ")
    theirs = pair[1].encode(short, prompt="query: ")
    assert _cosines(mine, theirs).min() >= 0.9999
    assert _cosines(mine, ours[:4]).max() < 0.999  # the prompt changed the vectors


def test_encode_shapes_and_types_follow_sentence_transformers(pair, texts, encoded):
    model, st = pair
    one = model.encode(texts[3], normalize_embeddings=True)
    assert one.shape == st.encode(texts[3]).shape == (384,)
    np.testing.assert_allclose(one, encoded[0][3], atol=1e-5)
    as_tensor = model.encode(texts[:3], convert_to_tensor=True)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (3, 384)
    np.testing.assert_allclose(as_tensor.numpy(), encoded[0][:3], atol=1e-5)  # MiniLM normalizes
    rows = model.encode(texts[:3], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 3 and all(r.shape == (384,) for r in rows)
    empty = model.encode([])
    assert isinstance(empty, np.ndarray) and empty.shape == st.encode([]).shape == (0,)


def test_token_embeddings_match_sentence_transformers(pair, texts):
    model, st = pair
    sample = [texts[0], texts[5], texts[-1]]  # the last is cut to 256 tokens on both sides
    ours = model.encode(sample, output_value="token_embeddings")
    ref = st.encode(sample, output_value="token_embeddings")
    assert isinstance(ours, list) and [t.shape for t in ours] == [t.shape for t in ref]
    assert ours[-1].shape == (256, 384)
    for mine, theirs in zip(ours, ref):
        torch.testing.assert_close(mine, theirs.cpu(), atol=1e-4, rtol=1e-4)
    one = model.encode(texts[5], output_value="token_embeddings")
    assert isinstance(one, torch.Tensor) and one.shape == ref[1].shape


def test_truncate_dim_keeps_the_leading_dimensions(pair, texts, encoded):
    model, st = pair
    short = texts[:6]
    cut = model.encode(short, truncate_dim=64)
    np.testing.assert_allclose(cut, encoded[0][:6, :64], atol=1e-5)
    np.testing.assert_allclose(cut, st.encode(short, truncate_dim=64), atol=1e-4)
    assert np.linalg.norm(cut, axis=1).max() < 0.99  # cut after the model's Normalize
    unit = model.encode(short, truncate_dim=64, normalize_embeddings=True)  # ...then normalized
    np.testing.assert_allclose(
        unit, st.encode(short, truncate_dim=64, normalize_embeddings=True), atol=1e-4
    )
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_precisions_match_quantize_embeddings(pair, texts, encoded):
    from sentence_transformers.util.quantization import quantize_embeddings

    model, st = pair
    ref = encoded[1]
    for precision in ("int8", "uint8", "binary", "ubinary"):
        # the same floats give the same codes
        expected = quantize_embeddings(ref, precision=precision)
        got = quantize(ref, precision)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    # through encode: the sign bits agree exactly, buckets to within one (float rounding)
    short = texts[:8]
    np.testing.assert_array_equal(
        model.encode(short, precision="ubinary"), st.encode(short, precision="ubinary")
    )
    mine = model.encode(short, precision="int8").astype(int)
    assert mine.shape == (8, 384) and np.abs(mine - st.encode(short, precision="int8")).max() <= 1
    with pytest.raises(ConfigError, match="float32, int8, uint8, binary, ubinary"):
        model.encode(short, precision="float16")


def test_similarity_matches_sentence_transformers(pair, encoded):
    ours, ref = encoded
    sim = pair[0].similarity(ours[:5], ours)
    assert isinstance(sim, torch.Tensor) and sim.shape == (5, len(ours))
    torch.testing.assert_close(sim, pair[1].similarity(ref[:5], ref), atol=1e-4, rtol=0)
    torch.testing.assert_close(sim.diagonal(), torch.ones(5), atol=1e-5, rtol=0)
    one = pair[0].similarity(torch.from_numpy(ours[0]), ours[:5])  # a vector is one row
    assert one.shape == (1, 5)


def test_semantic_search_matches_sentence_transformers(pair, texts, encoded):
    from sentence_transformers.util import semantic_search as st_search

    ours = torch.from_numpy(encoded[0])
    queries = ours[[1, 7, 12]]
    mine = semantic_search(queries, ours, top_k=5)
    theirs = st_search(queries, ours, top_k=5)
    assert [[h["corpus_id"] for h in q] for q in mine] == [
        [h["corpus_id"] for h in q] for q in theirs
    ]
    for q_mine, q_theirs in zip(mine, theirs):
        np.testing.assert_allclose(
            [h["score"] for h in q_mine], [h["score"] for h in q_theirs], atol=1e-5
        )
        assert [h["score"] for h in q_mine] == sorted((h["score"] for h in q_mine), reverse=True)
    # on the handle, from texts: each sentence minus its last word finds the sentence
    sentences = [t for t in texts[:-1] if len(t.split()) >= 6]
    cut = [" ".join(t.split()[:-1]) for t in sentences]
    hits = pair[0].semantic_search(cut, sentences, top_k=3)
    assert len(hits) == len(cut) and all(len(h) == 3 for h in hits)
    assert np.mean([h[0]["corpus_id"] == i for i, h in enumerate(hits)]) >= 0.9


def test_max_seq_length_reads_and_cuts_as_sentence_transformers(pair, texts):
    model, st = pair
    assert model.max_seq_length == st.max_seq_length == 256
    long = [texts[-1], max(texts[:-1], key=len)]
    try:
        model.max_seq_length = st.max_seq_length = 32
        ours = model.encode(long, output_value="token_embeddings")
        assert [t.shape[0] for t in ours] == [32, 32]  # both cut
        assert _cosines(model.encode(long), st.encode(long)).min() >= 0.9999
        with pytest.raises(ConfigError, match="max_seq_length"):
            model.max_seq_length = 513  # past MiniLM's 512 positions
    finally:
        model.max_seq_length = st.max_seq_length = 256
    assert model.encode(long[0], output_value="token_embeddings").shape[0] == 256  # restored


def test_encode_on_a_tiny_textdecade_model(corpus_lines):
    # no MiniLM needed: a randomly initialised 2-layer GPT on a tokenizer trained on real text
    lines = corpus_lines("gensim_lee.txt", 200)
    tok = tiny_tokenizer(lines)
    gpt = TextModel("gpt", tiny_gpt(tok), tok, torch.device("cpu"))
    sentences = [
        s.strip() + "." for line in lines for s in line.split(". ") if 3 < len(s.split()) < 25
    ][:12]
    # encode is embed under sentence-transformers' names (last-token pooling, no Normalize)
    np.testing.assert_allclose(gpt.encode(sentences), gpt.embed(sentences), atol=1e-6)
    unit = gpt.encode(sentences, normalize_embeddings=True, truncate_dim=8, convert_to_tensor=True)
    expected = torch.nn.functional.normalize(torch.from_numpy(gpt.embed(sentences))[:, :8], dim=-1)
    torch.testing.assert_close(unit, expected, atol=1e-5, rtol=0)
    # token states: the last one of each text is its (last-pooled) sentence vector
    tokens = gpt.encode(sentences[:3], output_value="token_embeddings")
    assert [t.shape[0] for t in tokens] == [len(tok.encode(s)) for s in sentences[:3]]
    np.testing.assert_allclose(
        torch.stack([t[-1] for t in tokens]).numpy(), gpt.embed(sentences[:3]), atol=1e-5
    )
    hits = gpt.semantic_search(sentences[:4], sentences, top_k=1)
    assert [h[0]["corpus_id"] for h in hits] == [0, 1, 2, 3]  # each text finds itself
    assert gpt.max_seq_length == 64
    for bad in (
        lambda: gpt.encode(sentences, output_value=None),
        lambda: gpt.encode(sentences, truncate_dim=0),
        lambda: gpt.encode(sentences[:1], precision="int8"),  # no batch to calibrate on
        lambda: gpt.encode([1, 2]),
        lambda: setattr(gpt, "max_seq_length", 65),
    ):
        with pytest.raises(UserError):
            bad()
