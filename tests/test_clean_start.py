"""A start that fails or is interrupted leaves nothing that blocks the corrected rerun, and
a signal while preparing stops at once with one line and exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import assert_one_line_error
from tests.test_run_safety import TINY
from textdecade.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _sets(*extra):
    return [arg for s in (*TINY, *extra) for arg in ("--set", s)]


def test_a_bad_text_field_leaves_nothing_and_the_fixed_command_runs(capsys, tmp_path, corpus_lines):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"body": t}) + "\n" for t in corpus_lines(n=200)))
    run_dir = tmp_path / "run"
    argv = ["pretrain", "gpt", "--corpus", str(corpus), "-o", str(run_dir), "-q", *_sets()]
    code = main([*argv, "--text-field", "text"])
    assert_one_line_error(code, capsys.readouterr().err, "text")
    assert not run_dir.exists()  # no config-only run to refuse the rerun
    assert main([*argv, "--text-field", "body"]) == 0, capsys.readouterr().err


def test_an_empty_directory_the_user_made_stays_after_a_failed_start(capsys, tmp_path):
    run_dir = tmp_path / "made-by-user"
    run_dir.mkdir()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code = main(["pretrain", "gpt", "--corpus", str(empty), "-o", str(run_dir), "-q"])
    assert code == 2 and run_dir.is_dir() and not any(run_dir.iterdir())
    capsys.readouterr()


def test_a_refused_start_never_removes_the_run_that_refused_it(capsys, tmp_path, corpus_lines):
    corpus = tmp_path / "a.txt"
    corpus.write_text("\n".join(corpus_lines(n=200)) + "\n")
    run_dir = tmp_path / "run"
    argv = ["pretrain", "gpt", "--corpus", str(corpus), "-o", str(run_dir), "-q", *_sets()]
    assert main(argv) == 0
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(argv) == 2  # "already holds a gpt run"
    assert sorted(p.name for p in run_dir.iterdir()) == before
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("phase", "sig"),
    [("training a bpe tokenizer", signal.SIGINT), ("preparing data", signal.SIGTERM)],
)
def test_a_signal_while_preparing_stops_at_once(tmp_path, corpus_lines, phase, sig):
    """Ctrl-C in the (native) tokenizer trainer and SIGTERM while encoding: exit 130 within
    seconds, one line, and no run directory left."""
    corpus = tmp_path / "big.txt"
    lines = corpus_lines("gensim_enwiki_sample.txt") if "tokenizer" in phase else []
    # enough text that the phase is still running a second after it began
    corpus.write_text("\n".join(lines or corpus_lines()) * (40 if lines else 60) + "\n")
    run_dir = tmp_path / "run"
    vocab = "tokenizer.vocab_size=30000" if "tokenizer" in phase else "tokenizer.vocab_size=300"
    cmd = [sys.executable, "-m", "textdecade", "pretrain", "gpt", "--corpus", str(corpus)]
    cmd += ["-o", str(run_dir), "--set", vocab, "--set", "train.threads=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if phase in line:
                break
        time.sleep(1.0)
        assert proc.poll() is None, "".join(seen)  # still in that phase
        proc.send_signal(sig)
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    lines = [x for x in err.splitlines() if x.strip() and "\r" not in x and "%" not in x]
    assert proc.returncode == 130, err
    assert lines[-1].startswith(f"textdecade: {signal.Signals(sig).name} received while preparing")
    assert not run_dir.exists()  # and the message says it stopped in that phase, not later
