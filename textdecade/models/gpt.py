"""GPT: a decoder-only causal language model (Radford et al. 2018; GPT-2, 2019).

Pre-LN blocks as GPT-2 (LayerNorm before each sublayer, one more after the last block),
learned positions, input and output embeddings tied (Press & Wolf 2017), and GPT-2's
scaled init of residual projections. Parameter names follow HF ``GPT2LMHeadModel``
(``wte``, ``wpe``, ``h.{i}.ln_1``, ``ln_f``) with the attention/MLP names of
:mod:`textdecade.models.layers`. Those are the defaults: ``model.norm``, ``norm_type``,
``activation``, ``init`` and ``residual`` swap the blocks' parts
(:mod:`textdecade.models.blocks`) for the lab; only the defaults export to HF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from textdecade.data.lm import (
    IGNORE_INDEX,
    CausalLMBatcher,
    causal_eval_batches,
)
from textdecade.errors import ConfigError
from textdecade.models.base import (
    Family,
    Generates,
    PreparedData,
    SelfAttentionMaps,
    TokenStream,
    resolve_vocab_size,
)
from textdecade.models.blocks import (
    BlockConfig,
    block_parts,
    init_normal_,
    init_weights_,
    scale_residual_init_,
)
from textdecade.models.layers import (
    ENCODER_BLOCKS,
    KVCache,
    LearnedPositions,
    block_attention_maps,
    make_caches,
)
from textdecade.models.losses import linear_cross_entropy, lm_metrics


@dataclass(frozen=True)
class Config(BlockConfig):
    """GPT hyperparameters (GPT-2's in brackets).

    Attributes:
        vocab_size: output vocabulary; 0 takes the tokenizer's.
        d_model: D.  n_heads: H.  n_layers: L.  d_ff: F (0 means 4 * D).
        dropout: on embeddings, attention and residual branches (GPT-2: 0.1).
        max_len: the context length T.
        activation: ["gelu_tanh"] or another of :data:`~textdecade.models.blocks.ACTIVATIONS`.
        bias: biases in linear layers and norms.
        init: ["default"]: N(0, init_std) with GPT-2's residual scaling; see
            :func:`~textdecade.models.blocks.init_weights_` for the others.
        init_std: the normal init's standard deviation [0.02].
        norm: ["pre"] or "post" (without ``ln_f``, as GPT-1).  norm_type: ["layernorm"],
            "rmsnorm", "batchnorm" or "none".  residual: skip connections [true].
        valid_fraction: share of documents held out for validation.
    """

    vocab_size: int = 0
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 6
    d_ff: int = 0
    dropout: float = 0.0
    max_len: int = 256
    activation: str = "gelu_tanh"
    bias: bool = True
    init_std: float = 0.02
    norm: str = "pre"
    valid_fraction: float = 0.01

    def __post_init__(self):
        super().__post_init__()  # the block fields' names
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})"
            )
        if min(self.d_model, self.n_heads, self.n_layers, self.max_len) < 1:
            raise ConfigError("model.d_model, n_heads, n_layers and max_len must be positive")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


PRESETS: dict[str, dict[str, Any]] = {
    # ~1.3M parameters: a couple of minutes on 2 CPU cores to a clearly lower loss.
    "tiny": {
        "model": {"d_model": 128, "n_heads": 4, "n_layers": 4, "max_len": 128},
        "tokenizer": {"vocab_size": 4096},
        "train": {
            "steps": 600,
            "batch_size": 16,
            "lr": 1e-3,
            "warmup_steps": 50,
            "eval_every": 100,
            "ckpt_every": 200,
        },
    },
    # ~35M parameters (8 x 512, context 512): one GPU, well under an hour.
    "small": {
        "model": {"d_model": 512, "n_heads": 8, "n_layers": 8, "max_len": 512, "dropout": 0.0},
        "tokenizer": {"vocab_size": 16384},
        "train": {
            "steps": 10000,
            "batch_size": 64,
            "lr": 6e-4,
            "warmup_steps": 500,
            "eval_every": 500,
            "ckpt_every": 1000,
        },
    },
    # GPT-2 124M (Radford et al. 2019): 12 x 768, 12 heads, context 1024; ~0.5M tokens/step.
    "base": {
        "model": {"d_model": 768, "n_heads": 12, "n_layers": 12, "max_len": 1024, "dropout": 0.1},
        "tokenizer": {"vocab_size": 50257},
        "train": {
            "steps": 600000,
            "batch_size": 16,
            "grad_accum": 32,
            "lr": 6e-4,
            "warmup_steps": 2000,
            "eval_every": 1000,
            "ckpt_every": 2000,
        },
    },
}


class Model(TokenStream, Family, Generates, SelfAttentionMaps):
    """The GPT family (see the module docstring).

    Args:
        config: :class:`Config`.
        meta: prepared data's metadata (needs ``vocab_size``; ``eos_id`` and
            ``n_valid_bytes`` / ``n_valid_tokens`` for generation and bits per byte).
    """

    name = "gpt"
    Config = Config
    default_optimizer = "adamw"
    default_schedule = "cosine"

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        c = config
        self.vocab_size = resolve_vocab_size("gpt", c.vocab_size, meta)
        self.wte = nn.Embedding(self.vocab_size, c.d_model)
        self.wpe = LearnedPositions(c.max_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        d_ff = c.d_ff or 4 * c.d_model
        parts = block_parts(c, bias=c.bias)
        self.h = parts.stack(
            ENCODER_BLOCKS[c.norm],
            c.n_layers,
            c.d_model,
            c.n_heads,
            d_ff,
            c.dropout,
            causal=True,
            bias=c.bias,
        )
        self.ln_f = parts.final_norm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, self.vocab_size, bias=False)
        init_weights_(self, c.init, c.init_std, default=self._paper_init)
        self.lm_head.weight = self.wte.weight  # tied (after init: one tensor, one init)
        self._eval_batch_size = 8

    def _paper_init(self, module: nn.Module) -> None:
        """GPT-2: N(0, init_std), residual projections scaled by 1 / sqrt(2 L)."""
        init_normal_(module, self.config.init_std)
        scale_residual_init_(module, self.config.n_layers, self.config.init_std)

    def blocks(self) -> list[nn.Module]:
        """The decoder blocks."""
        return list(self.h)

    # ------------------------------------------------------------------ forward passes
    def _embed(self, input_ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Token + position embeddings: (B, T) -> (B, T, D)."""
        return self.drop(self.wte(input_ids) + self.wpe(input_ids.shape[1], offset))

    def logits(
        self,
        input_ids: torch.Tensor,
        cache: list[KVCache] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-token logits (B, T, V) for every position.

        Args:
            input_ids: (B, T).
            cache: per-layer KV caches from :meth:`new_cache`; the ids continue what is
                already cached (positions start at the cache's length) and are appended.
            attention_mask: (B, P+T) 1 = real token, 0 = padding (right padding).
        """
        return self.lm_head(self._final_states(input_ids, cache, attention_mask))

    def _final_states(self, input_ids, cache=None, attention_mask=None) -> torch.Tensor:
        """The last block's output after ``ln_f``: (B, T) -> (B, T, D)."""
        offset = cache[0].length if cache else 0
        x = self._embed(input_ids, offset)
        for i, block in enumerate(self.h):
            x = block(x, attention_mask, cache[i] if cache else None)
        return self.ln_f(x, None if attention_mask is None else attention_mask[:, -x.shape[1] :])

    def new_cache(self, batch: int = 1, device=None, dtype=None) -> list[KVCache]:
        """Empty KV caches for ``batch`` sequences of up to ``max_len`` positions."""
        c = self.config
        w = self.wte.weight
        return make_caches(
            c.n_layers,
            batch,
            c.n_heads,
            c.max_len,
            c.d_model // c.n_heads,
            device or w.device,
            dtype or w.dtype,
        )

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Embedding output, then each block's output (the last after ``ln_f``, as HF GPT-2).

        Args:
            input_ids: (B, T).  attention_mask: (B, T), 1 = real, 0 = padding.

        Returns:
            L + 1 tensors (B, T, D). Causal attention means a right-padded text's states
            equal its states alone.
        """
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # nothing padded: the kernel's own causal mask is faster
        x = self._embed(input_ids)
        states = [x]
        for block in self.h:
            x = block(x, attention_mask)
            states.append(x)
        states[-1] = self.ln_f(x, attention_mask)
        return states

    mask_optional = True  # causal: a batch without padding needs no mask

    def self_attention_maps(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Causal attention probabilities (B, L, H, T, T): zero above the diagonal.

        Args:
            input_ids: (B, T).  attention_mask: (B, T), 1 = real, 0 = padding.
        """
        embed = lambda: self._embed(input_ids)  # noqa: E731
        return block_attention_maps(self, embed, self.h, attention_mask)

    @property
    def state_size(self) -> int:
        return self.config.d_model

    def input_embeddings(self) -> nn.Embedding:
        """The token embedding (also the output layer, tied)."""
        return self.wte

    # ------------------------------------------------------------------ family contract
    def batcher(self, data: PreparedData, batch_size: int, *, seed: int, rank=0, world_size=1):
        """Random ``max_len + 1`` windows of the training tokens (see :class:`CausalLMBatcher`)."""
        self._eval_batch_size = batch_size
        return CausalLMBatcher(data.train, batch_size, self.config.max_len, seed, rank)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) of ``input_ids`` -> ``labels``."""
        h = self._final_states(batch["input_ids"]).flatten(0, 1)  # (B, T, D) -> (B*T, D)
        # the output layer and the loss together, chunk by chunk (see linear_cross_entropy)
        return linear_cross_entropy(
            h, self.lm_head.weight, batch["labels"].flatten(), ignore_index=IGNORE_INDEX
        )

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Validation loss (nats/token) and bits per byte of the held-out documents.

        Bits per byte = loss / ln 2 * (tokens / bytes) of the validation text, which does
        not depend on the tokenizer (Gao et al. 2020, The Pile).
        """
        if data.valid is None or len(data.valid) < 2:
            return {}
        return self.eval_metrics(list(self.eval_batches(data, max_batches)))

    @torch.no_grad()
    def eval_batches(self, data: PreparedData, max_batches: int = 20):
        """Summed next-token loss and label count of each validation batch (consecutive
        windows of the held-out token stream; see ``causal_eval_batches``)."""
        if data.valid is None or len(data.valid) < 2:
            return
        was_training = self.training
        self.eval()
        device = self.wte.weight.device
        try:
            for batch in causal_eval_batches(
                data.valid, self._eval_batch_size, self.config.max_len, max_batches
            ):
                h = self._final_states(batch["input_ids"].to(device)).flatten(0, 1)
                labels = batch["labels"].to(device).flatten()
                # the mean over this batch's labels, chunk by chunk (no (B*T, V) logits)
                mean = float(linear_cross_entropy(h, self.lm_head.weight, labels))
                yield {"nats": mean * labels.numel(), "tokens": labels.numel()}
        finally:
            self.train(was_training)

    def eval_metrics(self, batches: list[dict[str, float]]) -> dict[str, float]:
        """``val_loss``, ``val_ppl`` and (with the byte count) ``val_bpb`` from batch sums."""
        return lm_metrics(batches, self.meta)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters (tied weights once); without position embeddings by default (nanoGPT)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_unit(self) -> float:
        """Training FLOPs per token: 6N + 12 L D T (Kaplan et al. 2020; PaLM appendix B)."""
        c = self.config
        return 6.0 * self.num_params() + 12.0 * c.n_layers * c.d_model * c.max_len
