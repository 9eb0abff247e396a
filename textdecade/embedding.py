"""Batching and pooling for ``embed`` and ``embed_words``, for any family.

Nothing here knows a family's name: a model either has static word vectors (it declares
``StaticVectors``: Word2Vec and GloVe) or per-token hidden states (``HiddenStates``: the
encoders, BERT and GPT). The contextual path follows sentence-transformers
(Reimers & Gurevych 2019): tokenize everything once, sort by length so that each batch
pads to almost nothing, run the batches, pool, and put the rows back in input order.
:func:`embed_to_file` writes the vectors of a stream of texts (``.npy`` or JSON lines).

Dimensions: N texts, B a batch of them, T tokens in the batch's longest text, D the
model width, W words of a sentence.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from textdecade.errors import ConfigError, UserError

POOLINGS = ("mean", "cls", "last")
LAYERS = ("last", "last4")


@dataclass(frozen=True)
class Framing:
    """How a text's token ids become the model's input row.

    Attributes:
        prefix: ids put before the text (BERT's ``[CLS]``; empty for GPT).
        suffix: ids put after it (BERT's ``[SEP]``).
        pad_id: the id that fills short rows (masked out, so its value never matters).
        max_len: the longest row the model takes, prefix and suffix included.
    """

    prefix: tuple[int, ...] = ()
    suffix: tuple[int, ...] = ()
    pad_id: int = 0
    max_len: int = 512

    @property
    def room(self) -> int:
        """How many text tokens fit in one row."""
        return self.max_len - len(self.prefix) - len(self.suffix)

    def frame(self, ids: Sequence[int]) -> list[int]:
        """``prefix + ids + suffix``, the text cut to ``room`` tokens."""
        return [*self.prefix, *ids[: self.room], *self.suffix]


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling '{pooling}' (choose from: {', '.join(POOLINGS)})")
    return pooling


def check_layers(layers: str) -> str:
    if layers not in LAYERS:
        raise ConfigError(f"unknown layers '{layers}' (choose from: {', '.join(LAYERS)})")
    return layers


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool token states into one vector per row.

    Args:
        states: (B, T, D) hidden states.
        mask: (B, T) 1 for real tokens, 0 for padding (rows are right-padded).
        pooling: "mean" (masked mean, sentence-transformers' default), "cls" (the first
            token) or "last" (the last real token: all a causal model has seen).

    Returns:
        (B, D) pooled vectors; a row without tokens pools to zeros.
    """
    lengths = mask.sum(1)  # (B,)
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
        # clamp as sentence-transformers does, so an empty row gives zeros, not NaN
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if pooling == "cls":
        pooled = states[:, 0]
    else:
        last = (lengths - 1).clamp(min=0)  # (B,)
        pooled = states[torch.arange(states.shape[0], device=states.device), last]
    return pooled * (lengths > 0).unsqueeze(-1).to(states.dtype)  # empty rows: zeros


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches of rows sorted by length, longest first.

    Longest first (as sentence-transformers does) so that running out of memory happens
    on the first batch, not after minutes of work. Sorting leaves little padding; cutting
    batches further where lengths change (no padding at all) measured slower here, as the
    smaller matrix products cost more than the padding they save. The sort is stable, so
    the batches are deterministic.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_rows(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id rows into ``input_ids`` (B, T) and ``attention_mask`` (B, T)."""
    width = max(1, max(len(r) for r in rows))
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def select_layers(states: list[torch.Tensor], layers: str) -> torch.Tensor:
    """The last layer, or the sum of the last four (Devlin et al. 2018, Table 7)."""
    if layers == "last4":
        return torch.stack(states[-4:]).sum(0)
    return states[-1]


def run_batches(
    model: torch.nn.Module,
    rows: Sequence[Sequence[int]],
    framing: Framing,
    batch_size: int,
    device: torch.device,
    consume: Callable[[np.ndarray, list[torch.Tensor], torch.Tensor], None],
    progress: bool = False,
    mask_optional: bool = False,
) -> None:
    """Run ``model.hidden_states`` over framed ``rows`` in length-sorted batches.

    Args:
        rows: framed id rows (already at most ``framing.max_len`` long).
        consume: called per batch with (row indices (B,), hidden states list of (B, T, D),
            attention mask (B, T)).
        progress: show a tqdm bar over batches.
        mask_optional: the model takes ``attention_mask=None``; it gets None for batches
            without padding (the mask would change nothing and costs time in every layer).
    """
    batches = length_batches([len(r) for r in rows], batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="Batches", unit="batch")
    with torch.inference_mode():
        for index in batches:
            ids, mask = pad_rows([rows[i] for i in index], framing.pad_id, device)
            unpadded = mask_optional and len({len(rows[i]) for i in index}) == 1
            consume(index, model.hidden_states(ids, None if unpadded else mask), mask)


def frame_texts(
    id_lists: Sequence[Sequence[int]], framing: Framing, warn: bool = True
) -> list[list[int]]:
    """Frame each text's ids, cutting texts longer than the context (with one warning)."""
    cut = sum(1 for ids in id_lists if len(ids) > framing.room)
    if cut and warn:
        warnings.warn(
            f"{cut} text(s) longer than the context of {framing.max_len} tokens were truncated",
            stacklevel=4,
        )
    return [framing.frame(ids) for ids in id_lists]


def embed_contextual(
    model: torch.nn.Module,
    id_lists: Sequence[Sequence[int]],
    framing: Framing,
    *,
    pooling: str,
    batch_size: int,
    device: torch.device,
    progress: bool = False,
    mask_optional: bool = False,
) -> torch.Tensor:
    """Sentence vectors (N, D) from a model with ``hidden_states``, in input order (CPU fp32)."""
    rows = frame_texts(id_lists, framing)
    out: list[torch.Tensor | None] = [None] * len(rows)

    def consume(index: np.ndarray, states: list[torch.Tensor], mask: torch.Tensor) -> None:
        pooled = pool(states[-1], mask, pooling).float().cpu()  # (B, D)
        for row, i in enumerate(index):
            out[i] = pooled[row]

    run_batches(model, rows, framing, batch_size, device, consume, progress, mask_optional)
    return torch.stack(out) if out else torch.zeros(0, 0)


def windows(n: int, room: int) -> list[tuple[int, int]]:
    """Overlapping windows ``[start, stop)`` covering ``n`` tokens, stride half a window."""
    if n <= room:
        return [(0, n)]
    stride = max(1, room // 2)
    starts = list(range(0, n - room, stride)) + [n - room]
    return [(s, s + room) for s in starts]


def best_window(i: int, spans: list[tuple[int, int]], causal: bool) -> int:
    """The window that gives token ``i`` the most context on both sides (left for causal)."""
    if causal:
        return max(
            range(len(spans)),
            key=lambda w: i - spans[w][0] if spans[w][0] <= i < spans[w][1] else -1,
        )

    def score(w: int) -> int:
        s, e = spans[w]
        return min(i - s, e - 1 - i) if s <= i < e else -1

    return max(range(len(spans)), key=score)


def word_states_contextual(
    model: torch.nn.Module,
    encoded: Sequence[tuple[Sequence[int], Sequence[int]]],
    n_words: Sequence[int],
    framing: Framing,
    *,
    layers: str,
    batch_size: int,
    device: torch.device,
    causal: bool = False,
    mask_optional: bool = False,
) -> list[np.ndarray]:
    """Per-word vectors: each word's pieces mean-pooled, for many sentences.

    Args:
        encoded: per sentence, ``(ids, word_index)`` as from ``Tokenizer.encode_words``.
        n_words: per sentence, how many words it has (a word with no pieces gets zeros).
        causal: choose windows by left context only (for a causal model).

    Returns:
        per sentence an array (W, D) float32. Sentences longer than the context are
        read in overlapping windows and each piece takes its state from the window where
        it has the most context.
    """
    # one row per window; remember which pieces each row answers for
    rows: list[list[int]] = []
    jobs: list[tuple[int, int, list[int]]] = []  # (sentence, window start, piece positions)
    for s, (ids, _) in enumerate(encoded):
        spans = windows(len(ids), framing.room)
        owners: dict[int, list[int]] = {}
        for i in range(len(ids)):
            owners.setdefault(best_window(i, spans, causal), []).append(i)
        for w, (start, stop) in enumerate(spans):
            if w in owners or not ids:
                rows.append(framing.frame(ids[start:stop]))
                jobs.append((s, start, owners.get(w, [])))
    piece_states: list[np.ndarray | None] = [None] * len(encoded)
    offset = len(framing.prefix)

    def consume(index: np.ndarray, states: list[torch.Tensor], mask: torch.Tensor) -> None:
        picked = select_layers(states, layers).float().cpu().numpy()  # (B, T, D)
        for row, r in enumerate(index):
            s, start, positions = jobs[r]
            if piece_states[s] is None:
                piece_states[s] = np.zeros((len(encoded[s][0]), picked.shape[-1]), np.float32)
            if positions:
                at = np.asarray(positions)
                piece_states[s][at] = picked[row, offset + at - start]

    run_batches(model, rows, framing, batch_size, device, consume, False, mask_optional)
    out = []
    for s, ((ids, word_index), n) in enumerate(zip(encoded, n_words)):
        states = piece_states[s]
        dim = states.shape[-1] if states is not None else 0
        vecs = np.zeros((n, dim), np.float32)
        if ids:
            counts = np.bincount(np.asarray(word_index), minlength=n)[:n].astype(np.float32)
            np.add.at(vecs, np.asarray(word_index), states)
            vecs /= np.maximum(counts, 1.0)[:, None]
        out.append(vecs)
    return out


def embed_to_file(
    handle: Any,
    texts: Iterable[str],
    out_path: str | Path | IO[str],
    *,
    chunk_size: int = 4096,
    **kwargs: Any,
) -> int:
    """Embed a stream of texts into ``.npy`` (an (N, D) float32 array) or ``.jsonl``.

    ``.jsonl`` gets one ``{"text": ..., "embedding": [...]}`` per line. Texts are read in
    chunks of ``chunk_size`` so a long stream is never held in memory at once (the
    ``.npy`` rows are collected in a temporary raw file). File writes are atomic.

    Args:
        handle: a loaded model.  texts: any iterable of texts (e.g. lines of stdin).
        out_path: where to write, the suffix picking the format; or "-" / an open text
            stream, which gets JSON lines as they are ready.
        kwargs: passed to :meth:`textdecade.api.TextModel.embed` (batch_size, normalize, pooling...).

    Returns:
        the number of texts embedded.
    """
    from textdecade.io import atomic_path

    kwargs = {**kwargs, "convert_to": "numpy"}
    if hasattr(out_path, "write") or str(out_path) == "-":
        stream = sys.stdout if str(out_path) == "-" else out_path
        n = 0
        for chunk in _chunks(texts, chunk_size):
            for text, vec in zip(chunk, handle.embed(chunk, **kwargs)):
                stream.write(_json_line(text, vec))
            n += len(chunk)
        return n
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".npy", ".jsonl"):
        raise UserError(f"output must end in .npy or .jsonl, got {out_path.name}")
    n = 0
    with atomic_path(out_path) as tmp:
        raw = tmp.with_name(tmp.name + ".raw")
        try:
            with open(tmp if suffix == ".jsonl" else raw, "wb") as f:
                for chunk in _chunks(texts, chunk_size):
                    vecs = handle.embed(chunk, **kwargs)
                    n += len(chunk)
                    if suffix == ".npy":
                        f.write(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
                        continue
                    for text, vec in zip(chunk, vecs):
                        f.write(_json_line(text, vec).encode("utf-8"))
            if suffix == ".npy":
                shape = (n, handle.dim)
                rows = np.memmap(raw, np.float32, "r", shape=shape) if n else np.zeros(shape)
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(rows, dtype=np.float32), allow_pickle=False)
                del rows
        finally:
            raw.unlink(missing_ok=True)
    return n


def _json_line(text: str, vec: np.ndarray) -> str:
    return json.dumps({"text": text, "embedding": vec.tolist()}, ensure_ascii=False) + "\n"


def _chunks(texts: Iterable[str], size: int) -> Iterable[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text.rstrip("\n"))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
