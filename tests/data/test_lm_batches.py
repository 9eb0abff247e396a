"""Causal and masked LM batchers on real text: windows, resume, masking statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models.test_gpt_tokenizer_standin import train_tokenizer
from textdecade.data.lm import (
    CausalLMBatcher,
    MaskedLMBatcher,
    causal_eval_batches,
    masked_eval_batches,
    word_start_table,
)
from textdecade.errors import CorpusError

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def real_tokens(corpus_lines):
    lines = corpus_lines("gensim_lee.txt", 300)
    tok = train_tokenizer(lines, vocab_size=1000)
    ids = []
    for line in lines:
        ids += tok.encode(line) + [tok.eos_id]
    return tok, np.array(ids, dtype=np.uint16)


def _special(tok):
    return {
        "cls": tok.cls_id,
        "sep": tok.sep_id,
        "mask": tok.mask_id,
        "pad": tok.pad_id,
        "eos": tok.eos_id,
    }


def test_causal_windows_are_shifted_text_and_resume_exactly(real_tokens):
    _, ids = real_tokens
    b = CausalLMBatcher(ids, batch_size=4, block=32, seed=7)
    first = [next(b) for _ in range(3)]
    x, y = first[0]["input_ids"], first[0]["labels"]
    assert x.shape == y.shape == (4, 32) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    # every row is a real stretch of the corpus
    for row in torch.cat([x, y[:, -1:]], 1).numpy():
        starts = np.flatnonzero(ids[: len(ids) - 32] == row[0])
        assert any((ids[s : s + 33] == row).all() for s in starts)
    state = b.state_dict()
    after = next(b)
    b2 = CausalLMBatcher(ids, batch_size=4, block=32, seed=7)
    b2.load_state_dict(state)
    assert torch.equal(next(b2)["input_ids"], after["input_ids"])
    other = next(CausalLMBatcher(ids, batch_size=4, block=32, seed=8))
    assert not torch.equal(other["input_ids"], x)
    assert 0 < b.epoch < 1
    with pytest.raises(CorpusError, match="max_len"):
        CausalLMBatcher(ids[:10], batch_size=2, block=32, seed=0)


def test_causal_eval_batches_cover_the_text_once(real_tokens):
    _, ids = real_tokens
    small = ids[:1000]
    batches = list(causal_eval_batches(small, batch_size=4, block=64, max_batches=100))
    n_pred = sum(int(bt["labels"].numel()) for bt in batches)
    assert n_pred == len(small) - 1
    again = list(causal_eval_batches(small, batch_size=4, block=64, max_batches=100))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(batches, again))


def test_mlm_masking_statistics(real_tokens):
    tok, ids = real_tokens
    b = MaskedLMBatcher(ids, 32, 128, _special(tok), tok.vocab_size, seed=3)
    chosen = masked = random = kept = candidates = 0
    for _ in range(10):
        batch = next(b)
        x, lab = batch["input_ids"], batch["labels"]
        assert (x[:, 0] == tok.cls_id).all() and (x[:, -1] == tok.sep_id).all()
        sel = lab != -100
        orig = torch.where(sel, lab, x)
        candidates += int((~torch.isin(orig, torch.tensor([0, 2, 3, 4, 5, 6]))).sum())
        chosen += int(sel.sum())
        masked += int((x[sel] == tok.mask_id).sum())
        kept += int((x[sel] == lab[sel]).sum())
        random += int(((x[sel] != lab[sel]) & (x[sel] != tok.mask_id)).sum())
        assert not torch.isin(lab[sel], torch.tensor([tok.cls_id, tok.sep_id, tok.eos_id])).any()
    assert abs(chosen / candidates - 0.15) < 0.01
    assert abs(masked / chosen - 0.8) < 0.02
    assert abs(random / chosen - 0.1) < 0.015  # a random draw may equal the original: rare
    assert abs(kept / chosen - 0.1) < 0.015


def test_whole_word_masking_masks_whole_words(real_tokens):
    tok, ids = real_tokens
    starts = word_start_table(tok, tok.vocab_size)
    assert starts[tok.token_to_id("Ġthe")] and starts[tok.token_to_id(",")]
    b = MaskedLMBatcher(
        ids, 16, 128, _special(tok), tok.vocab_size, whole_word=True, word_starts=starts, seed=5
    )
    multi_piece_words = 0
    for _ in range(5):
        batch = next(b)
        lab = batch["labels"].numpy()
        orig = np.where(lab != -100, lab, batch["input_ids"].numpy())
        for row_lab, row in zip(lab, orig):
            # split the row into words: a word begins at a start piece or after a special
            is_start = starts[row] | (row < 7)
            is_start[1:] |= row[:-1] < 7
            is_start[0] = True
            bounds = list(np.flatnonzero(is_start)) + [len(row)]
            for s, e in zip(bounds[:-1], bounds[1:]):
                sel = row_lab[s:e] != -100
                assert sel.all() or not sel.any(), tok.decode(row[s:e].tolist())
                multi_piece_words += int(sel.all() and e - s > 1)
    assert multi_piece_words > 10  # the rule was actually exercised
    chosen = sum(int((next(b)["labels"] != -100).sum()) for _ in range(5))
    assert 0.10 < chosen / (5 * 16 * 126) < 0.20


def test_nsp_pairs_and_eval_batches(real_tokens):
    tok, ids = real_tokens
    b = MaskedLMBatcher(ids, 64, 64, _special(tok), tok.vocab_size, nsp=True, seed=1)
    batch = next(b)
    x, types, nsp = batch["input_ids"], batch["token_type_ids"], batch["next_sentence_label"]
    assert (x == tok.sep_id).sum(1).eq(2).all()
    assert types[:, :32].eq(0).all() and types[:, 32:].eq(1).all()
    assert 0.3 < nsp.float().mean() < 0.7
    plain = MaskedLMBatcher(ids, 8, 64, _special(tok), tok.vocab_size, seed=1)
    ev1 = list(masked_eval_batches(plain, ids[:5000], max_batches=3))
    ev2 = list(masked_eval_batches(plain, ids[:5000], max_batches=3))
    assert len(ev1) == 3 and all(torch.equal(a["labels"], c["labels"]) for a, c in zip(ev1, ev2))
