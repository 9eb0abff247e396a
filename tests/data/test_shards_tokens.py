"""Token shards equal the direct encoding; dtype choice; cross-shard access; bad directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers

from tests.conftest import data_path
from textdecade.data.corpus import Corpus
from textdecade.data.shards import ShardedArray, TokenShards, prepare_shards
from textdecade.errors import CorpusError, FormatError
from textdecade.tokenizer import Tokenizer

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def lines():
    path = data_path("corpus_en", "nltk_inaugural.txt")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()][:600]


@pytest.fixture(scope="module")
def tok(lines):
    return Tokenizer.train(lines, vocab_size=1000)


def direct(tok, texts, eos=True):
    out = []
    for ids in tok.encode_batch(texts):
        out.extend(ids + ([tok.eos_id] if eos else []))
    return np.array(out)


def test_one_shard_equals_direct_encoding(tmp_path, tok, lines):
    manifest = prepare_shards(iter(lines), tok, tmp_path / "s", batch_texts=97)
    expected = direct(tok, lines)
    shards = TokenShards(tmp_path / "s")
    assert manifest["dtype"] == "uint16" and shards.dtype == np.uint16
    assert isinstance(shards.array, np.memmap) and not shards.array.flags.writeable
    assert np.array_equal(shards.array, expected)
    assert len(shards) == manifest["n_tokens"] == len(expected)
    assert shards.n_documents == manifest["n_documents"] == len(lines)
    assert (shards.array == tok.eos_id).sum() == len(lines)  # one </s> per document
    assert manifest["tokenizer_sha256"] == tok.fingerprint
    on_disk = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert on_disk == manifest
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "manifest.json",
        "shard_00000.bin",
    ]


def test_many_shards_slice_across_boundaries(tmp_path, tok, lines):
    manifest = prepare_shards(lines, tok, tmp_path / "s", shard_tokens=1000, batch_texts=64)
    expected = direct(tok, lines)
    shards = TokenShards(tmp_path / "s")
    assert len(manifest["shards"]) == -(-len(expected) // 1000)
    assert all(s["n_tokens"] == 1000 for s in manifest["shards"][:-1])
    arr = shards.array
    assert isinstance(arr, ShardedArray) and len(arr) == len(expected)
    assert np.array_equal(np.concatenate(shards.shards), expected)
    for start, stop in [(0, 10), (995, 1005), (1500, 4100), (len(expected) - 3, len(expected) + 9)]:
        assert np.array_equal(arr[start:stop], expected[start:stop])
        assert np.array_equal(shards.slice(start, stop), expected[start:stop])
    assert arr[999] == expected[999] and arr[1000] == expected[1000] and arr[-1] == expected[-1]
    assert np.array_equal(np.asarray(arr), expected)
    with pytest.raises(IndexError):
        arr[len(expected)]
    # a smaller run into the same directory leaves no stale shard behind
    prepare_shards(lines[:10], tok, tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").glob("shard_*")) == ["shard_00000.bin"]
    assert np.array_equal(TokenShards(tmp_path / "s").array, direct(tok, lines[:10]))


def test_no_eos(tmp_path, tok, lines):
    prepare_shards(lines[:50], tok, tmp_path, append_eos=False)
    assert np.array_equal(TokenShards(tmp_path).array, direct(tok, lines[:50], eos=False))


def test_large_vocabulary_uses_uint32(tmp_path):
    words = [f"w{i}" for i in range(70_000)]
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    hf = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = Tokenizer.from_hf(tmp_path / "tokenizer.json")
    texts = ["w0 w69999 w65535", "w65532 nope w12"]
    manifest = prepare_shards(texts, tok, tmp_path / "s")
    assert manifest["dtype"] == "uint32"
    expected = [4, 70003, 65539, 3, 65536, 1, 16, 3]
    assert TokenShards(tmp_path / "s").array.tolist() == expected


def test_bad_inputs(tmp_path, tok, lines):
    with pytest.raises(CorpusError, match="no text"):
        prepare_shards([], tok, tmp_path / "empty")
    with pytest.raises(FormatError, match="manifest.json"):
        TokenShards(tmp_path / "empty")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="corpus is empty"):  # raised in the reader thread
        prepare_shards(Corpus([blank]), tok, tmp_path / "empty")
    prepare_shards(lines[:20], tok, tmp_path / "s")
    shard = tmp_path / "s" / "shard_00000.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(FormatError, match="truncated"):
        TokenShards(tmp_path / "s")
    (tmp_path / "s" / "manifest.json").write_text("{oops")
    with pytest.raises(FormatError, match="malformed"):
        TokenShards(tmp_path / "s")


def test_shards_get_the_umask_mode_not_the_temp_file_0600(tmp_path, tok, lines):
    import os

    old = os.umask(0o022)
    try:
        prepare_shards(iter(lines[:50]), tok, tmp_path / "s")
    finally:
        os.umask(old)
    for path in (tmp_path / "s").iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path
