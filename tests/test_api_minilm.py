"""all-MiniLM-L6-v2 (a real pretrained BERT) through ``td.load``: sentence-transformers parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_api_support import minilm_dir

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def minilm():
    import textdecade as td

    return td.load(minilm_dir(), device="cpu")


@pytest.fixture(scope="module")
def texts(corpus_lines):
    # real sentences of all lengths, plus whole Lee documents longer than the 256-token
    # context (both sides must truncate the same way)
    brown = corpus_lines("nltk_brown.txt", 300)[::7][:40]
    return brown + corpus_lines("gensim_lee.txt", 5)


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm, texts):
    from sentence_transformers import SentenceTransformer

    assert minilm.family == "bert" and minilm.pooling == "mean" and minilm.normalize
    assert minilm.framing.max_len == 256  # sentence_bert_config.json's max_seq_length
    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    ref = st.encode(texts, batch_size=16)
    with pytest.warns(UserWarning, match="truncated"):
        ours = minilm.embed(texts, batch_size=16)
    cos = (ref * ours).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(ours, axis=1)
    assert cos.min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # Normalize module


def test_minilm_finds_a_sentence_from_its_truncation(minilm, texts):
    # quality floor: each sentence minus its last word still retrieves the full sentence
    sentences = [t for t in texts[:40] if len(t.split()) >= 6]
    full = minilm.embed(sentences)
    cut = minilm.embed([" ".join(t.split()[:-1]) for t in sentences])
    hits = (cut @ full.T).argmax(1) == np.arange(len(sentences))
    assert hits.mean() >= 0.95


def test_minilm_word_states_match_transformers_and_separate_senses(minilm):
    from transformers import AutoModel

    money = [
        "She deposited her salary at the bank on Monday.",
        "The bank raised its interest rates again.",
    ]
    river = [
        "They had a picnic on the grassy bank of the river.",
        "The canoe drifted towards the muddy bank of the stream.",
    ]
    vecs = np.concatenate([minilm.embed_words(t, ["bank"]) for t in money + river])
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    sim = unit @ unit.T
    assert sim[0, 1] > max(sim[0, 2], sim[0, 3]) and sim[2, 3] > max(sim[2, 0], sim[2, 1])
    # the same vector from transformers: the word's pieces' last-layer states, averaged
    words = river[0].split()
    ids, index = minilm.tokenizer.encode_words(words)
    row = torch.tensor([[minilm.tokenizer.cls_id, *ids, minilm.tokenizer.sep_id]])
    with torch.no_grad():
        hf = AutoModel.from_pretrained(str(minilm_dir())).eval()
        out = hf(input_ids=row, output_hidden_states=True).hidden_states
    k = words.index("bank")
    pieces = [i + 1 for i, w in enumerate(index) if w == k]
    last = minilm.word_states([words])[0][k]
    last4 = minilm.word_states([words], layers="last4")[0][k]
    np.testing.assert_allclose(last, out[-1][0, pieces].mean(0).numpy(), atol=1e-4)
    ref4 = sum(h[0, pieces] for h in out[-4:]).mean(0).numpy()
    np.testing.assert_allclose(last4, ref4, atol=1e-4)
    inputs = minilm.input_word_vectors(["bank"])[0]
    table = hf.get_input_embeddings().weight.detach()
    np.testing.assert_allclose(inputs, table[minilm.tokenizer.word_piece_ids("bank")].mean(0))


@pytest.mark.slow
def test_minilm_imported_as_a_run_embeds_the_same(minilm, texts, tmp_path):
    import textdecade as td
    from textdecade.errors import UserError
    from textdecade.interop.hf import import_hf_run

    run, _ = import_hf_run(minilm_dir(), tmp_path / "run")
    again = td.load(run, device="cpu")
    assert again.family == "bert" and again.config.model.ln_eps == 1e-12
    assert (again.pooling, again.normalize, again.framing) == (
        minilm.pooling,
        minilm.normalize,
        minilm.framing,
    )
    short = texts[:8]
    np.testing.assert_allclose(again.embed(short), minilm.embed(short), atol=1e-6)
    with pytest.raises(UserError, match="already holds a bert run"):
        import_hf_run(minilm_dir(), run)


def test_minilm_in_an_old_style_sentence_transformers_layout(minilm, texts, tmp_path):
    import json

    import textdecade as td

    # older sentence-transformers folders keep the transformer in 0_Transformer/
    (tmp_path / "0_Transformer").mkdir()
    for item in minilm_dir().iterdir():
        if item.is_file() and item.name != "modules.json":
            (tmp_path / "0_Transformer" / item.name).symlink_to(item)
    (tmp_path / "1_Pooling").symlink_to(minilm_dir() / "1_Pooling")
    modules = json.loads((minilm_dir() / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    again = td.load(tmp_path, device="cpu")
    assert (again.pooling, again.normalize, again.framing) == (
        minilm.pooling,
        minilm.normalize,
        minilm.framing,
    )
    np.testing.assert_allclose(again.embed(texts[:4]), minilm.embed(texts[:4]), atol=1e-6)
