"""The in-process front of the engine: whole passes, per-pass history, data reuse, refusals."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from tests.conftest import data_path
from textdecade.errors import ConfigError, UserError
from textdecade.models import word2vec
from textdecade.pretrain import rundir
from textdecade.pretrain.fit import epoch_summary, prepare, train

SMALL = {"workers": 1, "d_model": 16, "min_count": 3}


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with open(data_path("corpus_en", "nltk_abc_news.txt"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()][:1500]


@pytest.fixture(scope="module")
def tokenizer(texts):
    from textdecade.tokenizer import Tokenizer

    return Tokenizer.train(texts, vocab_size=2000)


def fit(texts, tokenizer, run_dir=None, model=SMALL, **train_settings):
    settings = {"epochs": 2, "batch_size": 7000, "eval_every": 0, "device": "cpu"}
    settings.update(train_settings)
    return train(
        "word2vec",
        texts,
        tokenizer=tokenizer,
        run_dir=run_dir,
        settings={"model": model, "train": settings},
    )


def data_files(run_dir):
    return sorted(p.relative_to(run_dir) for p in (run_dir / "data").rglob("*") if p.is_file())


def test_epochs_are_whole_passes_and_the_history_has_one_row_each(texts, tokenizer):
    run = fit(texts, tokenizer)
    per_pass = math.ceil(run.data.n_units / 7000)  # the last batch of a pass is short
    assert per_pass * 7000 > run.data.n_units and run.result.step == 2 * per_pass
    assert [e["epoch"] for e in run.epochs] == [1, 2]
    assert [e["steps"] for e in run.epochs] == [per_pass, per_pass]
    assert all(e["units_per_s"] > 0 and e["seconds"] > 0 for e in run.epochs)
    # The loss of SGNS (1 positive, 5 negatives) starts below 6 ln 2 and falls.
    assert run.epochs[1]["loss"] < run.epochs[0]["loss"] < 6 * math.log(2)
    assert torch.isfinite(run.model.in_vectors).all()


def test_data_from_trains_on_another_runs_data_and_keeps_its_own_links(texts, tokenizer, tmp_path):
    source = tmp_path / "source"
    data = prepare(
        "word2vec", texts, run_dir=source, tokenizer=tokenizer, settings={"model": SMALL}
    )
    assert not (source / rundir.WEIGHTS).exists()  # prepared, not trained
    settings = {"model": SMALL, "train": {"epochs": 1, "batch_size": 7000, "eval_every": 0}}
    run = train("word2vec", run_dir=tmp_path / "lr", data_from=source, settings=settings)
    assert run.data.n_units == data.n_units and run.result.step == math.ceil(data.n_units / 7000)
    files = data_files(source)
    assert files and files == data_files(run.run_dir)
    assert all((source / f).stat().st_ino == (run.run_dir / f).stat().st_ino for f in files)
    shutil.rmtree(source / "data")  # the run's data outlives its source
    reopened = word2vec.Model.load_prepared(run.run_dir / "data", run.data.meta)
    assert reopened.n_units == data.n_units
    assert run.tokenizer.vocab_size == tokenizer.vocab_size
    with pytest.raises(UserError, match="holds word2vec data, not glove's"):  # before any dir
        train("glove", run_dir=tmp_path / "glove", data_from=source)
    assert not (tmp_path / "glove").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"clip": 0.5}, "train.clip=0.5: word2vec's own update does not read train.clip"),
        ({"weight_decay": 0.0}, "does not read train.weight_decay"),
        ({"dtype": "bf16"}, "does not read train.dtype"),
        ({"optimizer": "adam"}, "trains with its own sgd update"),
    ],
)
def test_settings_a_hand_written_update_ignores_are_refused_before_any_work(
    texts, tokenizer, tmp_path, setting, message
):
    with pytest.raises(ConfigError, match=message):
        fit(texts, tokenizer, tmp_path / "run", **setting)
    assert not (tmp_path / "run").exists()


def test_the_thread_count_is_the_runs_not_the_callers(texts, tokenizer):
    before = torch.get_num_threads()
    fit(texts, tokenizer, epochs=1, threads=1)
    assert torch.get_num_threads() == before


def test_epoch_summary_folds_steps_into_passes():
    records = [
        {"step": 1, "loss": 3.0, "epoch": 0.5, "seconds": 1.0},
        {"step": 2, "loss": 2.0, "epoch": 1.0, "seconds": 2.0},
        {"step": 3, "loss": 1.5, "epoch": 1.5, "seconds": 4.0},
        {"step": 4, "loss": 0.5, "epoch": 2.0, "seconds": 6.0},
        {"step": 5, "loss": 1.0, "epoch": 2.25, "seconds": 7.0},  # cut short by train.steps
    ]
    rows = epoch_summary(records, n_units=100)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["loss"] for r in rows] == [2.5, 1.0, 1.0]
    assert [r["seconds"] for r in rows] == [2.0, 4.0, 1.0]
    assert [r["units_per_s"] for r in rows] == [50.0, 25.0, 25.0]
