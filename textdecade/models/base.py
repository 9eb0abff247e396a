"""The contract between a model family and the one pretraining engine.

The :class:`~textdecade.pretrain.trainer.Trainer` never branches on the family. It asks the
family's class to turn a corpus into prepared data, builds the model from that data's
metadata, draws batches from the family's batcher, and calls ``loss`` (or, for families
with a hand-written sparse update such as Word2Vec, ``manual_step``)::

    data   = Family.prepare(corpus, tokenizer, model_cfg, workdir)   # cached on disk
    model  = Family(model_cfg, data.meta)                            # meta: JSON-able
    batches = model.batcher(data, batch_size, seed=..., rank=..., world_size=...)
    loss   = model.loss(next(batches))                               # scalar tensor

Batchers are stateful iterators whose ``state_dict()`` (JSON-able) restores the exact
position and random state, so an interrupted run resumes bit for bit.
"""

from __future__ import annotations

import warnings
from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from textdecade.data.batcher import Batcher

__all__ = [
    "AttentionMaps",
    "Batcher",
    "Family",
    "Generates",
    "HiddenStates",
    "MaskedLM",
    "PreparedData",
    "SelfAttentionMaps",
    "StaticVectors",
    "TokenStream",
    "Translates",
    "WordTable",
]


@dataclass
class PreparedData:
    """What ``Family.prepare`` returns.

    Attributes:
        meta: JSON-able facts the model is built from (vocabulary sizes, word lists);
            saved as ``data_meta.json`` in the run directory and passed to the constructor
            again when a run is loaded.
        train: family-specific training data (memmapped shards, pair tables, ...).
        valid: held-out data of the same kind, or None.
        n_units: how many tokens (or words) one pass over ``train`` holds, for progress.
        unit: what ``n_units`` counts ("tokens" or "words").
    """

    meta: dict[str, Any]
    train: Any
    valid: Any = None
    n_units: int = 0
    unit: str = "tokens"
    extra: dict[str, Any] = field(default_factory=dict)


class Family(nn.Module, metaclass=ABCMeta):
    """Base class of the six model families (see the module docstring for the flow).

    Class attributes:
        name: the registry name ("word2vec", "glove", "seq2seq", "transformer", "bert", "gpt").
        Config: the frozen dataclass of the family's model hyperparameters.
        manual_update: True when the family updates its own weights in ``manual_step``
            (sparse SGD) instead of ``loss`` + backward + optimizer.
        default_optimizer / default_schedule: what the training config uses unless told.
            A family with ``manual_update`` applies its own optimizer, so
            ``train.optimizer`` may name only that one.
        unread_train: the train settings a hand-written update does not read (gradient
            clipping, weight decay, ...). Each must keep TrainConfig's default: the
            Trainer refuses another value before any work rather than ignore it.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    manual_update: ClassVar[bool] = False
    default_optimizer: ClassVar[str] = "adamw"
    default_schedule: ClassVar[str] = "cosine"
    unread_train: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, meta: dict[str, Any]):
        super().__init__()
        self.config = config
        self.meta = meta

    @classmethod
    @abstractmethod
    def prepare(
        cls, corpus: Iterable[str], tokenizer: Any, config: Any, workdir: Path
    ) -> PreparedData:
        """Turn raw texts into the family's training data, cached under ``workdir``."""

    @classmethod
    @abstractmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        """Reopen data that ``prepare`` already wrote under ``workdir`` (for resume/ranks)."""

    @abstractmethod
    def batcher(
        self, data: PreparedData, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1
    ) -> Batcher:
        """A resumable batch iterator over ``data.train``.

        The engine asks for the global batch (``rank=0, world_size=1``) and splits it by
        rows across ranks itself; ``rank``/``world_size`` stay for families that shard.
        """

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean training loss of one batch (a scalar tensor with grad)."""
        raise TypeError(f"{type(self).__name__} trains with manual_step, not a loss")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss; ``forward`` so DDP and ``torch.compile`` see the call."""
        return self.loss(batch)

    def manual_step(self, batch: dict[str, torch.Tensor], lr: float) -> float:
        """Apply one hand-written update and return the batch loss (manual_update only)."""
        raise TypeError(f"{type(self).__name__} has no hand-written update; it trains by loss")

    def compile_update(self) -> None:
        """Run the hand-written update under ``torch.compile`` (``train.compile`` asks it).

        A family whose update does not compile says so and keeps it eager.
        """
        warnings.warn(
            f"{self.name}'s update runs eagerly: train.compile does not apply", stacklevel=2
        )

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Validation metrics (e.g. ``{"val_loss": ...}``); empty when there is nothing to say."""
        return {}

    def eval_batches(self, data: PreparedData, max_batches: int = 20) -> Iterator[dict[str, float]]:
        """The sums of each validation batch that ``evaluate`` averages: ``{"nats": summed
        loss, "tokens": count, ...}``. A family whose validation loss is a mean per token
        yields them (``eval perplexity`` resamples these batches for its interval) and
        builds ``evaluate`` as ``eval_metrics(list(eval_batches(...)))``; empty by default."""
        return iter(())

    def eval_metrics(self, batches: list[dict[str, float]]) -> dict[str, float]:
        """``evaluate``'s metrics from :meth:`eval_batches`' sums (empty by default)."""
        return {}

    def nondeterminism(self) -> str:
        """Why two runs with the same seed may differ, or "" when a CPU run (and its
        resume) is bitwise reproducible; the engine prints it when the run starts."""
        return ""

    def flops_per_unit(self) -> float:
        """Training FLOPs per token (6N + attention) for MFU; 0 when it does not apply."""
        return 0.0

    def train_state(self) -> dict[str, torch.Tensor]:
        """State besides the weights that training carries from one batch to the next
        (Transformer-XL's memory of the previous segments), empty by default.

        Checkpoints save it beside the weights (never in ``model.safetensors``) and a
        resumed run gets it back through :meth:`load_train_state`, so a run that carries
        state still resumes bitwise. Each tensor has the batch's rows on dim 0, as a batch:
        under torchrun the trainer joins the ranks' rows before saving, and each rank gets
        its own rows back. Tensors on the model's device; the checkpoint keeps them on CPU.
        """
        return {}

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`train_state` returned (nothing to do by default)."""

    def blocks(self) -> list[nn.Module]:
        """The family's repeated blocks (layers), in forward order.

        ``train.parallel=fsdp`` shards them one by one (each a ZeRO-3 unit whose
        parameters are gathered just before it runs; the rest is sharded with the root),
        and ``train.diagnostics_every`` measures gradients and activations block by block.
        Empty (the default) when the family has no such blocks: FSDP then refuses it with
        one line, and diagnostics have no layers to report.
        """
        return []


class TokenStream:
    """``prepare``/``load_prepared`` of a family that trains on one stream of token shards
    (GPT, ELMo, Transformer-XL): list it before :class:`Family` among the bases."""

    @classmethod
    def prepare(cls, corpus: Iterable[str], tokenizer: Any, config: Any, workdir: Path):
        """Encode the corpus into token shards (train, and every k-th document for valid)."""
        from textdecade.data.lm import prepare_lm_shards

        meta, train, valid = prepare_lm_shards(corpus, tokenizer, workdir, config.valid_fraction)
        return PreparedData(meta=meta, train=train, valid=valid, n_units=len(train))

    @classmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        """Reopen the shards ``prepare`` wrote."""
        from textdecade.data.lm import open_lm_shards

        train, valid = open_lm_shards(workdir)
        return PreparedData(meta=meta, train=train, valid=valid, n_units=len(train))


def resolve_vocab_size(family: str, configured: int, meta: dict[str, Any]) -> int:
    """The one meaning of ``model.vocab_size`` in every family: 0 takes the tokenizer's;
    a larger value pads the tables (GPT-2's 50,304 trick); a smaller one cannot hold the
    tokenizer's ids and is a one-line error."""
    from textdecade.errors import ConfigError

    tokens = int(meta.get("vocab_size", 0) or 0)
    if configured and configured < tokens:
        raise ConfigError(
            f"model.vocab_size={configured} is smaller than the tokenizer's {tokens} ids "
            "(0 takes the tokenizer's)"
        )
    size = max(int(configured or 0), tokens)
    if size < 1:
        raise ConfigError(f"{family} needs a vocabulary size (model.vocab_size or a tokenizer)")
    return size


# ---------------------------------------------------------------------- capabilities
# What a family can do is declared by inheriting these classes (checked with isinstance
# by the api, eval and the commands), never discovered by probing the model.


@dataclass
class WordTable:
    """A static family's word vectors, before the eval floor wraps them as ``Vectors``.

    Attributes:
        words: V words, most frequent first.
        matrix: (V, D) float32.
        counts: V corpus counts.
        backoff: optional ``word -> vector or None`` for out-of-vocabulary words (pooled
            BPE-piece vectors, as fastText does with n-grams).
    """

    words: list[str]
    matrix: Any
    counts: list[int]
    backoff: Any = None


class StaticVectors(ABC):
    """One vector per word (Word2Vec, GloVe): a text embeds as the mean of its words'."""

    @abstractmethod
    def word_table(self, tokenizer: Any = None) -> WordTable:
        """The trained word vectors; ``tokenizer`` enables the subword backoff."""


class HiddenStates(ABC):
    """Per-token contextual states (seq2seq and Transformer encoders, BERT, GPT).

    Class attributes:
        causal: a position's state sees only earlier tokens (GPT), so a right-padded
            text's states equal its states alone and "last" is the natural pooling.
        mask_optional: ``hidden_states(ids, None)`` equals the masked call when nothing is
            padded, so unpadded batches may skip the mask (a faster attention kernel).
    """

    causal: ClassVar[bool] = False
    mask_optional: ClassVar[bool] = False

    @abstractmethod
    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Embedding output, then each layer's: L + 1 tensors (B, T, D)."""

    @abstractmethod
    def input_embeddings(self) -> nn.Embedding:
        """The token embedding table (context-free vectors of the pieces)."""

    @property
    @abstractmethod
    def state_size(self) -> int:
        """D, the width of :meth:`hidden_states`' tensors."""

    @property
    def context_size(self) -> int:
        """The longest input, in tokens, the model reads at once (its ``max_len``)."""
        return int(getattr(self.config, "max_len", 0) or 10**9)

    def embed_framing(self, tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Ids to put before and after a text when embedding it (none by default)."""
        return (), ()


class MaskedLM(HiddenStates):
    """A masked-LM encoder (BERT): it reads ``<cls> text <sep>`` as it was pretrained."""

    @abstractmethod
    def mlm_logits(self, states: torch.Tensor) -> torch.Tensor:
        """(B, T, D) states -> (B, T, V) masked-token logits."""

    def embed_framing(self, tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``<cls>`` before and ``<sep>`` after, as in its pretraining windows (Devlin et al.)."""
        meta = getattr(self, "meta", None) or {}
        cls_id = meta.get("cls_id", getattr(tokenizer, "cls_id", None))
        sep_id = meta.get("sep_id", getattr(tokenizer, "sep_id", None))
        if cls_id is None or sep_id is None:
            return (), ()
        return (int(cls_id),), (int(sep_id),)


class Generates(HiddenStates):
    """A causal language model that continues a prompt with a KV cache (GPT)."""

    causal: ClassVar[bool] = True

    @abstractmethod
    def logits(self, input_ids: torch.Tensor, cache: Any = None, **kwargs: Any) -> torch.Tensor:
        """(B, T) ids -> (B, T, V) next-token logits (``cache`` holds earlier positions)."""

    @abstractmethod
    def new_cache(self, batch: int = 1, device: Any = None, dtype: Any = None) -> Any:
        """An empty KV cache for ``batch`` rows."""


class Translates(ABC):
    """An encoder-decoder that translates (seq2seq, the Transformer): beam search's contract."""

    @abstractmethod
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> dict[str, Any]:
        """Run the encoder once: the decoding state."""

    @abstractmethod
    def decode_step(self, state: dict[str, Any], tokens: torch.Tensor) -> tuple[Any, Any]:
        """One decoder step: ``(log-probabilities (B, V), the next state)``."""

    def reorder_state(self, state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """Select beams: every tensor in ``state`` indexed by ``index`` on dim 0."""
        return {k: v.index_select(0, index) if torch.is_tensor(v) else v for k, v in state.items()}


class AttentionMaps(ABC):
    """A translation model that shows its cross-attention (the alignment heatmaps)."""

    @abstractmethod
    def attention_maps(self, src: torch.Tensor, tgt: torch.Tensor, **kwargs: Any) -> Any:
        """Cross-attention weights of target positions over source positions."""


class SelfAttentionMaps(ABC):
    """A model that shows its self-attention, one map per layer and head (GPT, BERT,
    Transformer-XL).

    The maps are computed explicitly, softmax(Q K^T / sqrt(K) + mask) (plus Transformer-XL's
    relative-position term), from the same projections the model's forward uses (whose fast kernel returns no weights), in eval
    mode, so ``weights @ V`` is the attention output of the real forward pass.
    """

    @abstractmethod
    def self_attention_maps(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention probabilities of every layer and head.

        Args:
            input_ids: (B, T) ids, framed as the model reads them (BERT's ``<cls>``...).
            attention_mask: (B, T) 1 = real token, 0 = padding (padding keys get 0).

        Returns:
            (B, L, H, T, T) float tensor; each row (a query) sums to 1 over the keys.
        """

    def attention_shape(self) -> tuple[int, int]:
        """``(n_layers, n_heads)``: the sizes :meth:`self_attention_maps` returns."""
        config = self.config  # type: ignore[attr-defined]
        return int(config.n_layers), int(config.n_heads)
