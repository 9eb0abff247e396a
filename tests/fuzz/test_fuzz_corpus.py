"""Corpus files (.txt, .jsonl, .parquet, compressed): any bytes give texts or one line."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import any_text, file_bytes, fuzz, result_or_user_error, scratch
from textdecade.config import DataConfig
from textdecade.data.corpus import Corpus
from textdecade.data.opening import open_corpus
from textdecade.errors import CorpusError, UserError

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
json_lines = st.one_of(
    st.builds(lambda v: json.dumps({"text": v}), json_values),  # the field, any type
    st.builds(json.dumps, json_values),  # anything at all, no field
    any_text,  # not JSON
    st.just("[" * 3000),  # deeper than the parser recurses
    st.just('{"text": ' + "7" * 5000 + "}"),  # past Python's int-digits limit
    st.just('{"text": "ok"}'),
)


def corpus_texts(path) -> object:
    out = result_or_user_error(lambda: list(Corpus(path)))
    if not isinstance(out, CorpusError):
        assert out and all(isinstance(t, str) and t == t.strip() and t for t in out)
    return out


def damaged(data: bytes, cut: int, flip: int) -> bytes:
    """``data`` truncated at ``cut`` (when inside it) with byte ``flip`` inverted."""
    data = bytearray(data[:cut] if 0 < cut < len(data) else data)
    if data:
        data[flip % len(data)] ^= 0xFF
    return bytes(data)


@fuzz(120)
@given(file_bytes)
def test_any_bytes_as_a_text_corpus(data):
    with scratch() as tmp:
        (tmp / "c.txt").write_bytes(data)
        corpus_texts(tmp / "c.txt")


@fuzz(120)
@given(st.lists(json_lines, max_size=6), st.sampled_from(["", "\n", "\r\n"]))
def test_any_json_lines(lines, end):
    with scratch() as tmp:
        (tmp / "c.jsonl").write_text("\n".join(lines) + end, encoding="utf-8")
        corpus_texts(tmp / "c.jsonl")


@fuzz(90)
@given(
    file_bytes,
    st.sampled_from(sorted(COMPRESS)),
    st.sampled_from(["compressed", "damaged", "raw"]),
    st.integers(0, 400),
    st.integers(0, 400),
)
def test_compressed_files_whole_damaged_or_fake(data, suffix, how, cut, flip):
    packed = COMPRESS[suffix](data)
    if how == "damaged":
        packed = damaged(packed, cut, flip)
    elif how == "raw":
        packed = data  # a .gz that is not gzip at all
    with scratch() as tmp:
        path = tmp / f"c.txt{suffix}"
        path.write_bytes(packed)
        corpus_texts(path)


def _parquet_bytes(values) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array(values)}), sink)
    return sink.getvalue()


parquet_columns = st.one_of(
    st.lists(st.none() | any_text, max_size=5),
    st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=5),
    st.lists(st.none() | st.floats(), max_size=5),
    st.lists(st.none() | st.lists(any_text, max_size=2), max_size=5),
)


@fuzz(40)
@given(parquet_columns, st.booleans(), st.integers(0, 2000), st.integers(0, 2000))
def test_parquet_of_any_column_whole_or_damaged(values, damage, cut, flip):
    data = _parquet_bytes(values)
    if damage:
        data = damaged(data, cut, flip)
    with scratch() as tmp:
        (tmp / "c.parquet").write_bytes(data)
        corpus_texts(tmp / "c.parquet")


@fuzz(40)
@given(file_bytes, st.one_of(st.none(), file_bytes), st.sampled_from(["c.txt", "c.tsv"]))
def test_open_corpus_of_parallel_files(source, target, name):
    """``data.source``/``data.target`` (or a source TSV of pairs) through the one opener."""
    with scratch() as tmp:
        (tmp / name).write_bytes(source)
        if target is not None:
            (tmp / "t.txt").write_bytes(target)
        data = DataConfig(
            source=str(tmp / name), target=None if target is None else str(tmp / "t.txt")
        )
        out = result_or_user_error(lambda: list(open_corpus(data)))
        if not isinstance(out, UserError):
            assert all(isinstance(t, str) for t in out)


# ---- regression tests: the bugs this suite found, one plain example each


def test_a_json_line_nested_too_deep_is_one_line(tmp_path):
    (tmp_path / "c.jsonl").write_text("[" * 3000 + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: not readable JSON"):
        list(Corpus(tmp_path / "c.jsonl"))


def test_a_json_number_past_the_digit_limit_is_one_line(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": ' + "7" * 5000 + "}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: not readable JSON"):
        list(Corpus(tmp_path / "c.jsonl"))


def test_a_damaged_gzip_stream_is_one_line(tmp_path):
    packed = bytearray(gzip.compress(b"hello world " * 50, mtime=0))
    packed[10] ^= 0xFF  # the first deflate byte: zlib.error, not an OSError
    (tmp_path / "c.txt.gz").write_bytes(bytes(packed))
    with pytest.raises(CorpusError, match=r"c\.txt\.gz: cannot read"):
        list(Corpus(tmp_path / "c.txt.gz"))


def test_a_damaged_parquet_page_is_one_line(tmp_path):
    data = bytearray(_parquet_bytes(["a text"] * 20))
    data[8] ^= 0xFF  # inside the first page header: fails while iterating, not opening
    (tmp_path / "c.parquet").write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=r"c\.parquet: damaged parquet data") as info:
        list(Corpus(tmp_path / "c.parquet"))
    assert "\n" not in str(info.value)
