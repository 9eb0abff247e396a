"""words(), words_batch(), encode_words() and word_piece_ids(): words as the tokenizer sees them."""

from __future__ import annotations

import pytest
from tokenizers import normalizers, pre_tokenizers

from tests.tokenizer.tok_fixtures import BACKENDS, held_out_lines, trained

pytestmark = pytest.mark.data


@pytest.fixture(params=BACKENDS, ids=lambda p: "-".join(p))
def tok(request):
    return trained(*request.param)


def test_words_split_punctuation_gpt2_style(tok):
    assert tok.words("The bank's rates rose.") == ["The", "bank", "'s", "rates", "rose", "."]
    assert tok.words("  Hello,   world!\n(42 cats)  ") == [
        "Hello", ",", "world", "!", "(", "42", "cats", ")",
    ]  # fmt: skip
    assert tok.words("") == [] and tok.words(" \n\t") == []


def test_words_match_the_rust_pre_tokenizer_on_real_text():
    """The fast Python split is exactly HF's normalizer + ByteLevel pre-tokenizer."""
    tok = trained("bpe", "bpe")
    norm = normalizers.Sequence([normalizers.NFC(), normalizers.Prepend(" ")])
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    texts = held_out_lines() + ["'s start", "it's 'quoted' 's", "x\u0301y 3.14 e-mail"]
    for text in texts:
        normalized = norm.normalize_str(text)
        pieces = (normalized[s:e] for _, (s, e) in pre.pre_tokenize_str(normalized))
        assert tok.words(text) == [p.strip() for p in pieces if p.strip()], text


def test_words_batch_equals_words(tok):
    texts = held_out_lines()[:100]
    assert tok.words_batch(texts) == [tok.words(t) for t in texts]
    assert tok.words_batch(iter(texts[:3])) == [tok.words(t) for t in texts[:3]]


def test_encode_words_aligns_ids_to_words(tok):
    for text in held_out_lines()[:60]:
        words = text.split()
        ids, index = tok.encode_words(words)
        assert len(ids) == len(index)
        # ids are the running text's encoding, split back into each word's pieces
        assert ids == tok.encode(" ".join(words)), text
        assert index == sorted(index) and set(index) == set(range(len(words)))
        for k, word in enumerate(words):
            piece_ids = [i for i, w in zip(ids, index) if w == k]
            assert piece_ids == tok.word_piece_ids(word)
            assert tok.decode(piece_ids).strip() == tok.normalize(word)


def test_encode_words_skips_empty_words_and_keeps_indices(tok):
    ids, index = tok.encode_words(["rates", "", "rose"])
    assert set(index) == {0, 2}
    assert ids == tok.word_piece_ids("rates") + tok.word_piece_ids("rose")
    assert tok.encode_words([]) == ([], [])
    assert tok.word_piece_ids("") == []


def test_word_piece_ids_are_mid_sentence_pieces(tok):
    # "bank" at the start of a text and after a space gets the same pieces
    first = tok.encode("bank")
    assert tok.word_piece_ids("bank") == first
    assert tok.encode("the bank")[-len(first) :] == first
