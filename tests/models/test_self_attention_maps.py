"""GPT's, BERT's and Transformer-XL's self-attention maps are the probabilities their forward
pass uses.

Three checks on tiny random models over real text: the maps equal a from-scratch
recomputation softmax(Q K^T / sqrt(K) + mask) from each block's own input and projections
(Transformer-XL's with the content and position biases u, v and the relative positions
gathered by distance, no shift trick); they obey the masks (GPT and Transformer-XL causal,
padding keys at zero, rows summing to 1); and ``maps @ V`` equals the block's attention
output on the fast SDPA path (which returns no weights), so the picture is the model's
real attention.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.test_api_support import tiny_bert, tiny_gpt, tiny_tokenizer
from textdecade.models.base import SelfAttentionMaps
from textdecade.models.relative_attention import RelativeMultiHeadAttention, relative_encodings
from textdecade.models.transformer_xl import Config as XLConfig
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
    xl = tiny_xl(tokenizer, dropout=0.5).train()
    first, second = xl.self_attention_maps(ids), xl.self_attention_maps(ids)
    assert xl.training and torch.equal(first, second)


# --------------------------------------------------------------------------- Transformer-XL


def tiny_xl(tokenizer, seed: int = 0, **overrides):
    """A randomly initialised 3-layer Transformer-XL (eval mode), segments longer than TEXTS."""
    torch.manual_seed(seed)
    # init_std 0.2, not 0.02: peaked maps, where a missing term (u, v, the shift) shows
    values = {"d_model": 32, "n_heads": 4, "n_layers": 3, "segment_len": 64, "mem_len": 16}
    values |= {"init_std": 0.2, **overrides}
    return XLModel(XLConfig(**values), {"vocab_size": tokenizer.vocab_size}).eval()


def _xl_reference(attn, h, position=True):
    """Relative attention of ``h`` (B, T, D) over itself, from the definition (Dai et al.
    2019, sec. 3.3): (q_i + u) . k_j + (q_i + v) . W_R r_{i-j}, by gathering the encoding
    of each pair's distance (no relative shift), causal, softmax; ``position=False`` drops
    the second term."""
    b, t, d = h.shape
    q, k, _ = attn.qkv(h).split(d, dim=2)
    q = q.view(b, t, attn.n_heads, -1).transpose(1, 2)  # (B, H, T, K)
    k = k.view(b, t, attn.n_heads, -1).transpose(1, 2)
    enc = relative_encodings(t, d).flip(0)  # row d: the encoding of distance d
    dist = (torch.arange(t)[:, None] - torch.arange(t)[None, :]).clamp(min=0)  # (T, T)
    r = attn.r_net(enc)[dist].view(t, t, attn.n_heads, -1)  # (T, T, H, K)
    content = (q + attn.u[:, None, :]) @ k.transpose(-2, -1)
    position_term, position = position, torch.einsum("bhik,ijhk->bhij", q + attn.v[:, None, :], r)
    scores = (content + position * float(position_term)) / math.sqrt(attn.head_dim)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1)


def _attention_io(model, ids):
    """Each block's attention input (after ln_1) and output before ``proj`` in the real
    forward pass (``hidden_states``: the text in one segment, from an empty memory)."""
    seen, hooks = {}, []
    for i, block in enumerate(model.h):
        hooks.append(
            block.attn.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(("x", i), a[0]))
        )
        hooks.append(
            block.attn.proj.register_forward_pre_hook(
                lambda m, a, i=i: seen.__setitem__(("y", i), a[0])
            )
        )
    try:
        with torch.no_grad():
            model.hidden_states(ids)
    finally:
        for hook in hooks:
            hook.remove()
    return [(seen["x", i], seen["y", i]) for i in range(len(model.h))]


@pytest.mark.parametrize("fused", [False, True])
def test_xl_maps_times_values_are_the_real_attention_output(tokenizer, monkeypatch, fused):
    """weights @ V equals every layer's attention output (before the output projection) in
    the real forward pass: the explicit path, and SDPA with the position term as its mask
    (the GPU's path, which returns no weights)."""
    model = tiny_xl(tokenizer)
    assert isinstance(model, SelfAttentionMaps) and model.attention_shape() == (3, 4)
    ids, mask = _batch(tokenizer, TEXTS)
    maps = model.self_attention_maps(ids, mask)
    t = ids.shape[1]
    assert maps.shape == (2, 3, 4, t, t) and t < model.config.segment_len  # one segment
    monkeypatch.setattr(RelativeMultiHeadAttention, "fused", fused)
    real = mask.bool()  # right padding: a real query's keys are all real (causal)
    for layer, (x, y) in enumerate(_attention_io(model, ids)):
        attn = model.h[layer].attn
        rows = maps[:, layer].transpose(1, 2)[real]  # real queries: (N, H, T)
        ref = _xl_reference(attn, x).transpose(1, 2)[real]
        torch.testing.assert_close(rows, ref, atol=1e-6, rtol=1e-5)
        # the position term moves the weights (so the check above can see it missing)
        content_only = _xl_reference(attn, x, position=False).transpose(1, 2)[real]
        assert (rows - content_only).abs().max() > 0.05
        v = attn.qkv(x).split(x.shape[-1], dim=2)[2]
        v = v.view(*x.shape[:2], 4, -1).transpose(1, 2)  # (B, H, T, K)
        mixed = (maps[:, layer] @ v).transpose(1, 2).reshape(x.shape)  # (B, T, D)
        torch.testing.assert_close(mixed[real], y[real], atol=1e-5, rtol=0)


def test_xl_maps_are_causal_sum_to_one_and_ignore_padding(tokenizer):
    model = tiny_xl(tokenizer)
    ids, mask = _batch(tokenizer, TEXTS)
    maps = model.self_attention_maps(ids, mask)
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    lower = torch.ones(maps.shape[-2:], dtype=torch.bool).tril()
    assert (maps[..., ~lower] == 0).all()  # the future gets nothing
    n = int(mask[1].sum())
    assert n < ids.shape[1]
    # a padding key is seen by no query but itself (so a padded row stays finite)
    others = ~torch.eye(ids.shape[1], dtype=torch.bool)[:, n:]  # (T, T - n)
    assert (maps[1, :, :, :, n:][..., others] == 0).all()
    alone = model.self_attention_maps(ids[1:, :n])[0]
    torch.testing.assert_close(maps[1, :, :, :n, :n], alone, atol=1e-6, rtol=1e-5)
    assert (alone[:, :, lower[:n, :n]] > 0).all()  # every earlier key gets some weight
