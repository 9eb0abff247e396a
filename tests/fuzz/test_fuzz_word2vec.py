"""word2vec text and binary files: hostile headers and bodies give vectors or one line,
and nothing is allocated beyond what the file's size implies."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import any_text, file_bytes, fuzz, peak_python_bytes, scratch
from textdecade.errors import FormatError
from textdecade.interop.word2vec_format import read_word2vec

counts = st.one_of(st.integers(-3, 5), st.integers(-(10**30), 10**30), st.just(2**63))
header_token = st.one_of(counts.map(str), st.sampled_from(["x", "1e3", "3.0", "-0", "", "٣"]))
headers = st.tuples(header_token, header_token).map(lambda p: f"{p[0]} {p[1]}")
value = st.one_of(
    st.floats(width=32).map(repr), st.sampled_from(["nan", "inf", "1e999", "", "x", "0x1"])
)
text_rows = st.tuples(any_text.filter(lambda w: w.strip()), st.lists(value, max_size=4)).map(
    lambda r: " ".join([r[0].split()[0], *r[1]])
)


def check(path, binary: bool):
    size = path.stat().st_size
    out, peak = peak_python_bytes(lambda: read_word2vec(path, binary=binary))
    # numpy's buffers are traced too: a header's count or dim never sizes an allocation
    assert peak < 64 * size + (2 << 20), f"{peak} bytes for a {size}-byte file"
    if not isinstance(out, FormatError):
        words, matrix = out
        assert matrix.dtype == np.float32 and matrix.shape[0] == len(words) == len(set(words))
    return out


@fuzz(120)
@given(st.one_of(headers, st.just("")), st.lists(text_rows, max_size=6), st.booleans())
def test_text_format_with_any_header_and_rows(header, rows, newline):
    body = "\n".join(([header] if header else []) + rows) + ("\n" if newline else "")
    with scratch() as tmp:
        (tmp / "v.txt").write_text(body, encoding="utf-8")
        check(tmp / "v.txt", binary=False)


@fuzz(60)
@given(file_bytes)
def test_text_format_from_any_bytes(data):
    with scratch() as tmp:
        (tmp / "v.txt").write_bytes(data)
        check(tmp / "v.txt", binary=False)


def _records(words: list[str], dim: int, floats: list[float], newline: bool) -> bytes:
    out = b""
    for i, word in enumerate(words):
        row = [floats[(i + j) % len(floats)] for j in range(dim)] if floats else [0.0] * dim
        out += word.encode("utf-8") + b" " + struct.pack(f"<{dim}f", *row)
        out += b"\n" if newline else b""
    return out


@fuzz(120)
@given(
    headers,
    st.lists(st.text("abcé日 \n", min_size=0, max_size=4), max_size=4),
    st.integers(1, 4),
    st.lists(st.floats(width=32), max_size=4),
    st.booleans(),
    st.integers(0, 200),
    st.binary(max_size=40),
)
def test_binary_format_hostile_header_truncated_body(header, words, dim, floats, nl, cut, junk):
    body = _records(words, dim, floats, nl)
    body = body[: len(body) - cut] if cut < len(body) else body
    with scratch() as tmp:
        (tmp / "v.bin").write_bytes(header.encode() + b"\n" + body + junk)
        check(tmp / "v.bin", binary=True)


@fuzz(60)
@given(file_bytes)
def test_binary_format_from_any_bytes(data):
    with scratch() as tmp:
        (tmp / "v.bin").write_bytes(data)
        check(tmp / "v.bin", binary=True)


# ---- regression tests: the bugs this suite found, one plain example each


@pytest.mark.parametrize(("name", "binary"), [("v.txt", False), ("v.bin", True)])
def test_a_header_dimension_past_any_vector_size_is_one_line(tmp_path, name, binary):
    # count 0 used to reach np.zeros((0, dim)): "Maximum allowed dimension exceeded"
    (tmp_path / name).write_bytes(b"0 9223372036854775808\n")
    with pytest.raises(FormatError, match=r":1: header's dimension 9223372036854775808"):
        read_word2vec(tmp_path / name, binary=binary)


def test_a_huge_count_is_refused_at_the_end_of_the_file_without_allocating(tmp_path):
    (tmp_path / "v.bin").write_bytes(b"1000000000000 300\nab ")
    out, peak = peak_python_bytes(lambda: read_word2vec(tmp_path / "v.bin"))
    assert isinstance(out, FormatError) and "file ends after 0 vectors" in str(out)
    assert peak < 1 << 20
