"""Evaluation files (analogies, similarity pairs, homograph data): any content gives
questions/pairs/tasks or one line naming the file."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import any_text, file_bytes, fuzz, result_or_user_error, scratch
from textdecade.errors import FormatError
from textdecade.eval.analogy import read_analogies
from textdecade.eval.similarity import read_pairs
from textdecade.eval.wsd_data import read_coarsewsd, read_sense_tsv, read_wic

# Cells of a table: numbers (some huge or odd), words, empty, quotes, separators.
cell = st.one_of(
    st.integers(-5, 40).map(str),
    st.sampled_from(["nan", "inf", "-", "1e999", "٣", '"', '"a,b"', "", " ", "T", "F", "3-7"]),
    st.text("abc ,\t", max_size=6),
    any_text.filter(lambda t: "\n" not in t and "\r" not in t),
)
tables = st.lists(
    st.tuples(st.lists(cell, max_size=6), st.sampled_from(["\t", ",", " "])).map(
        lambda r: r[1].join(r[0])
    ),
    max_size=6,
)
headers = st.sampled_from(
    [
        "",
        ",type,word1,word2,word3,target",
        "word1,word2,similarity",
        "Word1,Word2,score,extra",
        ": capital-common-countries",
        "# comment",
    ]
)


def table_bytes(header: str, rows: list[str]) -> bytes:
    return "\n".join([header, *rows]).encode("utf-8")


contents = st.one_of(file_bytes, st.builds(table_bytes, headers, tables))

READERS = {
    "questions.txt": read_analogies,
    "msr.csv": read_analogies,
    "pairs.tsv": read_pairs,
    "pairs.csv": read_pairs,
    "pairs.txt": read_pairs,
    "senses.tsv": read_sense_tsv,
    "wic.data.txt": read_wic,
}


@fuzz(150)
@given(st.sampled_from(sorted(READERS)), contents, contents)
def test_any_file_content_for_every_flat_reader(name, data, gold):
    with scratch() as tmp:
        (tmp / name).write_bytes(data)
        (tmp / "wic.gold.txt").write_bytes(gold)  # read_wic's labels, beside its data
        result_or_user_error(lambda: READERS[name](tmp / name))


CSV_HEADERS = {"msr.csv": ",type,word1,word2,word3,target", "pairs.csv": "word1,word2,score"}
csv_cell = st.one_of(cell, st.just("x" * 132_000))  # past the csv module's field size limit


@fuzz(40)
@given(st.sampled_from(sorted(CSV_HEADERS)), st.lists(st.lists(csv_cell, max_size=6), max_size=3))
def test_csv_readers_past_a_valid_header(name, rows):
    with scratch() as tmp:
        text = "\n".join([CSV_HEADERS[name], *(",".join(row) for row in rows)])
        (tmp / name).write_text(text, encoding="utf-8")
        result_or_user_error(lambda: READERS[name](tmp / name))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=5,
)
classes_maps = st.one_of(
    st.dictionaries(st.sampled_from(["0", "1", "x", "-1", " 2"]), any_text, max_size=3).map(
        json.dumps
    ),
    st.dictionaries(st.sampled_from(["0", "1"]), json_values, max_size=2).map(json.dumps),
    json_values.map(json.dumps),
    st.just('{"0": ' + "9" * 5000 + "}"),
    st.just("[" * 3000),
    any_text,
)
data_lines = st.lists(
    st.tuples(cell, st.lists(st.text("ab", min_size=1, max_size=3), max_size=4)).map(
        lambda r: r[0] + "\t" + " ".join(r[1])
    ),
    max_size=4,
)
gold_lines = st.lists(st.sampled_from(["0", "1", "x", "", " 1 "]), max_size=4)


@fuzz(150)
@given(classes_maps, data_lines, gold_lines, data_lines, gold_lines, st.booleans())
def test_any_coarsewsd_folder(classes, train, train_gold, test, test_gold, with_test):
    with scratch() as tmp:
        folder = tmp / "bank"
        folder.mkdir()
        (folder / "classes_map.txt").write_text(classes, encoding="utf-8")
        (folder / "train.data.txt").write_text("\n".join(train), encoding="utf-8")
        (folder / "train.gold.txt").write_text("\n".join(train_gold), encoding="utf-8")
        if with_test:
            (folder / "test.data.txt").write_text("\n".join(test), encoding="utf-8")
            (folder / "test.gold.txt").write_text("\n".join(test_gold), encoding="utf-8")
        result_or_user_error(lambda: read_coarsewsd(tmp))


# ---- regression tests: the bugs this suite found, one plain example each


@pytest.mark.parametrize("name", sorted(CSV_HEADERS))
def test_a_csv_field_past_the_size_limit_is_one_line(tmp_path, name):
    (tmp_path / name).write_text(f"{CSV_HEADERS[name]}\n{'x' * 132_000},a,b,c,d\n")
    with pytest.raises(FormatError, match=rf"{name}:2: not readable CSV \(field larger"):
        READERS[name](tmp_path / name)


@pytest.mark.parametrize(
    ("classes", "says"),
    [
        ("null", "expected a JSON object"),
        ("[1, 2]", "expected a JSON object"),
        ('{"x": "river"}', "class id 'x' is not a number"),
        ('{"0": ["river"]}', "class '0' names a list"),
        ("[" * 3000, "not readable JSON"),
        ('{"0": ' + "9" * 5000 + "}", "not readable JSON"),
    ],
)
def test_a_malformed_classes_map_is_one_line(tmp_path, classes, says):
    folder = tmp_path / "bank"
    folder.mkdir()
    (folder / "classes_map.txt").write_text(classes)
    for name in ("train.data.txt", "train.gold.txt", "test.data.txt", "test.gold.txt"):
        (folder / name).write_text("")
    with pytest.raises(FormatError, match=r"classes_map\.txt") as info:
        read_coarsewsd(tmp_path)
    assert says in str(info.value)
