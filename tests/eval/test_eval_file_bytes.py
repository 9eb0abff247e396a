"""Evaluation files a user opens may be binary or Latin-1: one line naming the file."""

from __future__ import annotations

import pytest

from textdecade.errors import FormatError
from textdecade.eval.analogy import read_analogies
from textdecade.eval.similarity import read_pairs
from textdecade.eval.wsd_data import read_coarsewsd, read_sense_tsv, read_wic

LATIN1 = "caf\xe9 cafe tea th\xe9\n".encode("latin-1")
BINARY = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256))


def _readers(tmp_path, content: bytes):
    def write(name):
        path = tmp_path / name
        path.write_bytes(content)
        return path

    folder = tmp_path / "coarse" / "bank"
    folder.mkdir(parents=True)
    for name in ("classes_map.txt", "train.data.txt", "train.gold.txt"):
        (folder / name).write_bytes(content)
    return [
        lambda: read_analogies(write("questions.txt")),
        lambda: read_analogies(write("msr.csv")),
        lambda: read_pairs(write("pairs.tsv")),
        lambda: read_pairs(write("pairs.csv")),
        lambda: read_sense_tsv(write("senses.tsv")),
        lambda: read_wic(write("wic.data.txt")),
        lambda: read_coarsewsd(tmp_path / "coarse"),
    ]


@pytest.mark.parametrize(("content", "says"), [(LATIN1, "not UTF-8"), (BINARY, "binary")])
def test_binary_and_latin1_eval_files_are_one_line(tmp_path, content, says):
    for read in _readers(tmp_path, content):
        with pytest.raises(FormatError) as info:
            read()
        message = str(info.value)
        assert "\n" not in message and str(tmp_path) in message, message
        if "classes_map" not in message:  # a CoarseWSD folder fails on its JSON first
            assert says in message, message
