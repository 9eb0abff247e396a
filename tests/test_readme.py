"""README.md stays true: its Python quickstart runs, and its command lines parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from textdecade.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_every_command_line_in_the_readme_parses():
    parser = build_parser()
    lines = [line.split("#")[0].strip() for block in blocks("bash") for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("textdecade ")]
    assert len(commands) > 15
    for line in commands:
        parser.parse_args(shlex.split(line)[1:])  # argparse exits (fails the test) on a mistake
    assert "python -m pytest -q" in "\n".join(lines)


@pytest.mark.slow
def test_the_python_quickstart_runs(tmp_path, monkeypatch, corpus_lines):
    corpus = tmp_path / "wiki.txt"
    corpus.write_text("\n".join(corpus_lines("gensim_enwiki_sample.txt", 400)) + "\n")
    monkeypatch.chdir(tmp_path)
    quick = ["--steps", "8", "-q", "--set", "tokenizer.vocab_size=1000", "--set", "train.threads=1"]
    assert (
        main(
            [
                "pretrain",
                "bert",
                "--corpus",
                str(corpus),
                "-o",
                "runs/bert-tiny",
                *quick,
                "--set",
                "train.batch_size=4",
                "--set",
                "model.n_layers=1",
            ]
        )
        == 0
    )
    small = ["--set", "train.batch_size=4", "--set", "model.n_layers=1"]
    gpt = ["pretrain", "gpt", "--corpus", str(corpus), "-o", "runs/gpt-tiny", *quick, *small]
    assert main(gpt) == 0
    assert main(["pretrain", "word2vec", "--corpus", str(corpus), "-o", "runs/w2v", *quick]) == 0
    (code,) = blocks("python")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["vecs"].shape[0] == 2 and namespace["bank"].shape[0] == 1
    assert len(namespace["w2v"].vectors.most_similar("city", topn=5)) == 5
    assert namespace["gpt"].perplexity().bpb > 0
    assert namespace["mine"].config.train.epochs == 5 and namespace["mine"].run_dir.is_dir()
