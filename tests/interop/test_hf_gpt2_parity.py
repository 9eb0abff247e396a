"""GPT-2 <-> textdecade GPT: the same logits and hidden states as ``transformers`` itself."""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_api_support import tiny_gpt, tiny_tokenizer

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok(corpus_lines):
    return tiny_tokenizer(corpus_lines("gensim_lee.txt", 200))


def _hf_gpt2(tmp_path, vocab_size, **overrides):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(3)
    values = dict(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    model = GPT2LMHeadModel(GPT2Config(**{**values, **overrides})).eval()
    model.save_pretrained(tmp_path)
    return model


def test_import_gpt2_matches_transformers_logits(tmp_path, tok, corpus_lines):
    from textdecade.interop.hf import import_hf

    hf = _hf_gpt2(tmp_path, tok.vocab_size)
    (tmp_path / "tokenizer.json").write_text(
        json.dumps(json.loads(tok.to_json_str())["tokenizer"]), encoding="utf-8"
    )
    imported = import_hf(tmp_path)
    assert imported.family == "gpt" and imported.missing == ()
    ids = torch.tensor([tok.encode(t)[:40] for t in corpus_lines("gensim_lee.txt", 3)])
    with torch.no_grad():
        ref = hf(ids, output_hidden_states=True)
        ours = imported.model.logits(ids)
        states = imported.model.hidden_states(ids, torch.ones_like(ids))
    assert torch.allclose(ours, ref.logits, atol=1e-5)
    assert len(states) == len(ref.hidden_states)
    for a, b in zip(states, ref.hidden_states):
        assert torch.allclose(a, b, atol=1e-5)


def test_import_reads_pytorch_model_bin_and_exact_gelu(tmp_path, tok):
    from textdecade.interop.hf import import_hf

    hf = _hf_gpt2(tmp_path, tok.vocab_size, activation_function="gelu", n_inner=48)
    (tmp_path / "model.safetensors").unlink()
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    tok.save(tmp_path / "tokenizer.json")
    imported = import_hf(tmp_path)
    assert imported.config.activation == "gelu" and imported.config.d_ff == 48
    ids = torch.tensor([tok.encode("The river bank flooded after the storm.")])
    with torch.no_grad():
        assert torch.allclose(imported.model.logits(ids), hf(ids).logits, atol=1e-5)


def test_import_builds_the_tokenizer_from_vocab_json_and_merges(tmp_path, tok):
    from textdecade.interop.hf import import_hf

    _hf_gpt2(tmp_path, tok.vocab_size)
    model = json.loads(tok.to_json_str())["tokenizer"]["model"]
    (tmp_path / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    imported = import_hf(tmp_path)
    text = "The river bank flooded after the storm."
    # GPT-2's tokenizer adds no prefix space; ours does, in its normalizer
    assert imported.tokenizer.encode(" " + text) == tok.encode(text)


def test_export_gpt_loads_in_transformers_with_same_logits(tmp_path, tok, corpus_lines):
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    import textdecade as td
    from textdecade.api import TextModel
    from textdecade.interop.hf import export_hf

    model = tiny_gpt(tok, seed=1)
    handle = TextModel("gpt", model, tok, torch.device("cpu"))
    export_hf(handle, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    texts = [t[:150] for t in corpus_lines("gensim_lee.txt", 4)[1:4]]
    for text in texts:
        assert hf_tok(text)["input_ids"] == tok.encode(text)
    ids = torch.tensor([tok.encode(t)[:30] for t in texts])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model.logits(ids), atol=1e-5)
        base = AutoModel.from_pretrained(tmp_path / "hf").eval()
        ref = base(ids, output_hidden_states=True).hidden_states
        for a, b in zip(model.hidden_states(ids, torch.ones_like(ids)), ref):
            assert torch.allclose(a, b, atol=1e-5)
    # and back: the exported directory loads through td.load with the same embeddings
    again = td.load(tmp_path / "hf", device="cpu")
    assert again.family == "gpt" and again.pooling == "last"
    assert torch.allclose(
        torch.from_numpy(again.embed(texts)), torch.from_numpy(handle.embed(texts)), atol=1e-5
    )


def test_unsupported_architecture_is_one_clear_line(tmp_path):
    from textdecade.errors import UserError
    from textdecade.interop.hf import import_hf

    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]})
    )
    with pytest.raises(UserError, match="T5ForConditionalGeneration.*bert.*gpt2"):
        import_hf(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: [c], "expected a JSON object, found a list"),
        (lambda c: {**c, "n_embd": "32"}, "'n_embd' must be a valid d_model value, found '32'"),
        (lambda c: {**c, "n_layer": True}, "'n_layer' must be a valid n_layers value"),
        (lambda c: {**c, "activation_function": ["gelu"]}, "'activation_function' must be"),
        # absurd sizes are refused against the weights' own shapes, before any allocation
        (lambda c: {**c, "n_embd": 10**6, "n_head": 1}, "n_embd|d_model=1000000 but"),
        (lambda c: {**c, "n_positions": 10**7}, "max_len=10000000 .* but .*wpe.weight is 64 x 32"),
        (lambda c: {**c, "n_layer": 5000}, "asks for 5000 layers but the weights hold 2"),
    ],
)
def test_a_bad_config_is_one_line_before_anything_is_allocated(tmp_path, tok, change, message):
    from textdecade.errors import UserError
    from textdecade.interop.hf import import_hf

    _hf_gpt2(tmp_path, tok.vocab_size)
    tok.save(tmp_path / "tokenizer.json")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    with pytest.raises(UserError, match=message) as info:
        import_hf(tmp_path)
    assert "\n" not in str(info.value)
