"""``td.load`` on a run directory written by the engine, and its export to HF transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textdecade.config import build_config
from textdecade.errors import UserError
from textdecade.models import get_family

SMALL = [
    "train.threads=1",
    "train.steps=12",
    "train.batch_size=8",
    "train.eval_every=100",
    "train.ckpt_every=100",
    "train.warmup_steps=2",
    "tokenizer.vocab_size=400",
    "model.d_model=32",
    "model.n_heads=2",
    "model.n_layers=2",
    "model.max_len=32",
]


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory, corpus_lines):
    from textdecade.pretrain.trainer import Trainer

    Model, Config, presets = get_family("bert")
    config = build_config("bert", Config, presets, "tiny", None, SMALL)
    run = tmp_path_factory.mktemp("runs") / "bert"
    Trainer(config, run, corpus=corpus_lines("gensim_lee.txt", 120), progress=False).fit()
    return run


@pytest.mark.slow
def test_load_a_bert_run_embeds_and_exports(bert_run, tmp_path, corpus_lines):
    from transformers import AutoModel, AutoTokenizer

    import textdecade as td
    from textdecade.interop.hf import export_hf

    model = td.load(bert_run, device="cpu")
    tok = model.tokenizer
    assert model.family == "bert" and model.config.family == "bert"
    # a masked-LM encoder reads <cls> text <sep>, as its pretraining windows did
    assert model.framing.prefix == (tok.cls_id,) and model.framing.suffix == (tok.sep_id,)
    assert model.pooling == "mean" and not model.causal
    texts = ["The fire spread quickly.", "Rain fell in Sydney on Sunday.", ""]
    vecs = td.embed(texts, model=bert_run, device="cpu")
    np.testing.assert_allclose(vecs, model.embed(texts), atol=1e-6)
    from textdecade.api import _load_cached

    td.embed(texts[:1], model=str(bert_run), device="cpu")
    assert _load_cached.cache_info().hits >= 1  # loaded once, not per call
    ids = torch.tensor([[tok.cls_id, *tok.encode(texts[0]), tok.sep_id]])
    with torch.no_grad():
        direct = model.model.hidden_states(ids, torch.ones_like(ids))[-1][0].mean(0)
    np.testing.assert_allclose(vecs[0], direct.numpy(), atol=1e-5)

    out = export_hf(model, tmp_path / "hf")
    hf_tok = AutoTokenizer.from_pretrained(out)
    enc = hf_tok(texts[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = AutoModel.from_pretrained(out).eval()(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = ((states * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(pooled, vecs[:2], atol=1e-5)


def test_load_says_what_is_wrong(tmp_path):
    import textdecade as td

    with pytest.raises(UserError, match="not found"):
        td.load(tmp_path / "missing")
    with pytest.raises(UserError, match="no config.json"):
        td.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        td.load(tmp_path)
