"""The command line: one clear line and exit code 2 for every user mistake, never a traceback."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    code, _, err = run(capsys, "pretrain", "gpt5")
    assert_one_line_error(code, err, "invalid choice: 'gpt5'")


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


# (the arguments after `pretrain gpt -o RUN`, a fragment of the one line expected)
BAD_SETTINGS = [
    (["--set", "train.batch_size=0"], "train.batch_size must be a positive integer (got 0)"),
    (["--set", "train.batch_size=-3"], "train.batch_size must be a positive integer (got -3)"),
    (["--set", "train.lr=-1"], "train.lr must be a positive number (got -1.0)"),
    (["--set", "train.ckpt_every=0"], "train.ckpt_every must be a positive integer"),
    (["--set", "train.log_every=0"], "train.log_every must be a positive integer"),
    (["--set", "train.steps=0"], "train.steps must be a positive integer (got 0)"),
    (["--set", "train.steps=-5"], "train.steps must be a positive integer (got -5)"),
    (["--steps", "0"], "argument --steps: must be at least 1, got 0"),
    (["--set", "train.grad_accum=0"], "train.grad_accum must be a positive integer"),
    (["--set", "train.keep_last=0"], "train.keep_last must be a positive integer"),
    (["--set", "train.eval_every=-1"], "train.eval_every must be a non-negative integer"),
    (["--set", "train.eval_batches=0"], "train.eval_batches must be a positive integer"),
    (["--set", "train.warmup_steps=-10"], "train.warmup_steps must be a non-negative integer"),
    (["--set", "train.threads=0"], "train.threads must be a positive integer"),
    (["--set", "train.device=tpu"], "train.device must be auto, cpu, cuda, cuda:N or mps"),
    (["--device", "tpu"], "train.device must be auto, cpu, cuda, cuda:N or mps (got 'tpu')"),
    (["--set", "train.schedule=weird"], "train.schedule must be one of cosine, linear, noam"),
    (
        ["--set", "train.optimizer=weird"],
        "train.optimizer must be one of sgd, momentum, rmsprop, adam, adamw, adagrad",
    ),
    (["--set", "train.dtype=weird"], "train.dtype must be one of auto, fp32, bf16, fp16"),
    (["--set", "train.parallel=zero"], "train.parallel must be one of ddp, fsdp"),
    (["--set", "train.clip=-1"], "train.clip must be a non-negative number"),
    (["--set", "train.weight_decay=-0.1"], "train.weight_decay must be a non-negative number"),
    (["--set", "train.min_lr_ratio=1.5"], "train.min_lr_ratio must be a number in [0, 1]"),
    (["--set", "train.min_lr_ratio=-0.1"], "train.min_lr_ratio must be a number in [0, 1]"),
    (["--set", "train.beta1=1"], "train.beta1 must be a number in [0, 1) (got 1.0)"),
    (["--set", "train.beta2=-0.5"], "train.beta2 must be a number in [0, 1)"),
    (["--set", "train.lr=nan"], "train.lr must be a positive number (got nan)"),
    (["--set", "tokenizer.vocab_size=0"], "tokenizer.vocab_size must be a positive integer"),
    (["--set", "tokenizer.vocab_size=100"], "tokenizer.vocab_size=100 is too small"),
    (["--set", "tokenizer.backend=wordpiece"], "tokenizer.backend must be one of bpe"),
    (["--set", "tokenizer.model_type=char"], "tokenizer.model_type must be one of bpe, unigram"),
    (["--set", "tokenizer.min_frequency=0"], "tokenizer.min_frequency must be a positive"),
    (["--set", "tokenizer.max_texts=-1"], "tokenizer.max_texts must be a non-negative integer"),
    (["--set", "data.max_texts=0"], "data.max_texts must be a positive integer"),
    (["--max-texts", "-2"], "argument --max-texts: must be at least 1, got -2"),
    (["--set", "data.split="], "data.split must be a non-empty string"),
    (["--target", "train.en"], "data.target ('train.en') needs data.source"),
    (["--resume"], "nothing to resume in"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), BAD_SETTINGS, ids=[" ".join(a) for a, _ in BAD_SETTINGS]
)
def test_bad_training_settings_stop_before_any_work(capsys, tmp_path, args, fragment):
    """One line, exit 2, no traceback, and no run directory left behind."""
    run_dir = tmp_path / "run"
    # A cap on the work should a case ever slip through (the case's own --set comes later
    # and wins, so train.steps=0 is still what the steps cases test).
    guard = ["--set", "train.steps=1"]
    code, _, err = run(capsys, "pretrain", "gpt", "-q", "-o", str(run_dir), *guard, *args)
    assert_one_line_error(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_resume_in_an_empty_directory_creates_nothing(capsys, tmp_path):
    code, _, err = run(capsys, "pretrain", "gpt", "-q", "-o", str(tmp_path), "--resume")
    assert_one_line_error(code, err, f"nothing to resume in {tmp_path}")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- intervals and compare
@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, corpus_lines):
    """A Word2Vec and a GPT run of a few steps on 150 lines of real text (seconds)."""
    root = tmp_path_factory.mktemp("tiny")
    text = root / "c.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 150)) + "\n", encoding="utf-8")
    small = ["--set", "tokenizer.vocab_size=400", "--set", "train.threads=1", "--steps", "5"]
    gpt = ["--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "model.n_heads=2"]
    gpt += ["--set", "model.max_len=32"]
    for family, extra in (("word2vec", []), ("gpt", gpt)):
        argv = ["pretrain", family, "-q", "--corpus", str(text), "-o", str(root / family)]
        assert main([*argv, *small, *extra]) == 0
    return root


def _vectors_and_pairs(tmp_path):
    from textdecade.eval.vectors import Vectors

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    m = rng.standard_normal((40, 8)).astype(np.float32)
    Vectors(words, m).save(tmp_path / "v.txt")
    lines = [f"w{i}\tw{j}\t{rng.random() * 10:.2f}" for i, j in rng.integers(0, 40, (60, 2))]
    (tmp_path / "sim.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(tmp_path / "v.txt"), str(tmp_path / "sim.txt")


def test_eval_prints_intervals_and_ci_0_removes_them(capsys, tmp_path):
    vectors, pairs = _vectors_and_pairs(tmp_path)
    code, out, _ = run(capsys, "eval", "similarity", vectors, "--data", pairs)
    assert code == 0 and re.search(r"-?\d\.\d{4} \[-?\d\.\d{4}, -?\d\.\d{4}\]", out), out
    code, out, _ = run(capsys, "eval", "similarity", vectors, "--data", pairs, "--ci", "0")
    assert code == 0 and "[" not in out, out
    code, out, _ = run(capsys, "eval", "similarity", vectors, "--data", pairs, "--format", "json")
    doc = json.loads(out)["sets"][0]["intervals"]["spearman"]
    assert doc["low"] <= doc["value"] <= doc["high"] and doc["level"] == 0.95


@pytest.mark.parametrize("level", ["1.5", "1", "-0.1", "high"])
def test_bad_ci_is_one_line_and_exit_2(capsys, tmp_path, level):
    vectors, pairs = _vectors_and_pairs(tmp_path)
    code, _, err = run(capsys, "eval", "similarity", vectors, "--data", pairs, "--ci", level)
    assert_one_line_error(code, err, "confidence level must be")
    code, _, err = run(capsys, "eval", "compare", vectors, vectors, "--task", "wic", "--ci", level)
    assert_one_line_error(code, err, "confidence level must be")


def test_compare_two_tiny_runs_and_refuse_what_a_run_cannot_do(capsys, tiny_runs):
    w2v, gpt = str(tiny_runs / "word2vec"), str(tiny_runs / "gpt")
    code, out, err = run(capsys, "eval", "compare", gpt, w2v, "--task", "homograph")
    assert code == 0, err
    assert "1260 instances of 42 words" in out and "A - B" in out and "p = " in out
    assert re.search(r"A - B  [+-]\d+\.\d \[-?\d+\.\d, -?\d+\.\d\] points", out), out
    code, out, _ = run(capsys, "eval", "compare", w2v, w2v, "--task", "homograph", "--ci", "0")
    assert code == 0 and "p = 1 " in out and "[" not in out  # the same model: no difference
    code, _, err = run(
        capsys, "eval", "compare", w2v, gpt, "--task", "bleu", "--source", w2v + "/config.json",
        "--reference", w2v + "/config.json",
    )  # fmt: skip
    assert_one_line_error(code, err, "is a word2vec run: it cannot translate")
    code, _, err = run(capsys, "eval", "compare", w2v, gpt, "--task", "bleu")
    assert_one_line_error(code, err, "--task bleu needs --source and --reference")


def test_plot_attention_refuses_a_run_without_attention_in_one_line(capsys, tiny_runs, tmp_path):
    out = tmp_path / "a.png"
    code, _, err = run(capsys, "plot", "attention", str(tiny_runs / "word2vec"), "a bank", "-o",
                       str(out))  # fmt: skip
    fragment = "is a word2vec run: plot attention draws seq2seq, transformer, gpt, bert and "
    assert_one_line_error(code, err, fragment + "transformer-xl runs")
    assert not out.exists()


def test_perplexity_interval_over_evaluation_batches(capsys, tiny_runs):
    code, out, _ = run(capsys, "eval", "perplexity", str(tiny_runs / "gpt"), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["batches"] >= 1
    for key in ("loss", "perplexity", "bits_per_byte"):
        ci = doc["intervals"][key]
        assert ci["low"] <= doc[key] <= ci["high"], key


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["translate", "run", "x", "--beam", "0"], "argument --beam: must be at least 1, got 0"),
        (["translate", "run", "x", "--beam", "-2"], "argument --beam: must be at least 1, got -2"),
        (["translate", "run", "x", "--max-len", "0"], "argument --max-len: must be at least 1"),
        (
            ["generate", "run", "x", "--max-new-tokens", "-1"],
            "--max-new-tokens: must be at least 0",
        ),
        (
            ["generate", "run", "x", "--temperature", "0"],
            "--temperature: must be a positive number",
        ),
        (["generate", "run", "x", "--top-p", "1.5"], "argument --top-p: must be in (0, 1]"),
        (["eval", "perplexity", "run", "--max-batches", "0"], "--max-batches: must be at least 1"),
        (["eval", "bleu", "run", "--beam", "0"], "argument --beam: must be at least 1"),
        (["decade", "--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
        (["decade", "--minutes", "-5"], "argument --minutes: must be a positive number"),
        (["pretrain", "gpt", "--steps", "abc"], "argument --steps: expected an integer, got 'abc'"),
        (["pretrain", "bogus"], "argument FAMILY: invalid choice: 'bogus'"),
    ],
)
def test_out_of_range_arguments_are_one_line_before_anything_runs(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, fragment)
    assert "--help" in err and out == ""


def test_help_still_exits_zero(capsys):
    code, out, _ = run(capsys, "generate", "--help")
    assert code == 0 and "--max-new-tokens" in out


def test_a_hf_gpt2_directory_and_an_imported_run_score_and_train_like_native_runs(
    capsys, tiny_runs, tmp_path
):
    """#21: `eval perplexity HF_DIR` said "unknown model family '?'", and an imported run's
    `eval perplexity --corpus` and `pretrain --resume` asked for token shards it never had."""
    text = str(tiny_runs / "c.txt")
    source, hf_dir, imported = (str(tmp_path / n) for n in ("gpt", "gpt-hf", "imported"))
    small = ["--set", "tokenizer.vocab_size=400", "--set", "train.threads=1", "-q"]
    small += ["--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "model.n_heads=2"]
    small += ["--set", "model.max_len=32", "--set", "train.lr=3e-3", "--set", "train.log_every=1"]
    assert main(["pretrain", "gpt", "--corpus", text, "-o", source, "--steps", "60", *small]) == 0
    assert main(["export", "hf", source, "-o", hf_dir]) == 0
    assert main(["import", "hf", hf_dir, "-o", imported]) == 0
    capsys.readouterr()

    def loss(model):
        argv = ["eval", "perplexity", model, "--corpus", text, "-q", "--format", "json"]
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        return json.loads(out)["loss"]

    native = loss(source)
    assert native < math.log(400) - 1.0  # it learned something to carry over
    assert loss(hf_dir) == pytest.approx(native, abs=1e-4)  # the same model, three ways
    assert loss(imported) == pytest.approx(native, abs=1e-4)
    code, _, err = run(capsys, "eval", "perplexity", hf_dir)
    assert code == 2 and "pass --corpus FILE" in err and len(err.strip().splitlines()) == 1

    # Training an imported model continues from its weights, not from scratch.
    argv = ["pretrain", "gpt", "-o", imported, "--resume", "--corpus", text, "--steps", "2"]
    code, _, err = run(capsys, *argv, "--set", "train.threads=1", "--set", "train.log_every=1")
    assert code == 0, err
    first = json.loads((tmp_path / "imported" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 1 and abs(first["loss"] - native) < 0.5

    # --init-from: a new run from a HF directory or a textdecade run, on the user's corpus
    for origin in (hf_dir, source):
        fresh = tmp_path / f"from-{Path(origin).name}"
        argv = ["pretrain", "gpt", "--init-from", origin, "-o", str(fresh), "--corpus", text]
        code, _, err = run(capsys, *argv, "--steps", "2", "--set", "train.log_every=1", "-q")
        assert code == 0, err
        first = json.loads((fresh / "metrics.jsonl").read_text().splitlines()[0])
        assert abs(first["loss"] - native) < 0.5, origin
    refused = tmp_path / "refused"
    code, _, err = run(capsys, "pretrain", "bert", "--init-from", hf_dir, "-o", str(refused))
    assert_one_line_error(code, err, "holds a gpt model, not bert")
    assert not refused.exists()
    code, _, err = run(capsys, "pretrain", "gpt", "--init-from", hf_dir, "-o", imported, "--resume")
    assert_one_line_error(code, err, "--init-from starts a new run")
