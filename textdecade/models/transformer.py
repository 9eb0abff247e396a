"""The encoder-decoder Transformer: Vaswani et al. 2017, "Attention is all you need".

Built from the shared blocks of :mod:`textdecade.models.layers`: an encoder of
self-attention blocks and a decoder of causal self-attention + cross-attention blocks,
sinusoidal positions (section 3.5), embeddings scaled by sqrt(d_model) and shared between
source, target and the output softmax (section 3.4; one joint tokenizer makes this
possible), label smoothing 0.1 (section 5.4), the Noam warmup schedule (section 5.3) and
Xavier initialisation (as in the tensor2tensor reference code).

``norm="post"`` is the paper's post-LN; ``norm="pre"`` puts the norm before each sublayer
(Xiong et al. 2020), which trains without warmup tricks and needs a final norm. The
blocks' parts (``norm_type``, ``activation``, ``residual``, ``init``) come from
:mod:`textdecade.models.blocks`; the defaults are the paper's.
The data side (translation or denoising) and the loss come from
:class:`~textdecade.models.seq2seq.EncoderDecoderFamily`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from textdecade.data.parallel import PAD_ID
from textdecade.models.base import resolve_vocab_size
from textdecade.models.blocks import BlockConfig, block_parts, init_weights_, init_xavier_
from textdecade.models.decoding import reorder_tensors
from textdecade.models.layers import (
    DECODER_BLOCKS,
    ENCODER_BLOCKS,
    SinusoidalPositions,
    make_caches,
)
from textdecade.models.seq2seq import EncoderDecoderFamily

#: Decoding-state entries that depend only on the source (see ``Model.reorder_state``).
_SOURCE_SIDE = ("memory", "mask", "cross_kv")


@dataclass(frozen=True)
class Config(BlockConfig):
    """Transformer hyperparameters (the paper's base model in brackets).

    ``n_layers`` is the depth of the encoder and of the decoder each [6]; ``d_ff`` the
    feed-forward width [2048]; ``norm`` "post" [paper] or "pre"; ``norm_type``
    ["layernorm"], "rmsnorm", "batchnorm" or "none"; ``activation`` of the feed-forward
    ["relu"]; ``init`` ["default": Xavier uniform, embeddings N(0, d^-1/2)] or a scheme of
    :func:`~textdecade.models.blocks.init_weights_` (``init_std`` for "normal");
    ``residual`` [true]. ``objective``: "auto" translates given a parallel corpus and
    denoises plain text. ``vocab_size`` 0 = the tokenizer's.
    """

    vocab_size: int = 0
    d_model: int = 512
    n_heads: int = 8
    n_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 256
    norm: str = "post"
    activation: str = "relu"
    objective: str = "auto"
    label_smoothing: float = 0.1
    noise_ratio: float = 0.3
    span_lambda: float = 3.0


class Model(EncoderDecoderFamily):
    """Encoder-decoder Transformer with tied embeddings (see the module docstring)."""

    name = "transformer"
    default_optimizer = "adamw"
    default_schedule = "noam"

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        c = config
        parts = block_parts(c)
        v = resolve_vocab_size("transformer", c.vocab_size, meta)
        self.embed = nn.Embedding(v, c.d_model, padding_idx=PAD_ID)
        self.positions = SinusoidalPositions(c.max_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = parts.stack(
            ENCODER_BLOCKS[c.norm], c.n_layers, c.d_model, c.n_heads, c.d_ff, c.dropout
        )
        self.decoder = parts.stack(
            DECODER_BLOCKS[c.norm], c.n_layers, c.d_model, c.n_heads, c.d_ff, c.dropout
        )
        # Pre-norm leaves the residual stream un-normalised: close each stack with a norm.
        self.enc_norm = parts.final_norm(c.d_model)
        self.dec_norm = parts.final_norm(c.d_model)
        init_weights_(self, c.init, c.init_std, default=self._paper_init)

    def _paper_init(self, module: nn.Module) -> None:
        """Xavier uniform (tensor2tensor), embeddings N(0, d^-1/2), the pad row zero."""
        init_xavier_(module)
        # Embeddings ~ N(0, d^-1/2): scaled by sqrt(d) on input they have unit variance, and
        # as the tied output matrix they give logits of unit scale (fairseq's choice).
        nn.init.normal_(self.embed.weight, 0.0, self.config.d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[PAD_ID].zero_()

    @property
    def state_size(self) -> int:
        return self.config.d_model

    def blocks(self) -> list[nn.Module]:
        """The encoder blocks, then the decoder blocks (the order of a forward pass)."""
        return [*self.encoder, *self.decoder]

    def input_embeddings(self) -> nn.Embedding:
        return self.embed

    def _embed(self, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = self.embed(ids) * math.sqrt(self.config.d_model)  # (B, T, D)
        return self.drop(x + self.positions(ids.shape[1], offset))

    # ---------------------------------------------------------------------------- encoder
    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> list[torch.Tensor]:
        """Encoder states: embeddings + positions, then each layer (B, T, D) (last normed)."""
        x = self._embed(input_ids)
        states = [x]
        for block in self.encoder:
            x = block(x, attention_mask)
            states.append(x)
        states[-1] = self.enc_norm(states[-1], attention_mask)
        return states

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> dict[str, Any]:
        """Run the encoder once: memory, source mask and each decoder layer's cross K/V.

        Cross-attention keys and values depend only on the source, so they are projected
        here once per source batch, not at every decoding step; beam search expands and
        reorders them with the rest of the state (:meth:`reorder_state`).

        Returns:
            ``{"memory": (B, S, D), "mask": (B, S), "cross_kv": [(k, v)] * L, "source":
            (B,)}`` with k, v (B, H, S, K) and ``source`` each row's index in ``src``.
        """
        memory = self.hidden_states(src, src_mask)[-1]
        cross_kv = [block.cross_attn.project_kv(memory) for block in self.decoder]
        source = torch.arange(src.shape[0], device=src.device)
        return {"memory": memory, "mask": src_mask, "cross_kv": cross_kv, "source": source}

    # ---------------------------------------------------------------------------- decoder
    def _decode(self, state, tgt_in, caches=None, offset=0, need_weights=False):
        """Decoder logits (B, T, V) of ``tgt_in`` at positions ``offset`` onwards.

        A state without ``cross_kv`` projects cross-attention keys/values from ``memory``
        in every layer (the uncached reference path).
        """
        x = self._embed(tgt_in, offset)
        pad = tgt_in != PAD_ID  # (B, T): the real target positions, for a batch norm
        cross = []
        cross_kv = state.get("cross_kv")
        for i, block in enumerate(self.decoder):
            cache = caches[i] if caches is not None else None
            kv = cross_kv[i] if cross_kv is not None else None
            # The causal mask alone hides right padding from real tokens: no mask tensor.
            y = block(x, state["memory"], state["mask"], None, cache, need_weights, kv, pad)
            if need_weights:
                x, (_, w) = y
                cross.append(w)  # (B, H, T, S)
            else:
                x = y
        logits = self.dec_norm(x, pad) @ self.embed.weight.t()  # (B, T, D) @ (D, V) -> (B, T, V)
        return (logits, torch.stack(cross, 1)) if need_weights else logits

    def decode_step(self, state: dict[str, Any], tokens: torch.Tensor):
        """Feed the last tokens (B, 1) through the KV-cached decoder: log-probs (B, V)."""
        state = dict(state)
        if "caches" not in state:
            c = self.config
            memory = state["memory"]
            state["caches"] = make_caches(
                c.n_layers, memory.shape[0], c.n_heads, c.max_len, c.d_model // c.n_heads,
                memory.device, memory.dtype,
            )  # fmt: skip
        offset = state["caches"][0].length
        logits = self._decode(state, tokens[:, -1:], state["caches"], offset)
        return F.log_softmax(logits[:, -1].float(), -1), state

    def reorder_state(self, state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """Select batch rows ``index`` of the state (beam search: expand, then follow).

        The source side (memory, mask, cross-attention K/V) depends on the source alone and
        ``state["source"]`` records each row's source: when every row keeps a row of the
        same source (each beam step after the first expansion) it stays as it is instead of
        being copied, so a step does no O(S) work. Self-attention caches are per hypothesis
        and always follow ``index``.
        """
        state = dict(state)
        caches = state.pop("caches", None)
        side = {k: state.pop(k) for k in _SOURCE_SIDE if k in state}
        source = state.get("source")
        state = reorder_tensors(state, index)
        if source is None or not torch.equal(state["source"], source):
            cross_kv = side.pop("cross_kv", None)
            side = reorder_tensors(side, index)
            if cross_kv is not None:
                side["cross_kv"] = [
                    (k.index_select(0, index), v.index_select(0, index)) for k, v in cross_kv
                ]
        state.update(side)
        if caches is not None:
            for cache in caches:
                cache.reorder(index)
            state["caches"] = caches
        return state

    @torch.no_grad()
    def attention_maps(
        self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Cross-attention weights (B, L, H, T, S) of every decoder layer and head."""
        _, weights = self._decode(self.encode(src, src_mask), tgt_in, need_weights=True)
        return weights

    def flops_per_unit(self) -> float:
        """~6N per token plus attention's 12 L T D (Kaplan et al. 2020), with T = max_len/2."""
        c = self.config
        n = sum(p.numel() for p in self.parameters())
        return 6.0 * n + 12.0 * 2 * c.n_layers * (c.max_len // 2) * c.d_model


PRESETS: dict[str, dict[str, Any]] = {
    # A few minutes on 2 CPU cores (Multi30k-sized data); pre-LN trains faster when tiny.
    "tiny": {
        "model": {
            "d_model": 128,
            "n_heads": 4,
            "n_layers": 2,
            "d_ff": 512,
            "max_len": 64,
            "dropout": 0.1,
        },
        "train": {
            "steps": 1500,
            "batch_size": 64,
            "lr": 1e-3,
            "warmup_steps": 200,
            "weight_decay": 0.0,
            "beta2": 0.98,
            "eval_every": 250,
        },
        "tokenizer": {"vocab_size": 8000},
    },  # fmt: skip
    # One GPU, well under an hour: Multi30k de->en (~35 BLEU class).
    "small": {
        "model": {
            "d_model": 256,
            "n_heads": 4,
            "n_layers": 3,
            "d_ff": 1024,
            "max_len": 128,
            "dropout": 0.2,
        },
        "train": {
            "steps": 20000,
            "batch_size": 128,
            "lr": 1e-3,
            "warmup_steps": 2000,
            "weight_decay": 0.0,
            "beta2": 0.98,
            "eval_every": 1000,
        },
        "tokenizer": {"vocab_size": 10000},
    },  # fmt: skip
    # Vaswani et al. 2017 base: peak lr = 512^-0.5 * 4000^-0.5 ~ 7e-4 with Noam.
    "base": {
        "model": {
            "d_model": 512,
            "n_heads": 8,
            "n_layers": 6,
            "d_ff": 2048,
            "max_len": 256,
            "dropout": 0.1,
        },
        "train": {
            "steps": 100000,
            "batch_size": 256,
            "lr": 7e-4,
            "warmup_steps": 4000,
            "weight_decay": 0.0,
            "beta2": 0.98,
        },
        "tokenizer": {"vocab_size": 37000},
    },  # fmt: skip
}
