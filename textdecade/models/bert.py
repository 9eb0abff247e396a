"""BERT: a bidirectional Transformer encoder pretrained by masked-LM (Devlin et al. 2018).

Token + learned position + segment embeddings, summed and LayerNormed; post-LN blocks
with exact GELU as in the paper; the masked-LM head (dense, GELU, LayerNorm, then the
input embedding matrix as decoder plus a bias) as HF ``BertForMaskedLM``. Next-sentence
prediction is optional and off by default (RoBERTa, Liu et al. 2019, found it does not
help). Module names follow HF (``embeddings.word_embeddings``, ``embeddings.LayerNorm``,
``mlm.dense`` ~ ``cls.predictions.transform.dense``) where that costs nothing. Those are
the defaults: ``model.norm``, ``norm_type``, ``activation``, ``init`` and ``residual`` swap
the parts (:mod:`textdecade.models.blocks`) for the lab; only the defaults export to HF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from textdecade.data.lm import (
    IGNORE_INDEX,
    MaskedLMBatcher,
    masked_eval_batches,
    open_lm_shards,
    prepare_lm_shards,
    word_start_table,
)
from textdecade.errors import ConfigError
from textdecade.io import atomic_path
from textdecade.models.base import (
    Family,
    MaskedLM,
    PreparedData,
    SelfAttentionMaps,
    resolve_vocab_size,
)
from textdecade.models.blocks import (
    BlockConfig,
    BlockParts,
    block_parts,
    init_normal_,
    init_weights_,
)
from textdecade.models.layers import ENCODER_BLOCKS, LearnedPositions, block_attention_maps

WORD_STARTS = "word_starts.npy"


@dataclass(frozen=True)
class Config(BlockConfig):
    """BERT hyperparameters.

    Attributes:
        vocab_size: 0 takes the tokenizer's.
        d_model: D.  n_heads: H.  n_layers: L.  d_ff: F (0 means 4 * D).
        dropout: on embeddings, attention and residual branches (BERT: 0.1).
        max_len: sequence length T, [CLS] and [SEP] included.
        type_vocab_size: segment ids (2: sentence A and B).
        activation: "gelu" (exact, as BERT) or another of
            :data:`~textdecade.models.blocks.ACTIVATIONS`; also the MLM head's.
        ln_eps: the norms' epsilon (BERT: 1e-12).
        mask_prob: share of tokens chosen for prediction (15%).
        whole_word: choose whole words instead of single pieces.
        nsp: add next-sentence prediction (off by default, as RoBERTa).
        init: "default" (BERT's N(0, init_std)) or a scheme of
            :func:`~textdecade.models.blocks.init_weights_`.
        init_std: normal init standard deviation (0.02).
        norm: "post" (BERT) or "pre" (then a final ``ln_f`` before the head, as HF's
            RoBERTa-PreLayerNorm).  norm_type: "layernorm" (BERT), "rmsnorm", "batchnorm"
            or "none", for every norm (embeddings, blocks, MLM head).
        residual: skip connections in the blocks (true).
        valid_fraction: share of documents held out for validation.
    """

    vocab_size: int = 0
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 0
    dropout: float = 0.1
    max_len: int = 128
    type_vocab_size: int = 2
    activation: str = "gelu"
    ln_eps: float = 1e-12
    mask_prob: float = 0.15
    whole_word: bool = False
    nsp: bool = False
    init_std: float = 0.02
    valid_fraction: float = 0.01

    def __post_init__(self):
        super().__post_init__()  # the block fields' names
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})"
            )
        if min(self.d_model, self.n_heads, self.n_layers) < 1 or self.max_len < 8:
            raise ConfigError("model.d_model, n_heads, n_layers must be positive, max_len >= 8")
        if not 0 < self.mask_prob < 1:
            raise ConfigError(f"model.mask_prob must be in (0, 1), got {self.mask_prob}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


PRESETS: dict[str, dict[str, Any]] = {
    # ~2M parameters: minutes on 2 CPU cores.
    "tiny": {
        "model": {"d_model": 192, "n_heads": 4, "n_layers": 3, "max_len": 128},
        "tokenizer": {"vocab_size": 4096},
        "train": {
            "steps": 400,
            "batch_size": 16,
            "lr": 1e-3,
            "warmup_steps": 40,
            "eval_every": 100,
            "ckpt_every": 200,
        },
    },
    # BERT-small (Turc et al. 2019): 4 layers, 512 wide, 8 heads; one GPU.
    "small": {
        "model": {"d_model": 512, "n_heads": 8, "n_layers": 4, "max_len": 512},
        "tokenizer": {"vocab_size": 16384},
        "train": {
            "steps": 20000,
            "batch_size": 64,
            "lr": 5e-4,
            "warmup_steps": 1000,
            "eval_every": 1000,
            "ckpt_every": 2000,
        },
    },
    # BERT-base (Devlin et al. 2018): 12 x 768, 12 heads, 512 positions, 256 x 512 tokens.
    "base": {
        "model": {"d_model": 768, "n_heads": 12, "n_layers": 12, "max_len": 512},
        "tokenizer": {"vocab_size": 30522},
        "train": {
            "steps": 1000000,
            "batch_size": 32,
            "grad_accum": 8,
            "lr": 1e-4,
            "warmup_steps": 10000,
            "weight_decay": 0.01,
            "beta2": 0.999,
            "eval_every": 2000,
            "ckpt_every": 5000,
        },
    },
}


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, then the norm and dropout (HF names).

    The norm keeps HF's name ``LayerNorm`` whatever ``parts.norm`` makes.
    """

    def __init__(self, vocab_size: int, c: Config, parts: BlockParts):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, c.d_model)
        self.position_embeddings = LearnedPositions(c.max_len, c.d_model)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.d_model)
        self.LayerNorm = parts.norm(c.d_model)
        self.dropout = nn.Dropout(c.dropout)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ):
        """(B, T) ids (and segment ids; mask 1 = real, for a batch norm) -> (B, T, D)."""
        x = self.word_embeddings(input_ids) + self.position_embeddings(input_ids.shape[1])
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # all sentence A
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x, attention_mask))


class MLMHead(nn.Module):
    """dense -> act -> norm -> (tied embedding matrix)^T + bias (HF ``cls.predictions``)."""

    def __init__(self, vocab_size: int, c: Config, parts: BlockParts):
        super().__init__()
        self.dense = nn.Linear(c.d_model, c.d_model)
        self.act = parts.activation()
        self.LayerNorm = parts.norm(c.d_model)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, h: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        """(..., D) states -> (..., V) logits."""
        return F.linear(self.LayerNorm(self.act(self.dense(h))), decoder_weight, self.bias)


class Model(Family, MaskedLM, SelfAttentionMaps):
    """The BERT family (see the module docstring).

    Args:
        config: :class:`Config`.
        meta: prepared data's metadata (``vocab_size`` and the special ids).
    """

    name = "bert"
    Config = Config
    default_optimizer = "adamw"
    default_schedule = "linear"  # BERT: warmup then linear decay

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        c = config
        self.vocab_size = resolve_vocab_size("bert", c.vocab_size, meta)
        parts = block_parts(c, eps=c.ln_eps)
        self.embeddings = BertEmbeddings(self.vocab_size, c, parts)
        d_ff = c.d_ff or 4 * c.d_model
        self.layer = parts.stack(
            ENCODER_BLOCKS[c.norm], c.n_layers, c.d_model, c.n_heads, d_ff, c.dropout
        )
        self.ln_f = parts.final_norm(c.d_model)  # identity after post-norm blocks
        self.mlm = MLMHead(self.vocab_size, c, parts)
        if c.nsp:
            self.pooler = nn.Linear(c.d_model, c.d_model)  # tanh(W h_[CLS]), as BERT
            self.nsp_head = nn.Linear(c.d_model, 2)
        init_weights_(self, c.init, c.init_std, default=lambda m: init_normal_(m, c.init_std))
        self._eval_batch_size = 8
        self._eval_batcher: MaskedLMBatcher | None = None

    def blocks(self) -> list[nn.Module]:
        """The encoder layers."""
        return list(self.layer)

    # ------------------------------------------------------------------ forward passes
    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final hidden states (B, T, D) of ids (B, T); mask (B, T) 1 = real, 0 = padding."""
        return self.hidden_states(input_ids, attention_mask, token_type_ids)[-1]

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Embedding output, then each layer's output: L + 1 tensors (B, T, D).

        Padding keys are masked, so a text's states do not depend on what it is batched
        with (states at padded positions are meaningless).
        """
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # nothing padded: the unmasked (faster) kernel
        x = self.embeddings(input_ids, token_type_ids, attention_mask)
        states = [x]
        for block in self.layer:
            x = block(x, attention_mask)
            states.append(x)
        states[-1] = self.ln_f(x, attention_mask)
        return states

    mask_optional = True  # padding keys are masked; without padding, no mask is the same

    def self_attention_maps(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Bidirectional attention probabilities (B, L, H, T, T); padding keys get 0.

        Args:
            input_ids: (B, T).  attention_mask: (B, T), 1 = real, 0 = padding.
            token_type_ids: (B, T) segment ids (default: all sentence A).
        """
        embed = lambda: self.embeddings(input_ids, token_type_ids, attention_mask)  # noqa: E731
        return block_attention_maps(self, embed, self.layer, attention_mask)

    @property
    def state_size(self) -> int:
        return self.config.d_model

    def input_embeddings(self) -> nn.Embedding:
        """The token embedding matrix (also the MLM decoder, tied)."""
        return self.embeddings.word_embeddings

    def mlm_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits (..., V) of final states (..., D)."""
        return self.mlm(states, self.embeddings.word_embeddings.weight)

    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(mlm loss, mlm logits at chosen positions, nsp loss or None)."""
        h = self.encode(
            batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids")
        )
        labels = batch["labels"]
        chosen = labels != IGNORE_INDEX  # (B, T)
        # the head only at the ~15% chosen positions: (M, D) -> (M, V), not (B, T, V)
        logits = self.mlm_logits(h[chosen])
        mlm = F.cross_entropy(logits, labels[chosen]) if logits.shape[0] else h.sum() * 0.0
        nsp = None
        if self.config.nsp and "next_sentence_label" in batch:
            pooled = torch.tanh(self.pooler(h[:, 0]))  # the [CLS] state, (B, D)
            nsp = F.cross_entropy(self.nsp_head(pooled), batch["next_sentence_label"])
        return mlm, logits.detach(), nsp

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Masked-LM cross-entropy (+ next-sentence loss when ``nsp``)."""
        mlm, _, nsp = self._losses(batch)
        return mlm if nsp is None else mlm + nsp

    # ------------------------------------------------------------------ family contract
    @classmethod
    def prepare(cls, corpus, tokenizer, config: Config, workdir: Path) -> PreparedData:
        """Token shards (train/valid) plus the word-start table for whole-word masking."""
        meta, train, valid = prepare_lm_shards(corpus, tokenizer, workdir, config.valid_fraction)
        starts = word_start_table(tokenizer, int(tokenizer.vocab_size))
        with atomic_path(Path(workdir) / WORD_STARTS) as tmp, open(tmp, "wb") as f:
            np.save(f, starts, allow_pickle=False)
        extra = {"word_starts": starts}
        return PreparedData(meta=meta, train=train, valid=valid, n_units=len(train), extra=extra)

    @classmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        """Reopen the shards and word-start table ``prepare`` wrote."""
        train, valid = open_lm_shards(workdir)
        path = Path(workdir) / WORD_STARTS
        extra = {"word_starts": np.load(path, allow_pickle=False)} if path.exists() else {}
        return PreparedData(meta=meta, train=train, valid=valid, n_units=len(train), extra=extra)

    def _make_batcher(self, tokens, data, batch_size: int, seed: int, rank: int = 0):
        m, c = self.meta, self.config
        special = {
            "cls": m.get("cls_id", 4),
            "sep": m.get("sep_id", 5),
            "mask": m.get("mask_id", 6),
            "pad": m.get("pad_id", 0),
            "eos": m.get("eos_id", 3),
        }
        missing = [k for k in ("cls", "sep", "mask") if special[k] is None]
        if missing:
            raise ConfigError(
                f"the tokenizer has no {', '.join(missing)} token; BERT pretraining needs "
                "<cls>, <sep> and <mask> (train a textdecade tokenizer)"
            )
        special = {k: v for k, v in special.items() if v is not None}
        if c.whole_word and data.extra.get("word_starts") is None:
            raise ConfigError("model.whole_word needs prepared data with a word-start table")
        return MaskedLMBatcher(
            tokens,
            batch_size,
            c.max_len,
            special,
            self.vocab_size,
            mask_prob=c.mask_prob,
            whole_word=c.whole_word,
            word_starts=data.extra.get("word_starts"),
            nsp=c.nsp,
            seed=seed,
            rank=rank,
        )

    def batcher(self, data: PreparedData, batch_size: int, *, seed: int, rank=0, world_size=1):
        """Random windows with BERT masking (see :class:`MaskedLMBatcher`)."""
        self._eval_batch_size = batch_size
        return self._make_batcher(data.train, data, batch_size, seed, rank)

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Masked-LM validation loss (nats) and accuracy at the chosen positions."""
        return self.eval_metrics(list(self.eval_batches(data, max_batches)))

    @torch.no_grad()
    def eval_batches(self, data: PreparedData, max_batches: int = 20):
        """Summed masked-LM loss, masked positions and correct guesses of each validation
        batch (consecutive windows, fixed masking; see ``masked_eval_batches``)."""
        body = self.config.max_len - (3 if self.config.nsp else 2)
        if data.valid is None or len(data.valid) < body:
            return
        was_training = self.training
        self.eval()
        device = self.embeddings.word_embeddings.weight.device
        template = self._make_batcher(data.valid, data, self._eval_batch_size, seed=0)
        try:
            for batch in masked_eval_batches(template, data.valid, max_batches):
                batch = {k: v.to(device) for k, v in batch.items()}
                mlm, logits, _ = self._losses(batch)
                target = batch["labels"][batch["labels"] != IGNORE_INDEX]
                yield {
                    "nats": float(mlm) * target.numel(),
                    "tokens": target.numel(),
                    "correct": int((logits.argmax(-1) == target).sum()),
                }
        finally:
            self.train(was_training)

    def eval_metrics(self, batches: list[dict[str, float]]) -> dict[str, float]:
        """``val_loss`` (nats per masked token) and ``val_mlm_acc`` from batch sums."""
        count = sum(b["tokens"] for b in batches)
        if not count:
            return {}
        total = sum(b["nats"] for b in batches)
        return {
            "val_loss": total / count,
            "val_mlm_acc": sum(b["correct"] for b in batches) / count,
        }

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters (tied once); without position embeddings by default."""
        n = sum(p.numel() for p in self.parameters())
        pos = self.embeddings.position_embeddings.weight.numel()
        return n - pos if non_embedding else n

    def flops_per_unit(self) -> float:
        """Training FLOPs per token, 6N + 12 L D T (an upper bound: the head runs on 15%)."""
        c = self.config
        return 6.0 * self.num_params() + 12.0 * c.n_layers * c.d_model * c.max_len
