"""Shared layers: SDPA equals explicit attention, masks hold, KV cache equals full recompute."""

from __future__ import annotations

import math

import pytest
import torch

from textdecade.models.layers import (
    AdditiveAttention,
    FeedForward,
    LearnedPositions,
    MultiHeadAttention,
    PostLNBlock,
    PostLNDecoderBlock,
    PreLNBlock,
    PreLNDecoderBlock,
    SinusoidalPositions,
    init_normal_,
    make_caches,
    scale_residual_init_,
)


def _reference_attention(mha, x, context=None, mask=None, causal=False):
    """Textbook attention written independently of the layer's code paths."""
    d, h = mha.d_model, mha.n_heads
    k_dim = d // h
    w, b = mha.qkv.weight, mha.qkv.bias
    src = x if context is None else context
    q = x @ w[:d].T + b[:d]
    k = src @ w[d : 2 * d].T + b[d : 2 * d]
    v = src @ w[2 * d :].T + b[2 * d :]
    out = []
    for i in range(h):
        sl = slice(i * k_dim, (i + 1) * k_dim)
        scores = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(k_dim)
        t, s = scores.shape[1:]
        if causal:
            scores = scores.masked_fill(torch.ones(t, s).triu(1).bool(), float("-inf"))
        if mask is not None:
            scores = scores.masked_fill(~mask.bool()[:, None, :], float("-inf"))
        out.append(scores.softmax(-1) @ v[..., sl])
    return torch.cat(out, -1) @ mha.proj.weight.T + mha.proj.bias


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_path_equals_explicit_and_reference(causal):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, causal=causal).eval()
    x = torch.randn(3, 7, 32)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    fast = mha(x, attention_mask=mask)
    slow, weights = mha(x, attention_mask=mask, need_weights=True)
    ref = _reference_attention(mha, x, mask=mask, causal=causal)
    real = mask.bool()
    assert torch.allclose(fast[real], slow[real], atol=1e-5)
    assert torch.allclose(fast[real], ref[real], atol=1e-5)
    # rows are distributions that put no mass on padding (for real queries)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 7), atol=1e-5)
    assert weights[1, :, :5, 5:].abs().max() == 0
    if causal:
        upper = torch.ones(7, 7).triu(1).bool()
        assert weights[:, :, upper].abs().max() == 0


def test_causal_output_ignores_the_future():
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 2, causal=True).eval()
    x = torch.randn(2, 6, 16)
    y = x.clone()
    y[:, 4:] = torch.randn(2, 2, 16)  # change only the last two positions
    assert torch.allclose(mha(x)[:, :4], mha(y)[:, :4], atol=1e-6)
    assert not torch.allclose(mha(x)[:, 4:], mha(y)[:, 4:], atol=1e-3)


def test_cross_attention_matches_reference_and_masks_memory():
    torch.manual_seed(2)
    mha = MultiHeadAttention(24, 3).eval()
    x, mem = torch.randn(2, 4, 24), torch.randn(2, 9, 24)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, 6:] = 0
    out, w = mha(x, mem, attention_mask=mask, need_weights=True)
    assert torch.allclose(out, _reference_attention(mha, x, mem, mask), atol=1e-5)
    assert torch.allclose(mha(x, mem, attention_mask=mask), out, atol=1e-5)
    assert w.shape == (2, 3, 4, 9) and w[0, :, :, 6:].abs().max() == 0


@pytest.mark.parametrize("block_cls", [PreLNBlock, PostLNBlock])
def test_kv_cache_equals_full_recompute(block_cls):
    torch.manual_seed(3)
    blocks = torch.nn.ModuleList([block_cls(32, 4, 64, causal=True) for _ in range(2)]).eval()
    x = torch.randn(2, 10, 32)

    def run(h, caches=None):
        for i, blk in enumerate(blocks):
            h = blk(h, cache=None if caches is None else caches[i])
        return h

    full = run(x)
    caches = make_caches(2, 2, 4, 16, 8, x.device, x.dtype)
    parts = [run(x[:, :4], caches), run(x[:, 4:7], caches)]  # chunked prefill
    parts += [run(x[:, i : i + 1], caches) for i in range(7, 10)]  # token by token
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
    assert caches[0].length == 10


def test_additive_attention_rows_sum_to_one_and_respect_mask():
    torch.manual_seed(4)
    att = AdditiveAttention(12, 20, 16)
    s, h = torch.randn(3, 12), torch.randn(3, 5, 20)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    ctx, w = att(s, h, mask)
    assert torch.allclose(w.sum(-1), torch.ones(3), atol=1e-6)
    assert w[1, 2:].abs().max() == 0 and w[2, 0] == 1
    assert torch.allclose(ctx[2], h[2, 0], atol=1e-6)
    # independent formula: v^T tanh(W s + U h)
    e = (torch.tanh(att.W(s)[:, None] + att.U(h)) @ att.v.weight.T).squeeze(-1)
    e = e.masked_fill(mask == 0, float("-inf")).softmax(-1)
    assert torch.allclose(w, e, atol=1e-6)
    ctx2, w2 = att(s, h, mask, projected_keys=att.project_keys(h))
    assert torch.allclose(ctx2, ctx) and torch.allclose(w2, w)


@pytest.mark.parametrize("block_cls", [PreLNDecoderBlock, PostLNDecoderBlock])
def test_decoder_block_is_causal_and_reads_memory(block_cls):
    torch.manual_seed(5)
    blk = block_cls(16, 2, 32).eval()
    x, mem = torch.randn(1, 5, 16), torch.randn(1, 7, 16)
    out, (w_self, w_cross) = blk(x, mem, need_weights=True)
    assert torch.allclose(out, blk(x, mem), atol=1e-5)
    assert w_self[0, :, torch.ones(5, 5).triu(1).bool()].abs().max() == 0
    assert w_cross.shape == (1, 2, 5, 7)
    assert not torch.allclose(blk(x, mem), blk(x, torch.randn(1, 7, 16)), atol=1e-3)


def test_positions_and_init():
    sin = SinusoidalPositions(50, 8)
    pe = sin(3, offset=2)
    assert torch.allclose(pe[0, 0], torch.sin(torch.tensor(2.0)))
    assert torch.allclose(pe[1, 1], torch.cos(torch.tensor(3.0)))
    assert torch.allclose(pe[0, 2], torch.sin(torch.tensor(2.0 / 1e4 ** (2 / 8))))
    with pytest.raises(ValueError, match="max_len"):
        LearnedPositions(4, 8)(5)
    torch.manual_seed(6)
    m = torch.nn.ModuleList([PreLNBlock(64, 4, 256) for _ in range(8)])
    init_normal_(m)
    scale_residual_init_(m, n_layers=8)
    fc_std = m[0].mlp.fc.weight.std().item()
    proj_std = torch.cat([b.mlp.proj.weight.flatten() for b in m]).std().item()
    assert abs(fc_std - 0.02) < 0.002
    assert abs(proj_std - 0.02 / 4) < 0.0005
    ff = FeedForward(8, 16, "relu")
    assert (ff.act(torch.tensor([-1.0, 2.0])) == torch.tensor([0.0, 2.0])).all()
