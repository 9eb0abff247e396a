"""The command line: one clear line and exit code 2 for every user mistake, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from textdecade.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, fragment):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("textdecade: error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_missing_corpus_path(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "tokenizer",
        "train",
        "--corpus",
        str(tmp_path / "nope.txt"),
        "-o",
        str(tmp_path / "tok.json"),
    )
    assert_one_line_error(code, err, "nope.txt")
    assert not (tmp_path / "tok.json").exists()


def test_empty_corpus(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code, _, err = run(capsys, "tokenizer", "train", "--corpus", str(empty))
    assert_one_line_error(code, err, "empty")


def test_binary_corpus(capsys, tmp_path):
    blob = tmp_path / "blob.txt"
    blob.write_bytes(bytes(range(256)) * 8)
    code, _, err = run(capsys, "tokenizer", "train", "--corpus", str(blob))
    assert_one_line_error(code, err, "binary")


def test_vocab_too_small_for_the_specials(capsys, tmp_path, corpus_lines):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 20)))
    code, _, err = run(capsys, "tokenizer", "train", "--corpus", str(text), "--vocab-size", "10")
    assert_one_line_error(code, err, "vocab")


def test_unknown_config_key_and_family(capsys):
    code, _, err = run(capsys, "pretrain", "gpt", "--set", "model.d_modle=3", "-o", "/tmp/x")
    assert_one_line_error(code, err, "unknown config key 'model.d_modle'")
    with pytest.raises(SystemExit) as info:
        main(["pretrain", "gpt5"])
    assert info.value.code == 2
    assert "invalid choice: 'gpt5'" in capsys.readouterr().err


def test_tokenizer_train_and_data_prepare(capsys, tmp_path, corpus_lines):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 60)))
    tok = tmp_path / "tok.json"
    code, out, _ = run(
        capsys, "tokenizer", "train", "--corpus", str(text), "--vocab-size", "400", "-o", str(tok)
    )
    assert code == 0 and "400 tokens" in out and tok.is_file()
    code, out, _ = run(
        capsys,
        "data",
        "prepare",
        "--corpus",
        str(text),
        "--tokenizer",
        str(tok),
        "-o",
        str(tmp_path / "shards"),
    )
    assert code == 0 and "tokens in 1 shard(s) (uint16)" in out


def test_every_command_has_help_with_an_example():
    for argv in (["pretrain"], ["tokenizer", "train"], ["data", "prepare"], ["plot"]):
        proc = subprocess.run(
            [sys.executable, "-m", "textdecade", *argv, "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "example" in proc.stdout, argv
