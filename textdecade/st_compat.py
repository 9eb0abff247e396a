"""The sentence-transformers surface of a loaded model: ``encode``, ``similarity``,
``max_seq_length`` and ``semantic_search``, with sentence-transformers' argument names,
defaults and return types, so code written for ``SentenceTransformer`` runs unchanged::

    model = td.load("all-MiniLM-L6-v2-dir")
    emb = model.encode(["a sentence", "another"], normalize_embeddings=True)  # (2, 384)
    model.similarity(emb, emb)                                                # (2, 2) tensor
    model.semantic_search(["a query"], corpus_texts, top_k=5)  # [[{'corpus_id', 'score'}]]

:class:`SentenceTransformerMixin` is inherited by :class:`textdecade.api.TextModel`; it
only reorders and converts what ``embed`` gives (and reads token states for
``output_value="token_embeddings"``). The order of the steps is sentence-transformers'
(6.x ``SentenceTransformer.encode``): the model's own pooling and normalization, then
``truncate_dim``, then ``normalize_embeddings``, then ``precision``.

Dimensions: N texts, D the model width, T_i the tokens of text i, Q queries, C corpus rows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import textdecade.embedding as E
from textdecade.errors import ConfigError, UserError

__all__ = ["PRECISIONS", "SentenceTransformerMixin", "cos_sim", "quantize", "semantic_search"]

#: what ``encode(precision=...)`` takes (sentence-transformers' ALLOWED_PRECISIONS)
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")


def _batch_tensor(x: Any, what: str) -> torch.Tensor:
    """Embeddings of any form (tensor, array, list of rows) as a float (rows, D) tensor."""
    if isinstance(x, (list, tuple)) and not x:
        return torch.zeros(0, 0)
    if isinstance(x, torch.Tensor):
        out = x
    elif isinstance(x, np.ndarray):
        out = torch.from_numpy(x)
    elif isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        out = torch.stack(list(x))
    else:
        try:
            out = torch.as_tensor(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what} must be embeddings (a tensor, array or list of rows)"
            ) from None
    out = out.float()
    if out.ndim == 1:
        out = out.unsqueeze(0)  # one vector is one row, as in sentence-transformers
    if out.ndim != 2:
        raise ConfigError(
            f"{what} must be one vector or a matrix of rows, got shape {tuple(out.shape)}"
        )
    return out


def _paired(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _batch_tensor(a, "the first embeddings"), _batch_tensor(b, "the second embeddings")
    if a.shape[1] != b.shape[1] and a.numel() and b.numel():
        raise ConfigError(f"embeddings of different widths: {a.shape[1]} and {b.shape[1]}")
    return a, b.to(a.device)


def cos_sim(a: Any, b: Any) -> torch.Tensor:
    """The cosine similarity matrix, as ``sentence_transformers.util.cos_sim``.

    Args:
        a: (A, D) or (D,) embeddings (tensor, numpy array or list).
        b: (B, D) or (D,) embeddings.

    Returns:
        (A, B) float tensor, ``res[i, j] = cos(a[i], b[j])`` (a zero row scores 0).
    """
    a, b = _paired(a, b)
    unit = torch.nn.functional.normalize
    return unit(a, dim=-1) @ unit(b, dim=-1).T


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    query_chunk_size: int = 100,
) -> list[list[dict[str, int | float]]]:
    """Cosine nearest neighbours, as ``sentence_transformers.util.semantic_search``.

    Args:
        query_embeddings: (Q, D) or (D,) embeddings.
        corpus_embeddings: (C, D) embeddings.
        top_k: neighbours per query (fewer when the corpus is smaller).
        query_chunk_size: queries scored at once (bounds memory at chunk x C scores).

    Returns:
        per query a list of ``{"corpus_id": int, "score": float}``, best score first.
    """
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    queries, corpus = _paired(query_embeddings, corpus_embeddings)
    if not len(corpus):
        return [[] for _ in range(len(queries))]
    unit = torch.nn.functional.normalize
    corpus = unit(corpus, dim=-1)  # once, not once per query chunk
    k = min(top_k, len(corpus))
    results: list[list[dict[str, int | float]]] = []
    for start in range(0, len(queries), max(1, query_chunk_size)):
        scores = unit(queries[start : start + query_chunk_size], dim=-1) @ corpus.T  # (q, C)
        values, ids = scores.topk(k, dim=1, largest=True, sorted=True)
        for row_scores, row_ids in zip(values.cpu().tolist(), ids.cpu().tolist()):
            results.append([{"corpus_id": i, "score": s} for s, i in zip(row_scores, row_ids)])
    return results


def quantize(
    embeddings: np.ndarray, precision: str, ranges: np.ndarray | None = None
) -> np.ndarray:
    """Float embeddings in a cheaper precision, as ``sentence_transformers.quantize_embeddings``.

    Args:
        embeddings: (N, D) float32 rows.
        precision: "float32", "int8"/"uint8" (each dimension's [min, max] over the rows cut
            into 256 buckets) or "binary"/"ubinary" (the sign bits, packed 8 to a byte;
            "binary" is offset by -128 into int8).
        ranges: (2, D) per-dimension min and max for int8/uint8 (None: from ``embeddings``).

    Returns:
        (N, D) int8/uint8, (N, ceil(D/8)) for the binary ones, or float32.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if precision == "float32":
        return embeddings
    if precision == "binary":
        return (np.packbits(embeddings > 0, axis=-1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(embeddings > 0, axis=-1)
    if ranges is None:
        if embeddings.ndim == 1 or embeddings.shape[0] < 2:
            raise ConfigError(f"{precision} calibrates its buckets on the batch: encode 2+ texts")
        ranges = np.vstack((embeddings.min(0), embeddings.max(0)))
    starts = ranges[0].astype(np.float32)
    steps = (ranges[1].astype(np.float32) - starts) / 255
    steps = np.where(steps == 0, 1, steps)  # a constant dimension lands in bucket 0
    buckets = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)


def _show_progress(show: bool | None) -> bool:
    # sentence-transformers shows the bar when its logger is at INFO or DEBUG; ours is ours
    if show is None:
        return logging.getLogger("textdecade").getEffectiveLevel() in (logging.INFO, logging.DEBUG)
    return bool(show)


class SentenceTransformerMixin:
    """``encode``, ``similarity``, ``max_seq_length`` and ``semantic_search`` for a handle
    that has ``embed``, ``static``, ``framing``, ``model``, ``tokenizer``, ``device`` and
    ``dim`` (:class:`textdecade.api.TextModel`)."""

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str = "sentence_embedding",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
        prompt: str | None = None,
        precision: str = "float32",
        truncate_dim: int | None = None,
    ) -> np.ndarray | torch.Tensor | list:
        """Embed texts, as ``SentenceTransformer.encode`` does.

        Args:
            sentences: one text or a list.
            batch_size: texts per forward pass.
            show_progress_bar: a bar over batches (None: when the "textdecade" logger is
                at INFO or DEBUG, as sentence-transformers does with its logger).
            output_value: "sentence_embedding" (pooled vectors) or "token_embeddings"
                (each text's last-layer token states, special tokens included).
            convert_to_numpy: return a numpy array (else a list of row tensors).
            convert_to_tensor: return one tensor on the model's device (wins over numpy).
            device: run on this device (the model moves there and stays).
            normalize_embeddings: scale each vector to unit length (after truncate_dim).
            prompt: prepended to every text ("query: " ...).
            precision: "float32", "int8", "uint8", "binary" or "ubinary" (see :func:`quantize`).
            truncate_dim: keep the first this many dimensions (Matryoshka-style).

        Returns:
            (N, D') vectors, or (D',) for a single text; for token_embeddings a list of
            (T_i, D) float tensors (one tensor for a single text). Conversions, order and
            empty-input results follow sentence-transformers.
        """
        if output_value not in OUTPUT_VALUES:
            raise ConfigError(f"output_value must be one of {', '.join(OUTPUT_VALUES)}")
        if precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}"
            )
        if truncate_dim is not None and not 1 <= truncate_dim <= self.dim:
            raise ConfigError(f"truncate_dim must be between 1 and {self.dim}, got {truncate_dim}")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if any(not isinstance(t, str) for t in texts):
            raise UserError("encode expects texts (str)")
        if prompt:
            texts = [prompt + t for t in texts]  # as sentence-transformers: plain prepending
        if device is not None:
            self.to(device)
        progress = _show_progress(show_progress_bar)
        if output_value == "token_embeddings":
            out = self._token_embeddings(texts, batch_size, progress)
            if precision != "float32" and out:
                # one set of buckets for all tokens, so texts stay comparable
                flat = quantize(torch.cat(out).numpy(), precision)
                out = list(np.split(flat, np.cumsum([len(t) for t in out])[:-1]))
            return out[0] if single else out
        vecs = self.embed(
            texts, batch_size=batch_size, show_progress_bar=progress, convert_to="torch"
        )
        if truncate_dim is not None:
            vecs = vecs[:, :truncate_dim]
        if normalize_embeddings:
            vecs = torch.nn.functional.normalize(vecs, dim=-1)
        if not texts:  # sentence-transformers' empty results, whatever the width
            if convert_to_tensor:
                return torch.tensor([])
            return np.array([]) if convert_to_numpy else []
        out = vecs if precision == "float32" else quantize(vecs.numpy(), precision)
        if convert_to_tensor:
            out = torch.as_tensor(out)
            out = out.to(self.device) if out.is_floating_point() else out
        elif convert_to_numpy:
            out = out.numpy() if isinstance(out, torch.Tensor) else out
        else:
            out = list(torch.as_tensor(out))
        return out[0] if single else out

    def _token_embeddings(self, texts: list[str], batch_size: int, progress: bool) -> list:
        """Per text its (T_i, D) last-layer states (static families: its words' vectors)."""
        if self.static:
            return [
                torch.from_numpy(self.input_word_vectors(self.tokenizer.words(t))) for t in texts
            ]
        rows = E.frame_texts(self.tokenizer.encode_batch(texts) if texts else [], self.framing)
        out: list[torch.Tensor | None] = [None] * len(rows)

        def consume(index: np.ndarray, states: list[torch.Tensor], mask: torch.Tensor) -> None:
            last = states[-1].float().cpu()  # (B, T, D), right-padded
            for row, i in enumerate(index):
                out[i] = last[row, : len(rows[i])].clone()  # not a view of the whole batch

        E.run_batches(
            self.model, rows, self.framing, batch_size, self.device, consume, progress,
            self.mask_optional,
        )  # fmt: skip
        return out

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity of every row of ``embeddings1`` with every row of ``embeddings2``
        (sentence-transformers' default ``similarity_fn_name="cosine"``).

        Returns:
            (A, B) float tensor.
        """
        return cos_sim(embeddings1, embeddings2)

    @property
    def max_seq_length(self) -> int | None:
        """The longest input in tokens, special tokens included; longer texts are cut.
        None for static vectors, which read whole texts."""
        return None if self.static else self.framing.max_len

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if self.static:
            raise UserError(f"a {self.family} model reads whole texts; it has no max_seq_length")
        special = len(self.framing.prefix) + len(self.framing.suffix)
        limit = self.model.context_size
        if not isinstance(value, int) or not special < value <= limit:
            raise ConfigError(
                f"max_seq_length must be an int in {special + 1}..{limit}, got {value!r}"
            )
        self.framing = dataclasses.replace(self.framing, max_len=value)

    def semantic_search(
        self, queries: Any, corpus: Any, top_k: int = 10, batch_size: int = 32
    ) -> list[list[dict[str, int | float]]]:
        """The ``top_k`` corpus entries nearest each query by cosine (see :func:`semantic_search`).

        Args:
            queries: texts (encoded here) or query embeddings.
            corpus: texts (encoded here) or corpus embeddings.
            top_k: results per query.  batch_size: for encoding texts.

        Returns:
            per query a list of ``{"corpus_id", "score"}``, best first.
        """

        def embeddings(x: Any) -> Any:
            if isinstance(x, str) or (isinstance(x, (list, tuple)) and x and isinstance(x[0], str)):
                return self.encode(x, batch_size=batch_size, convert_to_tensor=True)
            return x

        if isinstance(queries, (list, tuple)) and not queries:
            return []
        return semantic_search(embeddings(queries), embeddings(corpus), top_k=top_k)
