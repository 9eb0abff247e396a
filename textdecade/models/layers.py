"""Shared neural layers: feed-forward, Transformer blocks, positions.

Attention itself (multi-head, additive, KV caches) lives in :mod:`textdecade.models.attention`;
its public names are re-exported here, so ``from textdecade.models.layers import
MultiHeadAttention`` keeps working. The blocks receive their parts (norms, activation,
residual, MLP) as arguments; :mod:`textdecade.models.blocks` builds them from config names
and holds the initialisation.

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

import functools
import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from textdecade.models.attention import (
    AdditiveAttention,
    KVCache,
    MultiHeadAttention,
    attention_bias_mask,
    make_caches,
)
from textdecade.models.blocks import (
    LayerNorm,
    Residual,
    init_normal_,
    init_xavier_,
    make_activation,
    scale_residual_init_,
)

__all__ = [
    "DECODER_BLOCKS",
    "ENCODER_BLOCKS",
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
    "block_attention_maps",
]

#: The activation registry now lives in :mod:`textdecade.models.blocks`; the old name stays.
activation_fn = make_activation

NormFactory = Callable[[int], nn.Module]


def _pad_mask(x: torch.Tensor, attention_mask, pad_mask):
    """The (B, T) padding mask of x for its norms: given, else the last T columns of the
    (B, P+T) self-attention mask (the positions of x; the first P are cached)."""
    if pad_mask is not None or attention_mask is None:
        return pad_mask
    return attention_mask[:, -x.shape[1] :]


# --------------------------------------------------------------------------- blocks


class FeedForward(nn.Module):
    """Position-wise feed-forward: proj(act(fc(x))), D -> F -> D.

    Args:
        d_model: D.  d_ff: F.  bias: biases in both linear layers.
        activation: a name of :data:`~textdecade.models.blocks.ACTIVATIONS` or a module.
    """

    def __init__(
        self, d_model: int, d_ff: int, activation: str | nn.Module = "gelu", bias: bool = True
    ):
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff, bias=bias)
        self.proj = nn.Linear(d_ff, d_model, bias=bias)
        self.act = make_activation(activation) if isinstance(activation, str) else activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        return self.proj(self.act(self.fc(x)))


class _Block(nn.Module):
    """Self-attention + feed-forward sublayers; subclasses fix where the norms go.

    Args:
        d_model: D.  n_heads: H.  d_ff: F.  dropout: on sublayer outputs and attention.
        activation: the MLP's activation, a name or a module.  causal: decoder masking.
        bias: biases in linear layers (and in the default LayerNorms).
        ln_eps: the default LayerNorms' epsilon.
        norm: ``d_model -> norm module``, called once per norm (default: LayerNorm with
            ``ln_eps`` and ``bias``); see :func:`textdecade.models.blocks.make_norm`.
        residual: joins a sublayer's input and output (default: x + f(x)).
        attn: the self-attention module (default: :class:`MultiHeadAttention`).
        mlp: the feed-forward module (default: :class:`FeedForward`).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str | nn.Module = "gelu",
        causal: bool = False,
        bias: bool = True,
        ln_eps: float = 1e-5,
        *,
        norm: NormFactory | None = None,
        residual: nn.Module | None = None,
        attn: nn.Module | None = None,
        mlp: nn.Module | None = None,
    ):
        super().__init__()
        norm = norm or functools.partial(LayerNorm, eps=ln_eps, bias=bias)
        self.attn = attn or MultiHeadAttention(d_model, n_heads, dropout, bias=bias, causal=causal)
        self.ln_1 = norm(d_model)
        self.mlp = mlp or FeedForward(d_model, d_ff, activation, bias=bias)
        self.ln_2 = norm(d_model)
        self.drop = nn.Dropout(dropout)
        self.residual = residual or Residual()


class PreLNBlock(_Block):
    """x + attn(N(x)), then x + mlp(N(x)): GPT-2 (Radford et al. 2019; Xiong et al. 2020).

    N is the norm the block was given (LayerNorm unless told). Arguments: see ``_Block``.
    """

    def forward(self, x, attention_mask=None, cache=None, need_weights=False, pad_mask=None):
        """(B, T, D) -> (B, T, D); with ``need_weights``, ``(x, weights (B, H, T, S))``.

        ``attention_mask`` (B, P+T) 1 = real; ``pad_mask`` (B, T) the real positions of x
        for the norms (default: the last T columns of ``attention_mask``).
        """
        m = _pad_mask(x, attention_mask, pad_mask)
        a = self.attn(self.ln_1(x, m), None, attention_mask, cache, need_weights)
        a, w = a if need_weights else (a, None)
        x = self.residual(x, self.drop(a))
        x = self.residual(x, self.drop(self.mlp(self.ln_2(x, m))))
        return (x, w) if need_weights else x


class PostLNBlock(_Block):
    """N(x + attn(x)), then N(x + mlp(x)): the original Transformer and BERT.

    Same arguments and call as :class:`PreLNBlock`.
    """

    def forward(self, x, attention_mask=None, cache=None, need_weights=False, pad_mask=None):
        """(B, T, D) -> (B, T, D); with ``need_weights``, ``(x, weights (B, H, T, S))``."""
        m = _pad_mask(x, attention_mask, pad_mask)
        a = self.attn(x, None, attention_mask, cache, need_weights)
        a, w = a if need_weights else (a, None)
        x = self.ln_1(self.residual(x, self.drop(a)), m)
        x = self.ln_2(self.residual(x, self.drop(self.mlp(x))), m)
        return (x, w) if need_weights else x


class _CrossBlock(nn.Module):
    """Causal self-attention, cross-attention to an encoder, feed-forward (Vaswani 2017).

    Same arguments as ``_Block`` (without ``causal``: always causal), plus ``cross_attn``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str | nn.Module = "relu",
        bias: bool = True,
        ln_eps: float = 1e-5,
        *,
        norm: NormFactory | None = None,
        residual: nn.Module | None = None,
        attn: nn.Module | None = None,
        cross_attn: nn.Module | None = None,
        mlp: nn.Module | None = None,
    ):
        super().__init__()
        norm = norm or functools.partial(LayerNorm, eps=ln_eps, bias=bias)
        self.attn = attn or MultiHeadAttention(d_model, n_heads, dropout, bias=bias, causal=True)
        self.ln_1 = norm(d_model)
        self.cross_attn = cross_attn or MultiHeadAttention(d_model, n_heads, dropout, bias=bias)
        self.ln_2 = norm(d_model)
        self.mlp = mlp or FeedForward(d_model, d_ff, activation, bias=bias)
        self.ln_3 = norm(d_model)
        self.drop = nn.Dropout(dropout)
        self.residual = residual or Residual()


class PreLNDecoderBlock(_CrossBlock):
    """Pre-norm decoder block with cross-attention.

    ``forward(x, memory, memory_mask=None, attention_mask=None, cache=None,
    need_weights=False, memory_kv=None, pad_mask=None)``: x (B, T, D) decoder states,
    memory (B, S, D) encoder outputs, memory_mask (B, S); ``memory_kv`` is
    ``self.cross_attn.project_kv(memory)`` computed once per source (incremental
    decoding), and then ``memory`` may be None; ``pad_mask`` (B, T) the real target
    positions for the norms. Returns (B, T, D), or ``(x, (self_weights, cross_weights))``.
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
        pad_mask=None,
    ):
        m = _pad_mask(x, attention_mask, pad_mask)
        a = self.attn(self.ln_1(x, m), None, attention_mask, cache, need_weights)
        a, w_self = a if need_weights else (a, None)
        x = self.residual(x, self.drop(a))
        c = self.cross_attn(self.ln_2(x, m), memory, memory_mask, None, need_weights, memory_kv)
        c, w_cross = c if need_weights else (c, None)
        x = self.residual(x, self.drop(c))
        x = self.residual(x, self.drop(self.mlp(self.ln_3(x, m))))
        return (x, (w_self, w_cross)) if need_weights else x


class PostLNDecoderBlock(_CrossBlock):
    """Post-norm decoder block with cross-attention (the original Transformer's decoder).

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
        pad_mask=None,
    ):
        m = _pad_mask(x, attention_mask, pad_mask)
        a = self.attn(x, None, attention_mask, cache, need_weights)
        a, w_self = a if need_weights else (a, None)
        x = self.ln_1(self.residual(x, self.drop(a)), m)
        c = self.cross_attn(x, memory, memory_mask, None, need_weights, memory_kv)
        c, w_cross = c if need_weights else (c, None)
        x = self.ln_2(self.residual(x, self.drop(c)), m)
        x = self.ln_3(self.residual(x, self.drop(self.mlp(x))), m)
        return (x, (w_self, w_cross)) if need_weights else x


#: ``config.norm`` -> the block class with the norms there (self-attention / cross-attention).
ENCODER_BLOCKS: dict[str, type[_Block]] = {"pre": PreLNBlock, "post": PostLNBlock}
DECODER_BLOCKS: dict[str, type[_CrossBlock]] = {
    "pre": PreLNDecoderBlock,
    "post": PostLNDecoderBlock,
}


@torch.no_grad()
def block_attention_maps(
    model: nn.Module,
    embed: Callable[[], torch.Tensor],
    blocks: Iterable[nn.Module],
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every block's self-attention probabilities, for a model's attention pictures.

    Args:
        model: put in eval mode for the call (no dropout touches the embeddings or the
            probabilities: the picture of the trained model), then restored.
        embed: returns the first block's input (B, T, D) (called in eval mode).
        blocks: the blocks, in order; each is called as ``block(x, attention_mask=...,
            need_weights=True)``, the explicit softmax over the same projections (the fast
            kernel returns none).
        attention_mask: (B, T) 1 = real, 0 = padding.

    Returns:
        (B, L, H, T, T): L x (B, H, T, T) stacked on dim 1.
    """
    was_training = model.training
    model.eval()
    try:
        x = embed()
        maps = []
        for block in blocks:
            x, weights = block(x, attention_mask=attention_mask, need_weights=True)
            maps.append(weights)
    finally:
        model.train(was_training)
    return torch.stack(maps, dim=1)


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
