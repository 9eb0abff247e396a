"""Encoder-decoders pretrain on plain text as BART-style denoisers, through the engine."""

from __future__ import annotations

import json

import pytest
import torch

from textdecade.config import build_config
from textdecade.errors import ConfigError
from textdecade.models import seq2seq, transformer
from textdecade.pretrain.rundir import load_run
from textdecade.pretrain.trainer import Trainer

STEPS = 120
OVERRIDES = [
    "model.d_model=64", "model.n_heads=4", "model.n_layers=2", "model.d_ff=256",
    "model.max_len=64", "model.dropout=0.0", f"train.steps={STEPS}", "train.batch_size=16",
    "train.warmup_steps=30", "train.eval_every=60", "train.ckpt_every=60", "train.threads=1",
    "train.device=cpu", "tokenizer.vocab_size=800",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.data
def test_transformer_denoising_pretraining_learns(corpus_lines, tmp_path):
    texts = corpus_lines("gensim_lee.txt", n=300)
    config = build_config(
        "transformer", transformer.Config, transformer.PRESETS, "tiny", overrides=OVERRIDES
    )
    threads = torch.get_num_threads()
    try:
        Trainer(config, tmp_path / "run", corpus=texts, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    evals = [r["val_loss"] for r in map(json.loads, lines) if "val_loss" in r]
    _, model, tokenizer = load_run(tmp_path / "run")
    assert model.meta["objective"] == "denoise"
    data = transformer.Model.load_prepared(tmp_path / "run" / "data", model.meta)
    torch.manual_seed(0)
    untrained = transformer.Model(model.config, model.meta).eval().evaluate(data)["val_loss"]
    # Measured: 7.20 untrained, 5.87 after 60 steps, 5.76 after 120.
    assert len(evals) == 2 and evals[1] < evals[0] < untrained - 1.0
    assert evals[1] < 6.2
    # The encoder gives contextual states for the evaluation suite.
    ids = torch.tensor([tokenizer.encode("The fire spread quickly.")])
    states = model.hidden_states(ids, torch.ones_like(ids))
    assert len(states) == 3 and states[-1].shape == (1, ids.shape[1], 64)
    # Asked to translate, a denoiser says what it was trained for instead of pretending.
    import textdecade

    with pytest.warns(UserWarning, match="pretrained to denoise plain text, not to translate"):
        textdecade.load(tmp_path / "run").translate("The fire spread quickly.", beam=1)


def test_translate_objective_needs_a_parallel_corpus(tmp_path):
    class Tok:
        vocab_size = 100

        def encode_batch(self, texts):
            return [[7] * 3 for _ in texts]

    config = seq2seq.Config(objective="translate")
    with pytest.raises(ConfigError, match="--source FILE --target FILE"):
        seq2seq.Model.prepare(["Some plain text."], Tok(), config, tmp_path)
    with pytest.raises(ConfigError, match="objective"):
        seq2seq.Model.prepare(["x"], Tok(), seq2seq.Config(objective="bogus"), tmp_path)
    with pytest.raises(ConfigError, match="norm"):
        transformer.Model(transformer.Config(norm="middle"), {"vocab_size": 100})
