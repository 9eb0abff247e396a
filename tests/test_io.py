"""The one atomic writer: whole files or none, modes that respect the umask, one line reader."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from textdecade.errors import CorpusError
from textdecade.eval.vectors import Vectors
from textdecade.io import atomic_path, read_lines, write_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_written_are_readable_by_others_as_the_umask_says(tmp_path, umask_022):
    # mkstemp's 0600 made vectors and tokenizers unreadable to another user or container
    vectors = Vectors(["river", "bank"], np.eye(2, dtype=np.float32))
    written = [tmp_path / "v.bin", tmp_path / "v.txt", tmp_path / "v.safetensors"]
    for path in written:
        vectors.save(path)
    write_json(tmp_path / "c.json", {"a": 1})
    for path in [*written, tmp_path / "c.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["v.bin", "v.txt", "v.safetensors", "c.json"]
    )  # no temporary files left


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("disk gone")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_read_lines(tmp_path):
    path = tmp_path / "s.en"
    path.write_bytes(b"one \r\ntwo\n")
    assert read_lines(path) == ["one", "two"]
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(CorpusError, match="not UTF-8"):
        read_lines(path)


def test_json_is_written_in_a_fixed_order(tmp_path):
    write_json(tmp_path / "a.json", {"train": {"lr": 1, "clip": 2}, "family": "gpt"})
    write_json(tmp_path / "b.json", {"family": "gpt", "train": {"clip": 2, "lr": 1}})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
