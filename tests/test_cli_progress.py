"""Progress of long CLI jobs (issue #21): bars on stderr, nothing extra on stdout, none with -q.

The bars follow the trainer's rule (tqdm on stderr whenever asked, terminal or not), so
under pytest, where stderr is a capture and not a terminal, they show unless ``-q``.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import data_path
from textdecade.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_lines):
    """A GPT run (150 lines of real text) and a Transformer run (300 Multi30k pairs) of a
    few steps each: seconds, but real runs loaded as a user's are."""
    root = tmp_path_factory.mktemp("progress")
    text = root / "c.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 150)) + "\n", encoding="utf-8")
    small = ["--set", "tokenizer.vocab_size=400", "--set", "train.threads=1", "--steps", "3"]
    small += ["--set", "model.d_model=32", "--set", "model.n_layers=1"]
    small += ["--set", "model.n_heads=2", "--set", "model.max_len=32", "--device", "cpu"]
    gpt = ["pretrain", "gpt", "-q", "--corpus", str(text), "-o", str(root / "gpt")]
    assert main([*gpt, *small]) == 0
    mt = ["pretrain", "transformer", "-q", "-o", str(root / "mt"), "--max-texts", "300"]
    mt += ["--source", str(data_path("multi30k", "train.de"))]
    mt += ["--target", str(data_path("multi30k", "train.en"))]
    assert main([*mt, *small]) == 0
    return root


def _both(capsys, *argv):
    """stdout and stderr of the command with bars, then of the same command with -q."""
    assert main(list(argv)) == 0
    shown = capsys.readouterr()
    assert main([*argv, "-q"]) == 0
    quiet = capsys.readouterr()
    return shown, quiet


def test_coarsewsd_homograph_json_shows_progress_on_stderr_only(capsys, runs):
    argv = ["eval", "homograph", str(runs / "gpt"), "--data", str(data_path("coarsewsd20"))]
    argv += ["--words", "bank", "crane", "--max-per-sense", "12", "--max-test-per-sense", "6"]
    argv += ["--probe", "--format", "json", "--device", "cpu"]
    shown, quiet = _both(capsys, *argv)
    doc = json.loads(shown.out)  # stdout is the JSON document alone
    assert shown.out == quiet.out  # byte for byte, bar or not
    assert doc["words"] and {w["word"] for w in doc["words"]} == {"bank", "crane"}
    assert "homograph: encode" in shown.err and "homograph: score" in shown.err
    assert "2/2" in shown.err  # the scoring bar reached both words
    assert "homograph" not in quiet.err and "%|" not in quiet.err


def test_perplexity_and_analogy_bars_and_quiet(capsys, runs):
    shown, quiet = _both(
        capsys, "eval", "perplexity", str(runs / "gpt"), "--format", "json", "--max-batches", "3"
    )
    assert json.loads(shown.out) == json.loads(quiet.out) and shown.out == quiet.out
    assert "perplexity" in shown.err and "perplexity" not in quiet.err
    argv = ["eval", "analogy", str(runs / "gpt"), "--restrict-vocab", "2000", "--format", "csv"]
    shown, quiet = _both(
        capsys, *argv, "--data", str(data_path("word_analogy", "questions-words.txt"))
    )
    assert shown.out == quiet.out and "analogy" in shown.err and "analogy" not in quiet.err


def test_translate_a_file_and_bleu_show_progress_same_lines(capsys, runs, tmp_path):
    from textdecade.api import load

    source = tmp_path / "src.de"
    lines = (data_path("multi30k", "test_2016_flickr.de")).read_text("utf-8").splitlines()[:70]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["translate", str(runs / "mt"), "--input", str(source), "--beam", "1", "--max-len", "4"]
    shown, quiet = _both(capsys, *argv, "--device", "cpu")
    assert shown.out == quiet.out
    assert "translate" in shown.err and "70/70" in shown.err and "translate" not in quiet.err
    # one call over all 70 lines (two of the api's own batches) gives the same translations
    handle = load(runs / "mt", device="cpu")
    assert shown.out == "".join(t + "\n" for t in handle.translate(lines, beam=1, max_len=4))
    argv = ["eval", "bleu", str(runs / "mt"), "--source", str(source), "--beam", "1"]
    argv += ["--reference", str(source), "--device", "cpu", "--ci", "0", "--max-lines", "8"]
    shown, quiet = _both(capsys, *argv)
    assert shown.out == quiet.out and "bleu: translate" in shown.err
    assert "bleu" not in quiet.err


def test_embed_many_texts_shows_batches_and_the_same_vectors(capsys, runs, tmp_path):
    texts = tmp_path / "texts.txt"
    lines = [f"The river bank flooded after rain number {i} ." for i in range(200)]
    texts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["embed", str(runs / "gpt"), "--input", str(texts), "--device", "cpu"]
    shown, quiet = _both(capsys, *argv)
    assert shown.out == quiet.out and len(shown.out.splitlines()) == 200
    assert "batch" in shown.err and "%|" in shown.err and quiet.err == ""


def test_wic_json_shows_progress_on_stderr_only(capsys, runs, tmp_path):
    from tests.eval.test_homograph_senses import _wic_from_suite

    _wic_from_suite(tmp_path, ["bank", "bass", "seal"], "train")
    _wic_from_suite(tmp_path, ["crane", "spring", "pitcher"], "test")
    argv = ["eval", "homograph", str(runs / "gpt"), "--data", str(tmp_path), "--format", "json"]
    shown, quiet = _both(capsys, *argv, "--device", "cpu")
    assert json.loads(shown.out)["n"] == 36 and shown.out == quiet.out
    assert "wic: encode fit pairs" in shown.err and "wic: encode test pairs" in shown.err
    assert "wic" not in quiet.err


def test_decade_scoring_shows_bars_and_the_same_scores(capsys, runs, corpus_lines):
    """The decade's scoring step (``score_model``) was its last long silent stretch."""
    import textdecade as td
    from textdecade.eval.scorecard import score_model

    handle = td.load(runs / "gpt", device="cpu")
    sample = corpus_lines("gensim_lee.txt", 150)
    shown = score_model(handle, sample, {}, progress=True)
    err = capsys.readouterr().err
    quiet = score_model(handle, sample, {})
    assert "%|" not in capsys.readouterr().err
    assert json.dumps(shown, sort_keys=True) == json.dumps(quiet, sort_keys=True)
    assert "analogy" in err and "homograph: encode" in err and "%|" in err


def test_pretrain_shows_its_reading_of_the_corpus(capsys, tmp_path, corpus_lines):
    """Data preparation reads the corpus with a bar (minutes on a large corpus, silent
    before), none with -q, and the run is the same."""
    text = tmp_path / "c.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 120)) + "\n", encoding="utf-8")
    argv = ["pretrain", "gpt", "--corpus", str(text), "--steps", "2", "--device", "cpu"]
    argv += ["--set", "tokenizer.vocab_size=400", "--set", "train.threads=1"]
    argv += ["--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "model.n_heads=2"]
    argv += ["--set", "model.max_len=32"]
    assert main([*argv, "-o", str(tmp_path / "shown")]) == 0
    err = capsys.readouterr().err
    assert "prepare: read" in err and "120 texts" in err
    assert main([*argv, "-o", str(tmp_path / "quiet"), "-q"]) == 0
    assert "read" not in capsys.readouterr().err
    shown = (tmp_path / "shown" / "model.safetensors").read_bytes()
    assert shown == (tmp_path / "quiet" / "model.safetensors").read_bytes()
