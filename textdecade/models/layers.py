"""Shared neural layers: attention (additive and multi-head), feed-forward, blocks, positions.

Legend of tensor dimensions used in shape comments throughout the model code:

    B  batch size                      T  query length (tokens of the sequence being encoded)
    S  key/value length (T for self-attention, the source length for cross-attention)
    D  model width (d_model)           H  attention heads
    K  head width (D // H)             F  feed-forward width (d_ff, usually 4 * D)
    V  vocabulary size                 L  number of layers
    P  past length held in a KV cache  A  width of the additive-attention scoring layer

Masks: an ``attention_mask`` is (B, S) with 1 for real tokens and 0 for padding (the
convention of HF tokenizers); internally it becomes a boolean "may attend" mask
broadcast to (B, H, T, S).

Parameter names stay close to HF where cheap, so the interop code maps them with a table:
attention ``qkv`` (fused, GPT-2 ``c_attn`` / BERT ``query,key,value`` concatenated) and
``proj`` (GPT-2 ``c_proj`` / BERT ``attention.output.dense``); feed-forward ``fc`` and
``proj`` (GPT-2 ``mlp.c_fc, mlp.c_proj`` / BERT ``intermediate.dense, output.dense``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # exact erf form (BERT)
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's "gelu_new"
    "relu": F.relu,  # Vaswani et al. 2017
}


def activation_fn(name: str):
    """The activation function called ``name`` ("gelu", "gelu_tanh" or "relu")."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}' (choose from: {', '.join(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


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
) -> torch.Tensor | None:
    """The boolean "may attend" mask (B or 1, 1, T, S), or None when nothing is masked.

    Query i sits at absolute position ``past + i`` and may see key j when ``j <= past + i``
    (causal) and key j is not padding. A query always may see itself (when it has a key of
    its own position), so padded rows never become all-masked (SDPA would return NaN there);
    their outputs are garbage but finite and are ignored by callers.
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

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``x`` to itself (or to ``context``).

        Args:
            x: queries' inputs (B, T, D).
            context: keys/values' inputs (B, S, D) for cross-attention; None for self.
            attention_mask: (B, S) 1 = real key, 0 = padding; for self-attention with a
                cache, S = P + T (the mask covers past and new positions).
            cache: self-attention only: past keys/values; new ones are appended to it.
            need_weights: also return the attention probabilities (B, H, T, S).

        Returns:
            (B, T, D), or ``(output, weights)`` when ``need_weights``.
        """
        b, t, d = x.shape
        past = 0
        if context is None:
            q, k, v = self.qkv(x).split(d, dim=2)  # (B, T, 3D) -> 3 x (B, T, D)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)
            if cache is not None:
                past = cache.length
                k, v = cache.append(k, v)  # (B, H, P+T, K)
        else:
            w_q, w_kv = self.qkv.weight.split([d, 2 * d], dim=0)
            b_q, b_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([d, 2 * d])
            q = self._heads(F.linear(x, w_q, b_q))
            k, v = F.linear(context, w_kv, b_kv).split(d, dim=2)  # (B, S, 2D) -> 2 x (B, S, D)
            k, v = self._heads(k), self._heads(v)
        s = k.shape[2]
        causal = self.causal and context is None
        p_drop = self.dropout if self.training else 0.0
        if need_weights:
            mask = attention_bias_mask(
                t, s, causal=causal, attention_mask=attention_mask, past=past, device=x.device
            )
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, S)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            y = F.dropout(weights, p_drop, self.training) @ v  # (B, H, T, K)
        else:
            weights = None
            if attention_mask is None and causal and (past == 0 or t == 1):
                # One new token sees the whole cache; a fresh sequence uses the kernel's
                # own causal mask (no mask tensor, the fastest path).
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop, is_causal=past == 0)
            else:
                mask = attention_bias_mask(
                    t, s, causal=causal, attention_mask=attention_mask, past=past, device=x.device
                )
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
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

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
        scores = self.v(torch.tanh(self.W(query)[:, None, :] + uh)).squeeze(-1)  # (B, S)
        if mask is not None:
            scores = scores.masked_fill(~mask.to(torch.bool), float("-inf"))
        weights = scores.softmax(dim=-1)
        context = torch.bmm(weights[:, None, :], keys).squeeze(1)  # (B,1,S)@(B,S,Dk) -> (B,Dk)
        return context, weights


# --------------------------------------------------------------------------- blocks


class FeedForward(nn.Module):
    """Position-wise feed-forward: proj(dropout(act(fc(x)))), D -> F -> D."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", bias: bool = True):
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff, bias=bias)
        self.proj = nn.Linear(d_ff, d_model, bias=bias)
        self.act = activation_fn(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        return self.proj(self.act(self.fc(x)))


class _Block(nn.Module):
    """Self-attention + feed-forward sublayers; subclasses fix where LayerNorm goes."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        causal: bool = False,
        bias: bool = True,
        ln_eps: float = 1e-5,
    ):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads, dropout, bias=bias, causal=causal)
        self.ln_1 = nn.LayerNorm(d_model, eps=ln_eps)
        self.mlp = FeedForward(d_model, d_ff, activation, bias=bias)
        self.ln_2 = nn.LayerNorm(d_model, eps=ln_eps)
        self.drop = nn.Dropout(dropout)


class PreLNBlock(_Block):
    """x + attn(LN(x)), then x + mlp(LN(x)): GPT-2 (Radford et al. 2019; Xiong et al. 2020).

    Args:
        d_model: D.  n_heads: H.  d_ff: F.  dropout: on sublayer outputs and attention.
        activation: "gelu", "gelu_tanh" or "relu".  causal: decoder-style masking.
        bias: biases in linear layers.  ln_eps: LayerNorm epsilon.
    """

    def forward(self, x, attention_mask=None, cache=None, need_weights=False):
        """(B, T, D) -> (B, T, D); with ``need_weights``, ``(x, weights (B, H, T, S))``."""
        a = self.attn(self.ln_1(x), None, attention_mask, cache, need_weights)
        a, w = a if need_weights else (a, None)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.ln_2(x)))
        return (x, w) if need_weights else x


class PostLNBlock(_Block):
    """LN(x + attn(x)), then LN(x + mlp(x)): the original Transformer and BERT.

    Same arguments as :class:`PreLNBlock`.
    """

    def forward(self, x, attention_mask=None, cache=None, need_weights=False):
        """(B, T, D) -> (B, T, D); with ``need_weights``, ``(x, weights (B, H, T, S))``."""
        a = self.attn(x, None, attention_mask, cache, need_weights)
        a, w = a if need_weights else (a, None)
        x = self.ln_1(x + self.drop(a))
        x = self.ln_2(x + self.drop(self.mlp(x)))
        return (x, w) if need_weights else x


class _CrossBlock(nn.Module):
    """Causal self-attention, cross-attention to an encoder, feed-forward (Vaswani 2017)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "relu",
        bias: bool = True,
        ln_eps: float = 1e-5,
    ):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads, dropout, bias=bias, causal=True)
        self.ln_1 = nn.LayerNorm(d_model, eps=ln_eps)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout, bias=bias)
        self.ln_2 = nn.LayerNorm(d_model, eps=ln_eps)
        self.mlp = FeedForward(d_model, d_ff, activation, bias=bias)
        self.ln_3 = nn.LayerNorm(d_model, eps=ln_eps)
        self.drop = nn.Dropout(dropout)


class PreLNDecoderBlock(_CrossBlock):
    """Pre-LN decoder block with cross-attention.

    ``forward(x, memory, memory_mask=None, attention_mask=None, cache=None,
    need_weights=False)``: x (B, T, D) decoder states, memory (B, S, D) encoder outputs,
    memory_mask (B, S); returns (B, T, D), or ``(x, (self_weights, cross_weights))``.
    """

    def forward(
        self, x, memory, memory_mask=None, attention_mask=None, cache=None, need_weights=False
    ):
        a = self.attn(self.ln_1(x), None, attention_mask, cache, need_weights)
        a, w_self = a if need_weights else (a, None)
        x = x + self.drop(a)
        c = self.cross_attn(self.ln_2(x), memory, memory_mask, None, need_weights)
        c, w_cross = c if need_weights else (c, None)
        x = x + self.drop(c)
        x = x + self.drop(self.mlp(self.ln_3(x)))
        return (x, (w_self, w_cross)) if need_weights else x


class PostLNDecoderBlock(_CrossBlock):
    """Post-LN decoder block with cross-attention (the original Transformer's decoder).

    Same call as :class:`PreLNDecoderBlock`.
    """

    def forward(
        self, x, memory, memory_mask=None, attention_mask=None, cache=None, need_weights=False
    ):
        a = self.attn(x, None, attention_mask, cache, need_weights)
        a, w_self = a if need_weights else (a, None)
        x = self.ln_1(x + self.drop(a))
        c = self.cross_attn(x, memory, memory_mask, None, need_weights)
        c, w_cross = c if need_weights else (c, None)
        x = self.ln_2(x + self.drop(c))
        x = self.ln_3(x + self.drop(self.mlp(x)))
        return (x, (w_self, w_cross)) if need_weights else x


# --------------------------------------------------------------------------- positions


def _check_len(end: int, max_len: int) -> None:
    if end > max_len:
        raise ValueError(f"sequence of {end} positions is longer than max_len {max_len}")


class LearnedPositions(nn.Embedding):
    """Learned absolute position embeddings (GPT, BERT); ``weight`` is (max_len, D)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__(max_len, d_model)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:  # type: ignore[override]
        """Embeddings of positions ``offset .. offset+length-1``: (T, D)."""
        _check_len(offset + length, self.num_embeddings)
        return self.weight[offset : offset + length]


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids (Vaswani et al. 2017): PE(p, 2i) = sin(p / 10000^(2i/D)), cos for 2i+1.

    A non-persistent buffer, so checkpoints do not carry it.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
        freq = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(1e4) / d_model)
        )
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        """Encodings of positions ``offset .. offset+length-1``: (T, D)."""
        _check_len(offset + length, self.pe.shape[0])
        return self.pe[offset : offset + length]


# --------------------------------------------------------------------------- init


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """GPT/BERT init: Linear and Embedding weights ~ N(0, std), biases 0, LayerNorm 1/0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.LayerNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def scale_residual_init_(
    module: nn.Module, n_layers: int, std: float = 0.02, suffix: str = "proj.weight"
) -> None:
    """GPT-2 (Radford et al. 2019): residual output projections ~ N(0, std / sqrt(2 L)).

    Each layer adds two residual branches (attention, MLP), so the residual stream's
    variance grows with 2L; scaling their last projections keeps it bounded at init.
    """
    for name, p in module.named_parameters():
        if name.endswith(suffix):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers))


def init_xavier_(module: nn.Module) -> None:
    """Xavier/Glorot uniform on every matrix (Vaswani et al. 2017's setup), biases 0."""
    for name, p in module.named_parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
