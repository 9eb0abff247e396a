"""word2vec text/binary files: round trips with gensim both ways, and malformed files."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors

from textdecade.errors import FormatError
from textdecade.eval.vectors import Vectors
from textdecade.interop.word2vec_format import read_word2vec, write_word2vec

WORDS = ["the", "café", "naïve", "Zürich", "東京", "ёлка", "x"]


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return Vectors(WORDS, rng.standard_normal((len(WORDS), 7)).astype(np.float32))


@pytest.mark.parametrize("suffix", [".txt", ".vec", ".bin"])
def test_gensim_reads_what_we_write(tmp_path, vectors, suffix):
    path = tmp_path / f"v{suffix}"
    vectors.save(path)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=suffix == ".bin")
    assert kv.index_to_key == WORDS
    np.testing.assert_array_equal(kv.vectors, vectors.matrix)  # float32 repr is exact


@pytest.mark.parametrize("binary", [False, True])
def test_we_read_what_gensim_writes(tmp_path, vectors, binary):
    kv = vectors.to_gensim()
    path = tmp_path / ("g.bin" if binary else "g.txt")
    kv.save_word2vec_format(str(path), binary=binary)
    back = Vectors.load(path)
    assert back.words == WORDS
    np.testing.assert_array_equal(back.matrix, kv.vectors)
    assert back.most_similar("café", topn=3) == [
        (w, pytest.approx(s, abs=1e-6)) for w, s in kv.most_similar("café", topn=3)
    ]


def test_word2vec_c_style_binary_with_newlines_and_glove_text_without_header(tmp_path):
    # word2vec.c writes "\n" after each binary vector; GloVe writes text without a header.
    m = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "c.bin"
    path.write_bytes(b"2 3\nab " + m[0].tobytes() + b"\ncd " + m[1].tobytes() + b"\n")
    words, matrix = read_word2vec(path)
    assert words == ["ab", "cd"]
    np.testing.assert_array_equal(matrix, m)
    glove = tmp_path / "glove.txt"
    glove.write_text("ab 0 1 2\ncd 3 4 5\n", encoding="utf-8")
    words, matrix = read_word2vec(glove)
    assert words == ["ab", "cd"]
    np.testing.assert_array_equal(matrix, m)


def test_limit_and_duplicates_follow_gensim(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("3 2\na 1 2\nb 3 4\na 5 6\n", encoding="utf-8")
    words, matrix = read_word2vec(path)
    kv = KeyedVectors.load_word2vec_format(str(path))
    # gensim keeps the first "a" too (and leaves a None key in its preallocated row 3).
    assert words == kv.index_to_key[:2] == ["a", "b"]
    np.testing.assert_array_equal(matrix, kv.vectors[:2])
    words, _ = read_word2vec(path, limit=1)
    assert words == ["a"]


@pytest.mark.parametrize(
    "content, line",
    [
        ("2 3\na 1 2 3\nb 1 2\n", ":3:"),  # too few values
        ("2 3\na 1 2 3\nb 1 x 3\n", ":3:"),  # not a number
        ("3 3\na 1 2 3\nb 1 2 3\n", ":4:"),  # fewer vectors than the header
        ("1 3\na 1 2 3\nb 1 2 3\n", ":3:"),  # more vectors than the header
        ("2 3\na 1 2 3\n\n", ":3:"),  # empty line
    ],
)
def test_malformed_text_names_the_line(tmp_path, content, line):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError, match=line):
        Vectors.load(path)


def test_malformed_binary_and_bad_utf8(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"2 3\nab " + np.zeros(3, np.float32).tobytes() + b"cd \x00\x00")
    with pytest.raises(FormatError, match=r"bad.bin:3: file ends after 1 vectors"):
        Vectors.load(path)
    path.write_bytes(b"garbage\n")
    with pytest.raises(FormatError, match=r":1:"):
        Vectors.load(path)
    text = tmp_path / "bad8.txt"
    text.write_bytes(b"1 2\n\xff\xfe 1 2\n")
    with pytest.raises(FormatError, match=r"bad8.txt:2: word is not valid"):
        Vectors.load(text)
    assert len(Vectors.load(text, unicode_errors="ignore")) == 1


def test_write_refuses_words_with_spaces(tmp_path):
    with pytest.raises(FormatError, match="whitespace"):
        write_word2vec(tmp_path / "s.txt", ["new york"], np.zeros((1, 2)))
    assert not list(tmp_path.iterdir())  # nothing half-written
