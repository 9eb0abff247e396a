"""Attention seq2seq: Bahdanau, Cho & Bengio 2014, "Neural machine translation by jointly
learning to align and translate".

A bidirectional GRU reads the source; a GRU decoder attends over *all* encoder states with
additive attention at every step (section 3.1), instead of squeezing the sentence into one
vector as Sutskever et al. 2014 and Cho et al. 2014 did. ``attention="none"`` gives that
older model (the context is the final encoder state at every step): the baseline the paper
beats.

This module also holds :class:`EncoderDecoderFamily`, the data side both encoder-decoders
share with the engine: with a :class:`~textdecade.data.parallel.ParallelCorpus` they train
for translation; with plain text they pretrain as BART-style denoising autoencoders.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textdecade.data.denoising import DenoisingArrays, encode_documents
from textdecade.data.parallel import PAD_ID, BucketBatcher, PairArrays, encode_pairs
from textdecade.errors import ConfigError
from textdecade.models.base import (
    AttentionMaps,
    Batcher,
    Family,
    HiddenStates,
    PreparedData,
    Translates,
    resolve_vocab_size,
)
from textdecade.models.blocks import NeuralConfig, init_weights_, make_activation
from textdecade.models.layers import AdditiveAttention

OBJECTIVES = ("auto", "translate", "denoise")


def _holdout(n: int, explicit: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, valid): 1% of ``n`` held out (1 to 1000), none when ``explicit``."""
    order = np.random.default_rng(0).permutation(n)
    n_valid = 0 if explicit or n < 2 else min(1000, max(1, n // 100))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


class EncoderDecoderFamily(Family, HiddenStates, Translates, AttentionMaps):
    """The data, loss and evaluation shared by seq2seq and the Transformer.

    Subclasses implement ``logits(src, src_mask, tgt_in) -> (B, T, V)`` plus the decoding
    protocol of :mod:`textdecade.models.decoding`. The model config needs ``max_len``,
    ``objective``, ``noise_ratio``, ``span_lambda`` and ``label_smoothing``.
    """

    @classmethod
    def prepare(cls, corpus: Any, tokenizer: Any, config: Any, workdir: Path) -> PreparedData:
        """Encode a parallel corpus (translation) or plain texts (denoising) under ``workdir``.

        Args:
            corpus: a :class:`~textdecade.data.parallel.ParallelCorpus` (anything with
                ``pairs()``) or an iterable of plain texts.
            tokenizer: the shared (joint) tokenizer.
            config: the model config (``objective``: "auto" picks by the corpus).
        """
        if config.objective not in OBJECTIVES:
            raise ConfigError(f"model.objective must be one of {', '.join(OBJECTIVES)}")
        parallel = hasattr(corpus, "pairs")
        if config.objective == "translate" and not parallel:
            raise ConfigError(
                "model.objective=translate needs a parallel corpus (--source FILE --target FILE)"
            )
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {"vocab_size": tokenizer.vocab_size, "max_len": config.max_len}
        if parallel and config.objective != "denoise":
            pairs = corpus.pairs()
            valid_corpus = getattr(corpus, "valid", None)
            train_idx, valid_idx = _holdout(len(pairs), valid_corpus is not None)
            train = encode_pairs([pairs[i] for i in train_idx], tokenizer, config.max_len)
            valid_pairs = valid_corpus.pairs() if valid_corpus else [pairs[i] for i in valid_idx]
            valid = encode_pairs(valid_pairs, tokenizer, config.max_len) if valid_pairs else None
            meta.update(objective="translate", n_skipped=getattr(corpus, "n_skipped", 0))
        else:
            texts = (t for pair in corpus.pairs() for t in pair) if parallel else corpus
            arrays = encode_documents(
                texts, tokenizer, config.max_len,
                ratio=config.noise_ratio, poisson_lambda=config.span_lambda,
            )  # fmt: skip
            train_idx, valid_idx = _holdout(len(arrays), False)
            train, valid = _select(arrays, train_idx), _select(arrays, valid_idx)
            meta.update(
                objective="denoise", noise_ratio=config.noise_ratio, span_lambda=config.span_lambda
            )
        if len(train) == 0:
            raise ConfigError("the corpus gave no training examples")
        train.save(workdir, "train")
        if valid is not None and len(valid):
            valid.save(workdir, "valid")
        meta.update(n_train=len(train), n_valid=len(valid) if valid is not None else 0)
        return cls.load_prepared(workdir, meta)

    @classmethod
    def load_prepared(cls, workdir: Path, meta: dict[str, Any]) -> PreparedData:
        """Reopen the memmapped arrays that :meth:`prepare` wrote."""
        workdir = Path(workdir)
        if meta["objective"] == "translate":
            open_ = PairArrays.load
        else:
            kw = {
                "ratio": meta.get("noise_ratio", 0.3),
                "poisson_lambda": meta.get("span_lambda", 3),
            }

            def open_(d, p):
                return DenoisingArrays.load(d, p, **kw)

        train = open_(workdir, "train")
        valid = open_(workdir, "valid") if meta.get("n_valid") else None
        return PreparedData(meta=meta, train=train, valid=valid, n_units=train.n_tokens)

    def batcher(
        self, data: PreparedData, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1
    ) -> Batcher:
        """Length-bucketed (source, target) batches; denoising noise drawn per batch."""
        return BucketBatcher(data.train, batch_size, seed=seed, rank=rank, world_size=world_size)

    @abstractmethod
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> dict[str, Any]:
        """Encoder states of the source, as the decoder's starting state."""

    @abstractmethod
    def _decode(self, state: dict[str, Any], tgt_in: torch.Tensor, **options: Any):
        """Teacher-forced decoder logits (B, T_tgt, V) from an encoder state."""

    def logits(
        self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced decoder logits (B, T_tgt, V) of ``tgt_in`` given the source."""
        return self._decode(self.encode(src, src_mask), tgt_in)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token-level cross-entropy on the target (PAD ignored), label-smoothed if set."""
        logits = self.logits(batch["src"], batch["src_mask"], batch["tgt_in"])
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            batch["tgt_out"].flatten(),
            ignore_index=PAD_ID,
            label_smoothing=self.config.label_smoothing if self.training else 0.0,
        )

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Validation loss per target token (no smoothing) and its perplexity."""
        if data.valid is None:
            return {}
        return self.eval_metrics(list(self.eval_batches(data, max_batches)))

    @torch.no_grad()
    def eval_batches(self, data: PreparedData, max_batches: int = 20):
        """Summed target-token loss and target count of each validation batch (buckets of
        sentence pairs, fixed seed)."""
        if data.valid is None:
            return
        device = next(self.parameters()).device
        batches = BucketBatcher(data.valid, 64, seed=0)
        for _ in range(max(1, min(max_batches, batches.per_rank))):
            batch = {k: v.to(device) for k, v in next(batches).items()}
            logits = self.logits(batch["src"], batch["src_mask"], batch["tgt_in"])
            n = int((batch["tgt_out"] != PAD_ID).sum())
            loss = F.cross_entropy(
                logits.flatten(0, 1).float(), batch["tgt_out"].flatten(), ignore_index=PAD_ID
            )
            yield {"nats": float(loss) * n, "tokens": n}

    def eval_metrics(self, batches: list[dict[str, float]]) -> dict[str, float]:
        """``val_loss`` per target token and ``val_ppl`` from batch sums."""
        val = sum(b["nats"] for b in batches) / max(1, sum(b["tokens"] for b in batches))
        return {"val_loss": val, "val_ppl": float(np.exp(min(val, 50.0)))}


def _select(arrays: DenoisingArrays, idx: np.ndarray) -> DenoisingArrays:
    """A subset of examples (their sentences copied into fresh flat arrays)."""
    sents = [s for i in idx for s in arrays.sentences(int(i))]
    counts = [arrays.ex_offsets[i + 1] - arrays.ex_offsets[i] for i in idx]
    sent_off = np.zeros(len(sents) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in sents], out=sent_off[1:])
    ex_off = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(counts, out=ex_off[1:])
    tokens = np.concatenate(sents) if sents else np.zeros(0, dtype=arrays.tokens.dtype)
    return DenoisingArrays(tokens, sent_off, ex_off, arrays.ratio, arrays.poisson_lambda)


@dataclass(frozen=True)
class Config(NeuralConfig):
    """Attention seq2seq hyperparameters (Bahdanau et al. 2014 in brackets).

    ``d_model`` is the embedding width [620], ``d_hidden`` the GRU state per direction and
    of the decoder [1000], ``d_attn`` the additive-attention width [1000; 0 = d_hidden].
    ``n_layers`` stacks bidirectional encoder layers (the decoder has one). ``attention``:
    "additive", or "none" for the fixed-context baseline. ``objective``: "auto" translates
    given a parallel corpus and denoises plain text. ``vocab_size`` 0 = the tokenizer's.

    ``activation`` is the nonlinearity of the two feed-forward layers, the alignment model
    v^T act(W s + U h) and the deep output act(W [s; c; Ey]) ["tanh"]; the GRU's own gates
    stay sigmoid and tanh. ``init`` ["default": PyTorch's uniform, orthogonal recurrent
    matrices, embeddings N(0, d^-1/2)] or a scheme of
    :func:`~textdecade.models.blocks.init_weights_` (``init_std`` for "normal").
    """

    #: Block settings this RNN does not have: config keys -> why (a one-line ConfigError).
    UNSUPPORTED: ClassVar[dict[str, str]] = dict.fromkeys(
        ("norm", "norm_type", "residual"),
        "seq2seq has no norm, norm_type or residual: they set the norms and skip "
        "connections of Transformer blocks (gpt, bert, transformer), and its GRU layers "
        "gate their own state (Ba et al. 2016 normalise inside the recurrence, which nn.GRU "
        "does not expose)",
    )

    vocab_size: int = 0
    d_model: int = 256
    d_hidden: int = 256
    d_attn: int = 0
    n_layers: int = 1
    dropout: float = 0.2
    max_len: int = 128
    attention: str = "additive"
    objective: str = "auto"
    label_smoothing: float = 0.0
    noise_ratio: float = 0.3
    span_lambda: float = 3.0
    activation: str = "tanh"


class FinalStateContext(nn.Module):
    """No attention: the context is the encoder's summary at every step (Cho et al. 2014).

    The summary is the forward GRU's state at the last real token joined with the
    backward GRU's state at the first; the returned weights are one-hot on the last token.
    """

    def __init__(self, d_hidden: int):
        super().__init__()
        self.d_hidden = d_hidden

    def project_keys(self, keys: torch.Tensor) -> None:
        return None

    def forward(self, query, keys, mask=None, projected_keys=None):
        b, s, _ = keys.shape
        last = (mask.long().sum(1) - 1) if mask is not None else torch.full((b,), s - 1)
        rows = torch.arange(b, device=keys.device)
        context = torch.cat(
            [keys[rows, last, : self.d_hidden], keys[:, 0, self.d_hidden :]], dim=-1
        )  # (B, 2H)
        weights = F.one_hot(last, s).to(keys.dtype)  # (B, S)
        return context, weights


class Model(EncoderDecoderFamily):
    """Bidirectional GRU encoder + attentive GRU decoder, tied input/output embeddings."""

    name = "seq2seq"
    default_optimizer = "adamw"
    default_schedule = "cosine"

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        c = config
        v = resolve_vocab_size("seq2seq", c.vocab_size, meta)
        h = c.d_hidden
        self.embed = nn.Embedding(v, c.d_model, padding_idx=PAD_ID)
        self.encoder = nn.ModuleList(
            nn.GRU(c.d_model if i == 0 else 2 * h, h, batch_first=True, bidirectional=True)
            for i in range(c.n_layers)
        )
        # s_0 = tanh(W_s h_1_backward) (Bahdanau et al. 2014, appendix A.2.2)
        self.init_state = nn.Linear(h, h)
        if c.attention == "additive":
            act = make_activation(c.activation)
            self.attention = AdditiveAttention(h, 2 * h, c.d_attn or h, activation=act)
        elif c.attention == "none":
            self.attention = FinalStateContext(h)
        else:
            raise ConfigError("model.attention must be 'additive' or 'none'")
        self.cell = nn.GRUCell(c.d_model + 2 * h, h)
        # Deep output t_i = f(s_i, c_i, E y_{i-1}) (appendix A.2.2), then tied E^T.
        self.out = nn.Linear(h + 2 * h + c.d_model, c.d_model)
        self.act = make_activation(c.activation)
        self.drop = nn.Dropout(c.dropout)
        init_weights_(self, c.init, c.init_std, default=self._paper_init)

    def _paper_init(self, module: nn.Module) -> None:
        """PyTorch's uniform, but embeddings N(0, d^-1/2) and orthogonal recurrent matrices
        (Saxe et al. 2014: a product of orthogonal matrices neither explodes nor vanishes)."""
        nn.init.normal_(self.embed.weight, 0.0, self.config.d_model**-0.5)
        for gru in [*self.encoder, self.cell]:
            for name, p in gru.named_parameters():
                if "weight_hh" in name:
                    nn.init.orthogonal_(p)

    @property
    def state_size(self) -> int:
        return 2 * self.config.d_hidden  # forward and backward GRU states

    def input_embeddings(self) -> nn.Embedding:
        return self.embed

    # ---------------------------------------------------------------------------- encoder
    def _encode_layers(self, src: torch.Tensor, src_mask: torch.Tensor) -> list[torch.Tensor]:
        x = self.drop(self.embed(src))  # (B, S, D)
        lengths = src_mask.long().sum(1).clamp(min=1).cpu()
        states = [x]
        for gru in self.encoder:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = gru(packed)
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
            states.append(x)  # (B, S, 2H)
            x = self.drop(x)
        return states

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> list[torch.Tensor]:
        """Embeddings (B, T, d_model), then each encoder layer's states (B, T, 2 d_hidden)."""
        return self._encode_layers(input_ids, attention_mask)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> dict[str, Any]:
        """Run the encoder; the decoding state (memory, keys, mask, decoder state h)."""
        memory = self._encode_layers(src, src_mask)[-1]
        h0 = torch.tanh(self.init_state(memory[:, 0, self.config.d_hidden :]))  # (B, H)
        state = {"memory": memory, "mask": src_mask, "h": h0}
        keys = self.attention.project_keys(memory)
        if keys is not None:
            state["keys"] = keys
        return state

    # ---------------------------------------------------------------------------- decoder
    def _step(self, state: dict[str, Any], emb: torch.Tensor):
        """One decoder step from y_{i-1}'s embedding (B, D): (output (B, D), weights (B, S))."""
        context, weights = self.attention(
            state["h"], state["memory"], state["mask"], state.get("keys")
        )
        h = self.cell(torch.cat([emb, context], -1), state["h"])
        out = self.act(self.out(self.drop(torch.cat([h, context, emb], -1))))
        state["h"] = h
        return out, weights

    def _decode(self, state, tgt_in, need_weights=False):
        emb = self.drop(self.embed(tgt_in))  # (B, T, D)
        outs, weights = [], []
        for t in range(tgt_in.shape[1]):
            out, w = self._step(state, emb[:, t])
            outs.append(out)
            weights.append(w)
        logits = self.drop(torch.stack(outs, 1)) @ self.embed.weight.t()  # (B, T, V)
        return (logits, torch.stack(weights, 1)) if need_weights else logits

    def decode_step(self, state: dict[str, Any], tokens: torch.Tensor):
        """Feed the last tokens (B, 1): log-probabilities (B, V) and the updated state."""
        state = dict(state)
        out, w = self._step(state, self.embed(tokens[:, -1]))
        state["attn"] = w
        return F.log_softmax((out @ self.embed.weight.t()).float(), -1), state

    @torch.no_grad()
    def attention_maps(
        self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Alignment weights (B, L=1, H=1, T, S): target step x source token, rows sum to 1."""
        _, weights = self._decode(self.encode(src, src_mask), tgt_in, need_weights=True)
        return weights[:, None, None]  # (B, T, S) -> (B, 1, 1, T, S)

    def flops_per_unit(self) -> float:
        return 6.0 * sum(p.numel() for p in self.parameters())


PRESETS: dict[str, dict[str, Any]] = {
    # Trains on 2 CPU cores in a few minutes (Multi30k-sized data).
    "tiny": {
        "model": {"d_model": 128, "d_hidden": 128, "max_len": 64, "dropout": 0.1},
        "train": {
            "steps": 1500,
            "batch_size": 64,
            "lr": 3e-3,
            "warmup_steps": 100,
            "weight_decay": 0.0,
            "beta2": 0.98,
            "eval_every": 250,
        },
        "tokenizer": {"vocab_size": 8000},
    },  # fmt: skip
    # One GPU, well under an hour: Multi30k de->en.
    "small": {
        "model": {"d_model": 256, "d_hidden": 512, "max_len": 128, "dropout": 0.3},
        "train": {
            "steps": 20000,
            "batch_size": 128,
            "lr": 1e-3,
            "warmup_steps": 500,
            "weight_decay": 0.0,
            "beta2": 0.98,
            "eval_every": 1000,
        },
        "tokenizer": {"vocab_size": 10000},
    },  # fmt: skip
    # Bahdanau et al. 2014 (RNNsearch): 620-d embeddings, 1000 hidden units.
    "base": {
        "model": {"d_model": 620, "d_hidden": 1000, "d_attn": 1000, "max_len": 128, "dropout": 0.3},
        "train": {
            "steps": 100000,
            "batch_size": 80,
            "lr": 1e-3,
            "warmup_steps": 1000,
            "weight_decay": 0.0,
            "beta2": 0.98,
        },
        "tokenizer": {"vocab_size": 30000},
    },  # fmt: skip
}
