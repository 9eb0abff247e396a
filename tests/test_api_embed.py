"""``TextModel.embed`` / ``embed_words`` conventions on tiny textdecade models and real text."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
import torch

from tests.test_api_support import tiny_gpt, tiny_tokenizer
from textdecade.api import TextModel, embed_to_file
from textdecade.errors import ConfigError, UserError
from textdecade.models.base import StaticVectors, WordTable


@pytest.fixture(scope="module")
def lines(corpus_lines):
    return corpus_lines("gensim_lee.txt", 200)


@pytest.fixture(scope="module")
def tok(lines):
    return tiny_tokenizer(lines)


@pytest.fixture(scope="module")
def gpt(tok):
    return TextModel("gpt", tiny_gpt(tok), tok, torch.device("cpu"))


def _sentences(lines: list[str], n: int) -> list[str]:
    """Real sentences of varied length (cut from the Lee documents at full stops)."""
    out = [s.strip() + "." for line in lines for s in line.split(". ") if 3 < len(s.split()) < 25]
    return out[:n]


def test_capabilities_are_declared_not_named(gpt, tok):
    # the family name is a label only: causality is what the model's class declares
    from textdecade.eval.contextual import ContextualEncoder

    assert gpt.causal and gpt.pooling == "last" and gpt.dim == 32
    assert isinstance(gpt, ContextualEncoder)  # the evaluation suite takes handles as they are
    relabelled = TextModel("anything", gpt.model, tok, torch.device("cpu"))
    assert relabelled.causal and relabelled.pooling == "last"


@pytest.mark.parametrize("pooling", ["mean", "last", "cls"])
def test_embedding_is_independent_of_batch_composition(gpt, lines, pooling):
    sentences = _sentences(lines, 40)
    short = min(sentences, key=len)
    alone = gpt.embed([short], pooling=pooling)
    others = sorted(sentences, key=len)[-9:]  # longer texts force padding around it
    mixed = gpt.embed([*others[:4], short, *others[4:]], batch_size=5, pooling=pooling)
    np.testing.assert_allclose(mixed[4], alone[0], atol=1e-5)
    # input order is restored after the length sort
    one_by_one = np.stack([gpt.embed(s, pooling=pooling) for s in others])
    np.testing.assert_allclose(np.delete(mixed, 4, axis=0), one_by_one, atol=1e-5)


def test_pooling_matches_hidden_states_directly(gpt, tok, lines):
    text = _sentences(lines, 5)[2]
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        states = gpt.model.hidden_states(ids, torch.ones_like(ids))[-1][0]  # (T, D)
    np.testing.assert_allclose(gpt.embed(text), states[-1].numpy(), atol=1e-6)
    np.testing.assert_allclose(gpt.embed(text, pooling="mean"), states.mean(0).numpy(), atol=1e-6)


def test_sentence_transformers_conventions(gpt, lines):
    texts = _sentences(lines, 7)
    vecs = gpt.embed(texts, normalize=True, convert_to="torch", batch_size=3)
    assert isinstance(vecs, torch.Tensor) and vecs.shape == (7, 32)
    assert torch.allclose(vecs.norm(dim=1), torch.ones(7), atol=1e-5)
    with_bar = gpt.embed(
        texts, batch_size=3, normalize=True, show_progress_bar=True, convert_to="torch"
    )
    assert torch.allclose(with_bar, vecs, atol=1e-6)
    single = gpt.embed(texts[0])
    assert single.shape == (32,) and single.dtype == np.float32
    assert gpt.embed([]).shape == (0, 32)
    with pytest.raises(ConfigError, match="pooling"):
        gpt.embed(texts, pooling="max")
    with pytest.raises(ConfigError, match="convert_to"):
        gpt.embed(texts, convert_to="list")


def test_empty_and_too_long_texts(gpt, tok, lines):
    # a defined result, not a crash or NaN: a text without tokens embeds as zeros
    for pooling in ("mean", "last", "cls"):
        empty = gpt.embed(["", "A short one."], pooling=pooling)
        assert not empty[0].any() and np.abs(empty[1]).sum() > 0
    long_text = " ".join(lines[:3])
    assert len(tok.encode(long_text)) > 64
    with pytest.warns(UserWarning, match="truncated"):
        cut = gpt.embed(long_text, pooling="mean")
    ids = torch.tensor([tok.encode(long_text)[:64]])
    with torch.no_grad():
        ref = gpt.model.hidden_states(ids, torch.ones_like(ids))[-1][0].mean(0)
    np.testing.assert_allclose(cut, ref.numpy(), atol=1e-5)


def test_embed_words_pools_pieces_and_slides_windows(gpt, tok, lines):
    words = "The central bank raised interest rates on Tuesday".split()
    states = gpt.word_states([words])[0]
    assert states.shape == (len(words), 32)
    ids, index = tok.encode_words(words)
    with torch.no_grad():
        t = torch.tensor([ids])
        hidden = gpt.model.hidden_states(t, torch.ones_like(t))[-1][0].numpy()
    k = words.index("interest")
    expect = hidden[[i for i, w in enumerate(index) if w == k]].mean(0)
    np.testing.assert_allclose(states[k], expect, atol=1e-5)
    np.testing.assert_allclose(
        gpt.embed_words(" ".join(words) + ".", ["interest"])[0], expect, atol=1e-5
    )
    assert gpt.word_states([[]])[0].shape == (0, 32)
    four = gpt.word_states([words], layers="last4")[0]
    assert four.shape == states.shape and not np.allclose(four, states)
    # a sentence longer than the context is read in windows; a causal model's early words
    # keep exactly their states of the first window
    long_words = " ".join(lines[:2]).split()[:120]
    long_states = gpt.word_states([long_words, long_words[:20]])
    assert long_states[0].shape == (120, 32) and np.isfinite(long_states[0]).all()
    assert np.abs(long_states[0]).sum(1).min() > 0
    np.testing.assert_allclose(long_states[0][:20], long_states[1], atol=1e-5)
    with pytest.raises(UserError, match="does not occur"):
        gpt.embed_words("The bank rose.", ["river"])


def test_input_word_vectors_pool_embedding_rows(gpt, tok):
    vecs = gpt.input_word_vectors(["bank", "interest"])
    table = gpt.model.input_embeddings().weight.detach()
    ids = tok.word_piece_ids("interest")
    np.testing.assert_allclose(vecs[1], table[ids].mean(0).numpy(), atol=1e-6)


def test_embed_to_file_npy_and_jsonl(gpt, lines, tmp_path):
    texts = _sentences(lines, 9)
    expected = gpt.embed(texts, normalize=True)
    n = embed_to_file(gpt, iter(texts), tmp_path / "v.npy", chunk_size=4, normalize=True)
    assert n == 9
    np.testing.assert_allclose(np.load(tmp_path / "v.npy", allow_pickle=False), expected, atol=1e-6)
    embed_to_file(gpt, texts, tmp_path / "v.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    np.testing.assert_allclose(
        np.array([r["embedding"] for r in rows]), gpt.embed(texts), atol=1e-6
    )
    stream = io.StringIO()
    assert embed_to_file(gpt, texts[:3], stream) == 3
    lines_out = [json.loads(x) for x in stream.getvalue().splitlines()]
    np.testing.assert_allclose([r["embedding"] for r in lines_out], gpt.embed(texts[:3]), atol=1e-6)
    with pytest.raises(UserError, match=r"\.npy or \.jsonl"):
        embed_to_file(gpt, texts, tmp_path / "v.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.jsonl", "v.npy"]  # no temp files


class _StaticStandIn(torch.nn.Module, StaticVectors):
    """A static-vector model: what Word2Vec/GloVe declare (``StaticVectors``)."""

    def __init__(self, words, matrix):
        super().__init__()
        self.words, self.matrix = words, matrix

    def word_table(self, tokenizer):
        return WordTable(self.words, self.matrix, [1] * len(self.words))


def test_static_vectors_embed_as_mean_of_word_vectors(tok):
    words = ["The", "bank", "rates", "rose", "."]
    matrix = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    handle = TextModel("word2vec", _StaticStandIn(words, matrix), tok, torch.device("cpu"))
    assert handle.static and handle.dim == 8
    vec = handle.embed("The bank's rates rose sharply.")  # 's and sharply are unknown
    np.testing.assert_allclose(vec, matrix[[0, 1, 2, 3, 4]].mean(0), atol=1e-6)
    assert not handle.embed([""]).any()  # no known word: zeros
    np.testing.assert_allclose(handle.embed_words("The bank rose.", ["bank"])[0], matrix[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert handle.word_states([["rates", "unknownword"]])[0][1].sum() == 0
        assert handle.word_states([[]])[0].shape == (0, 8)
        np.testing.assert_allclose(handle.input_word_vectors(["BANK"])[0], matrix[1])


@pytest.mark.parametrize("family", ["transformer", "seq2seq"])
def test_encoder_decoder_families_embed_mean_of_encoder_states(family, tok, lines):
    from textdecade.models import get_family

    Model, Config, _ = get_family(family)
    sizes = dict(d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=64, d_hidden=32)
    config = Config(**{k: v for k, v in sizes.items() if k in Config.__dataclass_fields__})
    torch.manual_seed(0)
    model = Model(config, {"vocab_size": tok.vocab_size, "objective": "denoise"})
    handle = TextModel(family, model, tok, torch.device("cpu"))
    assert not handle.causal and handle.pooling == "mean"  # bidirectional encoders
    texts = _sentences(lines, 6)
    together = handle.embed(texts, batch_size=4)
    alone = np.stack([handle.embed(t) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    ids = torch.tensor([tok.encode(texts[0])])
    with torch.no_grad():
        states = handle.model.hidden_states(ids, torch.ones_like(ids))[-1][0]
    np.testing.assert_allclose(together[0], states.mean(0).numpy(), atol=1e-5)


def test_word2vec_family_embeds_through_its_word_table(tok, lines):
    from textdecade.models import get_family

    Model, Config, _ = get_family("word2vec")
    words = sorted({w for line in lines[:20] for w in tok.words(line)})
    torch.manual_seed(0)
    model = Model(Config(d_model=16), {"words": words, "counts": [5] * len(words)})
    handle = TextModel("word2vec", model, tok, torch.device("cpu"))
    assert handle.static and handle.dim == 16
    text = lines[0][:300]
    expected = np.mean([handle.vectors[w] for w in tok.words(text)], axis=0)
    np.testing.assert_allclose(handle.embed(text), expected, atol=1e-6)
    word = tok.words(text)[3]
    np.testing.assert_allclose(handle.embed_words(text, [word])[0], handle.vectors[word])
