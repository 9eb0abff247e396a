"""Lighter installs (issue #21): what only some commands use is an extra, and a command that
needs a missing one says which to install in one line, before any work.

A missing package is simulated the way Python itself knows it: ``sys.modules[name] = None``
makes ``import name`` (and every ``import name.sub``) raise ImportError.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from textdecade.cli import main
from textdecade.config import tomllib  # tomli before Python 3.11
from textdecade.errors import UserError
from textdecade.extras import EXTRAS, MissingExtra, check, require

ROOT = Path(__file__).resolve().parents[1]
PLOTS = "pip install 'textdecade[plots]'"
GENSIM = "pip install 'textdecade[gensim]'"


def _without(monkeypatch, *packages: str) -> None:
    """Make ``packages`` (and their submodules) unimportable for one test."""
    for name in packages:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """An empty cache: the built-in sample has never been built here."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _refused(capsys, argv: list[str], install: str) -> str:
    """Run ``argv``; assert exit 2 and one stderr line naming ``install``; return it."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # one line
    assert err.startswith("textdecade: error: ") and err.rstrip().endswith(install), err
    return err


# ------------------------------------------------------------------------------- require
def test_require_names_the_package_and_the_extra(monkeypatch):
    _without(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtra) as info:
        require("matplotlib.figure", "plot curves")
    assert isinstance(info.value, UserError)  # the CLI makes it one line, exit 2
    assert str(info.value) == (
        "plot curves needs matplotlib, which is not installed: pip install 'textdecade[plots]'"
    )
    _without(monkeypatch, "gensim")
    with pytest.raises(MissingExtra) as info:
        check("gensim.test.utils", "the analogy set")
    assert str(info.value) == (
        "the analogy set needs gensim, which is not installed: pip install 'textdecade[gensim]'"
    )


def test_require_refuses_even_when_a_submodule_was_imported_before(monkeypatch):
    import gensim.test.utils  # noqa: F401 - in sys.modules now, as in a long session

    _without(monkeypatch, "gensim")
    with pytest.raises(MissingExtra, match="gensim"):
        require("gensim.test.utils", "x")


def test_require_returns_the_module_when_installed():
    utils = require("gensim.test.utils", "x")
    assert Path(utils.datapath("questions-words.txt")).is_file()
    assert require("matplotlib", "x").__name__ == "matplotlib"
    check("matplotlib", "x")  # installed: no error


def test_check_finds_the_package_without_importing_it():
    import subprocess

    code = "import sys; from textdecade.extras import check; check('gensim', 'x'); "
    code += "print('gensim' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"  # a command's first step stays cheap


def test_require_knows_only_the_extras_packages():
    with pytest.raises(KeyError, match="numpy"):
        require("numpy", "x")


def test_pyproject_extras_match_the_table_and_ci_installs_them_all():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]

    def names(reqs):
        return {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in reqs}

    core = names(project["dependencies"])
    # The card's dependencies (and BLEU's) stay required; the extras' packages do not.
    assert {"torch", "tokenizers", "datasets", "sentencepiece", "scikit-learn"} <= core
    assert "sacrebleu" in core
    assert not core & set(EXTRAS)
    for package, extra in EXTRAS.items():
        assert package in names(extras[extra]), (package, extra)
    user_facing = {"hf", "lab", "plots", "gensim"}
    assert set(EXTRAS.values()) <= user_facing
    assert set(extras["all"]) == {r for e in user_facing for r in extras[e]}
    assert set(extras["all"]) <= set(extras["dev"])  # CI installs .[dev]


# --------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, corpus_lines):
    """A GPT run of 3 steps on 150 lines of real text (as tests/test_cli_progress.py)."""
    root = tmp_path_factory.mktemp("extras")
    text = root / "c.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 150)) + "\n", encoding="utf-8")
    argv = ["pretrain", "gpt", "-q", "--corpus", str(text), "-o", str(root / "gpt")]
    argv += ["--set", "tokenizer.vocab_size=400", "--set", "train.threads=1", "--steps", "3"]
    argv += ["--set", "model.d_model=32", "--set", "model.n_layers=1"]
    argv += ["--set", "model.n_heads=2", "--set", "model.max_len=32", "--device", "cpu"]
    assert main(argv) == 0
    return root / "gpt"


def test_plot_without_matplotlib(capsys, monkeypatch, gpt_run):
    _without(monkeypatch, "matplotlib")
    err = _refused(capsys, ["plot", str(gpt_run)], PLOTS)
    assert "textdecade plot needs matplotlib" in err
    _refused(capsys, ["plot", "curves", str(gpt_run), "-o", str(gpt_run / "pics")], PLOTS)
    _refused(capsys, ["plot", "attention", str(gpt_run), "a sentence"], PLOTS)
    _refused(capsys, ["plot", "embeddings", str(gpt_run), "--words", "the", "a"], PLOTS)
    assert not (gpt_run / "loss.png").exists() and not (gpt_run / "pics").exists()


def test_plot_curves_library_call_without_matplotlib(monkeypatch, gpt_run, tmp_path):
    from textdecade.pretrain.plots import plot_run

    _without(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtra, match=r"textdecade\[plots\]"):
        plot_run(gpt_run, tmp_path / "pics")
    assert not (tmp_path / "pics").exists()


def test_eval_default_sets_without_gensim(capsys, monkeypatch, gpt_run):
    _without(monkeypatch, "gensim")
    err = _refused(capsys, ["eval", "analogy", str(gpt_run)], GENSIM)
    assert "analogy" in err and "--data" in err
    _refused(capsys, ["eval", "similarity", str(gpt_run)], GENSIM)
    _refused(capsys, ["eval", "compare", str(gpt_run), str(gpt_run), "--task", "analogy"], GENSIM)


def test_eval_with_its_own_data_needs_no_gensim(capsys, monkeypatch, gpt_run, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(": capital\nparis france london england\n", encoding="utf-8")
    _without(monkeypatch, "gensim")
    argv = ["eval", "analogy", str(gpt_run), "--data", str(questions), "-q", "--format", "json"]
    argv += ["--corpus", str(gpt_run.parent / "c.txt")]  # a contextual model's sample text
    assert main(argv) == 0, capsys.readouterr().err


def test_default_set_library_calls_without_gensim(monkeypatch):
    from textdecade.eval.analogy import default_analogy_path
    from textdecade.eval.similarity import default_similarity_paths
    from textdecade.eval.vectors import Vectors

    _without(monkeypatch, "gensim")
    for call in (default_analogy_path, default_similarity_paths):
        with pytest.raises(MissingExtra, match=r"textdecade\[gensim\]"):
            call()
    import numpy as np

    vectors = Vectors(["a", "b"], np.eye(2, dtype=np.float32))
    with pytest.raises(MissingExtra, match="to_gensim needs gensim"):
        vectors.to_gensim()


def test_pretrain_on_the_sample_without_gensim(capsys, monkeypatch, no_cache, tmp_path):
    _without(monkeypatch, "gensim")
    out = tmp_path / "w2v"
    err = _refused(capsys, ["pretrain", "word2vec", "-o", str(out), "-q"], GENSIM)
    assert "built-in sample corpus" in err
    assert not out.exists()  # refused before the run directory
    assert not (tmp_path / "cache").exists()  # and before the cache directory


def test_tokenizer_train_on_the_sample_without_gensim(capsys, monkeypatch, no_cache, tmp_path):
    _without(monkeypatch, "gensim")
    out = tmp_path / "tok.json"
    _refused(capsys, ["tokenizer", "train", "-o", str(out), "--vocab-size", "500"], GENSIM)
    assert not out.exists()


def test_a_cached_sample_needs_no_gensim(monkeypatch, no_cache, corpus_lines):
    from textdecade.data.sample import cache_dir, check_sample, sample_path

    _without(monkeypatch, "gensim")
    with pytest.raises(MissingExtra):
        check_sample()
    cached = sample_path.__globals__["_cached"]()
    cache_dir().mkdir(parents=True)
    cached.write_text("\n".join(corpus_lines("gensim_lee.txt", 5)) + "\n", encoding="utf-8")
    check_sample()  # built here before: gensim is not needed
    assert sample_path() == cached


def test_decade_without_gensim_leaves_no_directory(capsys, monkeypatch, no_cache, tmp_path):
    _without(monkeypatch, "gensim")
    out = tmp_path / "decade"
    err = _refused(capsys, ["decade", "-o", str(out), "-q"], GENSIM)
    assert "textdecade decade" in err
    assert not out.exists()


def test_decade_without_matplotlib_leaves_no_directory(capsys, monkeypatch, tmp_path):
    text = tmp_path / "c.txt"
    text.write_text("a few words of text\n", encoding="utf-8")
    _without(monkeypatch, "matplotlib")
    out = tmp_path / "decade"
    err = _refused(capsys, ["decade", "-o", str(out), "--corpus", str(text), "-q"], PLOTS)
    assert "pictures" in err
    assert not out.exists()


def test_lab_without_matplotlib(capsys, monkeypatch, tmp_path):
    text = tmp_path / "c.txt"
    text.write_text("a few words of text\n", encoding="utf-8")
    _without(monkeypatch, "matplotlib")
    out = tmp_path / "lab"
    err = _refused(capsys, ["lab", "init", "-o", str(out), "--corpus", str(text)], PLOTS)
    assert "textdecade lab init" in err
    _refused(capsys, ["lab", "lottery", "-o", str(out), "--corpus", str(text)], PLOTS)
    assert not out.exists()


def test_lab_on_the_sample_without_gensim(capsys, monkeypatch, no_cache, tmp_path):
    _without(monkeypatch, "gensim")
    out = tmp_path / "lab"
    _refused(capsys, ["lab", "init", "-o", str(out)], GENSIM)  # no corpus: the sample
    assert not out.exists()
