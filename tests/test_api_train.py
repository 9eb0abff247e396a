"""``td.train``: one call from texts or a corpus path to a trained, loaded model (issue #21)."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import textdecade as td
from textdecade.errors import ConfigError, UserError
from textdecade.pretrain.fit import train as engine_train
from textdecade.pretrain.progress import read_metrics


def test_word2vec_in_one_call_is_the_engine_with_gensim_defaults(corpus_lines, tmp_path):
    """gensim's names and its 5 epochs; the same vectors as the engine's own entry point."""
    texts = corpus_lines("gensim_lee.txt", 300)
    handle = td.train(
        "word2vec", texts, vector_size=48, alpha=0.03, workers=1, seed=3, progress=False
    )
    config = handle.config
    assert handle.family == "word2vec" and handle.static
    assert config.model.d_model == 48 and config.train.lr == 0.03
    assert config.train.epochs == 5  # gensim's default passes, not the preset's steps
    settings = {"model": {"d_model": 48, "workers": 1}, "train": {"lr": 0.03, "seed": 3}}
    settings["train"]["epochs"] = 5
    reference = engine_train("word2vec", texts, settings=settings, run_dir=tmp_path / "ref")
    ours, theirs = handle.vectors, td.load(reference.run_dir, device="cpu").vectors
    assert ours.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)  # one worker: deterministic
    # the temporary run lives as long as the handle
    run_dir = handle.run_dir
    assert (run_dir / "model.safetensors").is_file()
    del handle
    gc.collect()
    assert not run_dir.exists()


def test_gpt_from_a_corpus_path_trains_and_generates(corpus_lines, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_lines("gensim_lee.txt", 200)) + "\n", encoding="utf-8")
    small = {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_len": 32}
    handle = td.train(
        "gpt", corpus, steps=80, eval_every=0, threads=1, progress=False,
        run_dir=tmp_path / "gpt", device="cpu", settings={"tokenizer": {"vocab_size": 400}},
        **small,
    )  # fmt: skip
    assert handle.run_dir == tmp_path / "gpt" and handle.config.train.steps == 80
    losses = [r["loss"] for r in read_metrics(tmp_path / "gpt") if "loss" in r]
    # it learned the text, not only ran: well below the uniform guess's ln V
    assert losses[0] > math.log(400) - 0.1 and losses[-1] < math.log(400) - 0.3, losses
    assert isinstance(handle.generate("The", max_new_tokens=5, seed=0), str)


def test_bad_settings_and_texts_are_one_line_errors():
    with pytest.raises(ConfigError, match="'no_such_key' is in no config section"):
        td.train("word2vec", ["a b c"], no_such_key=1)
    with pytest.raises(ConfigError, match="'vocab_size' is in model and tokenizer"):
        td.train("gpt", ["a b c"], vocab_size=400)
    with pytest.raises(UserError, match="texts must be strings"):
        td.train("word2vec", [["tokenized", "words"]])
    with pytest.raises(UserError, match="texts is empty"):
        td.train("word2vec", [])
    with pytest.raises(UserError, match="unknown model family"):
        td.train("word3vec", ["a b"])
