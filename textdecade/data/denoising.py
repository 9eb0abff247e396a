"""BART-style denoising over plain text, so encoder-decoders pretrain on any corpus.

Lewis et al. 2019 (BART, section 2.2) corrupt a document and train the model to restore
it. We use their two best noises together (their Table 1):

* **sentence permutation**: the document's sentences are shuffled;
* **text infilling**: spans with lengths drawn from Poisson(lambda = 3) are each replaced
  by ONE ``<mask>`` until 30% of the tokens are gone; a zero-length span inserts a mask,
  so the model must also learn how many tokens a mask hides.

The source is the corrupted text, the target the original. :class:`DenoisingArrays` holds
encoded documents split into sentences and packed into examples of at most ``max_len``
tokens; the noise is drawn per batch by :class:`~textdecade.data.parallel.BucketBatcher`
from a seeded generator, so batches are reproducible and resumable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.data.parallel import flatten, load_array, save_array
from textdecade.data.shards import BATCH_CHARS
from textdecade.tokenizer.specials import MASK_ID

# Whitespace after . ! or ? (optionally followed by a closing quote or bracket).
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Split a document after ``.``, ``!`` or ``?`` followed by whitespace (cheap, no model)."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def shuffle_sentences(sentences: Sequence[Sequence[int]], rng: np.random.Generator) -> list[int]:
    """Concatenate the sentences' ids in a random order."""
    order = rng.permutation(len(sentences))
    return [int(t) for i in order for t in sentences[i]]


def span_mask(
    ids: Sequence[int],
    rng: np.random.Generator,
    *,
    mask_id: int = MASK_ID,
    ratio: float = 0.3,
    poisson_lambda: float = 3.0,
    return_spans: bool = False,
) -> list[int] | tuple[list[int], list[tuple[int, int]]]:
    """Text infilling (BART): replace Poisson-length spans with one mask each.

    Exactly ``round(ratio * len(ids))`` tokens are removed (the last drawn span is cut to
    fit). The spans are placed without overlap and uniformly at random: ``u`` kept tokens
    and ``k`` spans are laid out as a random arrangement of ``u + k`` slots.

    Args:
        ids: the token ids of one example.
        rng: the random generator (the batcher's per-batch generator).
        mask_id: the id that replaces each span.
        ratio: fraction of tokens to remove.
        poisson_lambda: mean span length.
        return_spans: also return ``(start, length)`` of each span in ``ids``.

    Returns:
        The corrupted ids (and the spans when asked).
    """
    n = len(ids)
    budget = int(round(ratio * n))
    lengths: list[int] = []
    total = 0
    while total < budget:
        length = min(int(rng.poisson(poisson_lambda)), budget - total)
        lengths.append(length)
        total += length
    kept = n - total
    slots = np.zeros(kept + len(lengths), dtype=bool)  # True: a span goes here
    slots[rng.choice(len(slots), size=len(lengths), replace=False)] = True
    out: list[int] = []
    spans: list[tuple[int, int]] = []
    pos = span = 0
    for is_span in slots:
        if is_span:
            out.append(mask_id)
            spans.append((pos, lengths[span]))
            pos += lengths[span]
            span += 1
        else:
            out.append(int(ids[pos]))
            pos += 1
    return (out, spans) if return_spans else out


def noise(
    sentences: Sequence[Sequence[int]],
    rng: np.random.Generator,
    *,
    mask_id: int = MASK_ID,
    ratio: float = 0.3,
    poisson_lambda: float = 3.0,
) -> list[int]:
    """Sentence permutation, then text infilling: the denoising source of one example."""
    shuffled = shuffle_sentences(sentences, rng)
    return span_mask(shuffled, rng, mask_id=mask_id, ratio=ratio, poisson_lambda=poisson_lambda)


class DenoisingArrays:
    """Encoded examples (runs of whole sentences) for denoising, flat on disk.

    ``tokens`` holds all sentences back to back, ``sent_offsets`` (n_sent + 1) where each
    starts, ``ex_offsets`` (n_examples + 1) which sentences each example spans.
    ``get(i, rng)`` returns ``(noised source, original)`` for the batcher.
    """

    NAMES = ("tokens", "sent_offsets", "ex_offsets")

    def __init__(self, tokens, sent_offsets, ex_offsets, ratio=0.3, poisson_lambda=3.0):
        self.tokens, self.sent_offsets, self.ex_offsets = tokens, sent_offsets, ex_offsets
        self.ratio, self.poisson_lambda = ratio, poisson_lambda
        self.lengths = np.diff(sent_offsets[ex_offsets])

    def __len__(self) -> int:
        return len(self.ex_offsets) - 1

    def sentences(self, i: int) -> list[np.ndarray]:
        bounds = self.sent_offsets[self.ex_offsets[i] : self.ex_offsets[i + 1] + 1]
        return [self.tokens[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def get(self, i: int, rng: np.random.Generator) -> tuple[list[int], np.ndarray]:
        sents = self.sentences(i)
        original = np.concatenate(sents) if sents else np.zeros(0, dtype=np.int64)
        src = noise(sents, rng, ratio=self.ratio, poisson_lambda=self.poisson_lambda)
        return src, original

    @property
    def n_tokens(self) -> int:
        return int(2 * self.sent_offsets[-1])

    def save(self, directory: Path, prefix: str) -> None:
        for name in self.NAMES:
            save_array(directory / f"{prefix}.{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: Path, prefix: str, **kwargs: Any) -> DenoisingArrays:
        return cls(
            *(load_array(directory / f"{prefix}.{name}.npy") for name in cls.NAMES), **kwargs
        )


def encode_documents(
    texts: Iterable[str],
    tokenizer: Any,
    max_len: int,
    *,
    chunk: int = 5_000,
    ratio: float = 0.3,
    poisson_lambda: float = 3.0,
) -> DenoisingArrays:
    """Split documents into sentences, encode them, pack runs into examples.

    Consecutive sentences of one document are packed while they fit in ``max_len - 1`` ids
    (room for EOS); a longer sentence is cut to that length and stands alone.
    """
    limit = max_len - 1
    sentences: list[list[int]] = []
    ex_offsets = [0]

    def flush(docs: list[list[str]]) -> None:
        # The shared tokenizer encodes each word with its leading-space marker, so sentences
        # encoded one by one concatenate to the ids of the running text.
        flat = [s for doc in docs for s in doc]
        ids = tokenizer.encode_batch(flat) if flat else []
        pos = 0
        for doc in docs:
            size = 0
            for sent in ids[pos : pos + len(doc)]:
                sent = sent[:limit]
                if not sent:
                    continue
                if size and size + len(sent) > limit:
                    ex_offsets.append(len(sentences))
                    size = 0
                sentences.append(sent)
                size += len(sent)
            pos += len(doc)
            if len(sentences) > ex_offsets[-1]:
                ex_offsets.append(len(sentences))

    docs: list[list[str]] = []
    held = 0
    for text in texts:
        docs.append(split_sentences(text))
        held += len(text)
        if len(docs) >= chunk or held >= BATCH_CHARS:  # a few long documents are a chunk too
            flush(docs)
            docs, held = [], 0
    flush(docs)
    tokens, sent_offsets = flatten(sentences, tokenizer.vocab_size)
    return DenoisingArrays(
        tokens, sent_offsets, np.asarray(ex_offsets, dtype=np.int64), ratio, poisson_lambda
    )
