"""GPT and BERT through the engine: prepare real shards, train, evaluate, reload, generate."""

from __future__ import annotations

import io
import json
import math

import pytest

import textdecade as td
from textdecade.config import build_config
from textdecade.errors import UserError
from textdecade.models import get_family
from textdecade.pretrain.rundir import load_run
from textdecade.pretrain.trainer import Trainer

pytestmark = pytest.mark.data

SMALL = [
    "train.threads=1",
    "train.steps=30",
    "train.batch_size=8",
    "train.eval_every=15",
    "train.eval_batches=2",
    "train.ckpt_every=30",
    "train.warmup_steps=5",
    "tokenizer.vocab_size=400",
    "model.d_model=32",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.max_len=32",
    "model.valid_fraction=0.1",
]


def _train(family, tmp_path, texts, extra=()):
    Model, Config, presets = get_family(family)
    config = build_config(family, Config, presets, "tiny", None, [*SMALL, *extra])
    run = tmp_path / family
    Trainer(config, run, corpus=texts, progress=False).fit()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return run, records


@pytest.mark.slow
def test_gpt_pretrains_evaluates_and_generates(tmp_path, corpus_lines):
    texts = corpus_lines("gensim_lee.txt")
    run, records = _train("gpt", tmp_path, texts)
    evals = [r for r in records if "val_loss" in r]
    assert evals and all(r["val_bpb"] > 0 for r in evals)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] + 0.05
    meta = json.loads((run / "data_meta.json").read_text())
    assert meta["n_valid_bytes"] > 0 and meta["n_valid_tokens"] > 0
    # bits per byte agrees with loss, tokens and bytes
    ratio = meta["n_valid_tokens"] / meta["n_valid_bytes"]
    assert evals[-1]["val_bpb"] == pytest.approx(evals[-1]["val_loss"] / 0.6931471805599453 * ratio)
    config, model, tok = load_run(run)
    assert config.family == "gpt"
    out = io.StringIO()
    handle = td.load(run, device="cpu")
    text = handle.generate("The fire", max_new_tokens=12, seed=1, stream=out.write)
    assert out.getvalue() == text and text
    assert text == handle.generate("The fire", max_new_tokens=12, seed=1)
    # the handle scores its run: the held-out split (as the trainer's evaluation) or new text
    held_out = handle.perplexity(max_batches=20)
    assert held_out.ppl == pytest.approx(math.exp(held_out.loss))
    assert abs(held_out.loss - evals[-1]["val_loss"]) < 0.3 and held_out.bpb > 0
    assert held_out.ppl < tok.vocab_size  # far better than a uniform guess
    given = handle.perplexity(texts[:30], max_batches=5)
    assert given.data == "the given text" and math.isfinite(given.loss)
    # a bert run cannot generate: one clear line
    bert_run, bert_records = _train("bert", tmp_path, texts, ["model.whole_word=true"])
    assert any("val_mlm_acc" in r for r in bert_records)
    assert any(bert_run.rglob("word_starts.npy"))  # prepared for whole-word masking
    with pytest.raises(UserError, match="cannot generate"):
        td.load(bert_run, device="cpu").generate("hello")
