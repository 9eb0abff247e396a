"""GPT's and BERT's self-attention maps are the probabilities their forward pass uses.

Three checks on tiny random models over real text: the maps equal a from-scratch
recomputation softmax(Q K^T / sqrt(K) + mask) from each block's own input and projections;
they obey the masks (GPT causal, BERT's padding keys at zero, rows summing to 1); and
``maps @ V`` through the output projection equals the block's attention output on the
fast SDPA path (which returns no weights), so the picture is the model's real attention.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.test_api_support import tiny_bert, tiny_gpt, tiny_tokenizer
from textdecade.models.base import SelfAttentionMaps
from textdecade.models.transformer_xl import Model as XLModel

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer(corpus_lines):
    return tiny_tokenizer(corpus_lines("gensim_lee.txt", 200))


def _batch(tokenizer, texts, framing=((), ())):
    rows = [[*framing[0], *tokenizer.encode(t), *framing[1]] for t in texts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def _attention_inputs(model, ids, mask):
    """Each block's attention input: the block input (post-LN) or its ln_1 (pre-LN)."""
    states = model.hidden_states(ids, mask)
    blocks = model.blocks()
    pre = model.config.norm == "pre"
    return [(b, b.ln_1(states[i], mask) if pre else states[i]) for i, b in enumerate(blocks)]


def _reference(attn, h, mask, causal):
    """softmax(Q K^T / sqrt(K) + mask) written out, from the module's fused projection."""
    b, t, d = h.shape
    q, k, _ = attn.qkv(h).split(d, dim=2)
    q = q.view(b, t, attn.n_heads, -1).transpose(1, 2)
    k = k.view(b, t, attn.n_heads, -1).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(attn.head_dim)
    allowed = mask.bool()[:, None, None, :].expand(b, 1, t, t).clone()
    allowed |= torch.eye(t, dtype=torch.bool)  # padded queries see themselves (finite rows)
    if causal:
        allowed &= torch.ones(t, t, dtype=torch.bool).tril()
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1)


TEXTS = ["The river bank was flooded after the storm.", "Money in the bank."]


@pytest.mark.parametrize("family", ["gpt", "bert"])
def test_maps_equal_a_reference_and_the_real_attention_output(tokenizer, family):
    model = (tiny_gpt if family == "gpt" else tiny_bert)(tokenizer, n_layers=3)
    assert isinstance(model, SelfAttentionMaps) and model.attention_shape() == (3, 4)
    ids, mask = _batch(tokenizer, TEXTS, model.embed_framing(tokenizer))
    maps = model.self_attention_maps(ids, mask)
    assert maps.shape == (2, 3, 4, ids.shape[1], ids.shape[1])
    with torch.no_grad():
        for layer, (block, h) in enumerate(_attention_inputs(model, ids, mask)):
            weights = maps[:, layer]
            ref = _reference(block.attn, h, mask, causal=family == "gpt")
            torch.testing.assert_close(weights, ref, atol=1e-6, rtol=1e-5)
            # the fast path (SDPA, no weights) gives what these probabilities give
            fast = block.attn(h, None, mask)
            v = block.attn.qkv(h).split(h.shape[-1], dim=2)[2]
            v = v.view(*h.shape[:2], 4, -1).transpose(1, 2)
            mixed = (weights @ v).transpose(1, 2).reshape(h.shape)
            real = mask.bool()  # padded positions' outputs are garbage by design
            torch.testing.assert_close(block.attn.proj(mixed)[real], fast[real], atol=1e-5, rtol=0)


def test_gpt_maps_are_causal_and_bert_ignores_padding(tokenizer):
    gpt, bert = tiny_gpt(tokenizer), tiny_bert(tokenizer)
    ids, _ = _batch(tokenizer, TEXTS[:1])
    maps = gpt.self_attention_maps(ids)[0]
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    lower = torch.ones(maps.shape[-2:], dtype=torch.bool).tril()
    assert (maps[..., ~lower] == 0).all() and (maps[..., lower] > 0).all()  # causal
    ids, mask = _batch(tokenizer, TEXTS, bert.embed_framing(tokenizer))
    maps = bert.self_attention_maps(ids, mask)
    n = int(mask[1].sum())
    assert n < ids.shape[1]
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    assert (maps[1, :, :, :n, n:] == 0).all()  # real queries give padding keys nothing
    alone = bert.self_attention_maps(ids[1:, :n])[0]
    torch.testing.assert_close(maps[1, :, :, :n, :n], alone, atol=1e-6, rtol=1e-5)
    assert (alone > 0).all()  # bidirectional: every key gets some weight


def test_maps_leave_training_mode_and_dropout_alone(tokenizer):
    model = tiny_gpt(tokenizer, dropout=0.5).train()
    ids, _ = _batch(tokenizer, TEXTS[:1])
    first, second = model.self_attention_maps(ids), model.self_attention_maps(ids)
    assert model.training and torch.equal(first, second)  # eval mode inside: no dropout
    assert not issubclass(XLModel, SelfAttentionMaps)  # relative attention: not drawn (yet)
