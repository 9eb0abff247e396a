"""ELMo: deep contextualized word representations from a bidirectional LM (Peters et al. 2018).

A **token encoder** (the paper's character CNN over each BPE piece's bytes,
:mod:`textdecade.models.char_cnn`, or ``model.token_encoder="embedding"``, a plain table of
the pieces), then a **forward and a backward LSTM LM** of L layers, each an LSTM with a
projection (the paper's LSTMP: ``hidden_size`` cells projected to ``d_model``, torch's
``proj_size``; cuDNN on a GPU) and a residual connection from each layer's input to its
output from the second layer on. The token encoder and the softmax are shared by both
directions. The softmax's bias rides along as one more column of its weight (against a
column of ones in the states), so the CPU loss still runs chunked, without (N, V) logits.

Training loss: the **sum** of both directions' per-token mean negative log-likelihoods,
``L_fwd + L_bwd`` (eq. 1 of the paper maximises the sum of both log-likelihoods; both
directions make the same number of predictions, so this is twice the per-prediction mean
over both). Validation reports each direction (``val_loss_fwd``, ``val_loss_bwd``), their
sum (``val_loss_sum``, the training loss's scale) and ``val_loss``, the **per-prediction
mean over both directions**, from which ``val_ppl`` (the geometric mean of the two
perplexities) and ``val_bpb`` follow, as for GPT.

Contextual vectors (sec. 3.2): layer 0 is the token encoder's output duplicated,
``[x; x]``, to match the 2 x d_model of layer k, ``[forward_k; backward_k]``;
:meth:`Model.hidden_states` returns these L + 1 layers (B, T, 2 D) as BERT's do, so
``embed``/``embed_words`` read the top layer with ``layers="last"``, and ``layers="last4"``
sums all L + 1 <= 4 layers. ELMo's own embedding is the **scalar mix** (eq. 1,
``gamma * sum_j softmax(s)_j h_j``: :class:`ScalarMix`, :meth:`Model.elmo`). Its weights
are task-specific in the paper, learned with the downstream model; pretraining gives them
no gradient, so after pretraining they are uniform (``s = 0``, ``gamma = 1``): the mix is
then the mean of the layers, which ``last4``'s sum equals up to the factor L + 1 that
cosines and the homograph probe's standardisation ignore.

Forward state k at position t has read tokens 0..t; backward state k at t has read t..T-1
(each row's own tokens only: a right-padded row is reversed within its length), so
padding never changes a text's states. ELMo is bidirectional but neither a masked LM nor a
generator: it declares :class:`~textdecade.models.base.HiddenStates` only.

Dimensions: B batch, T tokens, D = d_model (the projection), H = hidden_size, V vocab.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textdecade.data.lm import (
    CausalLMBatcher,
    causal_eval_batches,
)
from textdecade.errors import ConfigError
from textdecade.models.base import (
    Family,
    HiddenStates,
    PreparedData,
    TokenStream,
    resolve_vocab_size,
)
from textdecade.models.char_cnn import CharCNN, char_table, check_filters, cut_pieces, piece_bytes
from textdecade.models.losses import linear_cross_entropy
from textdecade.models.scalar_mix import ScalarMix

TOKEN_ENCODERS = ("char_cnn", "embedding")
# torch says once per process that oneDNN has no LSTM with projections and takes its own
# kernel; that is the expected path on CPU (cuDNN has it on GPUs), not a problem to report.
warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
PAPER_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024))


@dataclass(frozen=True)
class Config:
    """ELMo hyperparameters (the paper's in brackets).

    Attributes:
        vocab_size: the softmax's vocabulary; 0 takes the tokenizer's.
        d_model: D, each LSTM's projection and the token encoder's output [512].
        hidden_size: H, LSTM cells per direction and layer [4096].
        n_layers: L, biLSTM layers [2].
        dropout: on the token encoder's output, between layers and before the softmax [0.1].
        max_len: T, the training window (and the longest text read at once).
        token_encoder: ["char_cnn"] or "embedding" (a table of the BPE pieces).
        char_dim: E, char embedding width [16].
        char_filters: ``[width, count]`` pairs [widths 1-7, 2048 filters].
        n_highway: highway layers after the CNN [2].
        max_chars: C, bytes per piece with begin/end-of-word [50].
        valid_fraction: share of documents held out for validation.
    """

    vocab_size: int = 0
    d_model: int = 512
    hidden_size: int = 4096
    n_layers: int = 2
    dropout: float = 0.1
    max_len: int = 128
    token_encoder: str = "char_cnn"
    char_dim: int = 16
    char_filters: tuple[tuple[int, ...], ...] = PAPER_FILTERS
    n_highway: int = 2
    max_chars: int = 50
    valid_fraction: float = 0.01

    def __post_init__(self):
        if min(self.d_model, self.hidden_size, self.n_layers, self.max_len) < 1:
            raise ConfigError("model.d_model, hidden_size, n_layers and max_len must be positive")
        if self.d_model >= self.hidden_size:
            raise ConfigError(
                f"model.d_model ({self.d_model}) is each LSTM's projection and must be smaller "
                f"than model.hidden_size ({self.hidden_size})"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.token_encoder not in TOKEN_ENCODERS:
            raise ConfigError(
                f"unknown model.token_encoder '{self.token_encoder}' "
                f"(choose from: {', '.join(TOKEN_ENCODERS)})"
            )
        if self.max_chars < 3:
            raise ConfigError(
                f"model.max_chars={self.max_chars} holds no byte: it needs begin-of-word, at "
                "least one byte and end-of-word (>= 3; the paper uses 50)"
            )
        if self.char_dim < 1 or self.n_highway < 0:
            raise ConfigError("model.char_dim must be positive and model.n_highway >= 0")
        check_filters(self.char_filters, self.max_chars)
        if not 0 <= self.valid_fraction < 1:
            raise ConfigError(f"model.valid_fraction must be in [0, 1), got {self.valid_fraction}")


_TINY_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 64), (5, 64))
_SMALL_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512))

PRESETS: dict[str, dict[str, Any]] = {
    # ~1.9M parameters (GPT tiny: 1.8M): a couple of minutes on 2 CPU cores.
    "tiny": {
        "model": {
            "d_model": 128,
            "hidden_size": 256,
            "dropout": 0.0,
            "max_len": 64,
            "char_filters": _TINY_FILTERS,
            "n_highway": 1,
        },
        "tokenizer": {"vocab_size": 4096},
        "train": {
            "steps": 600,
            "batch_size": 16,
            "lr": 2e-3,
            "warmup_steps": 50,
            "eval_every": 100,
            "ckpt_every": 200,
        },
    },
    # 2 x 1024 cells projected to 256, 1024 char filters: one GPU, well under an hour.
    "small": {
        "model": {
            "d_model": 256,
            "hidden_size": 1024,
            "max_len": 128,
            "char_filters": _SMALL_FILTERS,
        },
        "tokenizer": {"vocab_size": 16384},
        "train": {
            "steps": 10000,
            "batch_size": 64,
            "lr": 1e-3,
            "warmup_steps": 500,
            "eval_every": 500,
            "ckpt_every": 1000,
        },
    },
    # The paper's biLM: 2 x 4096 / 512 LSTMPs, 2048 char filters, 2 highway layers,
    # dropout 0.1 (over BPE pieces here; the paper's softmax had 793k words and trained
    # with Adagrad for 10 epochs of the 1B Word Benchmark).
    "base": {
        "model": {"d_model": 512, "hidden_size": 4096, "max_len": 128},
        "tokenizer": {"vocab_size": 32768},
        "train": {
            "steps": 250000,
            "batch_size": 256,
            "lr": 1e-3,
            "warmup_steps": 2000,
            "eval_every": 2000,
            "ckpt_every": 5000,
        },
    },
}


def reverse_rows(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each row of ``x`` (B, T, ...) within its first ``lengths[b]`` positions.

    Padding (the positions past a row's length) stays where it is, after the reversed
    tokens, so the backward LSTM reads each row's own tokens first. Its own inverse.
    """
    if lengths is None:
        return x.flip(1)
    t = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class Model(TokenStream, Family, HiddenStates):
    """The ELMo family (see the module docstring).

    Args:
        config: :class:`Config`.
        meta: prepared data's metadata: ``vocab_size``, ``piece_bytes`` (for the char
            table), ``eos_id``, and the validation counts for bits per byte.
    """

    name = "elmo"
    Config = Config
    default_optimizer = "adamw"
    default_schedule = "cosine"
    causal = False
    mask_optional = True  # without padding, rows are reversed whole: a mask changes nothing

    def __init__(self, config: Config, meta: dict[str, Any]):
        super().__init__(config, meta)
        c = config
        self.vocab_size = resolve_vocab_size("elmo", c.vocab_size, meta)
        if c.token_encoder == "char_cnn":
            pieces = meta.get("piece_bytes")
            if pieces is None:
                raise ConfigError(
                    "model.token_encoder=char_cnn needs prepared data with the pieces' bytes "
                    "(prepare the data with the elmo family)"
                )
            table = char_table(pieces, self.vocab_size, c.max_chars)
            self.token_encoder = CharCNN(table, c.char_dim, c.char_filters, c.n_highway, c.d_model)
        else:
            self.token_encoder = nn.Embedding(self.vocab_size, c.d_model)
            nn.init.normal_(self.token_encoder.weight, std=c.d_model**-0.5)
        lstm = lambda: nn.LSTM(c.d_model, c.hidden_size, proj_size=c.d_model, batch_first=True)  # noqa: E731
        self.forward_lstms = nn.ModuleList(lstm() for _ in range(c.n_layers))
        self.backward_lstms = nn.ModuleList(lstm() for _ in range(c.n_layers))
        self.drop = nn.Dropout(c.dropout)
        self.softmax = nn.Linear(c.d_model, self.vocab_size)  # both directions'
        nn.init.normal_(self.softmax.weight, std=c.d_model**-0.5)
        nn.init.zeros_(self.softmax.bias)
        # Frozen in pretraining (the LM loss never reaches it, and DDP refuses parameters
        # that get no gradient); a downstream task unfreezes it: requires_grad_(True).
        self.scalar_mix = ScalarMix(c.n_layers + 1).requires_grad_(False)
        self._eval_batch_size = 8

    # ------------------------------------------------------------------ forward passes
    def _direction(self, lstms: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
        """One direction's L layer outputs (B, T, D), reading ``x`` left to right."""
        outputs, inp = [], x
        # Under bf16 autocast (GPUs) the LSTMs run in fp32 (TF32 tensor cores): cuDNN's
        # bf16 RNN needs cuDNN >= 9.13, and torch's fallback cell has no bf16 kernel.
        fp32 = torch.is_autocast_enabled(x.device.type)
        for k, lstm in enumerate(lstms):
            if fp32:
                with torch.autocast(x.device.type, enabled=False):
                    out, _ = lstm(self.drop(inp).float())
            else:
                out, _ = lstm(self.drop(inp))  # (B, T, D): H cells projected to D
            if k > 0:
                out = out + inp  # the residual connection, from the second layer on
            outputs.append(out)
            inp = out
        return outputs

    def directions(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Both LMs over token vectors ``x`` (B, T, D): (forward layers, backward layers),
        each L tensors (B, T, D) in the input's order; ``lengths`` (B,) for padded rows."""
        forward = self._direction(self.forward_lstms, x)
        backward = self._direction(self.backward_lstms, reverse_rows(x, lengths))
        return forward, [reverse_rows(h, lengths) for h in backward]

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """``[x; x]``, then ``[forward_k; backward_k]`` per layer: L + 1 tensors (B, T, 2 D).

        Args:
            input_ids: (B, T).  attention_mask: (B, T), 1 = real, 0 = padding (right).
        """
        lengths = None if attention_mask is None else attention_mask.sum(1)
        x = self.token_encoder(input_ids)  # (B, T, D)
        forward, backward = self.directions(x, lengths)
        return [torch.cat([x, x], -1)] + [torch.cat(fb, -1) for fb in zip(forward, backward)]

    def elmo(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """ELMo's embedding (eq. 1): the scalar mix of :meth:`hidden_states`, (B, T, 2 D)."""
        return self.scalar_mix(self.hidden_states(input_ids, attention_mask))

    @property
    def state_size(self) -> int:
        return 2 * self.config.d_model

    def input_embeddings(self) -> nn.Embedding:
        """The context-free piece vectors (V, D): the table itself, or (char CNN) every
        piece's encoding, computed now (a snapshot of the current weights, not a parameter)."""
        if isinstance(self.token_encoder, nn.Embedding):
            return self.token_encoder
        with torch.no_grad():
            return nn.Embedding.from_pretrained(self.token_encoder.all_pieces())

    def embed_framing(self, tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``</s>`` on both sides: in pretraining every document sits between two."""
        eos = self.meta.get("eos_id", getattr(tokenizer, "eos_id", None))
        return ((), ()) if eos is None else ((int(eos),), (int(eos),))

    def _predictions(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top states that predict a token, and the tokens: forward at t -> t + 1, backward
        at t -> t - 1. ``window`` (B, T + 1) gives 2 B T rows: (2 B T, D) and (2 B T,)."""
        forward, backward = self.directions(self.token_encoder(window))
        f, b = self.drop(forward[-1]), self.drop(backward[-1])
        h = torch.cat([f[:, :-1].flatten(0, 1), b[:, 1:].flatten(0, 1)])  # (2 B T, D)
        labels = torch.cat([window[:, 1:].flatten(), window[:, :-1].flatten()])
        return h, labels

    def _nll(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean NLL of the shared softmax: ``[h, 1] @ [W, b].T`` is ``h @ W.T + b``."""
        ones = h.new_ones(h.shape[0], 1)
        weight = torch.cat([self.softmax.weight, self.softmax.bias[:, None]], 1)  # (V, D + 1)
        return linear_cross_entropy(torch.cat([h, ones], 1), weight, labels)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``L_fwd + L_bwd``, both per-token means (nats) over the window."""
        window = torch.cat([batch["input_ids"], batch["labels"][:, -1:]], 1)  # (B, T + 1)
        h, labels = self._predictions(window)
        # both directions make B T predictions, so the sum of means is twice the joint mean
        return 2.0 * self._nll(h, labels)

    # ------------------------------------------------------------------ family contract
    @classmethod
    def prepare(cls, corpus, tokenizer, config: Config, workdir: Path) -> PreparedData:
        """Token shards (as GPT's) and every piece's bytes in the meta, for the char table."""
        pieces = piece_bytes(tokenizer)
        cut = cut_pieces(pieces, config.max_chars) if config.token_encoder == "char_cnn" else []
        if cut:
            (text, longest), many = cut[0], len(cut) > 1
            warnings.warn(
                f"{len(cut)} of {len(pieces)} pieces {'are' if many else 'is'} longer than "
                f"model.max_chars - 2 = {config.max_chars - 2} bytes and "
                f"{'are' if many else 'is'} cut, as ELMo cuts long words (the longest: "
                f"{text[:20]!r}..., {longest} bytes); model.max_chars={longest + 2} keeps "
                f"{'them' if many else 'it'} whole",
                stacklevel=2,
            )
        data = super().prepare(corpus, tokenizer, config, workdir)
        data.meta["piece_bytes"] = pieces
        return data

    def batcher(self, data: PreparedData, batch_size: int, *, seed: int, rank=0, world_size=1):
        """Random ``max_len + 1`` windows (GPT's batcher; the loss reads the whole window)."""
        self._eval_batch_size = batch_size
        return CausalLMBatcher(data.train, batch_size, self.config.max_len, seed, rank)

    def evaluate(self, data: PreparedData, max_batches: int = 20) -> dict[str, float]:
        """Validation loss of each direction and both, perplexities and bits per byte."""
        return self.eval_metrics(list(self.eval_batches(data, max_batches)))

    @torch.no_grad()
    def eval_batches(self, data: PreparedData, max_batches: int = 20):
        """Per validation batch (consecutive windows, as GPT's): summed nats of each
        direction, ``nats`` of both and ``tokens``, the predictions of both (2 per token)."""
        if data.valid is None or len(data.valid) < 2:
            return
        was_training = self.training
        self.eval()
        device = self.softmax.weight.device
        try:
            for batch in causal_eval_batches(
                data.valid, self._eval_batch_size, self.config.max_len, max_batches
            ):
                window = torch.cat([batch["input_ids"], batch["labels"][:, -1:]], 1).to(device)
                h, labels = self._predictions(window)
                n = labels.numel() // 2
                fwd = float(self._nll(h[:n], labels[:n])) * n
                bwd = float(self._nll(h[n:], labels[n:])) * n
                yield {"nats": fwd + bwd, "tokens": 2 * n, "nats_fwd": fwd, "nats_bwd": bwd}
        finally:
            self.train(was_training)

    def eval_metrics(self, batches: list[dict[str, float]]) -> dict[str, float]:
        """``val_loss`` (per prediction, both directions), ``val_loss_fwd``/``_bwd``/``_sum``,
        ``val_ppl`` (and per direction) and, with the byte count, ``val_bpb`` (and per
        direction), from batch sums."""
        count = sum(b["tokens"] for b in batches) / 2  # predictions per direction
        if not count:
            return {}
        losses = {
            "": sum(b["nats"] for b in batches) / (2 * count),
            "_fwd": sum(b["nats_fwd"] for b in batches) / count,
            "_bwd": sum(b["nats_bwd"] for b in batches) / count,
        }
        out = {f"val_loss{k}": v for k, v in losses.items()}
        out["val_loss_sum"] = losses["_fwd"] + losses["_bwd"]
        out.update({f"val_ppl{k}": math.exp(min(v, 50.0)) for k, v in losses.items()})
        n_bytes, n_tokens = self.meta.get("n_valid_bytes"), self.meta.get("n_valid_tokens")
        if n_bytes and n_tokens:
            out.update(
                {f"val_bpb{k}": v / math.log(2) * n_tokens / n_bytes for k, v in losses.items()}
            )
        return out

    def flops_per_unit(self) -> float:
        """Training FLOPs per token: 6 x the multiply-adds one token costs (both LSTM
        stacks, both directions' softmax, and the token encoder, counted per token)."""
        c = self.config
        lstm = sum(p.numel() for n, p in self.named_parameters() if "lstms" in n and "weight" in n)
        encoder = c.d_model  # an embedding lookup
        if c.token_encoder == "char_cnn":
            width = sum(n for _, n in c.char_filters)
            conv = sum(n * w * c.char_dim * (c.max_chars - w + 1) for w, n in c.char_filters)
            encoder = conv + 2 * width * width * c.n_highway + width * c.d_model
        return 6.0 * (lstm + 2 * self.vocab_size * c.d_model + encoder)
