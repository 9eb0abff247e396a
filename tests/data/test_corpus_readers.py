"""Corpus: every source format, re-iteration, and one-line errors for every bad input."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import warnings

import pytest

from tests.conftest import data_path
from textdecade.data.corpus import Corpus, CorpusWarning
from textdecade.data.sample import cache_dir
from textdecade.errors import CorpusError

# Our own tiny fixture documents (no outside text in the repo).
DOCS = ["the first document", "a second one, with punctuation!", "third: naïve café 日本"]


def write_txt(path, docs=DOCS, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n  \n".join(f"  {d}  " for d in docs) + "\n\n")
    return path


def write_jsonl(path, docs=DOCS, field="text", opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({field: d, "id": i}) + "\n")
        f.write("\n")
    return path


def write_parquet(path, docs=DOCS, field="text"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({field: docs + [None, "  "], "id": list(range(len(docs) + 2))}), path)
    return path


def test_txt_strips_skips_blanks_and_reiterates(tmp_path):
    corpus = Corpus(write_txt(tmp_path / "a.txt"))
    assert list(corpus) == DOCS
    assert list(corpus) == DOCS  # a second pass reads again
    assert list(Corpus(str(tmp_path / "a.txt"), max_texts=2)) == DOCS[:2]
    assert corpus.count_words() == sum(len(d.split()) for d in DOCS)
    assert corpus.head(1) == DOCS[:1]


def test_jsonl_and_parquet_read_the_text_field(tmp_path):
    assert list(Corpus([write_jsonl(tmp_path / "a.jsonl")])) == DOCS
    assert list(Corpus([write_parquet(tmp_path / "a.parquet")])) == DOCS
    other = write_jsonl(tmp_path / "b.jsonl", field="body")
    assert list(Corpus([other], text_field="body")) == DOCS
    with pytest.raises(CorpusError, match=r"b\.jsonl:1: no 'text' field"):
        list(Corpus([other]))
    with pytest.raises(CorpusError, match="no column 'body'"):
        list(Corpus([tmp_path / "a.parquet"], text_field="body"))


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: not valid JSON"):
        list(Corpus([path]))


@pytest.mark.parametrize(
    "suffix,opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)]
)
def test_compressed_files(tmp_path, suffix, opener):
    txt = write_txt(tmp_path / f"a.txt{suffix}", opener=opener)
    js = write_jsonl(tmp_path / f"b.jsonl{suffix}", opener=opener)
    pq_path = write_parquet(tmp_path / "c.parquet")
    packed = tmp_path / f"c.parquet{suffix}"
    with opener(packed, "wb") as f:
        f.write(pq_path.read_bytes())
    assert list(Corpus([txt, js, packed])) == DOCS * 3


def test_directories_recurse_sorted_and_globs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    write_txt(tmp_path / "d" / "b.txt", DOCS[1:2])
    write_txt(tmp_path / "d" / "a.txt", DOCS[:1])
    write_jsonl(tmp_path / "d" / "sub" / "c.jsonl", DOCS[2:])
    (tmp_path / "d" / "README.md").write_text("not corpus\n")
    (tmp_path / "d" / ".hidden.txt").write_text("hidden\n")
    assert list(Corpus([tmp_path / "d"])) == DOCS
    assert list(Corpus([str(tmp_path / "d" / "*.txt")])) == DOCS[:2]
    assert list(Corpus([str(tmp_path / "d" / "**" / "*.jsonl")])) == DOCS[2:]


def test_missing_paths_and_globs(tmp_path):
    with pytest.raises(CorpusError, match="no such file or directory"):
        Corpus([tmp_path / "nope.txt"])
    with pytest.raises(CorpusError, match="no file matches"):
        Corpus([str(tmp_path / "*.txt")])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(CorpusError, match="holds no corpus files"):
        Corpus([tmp_path / "empty_dir"])


def test_empty_corpus(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n   \n\t\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="corpus is empty"):
        list(Corpus([path]))


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "model.txt"
    path.write_bytes(b"ok line\n" + bytes(range(256)) * 4)
    with pytest.raises(CorpusError, match="binary"):
        list(Corpus([path]))


def test_invalid_utf8_is_replaced_counted_and_reported_once(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(
        "caf\u00e9 ok\n".encode("latin-1") * 2 + "real \ufffd kept\n".encode() + b"\xff\xfe end\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = list(Corpus([path]))
    assert texts == ["caf\ufffd ok", "caf\ufffd ok", "real \ufffd kept", "\ufffd\ufffd end"]
    messages = [str(w.message) for w in caught if issubclass(w.category, CorpusWarning)]
    assert len(messages) == 1
    assert "latin1.txt" in messages[0] and "4 invalid UTF-8" in messages[0]


def test_real_text(shared_data):
    path = data_path("corpus_en", "gensim_lee.txt")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    corpus = Corpus([path])
    assert list(corpus) == lines
    assert corpus.count_words() == sum(len(line.split()) for line in lines)


def test_local_datasets_directory(tmp_path):
    root = tmp_path / "ds" / "data"
    root.mkdir(parents=True)
    write_jsonl(root / "train.jsonl", DOCS)
    write_jsonl(root / "test.jsonl", DOCS[:1])
    assert list(Corpus(dataset=str(tmp_path / "ds"))) == DOCS
    assert list(Corpus(dataset=str(tmp_path / "ds"), split="test")) == DOCS[:1]
    with pytest.raises(CorpusError, match="no field 'body'"):
        list(Corpus(dataset=str(tmp_path / "ds"), text_field="body"))
    with pytest.raises(CorpusError, match="cannot load dataset .* split 'validation'"):
        list(Corpus(dataset=str(tmp_path / "ds"), split="validation"))
    with pytest.raises(CorpusError, match="cannot load dataset"):
        list(Corpus(dataset=str(tmp_path / "missing")))


def test_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "textdecade"


@pytest.mark.slow
def test_builtin_sample_corpus():
    corpus = Corpus()  # built once into the cache (~10 s), then read from it
    assert corpus.is_sample
    texts = list(corpus)
    n_words = sum(len(t.split()) for t in texts)
    assert 400_000 < n_words < 550_000  # Lee news + cleaned Wikipedia paragraphs
    assert all("|" not in t and not t.startswith(("*", "=", "{")) for t in texts)
    assert sum(len(t.split()) >= 8 for t in texts) / len(texts) > 0.99
