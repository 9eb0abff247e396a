"""Hub ids through the HF cache, and gensim's pickles turned away, in one line each.

The cache is a temporary folder laid out as huggingface_hub lays out its own
(``models--ORG--NAME/snapshots/<rev>/`` and ``refs/main``), holding links to the installed
all-MiniLM-L6-v2 files; nothing here touches the network (HF_HUB_OFFLINE=1, or name
lookups refused and a hub endpoint on a closed loopback port).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import textdecade as td
from tests.data.test_dataset_offline import no_network
from tests.test_api_support import minilm_dir
from tests.test_cli import assert_one_line_error, run
from textdecade.errors import UserError
from textdecade.interop.hub import (
    GensimPickle,
    HubUnavailable,
    hub_cache_dir,
    is_hub_id,
    model_dir,
)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
REV = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"  # any 40-hex commit name will do
TEXTS = ["A man is playing a guitar.", "The new movie is awesome.", "bank"]


def fake_cache(root: Path, repo: str, source: Path) -> Path:
    """A HF hub cache under ``root`` holding ``repo`` as links to the files of ``source``."""
    storage = root / ("models--" + repo.replace("/", "--"))
    snapshot = storage / "snapshots" / REV
    for file in source.rglob("*"):
        if file.is_file():
            link = snapshot / file.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(file)
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(REV)
    return snapshot


@pytest.fixture
def offline_cache(monkeypatch, tmp_path):
    """An empty HF cache in ``tmp_path`` with the hub offline; returns the cache folder."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_id_loads_from_the_cache_as_its_directory(offline_cache):
    snapshot = fake_cache(offline_cache, MINILM, minilm_dir())
    model = td.load(MINILM, device="cpu")
    direct = td.load(minilm_dir(), device="cpu")
    assert model.family == "bert" and model.normalize  # the ST modules were read too
    np.testing.assert_array_equal(model.embed(TEXTS), direct.embed(TEXTS))
    assert model_dir(MINILM) == snapshot
    # the module-level embed resolves the id the same way
    np.testing.assert_array_equal(
        td.embed(TEXTS[:1], MINILM, device="cpu"), direct.embed(TEXTS[:1])
    )


def test_uncached_hub_id_offline_is_one_line(offline_cache):
    with pytest.raises(HubUnavailable) as caught:
        td.load("nobody-zz/not-cached-model")
    msg = str(caught.value)
    assert "\n" not in msg and "not-cached-model" in msg
    assert "not in the HF cache" in msg and str(offline_cache) in msg
    assert "HF_HUB_OFFLINE" in msg and "local model directory" in msg


def test_the_cache_folder_is_read_at_each_call(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert hub_cache_dir() == str(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hub_cache_dir() == str(tmp_path / "elsewhere")


def test_uncached_hub_id_offline_cli_exits_2(offline_cache, capsys, tmp_path):
    code, out, err = run(
        capsys, "embed", "nobody-zz/not-cached-model", "-o", str(tmp_path / "x.npy")
    )
    assert_one_line_error(code, err, "not in the HF cache")
    assert out == ""


def test_unreachable_hub_fails_fast(offline_cache, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", no_network(monkeypatch))  # a refused loopback port
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(HubUnavailable, match="the hub is unreachable"):
        td.load("nobody-zz/not-cached-model")


def test_what_is_no_hub_id_keeps_the_not_found_message(offline_cache, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("has spaces here", "runs/missing", "./gpt2", "a/b/c"):
        assert not is_hub_id(name)
        with pytest.raises(UserError) as caught:
            td.load(name)
        assert not isinstance(caught.value, HubUnavailable)
        assert str(caught.value) == f"model directory not found: {Path(name)}"
    assert is_hub_id("gpt2") and is_hub_id("bert-base-uncased") and is_hub_id(MINILM)
    # without a runs/ folder here, runs/missing could be a hub id: still named, as not found
    with pytest.raises(HubUnavailable, match="^model directory not found: other/missing, "):
        td.load("other/missing")


def test_gensim_pickles_are_refused_with_the_conversion(tmp_path, capsys, corpus_lines):
    from gensim.models import KeyedVectors, Word2Vec

    from textdecade.eval.vectors import Vectors

    sentences = [line.lower().split() for line in corpus_lines("gensim_lee.txt", 100)]
    w2v = Word2Vec(sentences, vector_size=16, min_count=2, workers=1, epochs=1, seed=0)
    w2v.save(str(tmp_path / "w2v.model"))
    kv_path = tmp_path / "vectors.kv"
    w2v.wv.save(str(kv_path))
    for path in (kv_path, tmp_path / "w2v.model"):
        with pytest.raises(GensimPickle, match="gensim pickle .* never unpickles") as caught:
            td.load(path)
        assert "\n" not in str(caught.value) and "save_word2vec_format" in str(caught.value)
        code, _, err = run(capsys, "embed", str(path), "--words", "the")
        assert_one_line_error(code, err, "gensim pickle")
    # the conversion the message gives works, and textdecade reads the result
    KeyedVectors.load(str(kv_path)).save_word2vec_format(str(tmp_path / "w.bin"), binary=True)
    ours = Vectors.load(tmp_path / "w.bin")
    np.testing.assert_allclose(ours["the"], w2v.wv["the"], rtol=1e-6)
    # a sentencepiece .model is protobuf, not a pickle: not mistaken for gensim
    (tmp_path / "sp.model").write_bytes(b"\n\x0e\n\x05<unk>")
    with pytest.raises(UserError, match="model directory not found"):
        td.load(tmp_path / "sp.model")
