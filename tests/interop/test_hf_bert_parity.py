"""HF BERT <-> textdecade BERT: the same MLM logits and hidden states as ``transformers``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.test_api_support import minilm_dir, tiny_bert, tiny_tokenizer

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok(corpus_lines):
    return tiny_tokenizer(corpus_lines("gensim_lee.txt", 200))


def _hf_config(vocab_size, **overrides):
    from transformers import BertConfig

    values = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertConfig(**{**values, **overrides})


def _padded(tok, texts, max_tokens=30):
    """[CLS] text [SEP] rows, right-padded: (ids (B, T), mask (B, T))."""
    rows = [[tok.cls_id, *tok.encode(t)[:max_tokens], tok.sep_id] for t in texts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def _assert_states_equal(ours, theirs, mask):
    assert len(ours) == len(theirs)
    keep = mask.bool()  # padded positions are meaningless in both
    for a, b in zip(ours, theirs):
        assert torch.allclose(a[keep], b[keep], atol=1e-5)


def test_import_bert_for_masked_lm_matches_transformers(tmp_path, tok, corpus_lines):
    from transformers import BertForMaskedLM

    from textdecade.interop.hf import import_hf

    torch.manual_seed(5)
    hf = BertForMaskedLM(_hf_config(tok.vocab_size)).eval()
    hf.save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(
        json.dumps(json.loads(tok.to_json_str())["tokenizer"]), encoding="utf-8"
    )
    imported = import_hf(tmp_path)
    assert imported.family == "bert" and imported.missing == ()
    assert imported.framing.prefix == (tok.cls_id,) and imported.framing.suffix == (tok.sep_id,)
    ids, mask = _padded(tok, [t[:150] for t in corpus_lines("gensim_lee.txt", 3)])
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        states = imported.model.hidden_states(ids, mask)
        logits = imported.model.mlm_logits(states[-1])
    _assert_states_equal(states, ref.hidden_states, mask)
    keep = mask.bool()
    assert torch.allclose(logits[keep], ref.logits[keep], atol=1e-5)


def test_import_bare_bert_model_from_vocab_txt(tmp_path):
    from transformers import BertModel, BertTokenizerFast

    from textdecade.interop.hf import import_hf

    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir() / name, tmp_path / name)
    torch.manual_seed(6)
    hf = BertModel(_hf_config(30522, hidden_act="gelu_new")).eval()
    hf.save_pretrained(tmp_path)
    imported = import_hf(tmp_path)
    assert imported.config.activation == "gelu_tanh"
    assert any(k.startswith("mlm.") for k in imported.missing)  # no head in a bare BertModel
    texts = ["The Bank of England raised rates.", "She sat on the river bank, unbothered!"]
    ref_tok = BertTokenizerFast(str(tmp_path / "vocab.txt"), do_lower_case=True)
    enc = ref_tok(texts, padding=True, return_tensors="pt")
    ids, mask = _padded(imported.tokenizer, texts)
    assert torch.equal(ids, enc["input_ids"])  # same WordPiece ids, specials and padding
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        _assert_states_equal(imported.model.hidden_states(ids, mask), ref.hidden_states, mask)


def test_export_bert_loads_in_transformers_with_same_logits(tmp_path, tok, corpus_lines):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    import textdecade as td
    from textdecade.api import TextModel
    from textdecade.interop.hf import export_hf

    model = tiny_bert(tok, seed=2)
    handle = TextModel("bert", model, tok, torch.device("cpu"))
    assert handle.framing.prefix == (tok.cls_id,) and not handle.causal
    export_hf(handle, tmp_path / "hf")
    texts = [t[:120] for t in corpus_lines("gensim_lee.txt", 5)[2:5]]
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    enc = hf_tok(texts, padding=True, return_tensors="pt")
    ids, mask = _padded(tok, texts, max_tokens=10**6)
    assert torch.equal(enc["input_ids"], ids) and torch.equal(enc["attention_mask"], mask)
    with torch.no_grad():
        mlm = AutoModelForMaskedLM.from_pretrained(tmp_path / "hf").eval()
        states = model.hidden_states(ids, mask)
        keep = mask.bool()
        ref_logits = mlm(**enc).logits
        assert torch.allclose(model.mlm_logits(states[-1])[keep], ref_logits[keep], atol=1e-5)
        base = AutoModel.from_pretrained(tmp_path / "hf").eval()
        _assert_states_equal(states, base(**enc, output_hidden_states=True).hidden_states, mask)
    again = td.load(tmp_path / "hf", device="cpu")
    assert again.family == "bert" and again.pooling == "mean"
    assert torch.allclose(
        torch.from_numpy(again.embed(texts)), torch.from_numpy(handle.embed(texts)), atol=1e-5
    )


@pytest.mark.parametrize("nsp", [False, True])
def test_export_bert_has_a_pooler_transformers_does_not_draw_at_random(
    tmp_path, tok, corpus_lines, nsp
):
    """Without NSP the exported pooler is the identity (pooler_output = tanh(h_[CLS])); with
    NSP the trained pooler and next-sentence head go out and come back."""
    from transformers import AutoModel, BertForPreTraining

    from textdecade.api import TextModel
    from textdecade.interop.hf import export_hf, import_hf

    model = tiny_bert(tok, seed=3, nsp=nsp)
    export_hf(TextModel("bert", model, tok, torch.device("cpu")), tmp_path / "hf")
    texts = [t[:120] for t in corpus_lines("gensim_lee.txt", 4)[1:4]]
    ids, mask = _padded(tok, texts)
    with torch.no_grad():
        base, info = AutoModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
        assert not info["missing_keys"]  # nothing "newly initialized"
        pooled = base.eval()(input_ids=ids, attention_mask=mask).pooler_output
        cls_state = model.hidden_states(ids, mask)[-1][:, 0]
        ours = torch.tanh(model.pooler(cls_state)) if nsp else torch.tanh(cls_state)
        assert torch.allclose(pooled, ours, atol=1e-5)
        if nsp:
            full = BertForPreTraining.from_pretrained(tmp_path / "hf").eval()
            ref = full(input_ids=ids, attention_mask=mask).seq_relationship_logits
            assert torch.allclose(ref, model.nsp_head(ours), atol=1e-5)
    if nsp:
        back = import_hf(tmp_path / "hf").model
        assert back.config.nsp and torch.equal(back.nsp_head.weight, model.nsp_head.weight)
        assert torch.equal(back.pooler.weight, model.pooler.weight)


def test_export_refuses_families_without_a_hf_twin(tmp_path, tok):
    from textdecade.api import TextModel
    from textdecade.errors import UserError
    from textdecade.interop.hf import export_hf

    handle = TextModel("transformer", tiny_bert(tok), tok, torch.device("cpu"))
    with pytest.raises(UserError, match="exports bert and gpt"):
        export_hf(handle, tmp_path / "out")
    assert not (tmp_path / "out").exists()
