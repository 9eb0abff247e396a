"""Side-by-side tables (Markdown/CSV/JSON) and PNG maps."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from textdecade.errors import UserError
from textdecade.eval.analogy import Question, evaluate_analogies
from textdecade.eval.homograph import evaluate_homographs
from textdecade.eval.plots import embedding_map, project_2d, sense_map
from textdecade.eval.report import compare, render
from textdecade.eval.vectors import Vectors


@pytest.fixture
def toy():
    words = ["france", "paris", "germany", "berlin", "italy", "rome", "spain"]
    m = np.array(
        [[0, 1, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1], [0, 1, -1], [1, 1, -1], [0, 1, 0.5]],
        np.float32,
    )
    return Vectors(words, m)


def test_compare_puts_models_side_by_side(toy):
    qs = [
        Question("france", "paris", "germany", "berlin", "capitals", "semantic", 1),
        Question("france", "paris", "italy", "rome", "capitals", "semantic", 2),
        Question("france", "paris", "japan", "tokyo", "capitals", "semantic", 3),
    ]
    good = evaluate_analogies(toy, qs)
    noisy = Vectors(toy.words, toy.matrix + np.random.default_rng(0).normal(0, 2, toy.matrix.shape))
    bad = evaluate_analogies(noisy, qs)
    assert good.accuracy == 1.0 and good.coverage == pytest.approx(2 / 3)
    table = compare({"w2v": good, "noisy": bad})
    header = table.splitlines()[0]
    assert "analogy 3cosadd acc" in header and "analogy 3cosadd coverage" in header
    assert "| w2v" in table and "1.0000" in table and "0.6667" in table
    rows = list(csv.DictReader(io.StringIO(compare({"w2v": good, "noisy": bad}, "csv"))))
    assert [r["model"] for r in rows] == ["w2v", "noisy"]
    assert float(rows[0]["analogy 3cosadd coverage"]) == pytest.approx(2 / 3)
    doc = json.loads(compare({"w2v": [good]}, "json"))
    assert doc["results"]["w2v"][0]["sections"][0]["answered"] == 2
    assert json.loads(render(good, "json"))["total"]["total"] == 3
    with pytest.raises(ValueError, match="unknown format"):
        compare({"w2v": good}, "xml")


def test_plots_write_pngs(tmp_path, toy):
    out = embedding_map(toy, ["paris", "berlin", "rome", "tokyo"], tmp_path / "m.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError, match="at least two known words"):
        embedding_map(toy, ["tokyo", "paris"], tmp_path / "x.png")
    rng = np.random.default_rng(0)
    words = ["the", "bank", "river", "money", "a", "."]
    static = Vectors(words, rng.standard_normal((len(words), 5)))
    png = sense_map({"static": static}, "bank", tmp_path / "s.png", max_per_sense=4)
    assert png.stat().st_size > 1000 and not list(tmp_path.glob("*.tmp*"))
    xy = project_2d(rng.standard_normal((12, 5)), "tsne")
    assert xy.shape == (12, 2) and np.ptp(xy[:, 0]) > 0
    assert np.all(project_2d(np.ones((3, 4))) == 0)  # one point repeated: drawn once


def test_homograph_result_renders(toy):
    res = evaluate_homographs(toy, words=["bank"])
    assert res.accuracy == res.mfs_accuracy
    assert "homograph MFS acc" in compare({"toy": res})
    assert json.loads(render(res, "json"))["protocol"] == "leave-one-out"


def test_embeddings_plot_draws_every_word_it_counts(tmp_path, monkeypatch, toy):
    """Issue #21: a map titled "8 words" drew 6, and named backoff words as unknown."""
    from textdecade.eval import plots
    from textdecade.eval.suite import plot_embeddings

    drawn = {}

    def capture(fig, path):
        drawn["ax"] = fig.axes[0]
        return path

    monkeypatch.setattr(plots, "_save", capture)
    rows = {w: i for i, w in enumerate(toy.words)}
    backed = Vectors(
        toy.words,
        toy.matrix,
        backoff=lambda w: toy.matrix[rows[w.lower()]] if w.lower() in rows else None,
    )
    words = ["Paris", "berlin", "rome", "France", "germany", "italy", "spain", "tokyo"]
    plot_embeddings(backed, words, tmp_path / "m.png")
    ax = drawn["ax"]
    assert [t.get_text() for t in ax.texts] == words[:-1]  # "Paris", "France" via backoff
    assert len(ax.collections[0].get_offsets()) == 7
    title = ax.get_title()
    assert title.startswith("7 words (PCA)"), title
    assert title.endswith("not in vocabulary: tokyo"), title
