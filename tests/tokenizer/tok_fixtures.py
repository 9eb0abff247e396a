"""Tokenizers trained once per test session on real English (shared by the tokenizer tests)."""

from __future__ import annotations

import functools

from tests.conftest import data_path
from textdecade.tokenizer import Tokenizer

# (backend, model_type) pairs behind the one Tokenizer interface.
BACKENDS = [("bpe", "bpe"), ("sentencepiece", "bpe"), ("sentencepiece", "unigram")]
VOCAB = 2000


@functools.cache
def wiki_lines() -> tuple[str, ...]:
    """All paragraphs of the shared Wikipedia sample (real text, ~5k lines)."""
    path = data_path("corpus_en", "gensim_enwiki_sample.txt")
    with open(path, encoding="utf-8") as f:
        return tuple(line.strip() for line in f if line.strip())


def train_lines() -> list[str]:
    return list(wiki_lines()[:1000])


def held_out_lines() -> list[str]:
    return list(wiki_lines()[4000:4300])


@functools.cache
def trained(backend: str, model_type: str, lowercase: bool = False) -> Tokenizer:
    return Tokenizer.train(
        train_lines(),
        vocab_size=VOCAB,
        backend=backend,
        model_type=model_type,
        lowercase=lowercase,
    )
