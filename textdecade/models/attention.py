"""Attention: multi-head (Vaswani et al. 2017), additive (Bahdanau et al. 2014), KV caches.

Shapes follow the legend at the top of :mod:`textdecade.models.layers` (B batch, T query
length, S key length, D width, H heads, K head width, P cached past length, A additive
width). Masks: an ``attention_mask`` is (B, S) with 1 for real tokens and 0 for padding;
internally it becomes a boolean "may attend" mask broadcast to (B, H, T, S).

Two caches serve incremental decoding: :class:`KVCache` grows by one position per step
(self-attention), while cross-attention's keys and values depend only on the source, so
:meth:`MultiHeadAttention.project_kv` computes them once per source batch and every step
passes them back as ``kv``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------- KV cache


class KVCache:
    """Preallocated keys and values of one attention layer, for incremental decoding.

    Buffers are (B, H, max_len, K); ``length`` says how many positions are filled. Appending
    writes in place, so a decoding step costs O(1) copies instead of re-concatenating.

    Args:
        batch: B.  n_heads: H.  max_len: the most positions the cache can hold.
        head_dim: K.  device, dtype: of the buffers.
    """

    def __init__(self, batch: int, n_heads: int, max_len: int, head_dim: int, device, dtype):
        self.k = torch.zeros(batch, n_heads, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new (B, H, T, K) keys/values; return all of them so far, (B, H, P+T, K)."""
        t = k.shape[2]
        end = self.length + t
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions > max_len {self.max_len}")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]

    def reset(self) -> None:
        self.length = 0

    def reorder(self, index: torch.Tensor) -> None:
        """Keep/duplicate batch rows ``index`` (beam search), shape (B',).

        With the batch size unchanged only the filled prefix is gathered, in place, so a
        beam step costs O(P) copies rather than O(max_len).
        """
        if index.shape[0] == self.k.shape[0]:
            n = self.length
            self.k[:, :, :n] = self.k[:, :, :n].index_select(0, index)
            self.v[:, :, :n] = self.v[:, :, :n].index_select(0, index)
        else:
            self.k = self.k.index_select(0, index)
            self.v = self.v.index_select(0, index)


def make_caches(
    n_layers: int, batch: int, n_heads: int, max_len: int, head_dim: int, device, dtype
) -> list[KVCache]:
    """One :class:`KVCache` per layer."""
    return [KVCache(batch, n_heads, max_len, head_dim, device, dtype) for _ in range(n_layers)]


# --------------------------------------------------------------------------- attention


def attention_bias_mask(
    t: int,
    s: int,
    *,
    causal: bool,
    attention_mask: torch.Tensor | None,
    past: int = 0,
    device=None,
    cross: bool = False,
) -> torch.Tensor | None:
    """The boolean "may attend" mask (B or 1, 1, T, S), or None when nothing is masked.

    Query i sits at absolute position ``past + i`` and may see key j when ``j <= past + i``
    (causal) and key j is not padding. In self-attention a query always may see itself, so
    padded rows never become all-masked (SDPA would return NaN there); their outputs are
    garbage but finite and are ignored by callers. In cross-attention (``cross=True``) keys
    and queries are different sequences, so query i has no key "of its own": it sees exactly
    the real keys (only a row of a source with no real key at all sees every key, to stay
    finite).
    """
    if not causal and attention_mask is None:
        return None
    allowed = torch.ones(1, 1, t, s, dtype=torch.bool, device=device)
    q_pos = torch.arange(t, device=device)[:, None] + past  # (T, 1) absolute positions
    k_pos = torch.arange(s, device=device)[None, :]  # (1, S)
    if causal:
        allowed = allowed & (k_pos <= q_pos)
    if attention_mask is not None:
        keep = attention_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, S)
        if cross:
            allowed = allowed & (keep | ~keep.any(-1, keepdim=True))
        else:
            allowed = allowed & keep | (k_pos == q_pos)
    return allowed


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with H heads (Vaswani et al. 2017), self or cross.

    Self-attention projects queries, keys and values with one fused (3D, D) matrix; for
    cross-attention the same matrix is split, queries from ``x`` and keys/values from
    ``context``. The fast path is ``F.scaled_dot_product_attention`` (flash/memory-efficient
    kernels on GPU); ``need_weights=True`` computes the softmax explicitly and returns it,
    for attention pictures.

    Args:
        d_model: D.  n_heads: H (must divide D).
        dropout: dropout on attention probabilities (training only).
        bias: whether projections have biases.
        causal: a query may only attend to keys at or before its own position.
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True, causal=False
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.dropout, self.causal = dropout, causal
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, T, D) -> (B,H,T,K)

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of ``context`` (B, S, D): two (B, H, S, K).

        They depend only on the source, so a decoder computes them once per source batch
        and passes them to every decoding step as ``forward(..., kv=...)``.
        """
        d = self.d_model
        w_kv = self.qkv.weight[d:]  # rows D..3D of the fused (3D, D) matrix: keys, values
        b_kv = None if self.qkv.bias is None else self.qkv.bias[d:]
        k, v = F.linear(context, w_kv, b_kv).split(d, dim=2)  # (B, S, 2D) -> 2 x (B, S, D)
        return self._heads(k), self._heads(v)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``x`` to itself (or to ``context``).

        Args:
            x: queries' inputs (B, T, D).
            context: keys/values' inputs (B, S, D) for cross-attention; None for self.
            attention_mask: (B, S) 1 = real key, 0 = padding; for self-attention with a
                cache, S = P + T (the mask covers past and new positions).
            cache: self-attention only: past keys/values; new ones are appended to it.
            need_weights: also return the attention probabilities (B, H, T, S).
            kv: cross-attention only: ``project_kv(context)`` computed earlier, two
                (B, H, S, K); ``context`` is then not needed.

        Returns:
            (B, T, D), or ``(output, weights)`` when ``need_weights``.
        """
        b, t, d = x.shape
        past = 0
        cross = context is not None or kv is not None
        if not cross:
            q, k, v = self.qkv(x).split(d, dim=2)  # (B, T, 3D) -> 3 x (B, T, D)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)
            if cache is not None:
                past = cache.length
                k, v = cache.append(k, v)  # (B, H, P+T, K)
        else:
            b_q = None if self.qkv.bias is None else self.qkv.bias[:d]
            q = self._heads(F.linear(x, self.qkv.weight[:d], b_q))
            k, v = self.project_kv(context) if kv is None else kv  # (B, H, S, K) each
        s = k.shape[2]
        causal = self.causal and not cross
        p_drop = self.dropout if self.training else 0.0
        weights = None
        if not need_weights and attention_mask is None and causal and (past == 0 or t == 1):
            # One new token sees the whole cache; a fresh sequence uses the kernel's own
            # causal mask (no mask tensor, the fastest path).
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop, is_causal=past == 0)
        else:
            mask = attention_bias_mask(
                t,
                s,
                causal=causal,
                attention_mask=attention_mask,
                past=past,
                device=x.device,
                cross=cross,
            )
            if need_weights:
                scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, S)
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                weights = scores.softmax(dim=-1)
                y = F.dropout(weights, p_drop, self.training) @ v  # (B, H, T, K)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, H, T, K) -> (B, T, D)
        y = self.proj(y)
        return (y, weights) if need_weights else y


class AdditiveAttention(nn.Module):
    """Bahdanau et al. 2014 attention: score(s, h) = v^T tanh(W s + U h), masked softmax.

    ``U h`` does not depend on the decoder step, so callers can compute it once per source
    with :meth:`project_keys` and pass it to every step.

    Args:
        query_dim: width of the decoder state s.  key_dim: width of the encoder states h.
        attn_dim: A, the width of the scoring layer.
        activation: the scoring layer's nonlinearity (default tanh, as the paper).
    """

    def __init__(
        self, query_dim: int, key_dim: int, attn_dim: int, activation: nn.Module | None = None
    ):
        super().__init__()
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)
        self.act = activation if activation is not None else nn.Tanh()

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """U h for all encoder states: (B, S, key_dim) -> (B, S, A)."""
        return self.U(keys)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor | None = None,
        projected_keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from one decoder state to all encoder states.

        Args:
            query: decoder state s (B, query_dim).
            keys: encoder states h (B, S, key_dim), also the values.
            mask: (B, S) 1 = real source token, 0 = padding.
            projected_keys: ``project_keys(keys)`` computed once, (B, S, A).

        Returns:
            ``(context, weights)``: context (B, key_dim) and weights (B, S), rows summing to 1
            with zeros on padding.
        """
        uh = self.project_keys(keys) if projected_keys is None else projected_keys
        scores = self.v(self.act(self.W(query)[:, None, :] + uh)).squeeze(-1)  # (B, S)
        if mask is not None:
            scores = scores.masked_fill(~mask.to(torch.bool), float("-inf"))
        weights = scores.softmax(dim=-1)
        context = torch.bmm(weights[:, None, :], keys).squeeze(1)  # (B,1,S)@(B,S,Dk) -> (B,Dk)
        return context, weights
