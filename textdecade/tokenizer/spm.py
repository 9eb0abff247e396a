"""SentencePiece backend (Kudo & Richardson, 2018): BPE or unigram (Kudo, 2018) pieces.

Trained in-process from an iterator into memory (``sentence_iterator`` +
``model_writer``), so no temporary file is written; the serialized model lives base64'd
inside textdecade's one ``tokenizer.json``. ``byte_fallback=True`` spells characters the
vocabulary lacks as UTF-8 byte pieces, so there is no unknown token in practice.

Round trip: ``decode(encode(text)) == normalize(text)``, where the default ``nmt_nfkc``
normalizer applies NFKC, collapses runs of whitespace (newlines and tabs included) into
one space and strips the ends; ``lowercase=True`` uses ``nmt_nfkc_cf`` (case folding).
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Iterable
from typing import Any

import sentencepiece as spm

from ..errors import ConfigError
from .specials import BOS_ID, EOS_ID, N_SPECIALS, PAD_ID, SPECIALS, UNK_ID
from .words import split_words

_SPACE = "\u2581"  # sentencepiece's visible space, "▁"


def train_spm(
    texts: Iterable[str],
    vocab_size: int,
    model_type: str,
    min_frequency: int,
    lowercase: bool,
) -> bytes:
    """Train a sentencepiece model with the specials at ids 0..6 and byte fallback.

    Args:
        texts: training texts, streamed once.
        vocab_size: requested size; sentencepiece may stop short on a small corpus
            (``hard_vocab_limit=False``) rather than fail.
        model_type: "bpe" or "unigram".
        min_frequency: unused by sentencepiece beyond 1 (kept for one signature); the
            unigram model prunes rare pieces by likelihood instead.
        lowercase: case-fold in the normalizer (``nmt_nfkc_cf``).

    Returns:
        The serialized model proto.
    """
    del min_frequency  # sentencepiece has no pair-count threshold
    out = io.BytesIO()
    guard = _Guarded(texts)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=guard,
            model_writer=out,
            vocab_size=vocab_size,
            model_type=model_type,
            byte_fallback=True,
            character_coverage=0.9995,
            normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=SPECIALS[0][1],
            unk_piece=SPECIALS[1][1],
            bos_piece=SPECIALS[2][1],
            eos_piece=SPECIALS[3][1],
            # Matched in text like HF's added tokens; they take ids 4, 5, 6 in order.
            user_defined_symbols=[token for _, token in SPECIALS[4:]],
            hard_vocab_limit=False,
            max_sentence_length=1 << 20,  # documents, not sentences: keep long lines
            input_sentence_size=2_000_000,
            shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        if guard.error is not None:  # the texts' own error (e.g. a CorpusError), not spm's
            raise guard.error from None
        need = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(exc))
        if need:
            raise ConfigError(
                f"vocab_size={vocab_size} is too small for sentencepiece on this corpus: it "
                f"needs at least {need.group(2)} ({N_SPECIALS} special tokens + 256 bytes + "
                "the corpus's characters)"
            ) from None
        raise
    if guard.error is not None:
        raise guard.error
    return out.getvalue()


class _Guarded:
    """Iterate texts for sentencepiece, keeping an exception the texts raise.

    sentencepiece turns an exception inside its iterator into a RuntimeError; keeping the
    original lets a :class:`~textdecade.errors.CorpusError` reach the user unchanged.
    """

    def __init__(self, texts: Iterable[str]):
        self._it = iter(texts)
        self.error: BaseException | None = None

    def __iter__(self) -> _Guarded:
        return self

    def __next__(self) -> str:
        try:
            return next(self._it)
        except StopIteration:
            raise
        except Exception as exc:
            self.error = exc
            raise StopIteration from None


class SPMBackend:
    """Encode/decode/split through a ``sentencepiece.SentencePieceProcessor``.

    Args:
        proto: serialized model.
        lowercase: whether the model was trained with case folding.
        model_type: "bpe" or "unigram" (informational).
    """

    name = "sentencepiece"

    def __init__(self, proto: bytes, lowercase: bool = False, model_type: str = "bpe"):
        self.proto = proto
        self.lowercase = lowercase
        self.model_type = model_type
        self.sp = spm.SentencePieceProcessor(model_proto=proto)
        self._threads = os.cpu_count() or 1

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def token_to_id(self, token: str) -> int | None:
        i = self.sp.piece_to_id(token)
        return None if i == self.sp.unk_id() and token != SPECIALS[1][1] else i

    def id_to_token(self, i: int) -> str | None:
        return self.sp.id_to_piece(i) if 0 <= i < self.vocab_size else None

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.sp.encode(text, add_bos=add_special_tokens, add_eos=add_special_tokens)

    def encode_batch(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        return self.sp.encode(
            texts,
            add_bos=add_special_tokens,
            add_eos=add_special_tokens,
            num_threads=self._threads,
        )

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        ids = [int(i) for i in ids]
        if skip_special_tokens:
            return self.sp.decode([i for i in ids if i >= N_SPECIALS])
        # sentencepiece drops control pieces (<pad>, <s>, </s>) on decode; spell every
        # special out, decoding the runs of ordinary pieces between them.
        parts, run = [], []
        for i in ids:
            if i < N_SPECIALS:
                if run:
                    parts.append(self.sp.decode(run))
                    run = []
                parts.append(SPECIALS[i][1])
            else:
                run.append(i)
        if run:
            parts.append(self.sp.decode(run))
        return "".join(parts)

    def decode_batch(self, batch: list[list[int]], skip_special_tokens: bool) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def word_ids_batch(self, words: list[str]) -> list[list[int]]:
        # Every piece sequence starts with the dummy-prefix "▁", as a word mid-sentence.
        return self.encode_batch(words, add_special_tokens=False)

    def normalize(self, text: str) -> str:
        out = self.sp.normalize(text).replace(_SPACE, " ")
        return out[1:] if out.startswith(" ") else out

    def words(self, text: str) -> list[str]:
        return split_words(self.normalize(text))

    def to_json(self) -> dict[str, Any]:
        return {"model": base64.b64encode(self.proto).decode("ascii")}

    @classmethod
    def from_json(cls, obj: dict[str, Any], lowercase: bool, model_type: str) -> SPMBackend:
        return cls(base64.b64decode(obj["model"], validate=True), lowercase, model_type)
