"""Byte-level BPE backend on HF ``tokenizers`` (Sennrich et al., 2016; GPT-2's byte level).

Byte-level BPE never produces an unknown token: every string is some sequence of the 256
byte symbols, merged where training found frequent pairs. The pipeline:

* normalizer: NFC (+ lowercase), then ``Prepend(" ")`` so the first word of a text gets
  the same pieces as the same word mid-sentence (GPT-2's ``add_prefix_space``, done in the
  normalizer so that decoding can strip exactly that one space and round-trip any text);
* pre-tokenizer: ``ByteLevel`` with GPT-2's regex (see :mod:`.words`);
* decoder: ``ByteLevel`` -> ``Fuse`` -> ``Strip(" ", 1, 0)`` (undo the prepended space);
* post-processor: ``<s> $A </s>`` when ``add_special_tokens=True``.

The same class also wraps any imported HF ``tokenizer.json`` (GPT-2's, BERT's WordPiece):
``native=False`` then means "don't assume our normalizer", so words come from the
tokenizer's own normalizer and pre-tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from .specials import N_SPECIALS, SPECIAL_TOKENS
from .words import normalize, split_words

#: 7 special tokens + the 256 byte symbols: the smallest byte-level vocabulary.
MIN_BPE_VOCAB = N_SPECIALS + 256


def build_pipeline(lowercase: bool) -> HFTokenizer:
    """An untrained byte-level BPE tokenizer with textdecade's normalizer and decoder."""
    tok = HFTokenizer(models.BPE())
    steps = [normalizers.NFC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    steps.append(normalizers.Prepend(" "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.Sequence(
        [decoders.ByteLevel(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return tok


def train_bpe(
    texts: Iterable[str], vocab_size: int, min_frequency: int, lowercase: bool
) -> HFTokenizer:
    """Train a byte-level BPE tokenizer with the specials at ids 0..6.

    Args:
        texts: training texts (consumed once, streamed).
        vocab_size: total size including specials and the 256 bytes (>= 263).
        min_frequency: a pair must occur this often to be merged.
        lowercase: lower-case before everything else.

    Returns:
        The trained HF tokenizer.
    """
    tok = build_pipeline(lowercase)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> $B </s>",
        special_tokens=[("<s>", 2), ("</s>", 3)],
    )
    # A freshly trained model object can keep a stale merge cache; reloading from its
    # serialization gives exactly what `Tokenizer.load` will give later.
    return HFTokenizer.from_str(tok.to_str())


class HFBackend:
    """Encode/decode/split through an HF ``tokenizers.Tokenizer``.

    Args:
        tok: the HF tokenizer.
        lowercase: whether the normalizer lower-cases (native tokenizers only).
        native: True for tokenizers textdecade trained (known normalizer and prefix space).
    """

    name = "bpe"

    def __init__(self, tok: HFTokenizer, lowercase: bool = False, native: bool = True):
        if not native:
            # Imported files may fix padding/truncation (sentence-transformers ships a fixed
            # 128); textdecade pads per batch and truncates to each model's context itself.
            tok.no_padding()
            tok.no_truncation()
        self.hf = tok
        self.lowercase = lowercase
        self.native = native
        self._encode_batch = getattr(tok, "encode_batch_fast", tok.encode_batch)

    # -- vocabulary -----------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self.hf.id_to_token(i)

    # -- encoding -------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.hf.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        # Rust threads (rayon) encode the batch in parallel and release the GIL.
        return [e.ids for e in self._encode_batch(texts, add_special_tokens=add_special_tokens)]

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    def decode_batch(self, batch: list[list[int]], skip_special_tokens: bool) -> list[str]:
        return self.hf.decode_batch(batch, skip_special_tokens=skip_special_tokens)

    def word_ids_batch(self, words: list[str]) -> list[list[int]]:
        # Native: the normalizer prepends the space. Imported (GPT-2 style): prepend it
        # here so every word gets its mid-sentence pieces.
        texts = words if self.native else [" " + w for w in words]
        return self.encode_batch(texts, add_special_tokens=False)

    # -- words ----------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        if self.native:
            return normalize(text, self.lowercase)
        norm = self.hf.normalizer
        return norm.normalize_str(text) if norm is not None else text

    def words(self, text: str) -> list[str]:
        if self.native:
            return split_words(normalize(text, self.lowercase))
        text = self.normalize(text)
        pre = self.hf.pre_tokenizer
        if pre is None:
            return text.split()
        pieces = (text[s:e] for _, (s, e) in pre.pre_tokenize_str(text))
        return [p.strip() for p in pieces if p.strip()]

    # -- serialization --------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return json.loads(self.hf.to_str())

    @classmethod
    def from_json(cls, obj: dict[str, Any], lowercase: bool, native: bool) -> HFBackend:
        return cls(HFTokenizer.from_str(json.dumps(obj)), lowercase=lowercase, native=native)


def counted(texts: Iterable[str], counter: list[int]) -> Iterator[str]:
    """Yield non-empty texts, counting them in ``counter[0]``."""
    for text in texts:
        if text:
            counter[0] += 1
            yield text
