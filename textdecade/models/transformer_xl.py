"""Transformer-XL: a causal language model with segment-level recurrence (Dai et al. 2019).

The text is read as consecutive segments (:class:`~textdecade.data.segments.SegmentBatcher`);
each layer caches the states it received for the last ``mem_len`` positions of the
previous segments (gradients stopped, sec. 3.2) and attends over [memory; segment] with
relative positions (:mod:`textdecade.models.relative_attention`, sec. 3.3), so the
dependency a model can use grows with depth (L x mem_len) instead of stopping at the
segment boundary, and evaluation may use a longer memory than training
(``eval_mem_len``). The memory carries from one training batch to the next, so it is
training state: :meth:`Model.train_state` hands it to the checkpoints (beside the weights,
not in ``model.safetensors``) and a resumed run continues with the memory it had.

Blocks are pre-norm as this package's GPT (the paper's base models are post-norm; pre-norm
trains without its warm-up care), input and output embeddings are tied, and the init is
GPT-2's N(0, init_std) with scaled residual projections; there are no absolute position
embeddings. The adaptive softmax and input of the paper's WikiText-103 models are left out
(the shared BPE vocabulary is small).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from textdecade.data.lm import IGNORE_INDEX
from textdecade.data.segments import SegmentBatcher, segment_eval_batches
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
    LayerNorm,
    NeuralConfig,
    init_normal_,
    init_weights_,
    make_activation,
    scale_residual_init_,
)
from textdecade.models.layers import block_attention_maps
from textdecade.models.losses import linear_cross_entropy, lm_metrics
from textdecade.models.relative_attention import LayerMemory, RelativeBlock, extend_memory


@dataclass(frozen=True)
class Config(NeuralConfig):
    """Transformer-XL hyperparameters.

    Attributes:
        vocab_size: output vocabulary; 0 takes the tokenizer's.
        d_model: D.  n_heads: H.  n_layers: L.  d_ff: F (0 means 4 * D).
        dropout: on embeddings, attention and residual branches.
        segment_len: T, the tokens of one training segment (the paper's ``tgt_len``).
        mem_len: M, the cached positions per layer in training (``mem_len``).
        eval_mem_len: the memory in evaluation and generation (0: ``mem_len``); relative
            positions let it exceed the training memory (the paper evaluates with 640
            after training with 150).
        activation: ["relu"] as the paper, or another of
            :data:`~textdecade.models.blocks.ACTIVATIONS`.
        bias: biases in linear layers and norms.
        init: ["default"] N(0, init_std) with GPT-2's residual scaling.  init_std: [0.02].
        valid_fraction: share of documents held out for validation.
    """

    vocab_size: int = 0
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 6
    d_ff: int = 0
    dropout: float = 0.0
    segment_len: int = 256
    mem_len: int = 256
    eval_mem_len: int = 0
    activation: str = "relu"
    bias: bool = True
    init_std: float = 0.02
    valid_fraction: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        for key in ("segment_len", "mem_len"):
            if getattr(self, key) <= 0:
                raise ConfigError(
                    f"model.{key} must be positive (Transformer-XL reads segments and attends "
                    f"to a memory of earlier ones), got {getattr(self, key)}"
                )
        if self.eval_mem_len < 0:
            raise ConfigError(
                f"model.eval_mem_len must be >= 0 (0: mem_len), got {self.eval_mem_len}"
            )
        if min(self.d_model, self.n_heads, self.n_layers) < 1:
            raise ConfigError("model.d_model, n_heads and n_layers must be positive")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")

    @property
    def memory_at_eval(self) -> int:
        """The memory length of evaluation and generation."""
        return self.eval_mem_len or self.mem_len


PRESETS: dict[str, dict[str, Any]] = {
    # GPT's tiny (d128, 4 heads, 4 layers, context 128) with a memory of one segment.
    "tiny": {
        "model": {"d_model": 128, "n_heads": 4, "n_layers": 4, "segment_len": 128, "mem_len": 128},
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
    # GPT's small (8 x 512) with segments and memory of 256: one GPU, well under an hour.
    "small": {
        "model": {
            "d_model": 512,
            "n_heads": 8,
            "n_layers": 8,
            "segment_len": 256,
            "mem_len": 256,
            "eval_mem_len": 512,
        },
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
    # The paper's WikiText-103 base: 16 layers, d 410, 10 heads, d_ff 2100, dropout 0.1,
    # segment and memory 150 in training, memory 640 at evaluation, batch 60, 200k steps,
    # lr 2.5e-4 (without the adaptive softmax: a BPE vocabulary instead of 267k words).
    "base": {
        "model": {
            "d_model": 410,
            "n_heads": 10,
            "n_layers": 16,
            "d_ff": 2100,
            "dropout": 0.1,
            "segment_len": 150,
            "mem_len": 150,
            "eval_mem_len": 640,
        },
        "tokenizer": {"vocab_size": 32768},
        "train": {
            "steps": 200000,
            "batch_size": 60,
            "lr": 2.5e-4,
            "warmup_steps": 4000,
            "eval_every": 4000,
            "ckpt_every": 4000,
        },
    },
}


class Model(TokenStream, Family, Generates, SelfAttentionMaps):
    """The Transformer-XL family (see the module docstring).

    Args:
        config: :class:`Config`.
        meta: prepared data's metadata (``vocab_size``; ``eos_id``, ``n_valid_bytes`` and
            ``n_valid_tokens`` for generation and bits per byte).
    """

    name = "transformer-xl"
    Config = Config
    default_optimizer = "adamw"
    default_schedule = "cosine"
    mask_optional = True  # causal: right padding never reaches a real token's state

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        c = config
        self.vocab_size = resolve_vocab_size("transformer-xl", c.vocab_size, meta)
        self.wte = nn.Embedding(self.vocab_size, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        d_ff = c.d_ff or 4 * c.d_model
        self.h = nn.ModuleList(
            RelativeBlock(
                c.d_model, c.n_heads, d_ff, c.dropout, make_activation(c.activation), c.bias
            )
            for _ in range(c.n_layers)
        )
        self.ln_f = LayerNorm(c.d_model, bias=c.bias)
        self.lm_head = nn.Linear(c.d_model, self.vocab_size, bias=False)
        init_weights_(self, c.init, c.init_std, default=self._paper_init)
        self.lm_head.weight = self.wte.weight  # tied (after init: one tensor, one init)
        self._eval_batch_size = 8
        #: the training memory: L tensors (B, M, D), carried from batch to batch
        self._memory: list[torch.Tensor] | None = None

    def _paper_init(self, module: nn.Module) -> None:
        """N(0, init_std), residual projections scaled by 1 / sqrt(2 L), biases u, v too."""
        std = self.config.init_std
        init_normal_(module, std)
        scale_residual_init_(module, self.config.n_layers, std)
        for block in self.h:
            nn.init.normal_(block.attn.u, 0.0, std)
            nn.init.normal_(block.attn.v, 0.0, std)

    def blocks(self) -> list[nn.Module]:
        """The decoder blocks."""
        return list(self.h)

    # ------------------------------------------------------------------ forward passes
    def _forward(self, input_ids: torch.Tensor, memory: list[torch.Tensor] | None = None):
        """One segment: ``(inputs, x)``, each block's input (L tensors (B, T, D), what the
        memory caches) and the last block's output (B, T, D) before ``ln_f``."""
        x = self.drop(self.wte(input_ids))
        inputs = []
        for i, block in enumerate(self.h):
            inputs.append(x)
            x = block(x, None if memory is None else memory[i])
        return inputs, x

    def logits(
        self, input_ids: torch.Tensor, cache: list[LayerMemory] | None = None, **_: Any
    ) -> torch.Tensor:
        """Next-token logits (B, T, V).

        Args:
            input_ids: (B, T).
            cache: from :meth:`new_cache`: the ids continue the cached text, and their
                states join it (keeping the last ``eval_mem_len`` per layer). Without it,
                the ids are read in one pass (full attention over all of them).
        """
        memory = None
        if cache and cache[0].states is not None:
            memory = [layer.states for layer in cache]
        inputs, x = self._forward(input_ids, memory)
        if cache:
            new = extend_memory(memory, inputs, cache[0].limit)
            for layer, states in zip(cache, new, strict=True):
                layer.states = states
        return self.lm_head(self.ln_f(x))

    def new_cache(self, batch: int = 1, device=None, dtype=None) -> list[LayerMemory]:
        """Empty per-layer memories of up to ``eval_mem_len`` positions (the context of
        generation is not bounded: older states slide out of the memory)."""
        return [LayerMemory(self.config.memory_at_eval) for _ in range(self.config.n_layers)]

    @property
    def context_size(self) -> int:
        """Unbounded: a long text is read segment by segment with the memory."""
        return 10**9

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Embedding output, then each block's output (the last after ``ln_f``).

        A text longer than ``segment_len`` is read segment by segment, each attending to
        the memory of the ones before (``eval_mem_len``), as in evaluation. Causal, so a
        right-padded text's states equal its states alone; the mask is not needed.

        Returns:
            L + 1 tensors (B, T, D).
        """
        c = self.config
        memory, pieces = None, []
        for start in range(0, input_ids.shape[1], c.segment_len):
            inputs, x = self._forward(input_ids[:, start : start + c.segment_len], memory)
            memory = extend_memory(memory, inputs, c.memory_at_eval)
            pieces.append([*inputs, self.ln_f(x)])  # block i's input is block i-1's output
        return [torch.cat(layer, 1) for layer in zip(*pieces, strict=True)]

    def self_attention_maps(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Causal attention probabilities (B, L, H, T, T) of the text read from an empty memory.

        The text is read in one pass with no memory before it (as :meth:`logits` reads it
        without a cache), so each layer's keys are just the T tokens, and query i's weight
        on key j is softmax over j <= i of ``((q_i + u) . k_j + (q_i + v) . W_R r_{i-j}) /
        sqrt(K)``: the same projections, biases u and v and relative shift as the forward
        pass, spelled out (the fused kernel returns no weights). Zero above the diagonal.

        Args:
            input_ids: (B, T).  attention_mask: (B, T), 1 = real, 0 = padding (padding keys
                get 0).
        """
        embed = lambda: self.drop(self.wte(input_ids))  # noqa: E731
        return block_attention_maps(self, embed, self.h, attention_mask)

    @property
    def state_size(self) -> int:
        return self.config.d_model

    def input_embeddings(self) -> nn.Embedding:
        """The token embedding (also the output layer, tied)."""
        return self.wte

    # ------------------------------------------------------------------ training state
    def train_state(self) -> dict[str, torch.Tensor]:
        """The training memory, one (B, M, D) tensor per layer (empty before the first step)."""
        if self._memory is None:
            return {}
        return {f"memory.{i}": m.detach() for i, m in enumerate(self._memory)}

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`train_state` returned."""
        if not state:
            self._memory = None
            return
        device = self.wte.weight.device
        self._memory = [state[f"memory.{i}"].to(device) for i in range(self.config.n_layers)]

    # ------------------------------------------------------------------ family contract
    def batcher(self, data: PreparedData, batch_size: int, *, seed: int, rank=0, world_size=1):
        """Consecutive segments of ``batch_size`` parallel streams (see :class:`SegmentBatcher`)."""
        self._eval_batch_size = batch_size
        return SegmentBatcher(data.train, batch_size, self.config.segment_len)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) of one segment per stream, attending to the
        memory the previous batch left (reset where the streams start again)."""
        ids = batch["input_ids"]
        memory = self._memory
        restart = "new_stream" in batch and bool(batch["new_stream"].any())
        if restart or (memory is not None and memory[0].shape[0] != ids.shape[0]):
            memory = None
        inputs, x = self._forward(ids, memory)
        self._memory = extend_memory(memory, inputs, self.config.mem_len)
        h = self.ln_f(x).flatten(0, 1)  # (B, T, D) -> (B*T, D)
        return linear_cross_entropy(
            h, self.lm_head.weight, batch["labels"].flatten(), ignore_index=IGNORE_INDEX
        )

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Validation loss (nats/token), perplexity and bits per byte, read with memory."""
        if data.valid is None or len(data.valid) < 2:
            return {}
        return self.eval_metrics(list(self.eval_batches(data, max_batches)))

    @torch.no_grad()
    def eval_batches(self, data: PreparedData, max_batches: int = 20, mem_len: int | None = None):
        """Summed loss and label count of each validation segment.

        The held-out tokens are cut into parallel streams (as many as the training batch
        has rows) read segment by segment, each attending to the memory of the ones
        before: ``mem_len`` positions (None: ``eval_mem_len``; 0: no memory at all).
        ``max_batches`` bounds the segments per stream.
        """
        if data.valid is None or len(data.valid) < 2:
            return
        limit = self.config.memory_at_eval if mem_len is None else mem_len
        was_training = self.training
        self.eval()
        device = self.wte.weight.device
        memory = None
        try:
            for batch in segment_eval_batches(
                data.valid, self._eval_batch_size, self.config.segment_len, max_batches
            ):
                inputs, x = self._forward(batch["input_ids"].to(device), memory)
                memory = extend_memory(memory, inputs, limit)
                h = self.ln_f(x).flatten(0, 1)
                labels = batch["labels"].to(device).flatten()
                mean = float(linear_cross_entropy(h, self.lm_head.weight, labels))
                yield {"nats": mean * labels.numel(), "tokens": labels.numel()}
        finally:
            self.train(was_training)

    def eval_metrics(self, batches: list[dict[str, float]]) -> dict[str, float]:
        """``val_loss``, ``val_ppl`` and (with the byte count) ``val_bpb`` from batch sums."""
        return lm_metrics(batches, self.meta)

    def num_params(self) -> int:
        """Parameters (tied weights once)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_unit(self) -> float:
        """Training FLOPs per token: 6N, plus attention over S = T + M keys.

        Per layer and token, the content scores, the position scores and the weighted sum
        each cost 2 D S (x3 forward and backward: 18 L D S), and W_R projects S encodings
        per segment of T tokens where 6N counted one per token (6 L D^2 M / T more).
        """
        c = self.config
        s = c.segment_len + c.mem_len
        extra_r = 6.0 * c.n_layers * c.d_model**2 * c.mem_len / c.segment_len
        return 6.0 * self.num_params() + 18.0 * c.n_layers * c.d_model * s + extra_r
