"""Relative multi-head attention over [memory; segment] (Transformer-XL, Dai et al. 2019, sec. 3.3).

Query i of a segment of T tokens sits after M memory positions, so it is at position
``M + i`` of the S = M + T keys. Its score for key j is, per head,

    A[i, j] = (q_i + u) . k_j  +  (q_i + v) . W_R r_{M+i-j}

where ``r_d`` is the sinusoidal encoding of the *distance* d (no absolute positions
anywhere, so states cached from an earlier segment stay valid), ``u`` and ``v`` are the
global content and position biases (the paper's terms (c) and (d)), and ``W_R`` projects
the encodings to keys of their own. Keys j > M + i (the future) are masked.

The position term is computed for all T x S pairs at once as ``(q + v) @ (W_R R)^T`` over
the S encodings of distances S-1 .. 0, then each row is shifted into place with the
paper's "relative shift" (appendix B): pad one zero column, view the (T, S+1) matrix as
(S+1, T), drop its first row and view it back as (T, S). The content term and the softmax
go through ``F.scaled_dot_product_attention`` with the shifted position term as its
additive mask (flash/memory-efficient kernels on GPU).

:class:`RelativeBlock` is the pre-norm block around it, and :func:`extend_memory` the
memory update (the stop-gradient of eq. 1).

Shapes follow the legend of :mod:`textdecade.models.layers`; M is the memory length and
S = M + T.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from textdecade.models.blocks import LayerNorm, Residual
from textdecade.models.layers import FeedForward

__all__ = [
    "LayerMemory",
    "RelativeBlock",
    "RelativeMultiHeadAttention",
    "extend_memory",
    "relative_encodings",
    "relative_shift",
]


def relative_encodings(length: int, d_model: int, device=None, dtype=None) -> torch.Tensor:
    """Sinusoidal encodings R of the distances ``length-1 .. 0``: (length, D).

    As the paper's code: ``[sin(d * f), cos(d * f)]`` concatenated, f = 10000^(-2k/D),
    computed on the fly so any distance (a memory longer than in training) has one.
    """
    dist = torch.arange(length - 1, -1, -1, device=device, dtype=torch.float32)  # (S,)
    freq = torch.exp(
        torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / d_model)
    )
    angles = dist[:, None] * freq[None, :]  # (S, D/2)
    pe = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (S, D)
    return pe if dtype is None else pe.to(dtype)


def relative_shift(x: torch.Tensor, padded: bool = False) -> torch.Tensor:
    """Turn scores by (query i, encoding column c of distance S-1-c) into scores by (i, key j).

    ``x`` (..., T, S) -> (..., T, S) with ``out[..., i, j] = x[..., i, j + T - 1 - i]``, i.e.
    the entry of distance ``M + i - j`` (M = S - T), for every ``j <= M + i``; entries of
    later keys are left-over values that the causal mask removes. With ``padded``, ``x``
    is (..., T, S+1) and already has the zero column in front (one copy fewer).
    """
    if not padded:
        x = F.pad(x, (1, 0))  # (..., T, S+1): a zero column in front
    *lead, t, s = x.shape[:-1] + (x.shape[-1] - 1,)
    padded = x.contiguous().view(*lead, s + 1, t)  # the same numbers, read as (S+1, T)
    return padded[..., 1:, :].reshape(*lead, t, s)  # drop the first row, back to (T, S)


def causal_memory_mask(t: int, s: int, device=None) -> torch.Tensor:
    """(T, S) bool "may attend": query i (position S-T+i) sees keys j <= S-T+i."""
    q_pos = torch.arange(t, device=device)[:, None] + (s - t)
    return torch.arange(s, device=device)[None, :] <= q_pos


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head attention with Transformer-XL's relative positions and memory.

    Queries come from the segment, keys and values from [memory; segment]. The biases u
    and v are per layer (``untie_r`` in the paper's released WikiText-103 models).

    Args:
        d_model: D.  n_heads: H (must divide D).  dropout: on attention probabilities.
        bias: biases in the query/key/value and output projections (never in W_R, as the
            paper).
    """

    #: softmax and values through SDPA with the position term as its mask (None: on CUDA,
    #: where its kernels win; on CPU SDPA takes a slow path with a float mask)
    fused: bool | None = None

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.r_net = nn.Linear(d_model, d_model, bias=False)  # W_{k,R}
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.u = nn.Parameter(torch.zeros(n_heads, self.head_dim))  # content bias
        self.v = nn.Parameter(torch.zeros(n_heads, self.head_dim))  # position bias

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B,T,D) -> (B,H,T,K)

    def project(self, x: torch.Tensor, context: torch.Tensor):
        """Queries of ``x`` (B, T, D) and keys/values of ``context`` (B, S, D), ``context``
        ending with ``x``: three (B, H, ., K), and the position keys (H, S, K)."""
        s, d = context.shape[1], self.d_model
        q = F.linear(x, self.qkv.weight[:d], None if self.qkv.bias is None else self.qkv.bias[:d])
        w_kv = self.qkv.weight[d:]
        b_kv = None if self.qkv.bias is None else self.qkv.bias[d:]
        k, v = F.linear(context, w_kv, b_kv).split(d, dim=2)  # (B, S, 2D) -> 2 x (B, S, D)
        r = relative_encodings(s, d, x.device, x.dtype)  # (S, D); autocast casts in r_net
        r_k = self.r_net(r).view(s, self.n_heads, self.head_dim).transpose(0, 1)  # (H, S, K)
        return self._heads(q), self._heads(k), self._heads(v), r_k

    def scores(self, q, k, r_k, scale: float = 1.0) -> torch.Tensor:
        """Unmasked scores (B, H, T, S): content term + shifted position term, for queries
        ``q`` already multiplied by ``scale`` (the biases are scaled to match here)."""
        content = (q + scale * self.u[:, None, :]) @ k.transpose(-2, -1)
        return content.add_(self.position_scores(q, r_k, scale))

    def position_scores(self, q, r_k, scale: float = 1.0) -> torch.Tensor:
        """(q_i + v) . W_R r_{M+i-j} (times ``scale``, already in ``q``): (B, H, T, S), rows
        shifted into key order."""
        # a zero key in front makes the shift's zero column in the product itself
        r_k = F.pad(r_k, (0, 0, 1, 0))  # (H, S+1, K)
        bd = (q + scale * self.v[:, None, :]) @ r_k.transpose(-2, -1)  # (B,H,T,K) @ (H,K,S+1)
        return relative_shift(bd, padded=True)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        need_weights: bool = False,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from the segment ``x`` (B, T, D) to [``memory`` (B, M, D); ``x``].

        ``memory`` holds the (normalised) states of earlier positions, which do not get
        gradients from here on (the caller detaches them). ``attention_mask`` (B, S), 1 =
        real key, hides padding keys (a query still sees its own key, so no row is empty);
        training never needs it (causal: right padding is always in a real query's future),
        the attention maps take it so padding keys get exactly 0. Returns (B, T, D), or
        ``(output, weights (B, H, T, S))`` with ``need_weights``.
        """
        b, t, d = x.shape
        context = x if memory is None or memory.shape[1] == 0 else torch.cat([memory, x], 1)
        s = context.shape[1]
        q, k, v, r_k = self.project(x, context)
        scale = 1.0 / math.sqrt(self.head_dim)
        q = q * scale  # scaled once: both terms are divided by sqrt(K)
        allowed = causal_memory_mask(t, s, x.device)  # (T, S)
        if attention_mask is not None:
            q_pos = torch.arange(t, device=x.device)[:, None] + (s - t)  # (T, 1)
            own = torch.arange(s, device=x.device)[None, :] == q_pos  # (T, S): key j is query i
            keep = attention_mask.to(device=x.device, dtype=torch.bool)[:, None, None, :]
            allowed = allowed & keep | own  # (B, 1, T, S)
        p_drop = self.dropout if self.training else 0.0
        weights = None
        fused = x.is_cuda if self.fused is None else self.fused
        if fused and not need_weights:
            # SDPA computes softmax((q+u) k^T / sqrt(K) + mask) v: the shifted position
            # term, with -inf on the future, is that additive mask (memory-efficient
            # kernels take its gradient too).
            mask = self.position_scores(q, r_k, scale).masked_fill(~allowed, float("-inf"))
            q_u = q + (scale * self.u[:, None, :]).to(q.dtype)
            y = F.scaled_dot_product_attention(
                q_u, k, v, attn_mask=mask.to(q_u.dtype), dropout_p=p_drop, scale=1.0
            )
        else:
            # On CPU SDPA would take its slow path with a float mask: the same sums spelled
            # out, in place where autograd allows.
            scores = self.scores(q, k, r_k, scale)
            scores = scores.masked_fill_(~allowed, float("-inf")).softmax(dim=-1)
            weights = scores if need_weights else None
            y = F.dropout(scores, p_drop, self.training) @ v  # (B, H, T, K)
        y = self.proj(y.transpose(1, 2).reshape(b, t, d))  # (B, H, T, K) -> (B, T, D)
        return (y, weights) if need_weights else y


# --------------------------------------------------------------------------- block, memory


class RelativeBlock(nn.Module):
    """x + attn(N(x) | N(memory)), then x + mlp(N(x)): pre-norm with relative attention.

    Args:
        d_model: D.  n_heads: H.  d_ff: F.  dropout: on sublayer outputs and attention.
        activation: the MLP's activation module.  bias: in linear layers and norms.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout, activation, bias=True):
        super().__init__()
        self.ln_1 = LayerNorm(d_model, bias=bias)
        self.attn = RelativeMultiHeadAttention(d_model, n_heads, dropout, bias=bias)
        self.ln_2 = LayerNorm(d_model, bias=bias)
        self.mlp = FeedForward(d_model, d_ff, activation, bias=bias)
        self.drop = nn.Dropout(dropout)
        self.residual = Residual()

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ):
        """(B, T, D) -> (B, T, D); ``memory`` (B, M, D): this block's inputs at earlier positions.

        ``attention_mask`` (B, M+T) 1 = real key (see :class:`RelativeMultiHeadAttention`);
        with ``need_weights``, ``(x, weights (B, H, T, M+T))``.
        """
        mem = None if memory is None else self.ln_1(memory)  # keys see them as x: normalised
        a = self.attn(self.ln_1(x), mem, need_weights, attention_mask)
        a, w = a if need_weights else (a, None)
        x = self.residual(x, self.drop(a))
        x = self.residual(x, self.drop(self.mlp(self.ln_2(x))))
        return (x, w) if need_weights else x


class LayerMemory:
    """One layer's cached states for generation: (B, M, D), at most ``limit`` positions."""

    def __init__(self, limit: int):
        self.limit, self.states = limit, None

    @property
    def length(self) -> int:
        return 0 if self.states is None else self.states.shape[1]


def extend_memory(
    memory: list[torch.Tensor] | None, inputs: list[torch.Tensor], limit: int
) -> list[torch.Tensor] | None:
    """The last ``limit`` positions of [memory; this segment's block inputs], detached
    (the paper's stop-gradient, SG(h) in eq. 1); None for ``limit`` 0."""
    if limit <= 0:
        return None
    if memory is None:
        return [h[:, -limit:].detach() for h in inputs]
    return [torch.cat([m, h], 1)[:, -limit:].detach() for m, h in zip(memory, inputs, strict=True)]
