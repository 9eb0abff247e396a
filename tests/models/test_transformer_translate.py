"""The Transformer learns to translate a slice of Multi30k through the engine.

One tiny model is trained once (module fixture) through ``Trainer`` with the family's
defaults (Noam schedule, label smoothing 0.1, tied embeddings) and then checked: BLEU far
above copying the source, beam never below greedy on the model's own likelihood, the
KV-cached decoder equal to the teacher-forced one, cross-attention rows summing to 1,
padding-invariant encoder states and the per-layer/head attention picture.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import data_path
from textdecade.config import build_config
from textdecade.data.parallel import BOS_ID, EOS_ID, PAD_ID, ParallelCorpus, pad
from textdecade.errors import CorpusError, UserError
from textdecade.eval.attention_plot import plot_attention, plot_attention_run, word_alignment
from textdecade.eval.bleu import bleu_run, corpus_bleu, evaluate_bleu, read_lines
from textdecade.models import transformer
from textdecade.models.decoding import (
    beam_search,
    encode_sources,
    greedy_decode,
    score_sequences,
    translate,
)
from textdecade.pretrain.rundir import load_run
from textdecade.pretrain.trainer import Trainer

pytestmark = [pytest.mark.slow, pytest.mark.data]

STEPS = 400
MODEL = [
    "model.d_model=64", "model.n_heads=4", "model.n_layers=2", "model.d_ff=256",
    "model.max_len=40", "model.dropout=0.0", "model.norm=pre",
]  # fmt: skip
TRAIN = [
    f"train.steps={STEPS}", "train.batch_size=64", "train.lr=2e-3", "train.warmup_steps=100",
    f"train.eval_every={STEPS}", f"train.ckpt_every={STEPS}", "train.threads=1",
    "train.device=cpu", "tokenizer.vocab_size=1000",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread):
    corpus = ParallelCorpus(
        data_path("multi30k", "train.de"),
        data_path("multi30k", "train.en"),
        max_pairs=6000,
        valid=ParallelCorpus(
            data_path("multi30k", "val.de"), data_path("multi30k", "val.en"), max_pairs=300
        ),
    )
    config = build_config(
        "transformer", transformer.Config, transformer.PRESETS, "tiny", overrides=MODEL + TRAIN
    )
    run_dir = tmp_path_factory.mktemp("transformer_run")
    Trainer(config, run_dir, corpus=corpus, progress=False).fit()
    _, model, tokenizer = load_run(run_dir)
    test_src = read_lines(data_path("multi30k", "test_2016_flickr.de"))[:100]
    test_ref = read_lines(data_path("multi30k", "test_2016_flickr.en"))[:100]
    return run_dir, model, tokenizer, test_src, test_ref


def _batch(model, tokenizer, texts):
    src = pad(encode_sources(tokenizer, texts, model.config.max_len))
    return src, (src != PAD_ID).long()


def test_trained_with_family_defaults_and_val_loss_falls(run):
    run_dir = run[0]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert evals and evals[-1]["step"] == STEPS
    # Measured 2.91 nats/token after 400 steps (uniform over 1000 pieces: 6.9).
    assert evals[-1]["val_loss"] < 3.2
    assert evals[-1]["val_ppl"] == pytest.approx(np.exp(evals[-1]["val_loss"]), rel=1e-4)
    assert transformer.Model.default_schedule == "noam"
    assert run[1].config.label_smoothing == 0.1


def test_bleu_beats_copying_the_source(run):
    _, model, tokenizer, src, ref = run
    copy = corpus_bleu(src, ref).score  # German words kept verbatim: ~0.2 BLEU
    result, hyps = evaluate_bleu(model, tokenizer, src, ref, beam=1)
    assert len(hyps) == len(src) and all(isinstance(h, str) for h in hyps)
    # Measured 12.2 BLEU (greedy, 100 test_2016_flickr sentences) against 0.2 for copying.
    assert result.score > copy + 6.0, (result.score, copy)


def test_beam_never_below_greedy_on_the_models_likelihood(run):
    _, model, tokenizer, src_texts, _ = run
    src, mask = _batch(model, tokenizer, src_texts[:24])
    greedy, greedy_logp = greedy_decode(model, src, mask, max_new=39)
    beam, beam_scores = beam_search(model, src, mask, max_new=39, beam=4, alpha=0.6)
    # Score both with teacher forcing (a second, independent computation).
    g = score_sequences(model, src, mask, greedy, alpha=0.6)
    b = score_sequences(model, src, mask, beam, alpha=0.6)
    assert (b >= g - 1e-4).all()
    assert torch.allclose(b, beam_scores, atol=1e-3)
    assert (b > g + 1e-4).any()  # the wider search finds something better somewhere
    # translate() with beam=1 is greedy.
    assert translate(model, tokenizer, src_texts[:3], beam=1) == [
        tokenizer.decode(h) for h in greedy[:3]
    ]


def test_kv_cached_decoding_equals_teacher_forcing(run):
    _, model, tokenizer, src_texts, _ = run
    src, mask = _batch(model, tokenizer, src_texts[:6])
    hyps, logp = greedy_decode(model, src, mask, max_new=39)
    forced = score_sequences(model, src, mask, hyps, alpha=0.0)
    assert torch.allclose(logp, forced, atol=1e-3)


def test_cross_attention_rows_sum_to_one_and_ignore_padding(run):
    _, model, tokenizer, src_texts, _ = run
    src, mask = _batch(model, tokenizer, src_texts[:5])
    tgt_in = pad([[BOS_ID, 20, 30, 40], [BOS_ID, 50]])
    maps = model.attention_maps(src[:2], mask[:2], tgt_in)
    c = model.config
    assert maps.shape == (2, c.n_layers, c.n_heads, 4, src.shape[1])
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-5)
    assert (maps[mask[:2, None, None, None, :].expand_as(maps) == 0] == 0).all()


def test_encoder_states_do_not_depend_on_padding(run):
    _, model, tokenizer, src_texts, _ = run
    src, mask = _batch(model, tokenizer, src_texts[:4])
    states = model.hidden_states(src, mask)
    assert len(states) == model.config.n_layers + 1
    n = int(mask[0].sum())
    alone = model.hidden_states(src[:1, :n], mask[:1, :n])
    assert torch.allclose(states[-1][0, :n], alone[-1][0], atol=1e-5)
    assert model.input_embeddings().weight.shape[1] == model.config.d_model


def test_attention_picture_is_a_layer_by_head_grid(run, tmp_path):
    _, model, tokenizer, src_texts, _ = run
    src_words, tgt_words, maps = word_alignment(model, tokenizer, src_texts[0])
    assert src_words[-1] == tgt_words[-1] == "</s>"
    assert maps.shape[:2] == (model.config.n_layers, model.config.n_heads)
    assert np.allclose(maps.sum(-1), 1.0, atol=1e-5)
    path = plot_attention(model, tokenizer, src_texts[0], tmp_path / "cross.png")
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > image.shape[0]  # 2 rows x 4 columns
    assert EOS_ID not in tokenizer.encode(translate(model, tokenizer, src_texts[0]))


def test_run_directory_entry_points_for_the_cli(run, tmp_path):
    run_dir, model, tokenizer, src, ref = run
    import textdecade as td

    handle = td.load(run_dir, device="cpu")
    assert handle.translate(src[:2], beam=2) == translate(model, tokenizer, src[:2], beam=2)
    (tmp_path / "test.de").write_text("\n".join(src[:20]) + "\n", encoding="utf-8")
    (tmp_path / "test.en").write_text("\n".join(ref[:20]) + "\n", encoding="utf-8")
    (tmp_path / "short.en").write_text("\n".join(ref[:19]) + "\n", encoding="utf-8")
    from_file = handle.translate(read_lines(tmp_path / "test.de"), beam=1)
    assert from_file[:3] == translate(model, tokenizer, src[:3], beam=1)
    result = bleu_run(
        run_dir, tmp_path / "test.de", tmp_path / "test.en", beam=1, output=tmp_path / "hyp.en"
    )
    expected, hyps = evaluate_bleu(model, tokenizer, src[:20], ref[:20], beam=1)
    assert result.score == pytest.approx(expected.score)
    assert read_lines(tmp_path / "hyp.en") == [h.strip() for h in hyps]
    with pytest.raises(CorpusError, match="20 lines.*19"):
        bleu_run(run_dir, tmp_path / "test.de", tmp_path / "short.en")
    with pytest.raises(UserError, match="cannot generate"):
        handle.generate("ein Mann")  # declared capabilities: a translator does not generate
    assert plot_attention_run(run_dir, src[1], tmp_path / "a.png").stat().st_size > 1000
