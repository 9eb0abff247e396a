"""Batchers for language-model pretraining over token shards: causal (GPT) and masked (BERT).

Both read a 1-D token array (``TokenShards.array``, documents separated by eos) and draw
random windows. Each batch's randomness comes from ``np.random.default_rng([seed, rank,
batch_index])``, so a batcher's state is just its counter and a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdecade.data.batcher import Batcher
from textdecade.errors import CorpusError

IGNORE_INDEX = -100  # labels that the loss skips (the torch / HF convention)
WORD_START_MARKERS = ("Ġ", "▁", " ")  # byte-level BPE, sentencepiece, plain space


def _windows(tokens: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Rows ``tokens[s : s + length]`` for each start: (B, length) int64.

    Slices row by row, so a memmap or a multi-shard view is read only where needed.
    """
    rows = [np.asarray(tokens[int(s) : int(s) + length], dtype=np.int64) for s in starts]
    return np.stack(rows) if rows else np.zeros((0, length), dtype=np.int64)


def _check_size(n_tokens: int, need: int, what: str) -> None:
    if n_tokens < need:
        raise CorpusError(
            f"{what} holds {n_tokens} tokens, fewer than one window of {need}; "
            "use more text or a smaller model.max_len"
        )


class CausalLMBatcher(Batcher):
    """Random windows of ``block + 1`` tokens, split into inputs and next-token labels.

    Args:
        tokens: 1-D token ids (a memmap is fine; only the windows are read).
        batch_size: B.  block: T, the context length (``model.max_len``).
        seed, rank: select the random stream; ``batch_index`` advances it.

    Yields:
        ``{"input_ids": (B, T), "labels": (B, T)}`` int64, ``labels[:, i] = input_ids[:, i+1]``.
    """

    def __init__(self, tokens: Sequence[int], batch_size: int, block: int, seed: int, rank=0):
        _check_size(len(tokens), block + 1, "the training data")
        self.tokens, self.batch_size, self.block = tokens, batch_size, block
        self.seed, self.rank, self.batch_index = seed, rank, 0
        self.units_per_batch = batch_size * block

    @property
    def epoch(self) -> float:
        return self.batch_index * self.units_per_batch / len(self.tokens)

    def __next__(self) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.rank, self.batch_index])
        self.batch_index += 1
        starts = rng.integers(0, len(self.tokens) - self.block, size=self.batch_size)
        x = torch.from_numpy(_windows(self.tokens, starts, self.block + 1))  # (B, T+1)
        return {"input_ids": x[:, :-1], "labels": x[:, 1:]}

    def state_dict(self) -> dict[str, Any]:
        return {"batch_index": self.batch_index, "seed": self.seed, "rank": self.rank}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_index = int(state["batch_index"])


def causal_eval_batches(
    tokens: Sequence[int], batch_size: int, block: int, max_batches: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Deterministic validation batches: consecutive non-overlapping windows from the start.

    The last window may be shorter (the tail of a small validation set still counts).
    """
    n = len(tokens)
    if n < 2:
        return
    starts = list(range(0, n - 1, block))[: batch_size * max_batches]
    for i in range(0, len(starts), batch_size):
        rows = starts[i : i + batch_size]
        length = min(block, n - 1 - rows[-1])
        if length < block:  # a short tail: its own batch, so rows stay rectangular
            full = [s for s in rows if s + block + 1 <= n]
            if full:
                yield _causal_rows(tokens, np.array(full), block)
            yield _causal_rows(tokens, np.array([rows[-1]]), length)
        else:
            yield _causal_rows(tokens, np.array(rows), block)


def _causal_rows(tokens, starts: np.ndarray, length: int) -> dict[str, torch.Tensor]:
    x = torch.from_numpy(_windows(tokens, starts, length + 1))  # (B, T+1)
    return {"input_ids": x[:, :-1], "labels": x[:, 1:]}


# --------------------------------------------------------------------------- masked LM


def word_start_table(tokenizer: Any, vocab_size: int, n_special: int = 7) -> np.ndarray:
    """For each id, whether it begins a word (for whole-word masking): (V,) bool.

    A piece begins a word when it carries the pre-tokenizer's space marker (``Ġ`` in
    byte-level BPE, ``▁`` in sentencepiece), is a special token, or is punctuation (the
    shared tokenizer splits punctuation into words of its own).
    """
    table = np.zeros(vocab_size, dtype=bool)
    for i in range(vocab_size):
        piece = tokenizer.id_to_token(i)
        if not piece:
            table[i] = True
            continue
        special = i < n_special  # the shared tokenizer's fixed ids 0..6
        punct = not any(ch.isalnum() for ch in piece)
        table[i] = piece.startswith(WORD_START_MARKERS) or special or punct
    return table


class MaskedLMBatcher(Batcher):
    """BERT batches: ``[CLS] window [SEP]`` with 15% of tokens chosen, 80/10/10 rule.

    Of the chosen tokens 80% become ``[MASK]``, 10% a random token, 10% stay (Devlin et al.
    2018, sec. 3.1); labels hold the original id at chosen positions and -100 elsewhere.
    With ``whole_word`` the choice is made per word (all pieces of a chosen word), as in
    BERT's later whole-word-masking release. With ``nsp``, each row is two segments,
    the second following the first (label 0) or drawn at random (label 1), half each.

    Args:
        tokens: 1-D token ids.  batch_size: B.  seq_len: T (``max_len``), specials included.
        special: ids ``{"cls", "sep", "mask", "pad", "eos"}``; eos is never chosen.
        vocab_size: V; random replacements are drawn from the non-special ids.
        mask_prob: chance a token (or word) is chosen.  whole_word: per-word choice.
        word_starts: (V,) bool from :func:`word_start_table` (needed for ``whole_word``).
        nsp: next-sentence prediction pairs.  seed, rank: the random stream.
        first_random_id: the lowest id used for random replacement (after the specials).
    """

    def __init__(
        self,
        tokens: Sequence[int],
        batch_size: int,
        seq_len: int,
        special: dict[str, int],
        vocab_size: int,
        *,
        mask_prob: float = 0.15,
        whole_word: bool = False,
        word_starts: np.ndarray | None = None,
        nsp: bool = False,
        seed: int = 0,
        rank: int = 0,
        first_random_id: int = 7,
    ):
        n_special = 3 if nsp else 2
        _check_size(len(tokens), seq_len - n_special + 1, "the training data")
        if whole_word and word_starts is None:
            raise ValueError("whole_word masking needs the word_starts table")
        self.tokens, self.batch_size, self.seq_len = tokens, batch_size, seq_len
        self.special, self.vocab_size = special, vocab_size
        self.mask_prob, self.whole_word, self.word_starts = mask_prob, whole_word, word_starts
        self.nsp, self.seed, self.rank, self.batch_index = nsp, seed, rank, 0
        self.first_random_id = first_random_id
        self.units_per_batch = batch_size * seq_len

    @property
    def epoch(self) -> float:
        return self.batch_index * self.units_per_batch / len(self.tokens)

    def state_dict(self) -> dict[str, Any]:
        return {"batch_index": self.batch_index, "seed": self.seed, "rank": self.rank}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_index = int(state["batch_index"])

    def __next__(self) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.rank, self.batch_index])
        self.batch_index += 1
        return self.make_batch(rng)

    def make_batch(self, rng: np.random.Generator, starts=None) -> dict[str, torch.Tensor]:
        """One batch from ``rng``; ``starts`` fixes the windows (validation)."""
        b = self.batch_size if starts is None else len(starts)
        t, n = self.seq_len, len(self.tokens)
        cls_id, sep_id = self.special["cls"], self.special["sep"]
        if not self.nsp:
            body = t - 2
            if starts is None:
                starts = rng.integers(0, n - body + 1, size=b)
            core = _windows(self.tokens, np.asarray(starts), body)  # (B, T-2)
            ids = np.concatenate(
                [np.full((b, 1), cls_id), core, np.full((b, 1), sep_id)], axis=1
            )  # (B, T)
            types = np.zeros_like(ids)
            nsp_labels = None
        else:
            ids, types, nsp_labels = self._nsp_rows(rng, b, starts)
        input_ids, labels = self.mask(ids, rng)
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(types),
            "labels": torch.from_numpy(labels),
        }
        if nsp_labels is not None:
            batch["next_sentence_label"] = torch.from_numpy(nsp_labels)
        return batch

    def _nsp_rows(self, rng, b, starts):
        """``[CLS] A [SEP] B [SEP]``: B follows A (label 0) or is a random window (label 1)."""
        t, n = self.seq_len, len(self.tokens)
        a_len = (t - 3) // 2
        b_len = t - 3 - a_len
        if starts is None:
            starts = rng.integers(0, n - (a_len + b_len) + 1, size=b)
        starts = np.asarray(starts)
        is_random = rng.random(b) < 0.5
        b_starts = np.where(is_random, rng.integers(0, n - b_len + 1, size=b), starts + a_len)
        seg_a = _windows(self.tokens, starts, a_len)
        seg_b = _windows(self.tokens, b_starts, b_len)
        col = lambda v: np.full((b, 1), v)  # noqa: E731
        ids = np.concatenate(
            [
                col(self.special["cls"]),
                seg_a,
                col(self.special["sep"]),
                seg_b,
                col(self.special["sep"]),
            ],
            axis=1,
        )  # (B, T)
        types = np.zeros_like(ids)
        types[:, a_len + 2 :] = 1
        return ids, types, is_random.astype(np.int64)

    def mask(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Apply the 15% / 80-10-10 rule to ``ids`` (B, T); returns (inputs, labels)."""
        sp = self.special
        specials = [sp[k] for k in ("cls", "sep", "pad", "eos", "mask") if k in sp]
        candidate = ~np.isin(ids, specials)  # (B, T)
        if self.whole_word:
            starts = self.word_starts[ids] | ~candidate  # specials are words of their own
            starts[:, 1:] |= ~candidate[:, :-1]  # and the piece after one starts a word
            starts[:, 0] = True
            word_id = np.cumsum(starts, axis=1) - 1  # (B, T) index of each token's word
            word_draw = rng.random(word_id.shape)  # (B, T): one draw per word slot
            chosen = np.take_along_axis(word_draw, word_id, axis=1) < self.mask_prob
        else:
            chosen = rng.random(ids.shape) < self.mask_prob
        chosen &= candidate
        labels = np.where(chosen, ids, IGNORE_INDEX)
        action = rng.random(ids.shape)
        to_mask = chosen & (action < 0.8)
        to_random = chosen & (action >= 0.8) & (action < 0.9)
        random_ids = rng.integers(self.first_random_id, self.vocab_size, size=ids.shape)
        out = np.where(to_mask, sp["mask"], ids)
        out = np.where(to_random, random_ids, out)
        return out.astype(np.int64), labels.astype(np.int64)


def masked_eval_batches(
    batcher: MaskedLMBatcher, tokens: Sequence[int], max_batches: int, seed: int = 0
) -> Iterator[dict[str, torch.Tensor]]:
    """Deterministic validation batches: consecutive windows of ``tokens``, fixed masking.

    Uses ``batcher``'s settings (length, masking rule) on another token array.
    """
    body = batcher.seq_len - (3 if batcher.nsp else 2)
    n = len(tokens)
    if n < body:
        return
    starts = np.arange(0, n - body + 1, body)[: batcher.batch_size * max_batches]
    view = MaskedLMBatcher.__new__(MaskedLMBatcher)
    view.__dict__.update(batcher.__dict__)
    view.tokens = tokens
    for i in range(0, len(starts), batcher.batch_size):
        rng = np.random.default_rng([seed, 999_983, i])
        yield view.make_batch(rng, starts=starts[i : i + batcher.batch_size])


# --------------------------------------------------------------------------- prepared data


def split_every(texts: Iterable[str], k: int, keep_valid: bool, counter: dict[str, int]):
    """Documents ``i`` with ``i % k == k - 1`` are validation (spread through the corpus).

    Counts the kept documents' UTF-8 bytes (plus one per document for the separator the
    eos token stands for) into ``counter["n_bytes"]``, for bits per byte.
    """
    for i, text in enumerate(texts):
        if (k > 0 and i % k == k - 1) == keep_valid:
            counter["n_bytes"] += len(text.encode("utf-8")) + 1
            counter["n_docs"] += 1
            yield text


def prepare_lm_shards(
    corpus: Iterable[str], tokenizer: Any, workdir: Path, valid_fraction: float = 0.01
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Encode a corpus into ``workdir/train`` and ``workdir/valid`` token shards.

    Every ``round(1 / valid_fraction)``-th document goes to validation (none when the
    fraction is 0). Returns ``(meta, train_tokens, valid_tokens)`` where meta holds the
    vocabulary size, special ids, token counts and the validation text's byte count.
    """
    from textdecade.data.shards import TokenShards, prepare_shards

    workdir = Path(workdir)
    k = max(2, round(1 / valid_fraction)) if valid_fraction > 0 else 0
    train_count = {"n_bytes": 0, "n_docs": 0}
    valid_count = {"n_bytes": 0, "n_docs": 0}
    prepare_shards(split_every(corpus, k, False, train_count), tokenizer, workdir / "train")
    train = TokenShards(workdir / "train")
    valid = None
    if k:
        try:
            prepare_shards(split_every(corpus, k, True, valid_count), tokenizer, workdir / "valid")
            valid = TokenShards(workdir / "valid")
        except CorpusError:  # too few documents to hold any out: train without validation
            valid = None
    meta = {
        "vocab_size": int(tokenizer.vocab_size),
        **{f"{n}_id": _maybe_int(getattr(tokenizer, f"{n}_id", None)) for n in SPECIAL_NAMES},
        "n_train_tokens": len(train),
        "n_valid_tokens": len(valid) if valid is not None else 0,
        "n_valid_bytes": valid_count["n_bytes"],
        "n_train_bytes": train_count["n_bytes"],
    }
    return meta, train.array, (valid.array if valid is not None else None)


def open_lm_shards(workdir: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Reopen what :func:`prepare_lm_shards` wrote: ``(train_tokens, valid_tokens)``."""
    from textdecade.data.shards import TokenShards

    workdir = Path(workdir)
    if not (workdir / "train").exists():
        raise CorpusError(f"no prepared token shards under {workdir}; prepare the data again")
    has_valid = (workdir / "valid" / "manifest.json").exists()
    valid = TokenShards(workdir / "valid") if has_valid else None
    return TokenShards(workdir / "train").array, (valid.array if valid is not None else None)


SPECIAL_NAMES = ("pad", "unk", "bos", "eos", "cls", "sep", "mask")


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)
