"""The Transformer's cross-attention K/V cache: projected once per source, same decoding.

A tiny Transformer (post-LN and pre-LN) is trained for a few seconds to reverse short
sequences, so it emits EOS at different lengths and beam search has real choices. The
cached decoder (self-attention KVCache + cross-attention K/V projected in ``encode``) is
compared with a reference that caches nothing: every step re-runs the whole decoder over
the prefix and projects the encoder memory again in every layer.
"""

from __future__ import annotations

import pytest
import torch

from textdecade.data.parallel import BOS_ID, EOS_ID, PAD_ID, pad
from textdecade.models import transformer
from textdecade.models.attention import MultiHeadAttention
from textdecade.models.decoding import beam_search, greedy_decode, reorder_tensors

V = 24  # ids 0..6 are the special tokens; "words" are 7..23
WORDS = torch.arange(7, V)


pytestmark = pytest.mark.usefixtures("one_thread")


def _reverse_batch(gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    """n random word sequences of length 2..7 and their reversals (source/target + EOS)."""
    lengths = torch.randint(2, 8, (n,), generator=gen).tolist()
    seqs = [WORDS[torch.randint(0, len(WORDS), (k,), generator=gen)].tolist() for k in lengths]
    src = pad([[*s, EOS_ID] for s in seqs])
    return {
        "src": src,
        "src_mask": (src != PAD_ID).long(),
        "tgt_in": pad([[BOS_ID, *s[::-1]] for s in seqs]),
        "tgt_out": pad([[*s[::-1], EOS_ID] for s in seqs]),
    }


@pytest.fixture(scope="module", params=["post", "pre"])
def model(request):
    """A 2-layer Transformer trained ~150 steps on reversal (about 2 s on one core)."""
    torch.manual_seed(0)
    config = transformer.Config(
        vocab_size=V, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=24, dropout=0.0,
        norm=request.param,
    )  # fmt: skip
    m = transformer.Model(config, {"vocab_size": V})
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        loss = m.loss(_reverse_batch(gen, 32))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def sources():
    """Eight sources of different lengths: a padded batch (B=8, S=8)."""
    batch = _reverse_batch(torch.Generator().manual_seed(1), 8)
    assert (batch["src_mask"] == 0).any()
    return batch["src"], batch["src_mask"]


class Uncached:
    """The same model decoded with no cache at all: each step recomputes every position,
    projecting cross-attention keys/values from the memory in every layer."""

    def __init__(self, model):
        self.model = model

    def encode(self, src, src_mask):
        state = self.model.encode(src, src_mask)
        b = src.shape[0]
        return {"memory": state["memory"], "mask": src_mask, "prefix": torch.zeros(b, 0).long()}

    def decode_step(self, state, tokens):
        prefix = torch.cat([state["prefix"], tokens[:, -1:]], 1)  # (B, T)
        logits = self.model._decode({"memory": state["memory"], "mask": state["mask"]}, prefix)
        return torch.log_softmax(logits[:, -1].float(), -1), {**state, "prefix": prefix}

    def reorder_state(self, state, index):
        return reorder_tensors(state, index)


def test_encode_projects_every_layers_cross_kv_once(model, sources):
    src, mask = sources
    state = model.encode(src, mask)
    c = model.config
    assert len(state["cross_kv"]) == c.n_layers
    for block, (k, v) in zip(model.decoder, state["cross_kv"]):
        assert k.shape == v.shape == (8, c.n_heads, src.shape[1], c.d_model // c.n_heads)
        # Independent projection: rows D..2D of the fused matrix are keys, 2D..3D values.
        w, bias, d = block.cross_attn.qkv.weight, block.cross_attn.qkv.bias, c.d_model
        k_ref = state["memory"] @ w[d : 2 * d].T + bias[d : 2 * d]  # (B, S, D)
        v_ref = state["memory"] @ w[2 * d :].T + bias[2 * d :]
        assert torch.allclose(k.transpose(1, 2).flatten(2), k_ref, atol=1e-5)
        assert torch.allclose(v.transpose(1, 2).flatten(2), v_ref, atol=1e-5)


def test_decode_steps_never_project_the_source_again(model, sources, monkeypatch):
    src, mask = sources
    calls = []
    original = MultiHeadAttention.project_kv

    def counting(self, context):
        calls.append(context.shape)
        return original(self, context)

    monkeypatch.setattr(MultiHeadAttention, "project_kv", counting)
    state = model.encode(src, mask)
    assert len(calls) == model.config.n_layers
    tokens = torch.full((8, 1), BOS_ID)
    for _ in range(6):
        logp, state = model.decode_step(state, tokens)
        tokens = logp.argmax(-1, keepdim=True)
    beam_search(model, src, mask, max_new=10, beam=3)  # encode twice (beam, greedy check)
    assert len(calls) == 3 * model.config.n_layers


def test_cached_step_logits_equal_the_uncached_decoder(model, sources):
    src, mask = sources
    cached, ref = model.encode(src, mask), Uncached(model)
    ref_state = ref.encode(src, mask)
    tokens = torch.full((8, 1), BOS_ID)
    for _ in range(10):
        logp, cached = model.decode_step(cached, tokens)
        ref_logp, ref_state = ref.decode_step(ref_state, tokens)
        assert torch.allclose(logp, ref_logp, atol=1e-5), (logp - ref_logp).abs().max()
        tokens = logp.argmax(-1, keepdim=True)
    # The last step's log-probs also equal the teacher-forced pass over the whole prefix.
    forced = model.logits(src, mask, ref_state["prefix"]).log_softmax(-1)[:, -1]
    assert torch.allclose(logp, forced, atol=1e-5)


def test_greedy_and_beam_give_the_reference_tokens(model, sources):
    src, mask = sources
    ref = Uncached(model)
    hyps, logp = greedy_decode(model, src, mask, max_new=14)
    ref_hyps, ref_logp = greedy_decode(ref, src, mask, max_new=14)
    assert hyps == ref_hyps and torch.allclose(logp, ref_logp, atol=1e-4)
    # Trained enough to stop: EOS at several different lengths, before max_new.
    assert len({len(h) for h in hyps}) >= 3 and max(map(len, hyps)) < 14, hyps
    for beam, alpha in [(4, 0.6), (3, 0.0)]:
        out, scores = beam_search(model, src, mask, max_new=14, beam=beam, alpha=alpha)
        ref_out, ref_scores = beam_search(ref, src, mask, max_new=14, beam=beam, alpha=alpha)
        assert out == ref_out and torch.allclose(scores, ref_scores, atol=1e-4)


def test_padded_sources_decode_as_they_would_alone(model, sources):
    src, mask = sources
    together, _ = beam_search(model, src, mask, max_new=14, beam=4)
    for i in (0, 3, 7):
        n = int(mask[i].sum())
        alone, _ = beam_search(model, src[i : i + 1, :n], mask[i : i + 1, :n], 14, beam=4)
        assert alone[0] == together[i]


def test_cross_attention_ignores_padded_keys_at_every_query():
    """Teacher-forced queries past the source's length must not see a padded key (a query
    "seeing itself" is a self-attention rule; in cross-attention key j is not query j)."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).eval()
    x, memory = torch.randn(2, 6, 16), torch.randn(2, 8, 16)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0], [1] * 8])
    other = memory.clone()
    other[0, 3:] = torch.randn(5, 16)  # change only the padding
    out, w = mha(x, memory, mask, need_weights=True)
    assert torch.allclose(mha(x, other, mask), out, atol=1e-6)
    assert torch.allclose(mha(x, memory, mask), out, atol=1e-6)  # SDPA path = explicit path
    assert w[0, :, :, 3:].abs().max() == 0
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 6), atol=1e-6)
    alone = mha(x[:1], memory[:1, :3])
    assert torch.allclose(out[:1], alone, atol=1e-5)
    kv = mha.project_kv(memory)
    assert torch.allclose(mha(x, None, mask, kv=kv), out, atol=1e-6)
