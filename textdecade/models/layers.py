"""Shared neural layers: feed-forward, Transformer blocks, positions, initialisation.

Attention itself (multi-head, additive, KV caches) lives in :mod:`textdecade.models.attention`;
its public names are re-exported here, so ``from textdecade.models.layers import
MultiHeadAttention`` keeps working.

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

from textdecade.models.attention import (
    AdditiveAttention,
    KVCache,
    MultiHeadAttention,
    attention_bias_mask,
    make_caches,
)

__all__ = [
    "AdditiveAttention",
    "FeedForward",
    "KVCache",
    "LearnedPositions",
    "MultiHeadAttention",
    "PostLNBlock",
    "PostLNDecoderBlock",
    "PreLNBlock",
    "PreLNDecoderBlock",
    "SinusoidalPositions",
    "activation_fn",
    "attention_bias_mask",
    "init_normal_",
    "init_xavier_",
    "make_caches",
    "scale_residual_init_",
]

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
    need_weights=False, memory_kv=None)``: x (B, T, D) decoder states, memory (B, S, D)
    encoder outputs, memory_mask (B, S); ``memory_kv`` is
    ``self.cross_attn.project_kv(memory)`` computed once per source (incremental
    decoding), and then ``memory`` may be None. Returns (B, T, D), or
    ``(x, (self_weights, cross_weights))``.
    """

    def forward(
        self,
        x,
        memory,
        memory_mask=None,
        attention_mask=None,
        cache=None,
        need_weights=False,
        memory_kv=None,
    ):
        a = self.attn(self.ln_1(x), None, attention_mask, cache, need_weights)
        a, w_self = a if need_weights else (a, None)
        x = x + self.drop(a)
        c = self.cross_attn(self.ln_2(x), memory, memory_mask, None, need_weights, memory_kv)
        c, w_cross = c if need_weights else (c, None)
        x = x + self.drop(c)
        x = x + self.drop(self.mlp(self.ln_3(x)))
        return (x, (w_self, w_cross)) if need_weights else x


class PostLNDecoderBlock(_CrossBlock):
    """Post-LN decoder block with cross-attention (the original Transformer's decoder).

    Same call as :class:`PreLNDecoderBlock`.
    """

    def forward(
        self,
        x,
        memory,
        memory_mask=None,
        attention_mask=None,
        cache=None,
        need_weights=False,
        memory_kv=None,
    ):
        a = self.attn(x, None, attention_mask, cache, need_weights)
        a, w_self = a if need_weights else (a, None)
        x = self.ln_1(x + self.drop(a))
        c = self.cross_attn(x, memory, memory_mask, None, need_weights, memory_kv)
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
