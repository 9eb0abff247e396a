"""Parallel corpora for translation: reading, encoding with one joint tokenizer, batching.

A :class:`ParallelCorpus` reads two aligned files (``train.de`` + ``train.en``), one TSV
file (``source<TAB>target``), a HF ``datasets`` translation dataset, or in-memory pairs.
Iterating it yields both sides' texts, so the shared tokenizer trained on it is *joint*
(one vocabulary, which lets the Transformer tie source, target and output embeddings as
Vaswani et al. 2017, section 3.4, do).

Bad input is said in one line: files whose line counts differ are refused with both
counts; a pair with an empty side is skipped and counted; a sentence longer than the
model's ``max_len`` is truncated with a warning that gives the count.

:func:`encode_pairs` turns pairs into :class:`PairArrays` (flat token arrays + offsets,
saved as ``.npy`` without pickle), and :class:`BucketBatcher` draws length-bucketed
batches of pairs, resumable from two counters.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from textdecade.data.batcher import Batcher
from textdecade.errors import CorpusError, FormatError
from textdecade.io import atomic_path
from textdecade.tokenizer.specials import BOS_ID, EOS_ID, PAD_ID  # fixed for both backends


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file (only ``\\n``/``\\r\\n`` split; bad bytes replaced and counted)."""
    if not path.is_file():
        raise CorpusError(f"parallel file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        bad = text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
        warnings.warn(
            f"{path}: {bad} byte sequences are not UTF-8; replaced with U+FFFD", stacklevel=2
        )
    # str.splitlines would also split on U+2028, \x1c, ... and break the line alignment.
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class ParallelCorpus:
    """Aligned (source, target) sentence pairs.

    Args:
        source: the source-side file, or a TSV file (``source<TAB>target``) when ``target``
            is None.
        target: the target-side file, aligned with ``source`` by line number.
        max_pairs: keep at most this many pairs (after skipping empty ones).
        valid: held-out pairs (e.g. Multi30k ``val.de``/``val.en``); without it the model
            holds out a slice of the training pairs.

    Iterating yields every source text then its target text (for a joint tokenizer);
    :meth:`pairs` gives the pairs. ``n_skipped`` counts pairs dropped for an empty side.
    """

    def __init__(
        self,
        source: str | os.PathLike | None = None,
        target: str | os.PathLike | None = None,
        *,
        max_pairs: int | None = None,
        valid: ParallelCorpus | None = None,
        _pairs: list[tuple[str, str]] | None = None,
        _skipped: int = 0,
    ):
        self.valid = valid
        self.n_skipped = _skipped
        if _pairs is not None:
            pairs = _pairs
        elif source is None:
            raise CorpusError("a parallel corpus needs a source file (and a target file or TSV)")
        elif target is None:
            pairs = self._read_tsv(Path(source))
        else:
            pairs = self._read_two(Path(source), Path(target))
        self._pairs = pairs[:max_pairs] if max_pairs is not None else pairs
        if not self._pairs:
            raise CorpusError(f"parallel corpus {source or ''} holds no non-empty pairs")
        if self.n_skipped:
            warnings.warn(
                f"skipped {self.n_skipped} pairs with an empty source or target side", stacklevel=2
            )

    def _keep(self, src: str, tgt: str, out: list[tuple[str, str]]) -> None:
        """Append a pair with both sides non-empty; count one with a single empty side."""
        src, tgt = src.strip(), tgt.strip()
        if src and tgt:
            out.append((src, tgt))
        elif src or tgt:
            self.n_skipped += 1

    def _read_two(self, source: Path, target: Path) -> list[tuple[str, str]]:
        src_lines, tgt_lines = _read_lines(source), _read_lines(target)
        if len(src_lines) != len(tgt_lines):
            raise CorpusError(
                f"parallel files differ in length: {source} has {len(src_lines)} lines, "
                f"{target} has {len(tgt_lines)}; they must be aligned line by line"
            )
        out: list[tuple[str, str]] = []
        for src, tgt in zip(src_lines, tgt_lines):
            self._keep(src, tgt, out)
        return out

    def _read_tsv(self, path: Path) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for number, line in enumerate(_read_lines(path), start=1):
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != 2:
                raise FormatError(
                    f"{path}:{number}: expected 'source<TAB>target' (2 columns), got {len(cols)}"
                )
            self._keep(cols[0], cols[1], out)
        return out

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]], **kwargs: Any) -> ParallelCorpus:
        """In-memory pairs; pairs with an empty side are skipped and counted."""
        kept = [(s.strip(), t.strip()) for s, t in pairs if s.strip() and t.strip()]
        skipped = sum(bool(s.strip()) != bool(t.strip()) for s, t in pairs)
        return cls(_pairs=kept, _skipped=skipped, **kwargs)

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        src_lang: str,
        tgt_lang: str,
        *,
        config: str | None = None,
        split: str = "train",
        max_pairs: int | None = None,
    ) -> ParallelCorpus:
        """A HF ``datasets`` translation dataset (a name, or an already-loaded Dataset).

        Rows are either ``{"translation": {src_lang: ..., tgt_lang: ...}}`` (WMT, IWSLT,
        opus) or flat columns named ``src_lang`` and ``tgt_lang``.
        """
        if isinstance(dataset, str):
            from .hub import open_dataset

            # one line, and fast when the hub is offline or unreachable
            dataset = open_dataset(dataset, config, split, streaming=False)
        pairs = []
        for i, row in enumerate(dataset):
            item = row.get("translation", row)
            if src_lang not in item or tgt_lang not in item:
                raise FormatError(
                    f"dataset row {i} has no '{src_lang}'/'{tgt_lang}' fields "
                    f"(found: {', '.join(item)})"
                )
            pairs.append((item[src_lang] or "", item[tgt_lang] or ""))
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
        return cls.from_pairs(pairs)

    @classmethod
    def from_config(cls, data: Any) -> ParallelCorpus | None:
        """Build from a :class:`~textdecade.config.DataConfig`; None when it names no pairs.

        ``source`` (+ ``target``) name files; a ``dataset`` of the form ``NAME:xx-yy``
        (e.g. ``wmt14:de-en``) is read as a translation dataset from ``xx`` to ``yy``.
        """
        if data.source:
            return cls(data.source, data.target, max_pairs=data.max_texts)
        if data.target:
            raise CorpusError("a target file was given without a source file (--source)")
        if data.dataset and ":" in data.dataset:
            name, config = data.dataset.split(":", 1)
            langs = config.split("-")
            if len(langs) == 2 and all(len(x) in (2, 3) for x in langs):
                return cls.from_dataset(
                    name, langs[0], langs[1], config=config, split=data.split,
                    max_pairs=data.max_texts,
                )  # fmt: skip
        return None

    def pairs(self) -> list[tuple[str, str]]:
        """The (source, target) pairs, in file order."""
        return self._pairs

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[str]:
        for src, tgt in self._pairs:
            yield src
            yield tgt


class Encoder(Protocol):
    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...


class PairArrays:
    """Token ids of many (source, target) pairs as two flat arrays with offsets.

    ``src(i)`` / ``tgt(i)`` give pair ``i``'s ids (no BOS/EOS: the batcher adds them).
    Implements the dataset protocol of :class:`BucketBatcher` (``lengths``, ``get``).
    """

    NAMES = ("src_tokens", "src_offsets", "tgt_tokens", "tgt_offsets")

    def __init__(self, src_tokens, src_offsets, tgt_tokens, tgt_offsets):
        self.src_tokens, self.src_offsets = src_tokens, src_offsets
        self.tgt_tokens, self.tgt_offsets = tgt_tokens, tgt_offsets
        # Bucket by the longer side: it sets the padded width of the batch.
        self.lengths = np.maximum(np.diff(src_offsets), np.diff(tgt_offsets))

    def __len__(self) -> int:
        return len(self.src_offsets) - 1

    def src(self, i: int) -> np.ndarray:
        return self.src_tokens[self.src_offsets[i] : self.src_offsets[i + 1]]

    def tgt(self, i: int) -> np.ndarray:
        return self.tgt_tokens[self.tgt_offsets[i] : self.tgt_offsets[i + 1]]

    def get(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.src(i), self.tgt(i)

    @property
    def n_tokens(self) -> int:
        return int(self.src_offsets[-1] + self.tgt_offsets[-1])

    def save(self, directory: Path, prefix: str) -> None:
        for name in self.NAMES:
            save_array(directory / f"{prefix}.{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: Path, prefix: str) -> PairArrays:
        return cls(*(load_array(directory / f"{prefix}.{name}.npy") for name in cls.NAMES))


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically (temp file + rename), never pickled."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def load_array(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r", allow_pickle=False)


def flatten(seqs: Sequence[Sequence[int]], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate id lists into (tokens, offsets); uint16 when the vocabulary fits."""
    dtype = np.uint16 if vocab_size <= 65536 else np.uint32
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((t for s in seqs for t in s), dtype=dtype, count=int(offsets[-1]))
    return tokens, offsets


def truncate(seqs: list[list[int]], limit: int, what: str) -> list[list[int]]:
    """Cut sequences to ``limit`` ids, warning once with how many were cut."""
    cut = sum(len(s) > limit for s in seqs)
    if cut:
        warnings.warn(
            f"{cut} {what} longer than {limit} tokens were truncated "
            f"(raise model.max_len to keep them whole)",
            stacklevel=2,
        )
    return [s[:limit] for s in seqs]


def encode_pairs(
    pairs: Sequence[tuple[str, str]], tokenizer: Any, max_len: int, chunk: int = 10_000
) -> PairArrays:
    """Encode pairs with the joint tokenizer into :class:`PairArrays`.

    Each side keeps at most ``max_len - 1`` ids, leaving room for the EOS (source, target
    output) or BOS (target input) the batcher adds; longer ones are truncated with a warning.
    """
    src_ids: list[list[int]] = []
    tgt_ids: list[list[int]] = []
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        src_ids += tokenizer.encode_batch([s for s, _ in part])
        tgt_ids += tokenizer.encode_batch([t for _, t in part])
    src_ids = truncate(src_ids, max_len - 1, "source sentences")
    tgt_ids = truncate(tgt_ids, max_len - 1, "target sentences")
    vocab = tokenizer.vocab_size
    return PairArrays(*flatten(src_ids, vocab), *flatten(tgt_ids, vocab))


def pad(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> torch.Tensor:
    """Right-pad id lists into a LongTensor (B, T_max)."""
    width = max(1, max(len(s) for s in seqs))
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        if len(seq):
            out[row, : len(seq)] = torch.as_tensor(np.asarray(seq, dtype=np.int64))
    return out


def collate_pairs(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> dict[str, torch.Tensor]:
    """Pairs of id arrays -> a teacher-forcing batch.

    Returns:
        ``src`` (B, S): source ids + EOS, right-padded with PAD; ``src_mask`` (B, S): 1 on
        real tokens; ``tgt_in`` (B, T): BOS + target; ``tgt_out`` (B, T): target + EOS
        (PAD where there is nothing to predict).
    """
    src = pad([[*map(int, s), EOS_ID] for s, _ in pairs])
    tgt_in = pad([[BOS_ID, *map(int, t)] for _, t in pairs])
    tgt_out = pad([[*map(int, t), EOS_ID] for _, t in pairs])
    return {"src": src, "src_mask": (src != PAD_ID).long(), "tgt_in": tgt_in, "tgt_out": tgt_out}


class PairDataset(Protocol):
    lengths: np.ndarray

    def __len__(self) -> int: ...

    def get(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


class BucketBatcher(Batcher):
    """Endless, resumable, length-bucketed batches of pairs (see :func:`collate_pairs`).

    Each epoch shuffles the examples with ``default_rng([seed, epoch])``, sorts windows of
    100 batches by length (so a batch pads little) and shuffles the batches; batch ``k`` of
    an epoch goes to rank ``k % world_size``. Any randomness in building an example (the
    denoising noise) comes from ``default_rng([seed, epoch, k])``, so the state is two
    counters and a resumed run sees exactly the same batches.

    Args:
        data: a :class:`PairDataset` (``lengths`` and ``get(i, rng) -> (src, tgt)``).
        batch_size: pairs per batch.
    """

    def __init__(
        self, data: PairDataset, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1
    ):
        n = len(data)
        if n < batch_size * world_size:
            batch_size = max(1, n // world_size)
        if batch_size < 1:
            raise CorpusError(f"too few training pairs ({n}) for {world_size} ranks")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.per_rank = (n // batch_size) // world_size  # full batches per rank per epoch
        self.units_per_batch = int(np.mean(data.lengths) * batch_size) + batch_size
        self._epoch, self._pos, self._plan_epoch, self._plan = 0, 0, -1, []

    def _batches(self, epoch: int) -> list[np.ndarray]:
        if self._plan_epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(len(self.data))
            window = self.batch_size * 100
            batches = []
            for start in range(0, len(order), window):
                part = order[start : start + window]
                part = part[np.argsort(self.data.lengths[part], kind="stable")]
                batches += [
                    part[i : i + self.batch_size]
                    for i in range(0, len(part) - self.batch_size + 1, self.batch_size)
                ]
            rng.shuffle(batches)
            self._plan, self._plan_epoch = batches, epoch
        return self._plan

    @property
    def epoch(self) -> float:
        return self._epoch + self._pos / max(1, self.per_rank)

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._pos >= self.per_rank:
            self._epoch, self._pos = self._epoch + 1, 0
        k = self._pos * self.world_size + self.rank
        indices = self._batches(self._epoch)[k]
        rng = np.random.default_rng([self.seed, self._epoch, k])
        self._pos += 1
        return collate_pairs([self.data.get(int(i), rng) for i in indices])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch, self._pos = int(state["epoch"]), int(state["pos"])
