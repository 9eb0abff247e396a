"""The engine on a toy family: a complete run directory, exact resume, signals, NaN, refusals."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from safetensors.torch import load_file

from tests.pretrain import toy_family
from textdecade import models
from textdecade.config import OPTIMIZERS, build_config
from textdecade.errors import CheckpointError, ConfigError, UserError
from textdecade.pretrain import rundir
from textdecade.pretrain.callbacks import Callback
from textdecade.pretrain.steps import TimeBudget
from textdecade.pretrain.trainer import (
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
)


@pytest.fixture(autouse=True)
def toy_registered():
    models.register_family("toy", "tests.pretrain.toy_family")
    yield
    models.unregister_family("toy")


@pytest.fixture(scope="module")
def texts(corpus_lines):
    return corpus_lines("gensim_lee.txt", 120)


def fit(run_dir, texts, *overrides, **kwargs):
    config = build_config(
        "toy", toy_family.Config, toy_family.PRESETS, "tiny", None, ["train.threads=1", *overrides]
    )
    return Trainer(config, run_dir, corpus=texts, progress=False, **kwargs).fit()


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def steps_logged(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, texts):
    """An uninterrupted 30-step run that the interrupted ones must land on exactly."""
    import tests.pretrain.toy_family  # noqa: F401 - registered per test, imported once here

    run_dir = tmp_path_factory.mktemp("ref") / "run"
    models.register_family("toy", "tests.pretrain.toy_family")
    try:
        result = fit(run_dir, texts)
    finally:
        models.unregister_family("toy")
    return run_dir, result


def test_a_run_directory_is_complete_and_loss_falls(reference):
    run_dir, result = reference
    for name in ("config.json", "tokenizer.json", "data_meta.json", "model.safetensors"):
        assert (run_dir / name).is_file(), name
    assert result.step == 30
    assert steps_logged(run_dir) == list(range(1, 31))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # A bigram model on real text: the loss must fall well below the uniform log(300) = 5.7.
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    assert "val_loss" in records[9] and "tokens_per_s" in records[4]
    checkpoints = sorted(p.name for p in (run_dir / "state").iterdir())
    assert checkpoints == ["step_00000025", "step_00000030"]  # keep_last = 2
    config, model, _ = rundir.load_run(run_dir)
    assert config.family == "toy" and config.train.steps == 30
    assert_bitwise_equal({k: v for k, v in model.state_dict().items()}, weights(run_dir))


def test_resume_after_a_crash_is_bitwise_identical(tmp_path, texts, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(run_dir, texts, "model.crash_at=17")
    # A checkpoint being written when the process died, and one that is corrupt:
    (run_dir / "state" / "step_00000020").mkdir()
    bad = run_dir / "state" / "step_00000019"
    bad.mkdir()
    (bad / "COMPLETE").write_text("ok")
    (bad / "trainer.json").write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(run_dir, texts, resume=True)
    assert any("skipping checkpoint step_00000020" in str(w.message) for w in caught)
    assert_bitwise_equal(weights(run_dir), weights(reference[0]))
    # ... and the same bytes on disk (safetensors' metadata order is fixed)
    model_file = "model.safetensors"
    assert (run_dir / model_file).read_bytes() == (reference[0] / model_file).read_bytes()
    assert steps_logged(run_dir) == list(range(1, 31))


def test_sigterm_checkpoints_then_resume_lands_on_the_same_weights(tmp_path, texts, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="SIGTERM.*step 13.*--resume"):
        fit(run_dir, texts, "model.signal_at=12")
    assert (run_dir / "state" / "step_00000013" / "COMPLETE").exists()
    fit(run_dir, texts, resume=True)
    assert_bitwise_equal(weights(run_dir), weights(reference[0]))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, texts):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="nan at step 13.*step 10"):
        fit(run_dir, texts, "model.nan_at=12")
    saved = load_file(str(run_dir / "state" / "step_00000010" / "model.safetensors"))
    assert_bitwise_equal(weights(run_dir), saved)
    assert all(torch.isfinite(t).all() for t in weights(run_dir).values())


def test_an_existing_run_is_refused_unless_resume_or_overwrite(tmp_path, texts, reference):
    with pytest.raises(UserError, match="already holds a toy run.*--resume.*--overwrite"):
        rundir.prepare_run_dir(reference[0], "toy", resume=False, overwrite=False)
    with pytest.raises(CheckpointError, match="holds a toy run; it cannot resume as gpt"):
        rundir.prepare_run_dir(reference[0], "gpt", resume=True, overwrite=False)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and holds no run"):
        fit(tmp_path, texts)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_gradient_accumulation_matches_one_big_batch(tmp_path, texts):
    one = fit(tmp_path / "a", texts, "train.steps=6", "train.batch_size=8", "model.dropout=0.0")
    two = fit(
        tmp_path / "b",
        texts,
        "train.steps=6",
        "train.batch_size=4",
        "train.grad_accum=2",
        "model.dropout=0.0",
    )
    assert one.step == two.step == 6
    # Different batches (the batcher draws per micro-batch), same tokens per step and a
    # comparable loss: accumulation averages, it does not sum.
    assert abs(one.metrics["loss"] - two.metrics["loss"]) < 0.5


def test_deferred_loss_reads_log_every_step_and_still_stop_on_nan(
    tmp_path, texts, reference, monkeypatch
):
    """On a GPU the losses are read every few steps (one sync); nothing may change but when."""
    from textdecade.pretrain import trainer

    monkeypatch.setattr(trainer, "_sync_interval", lambda device, log_every: 7)
    fit(tmp_path / "run", texts)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ref_lines = (reference[0] / "metrics.jsonl").read_text().splitlines()
    ours = [json.loads(line)["loss"] for line in lines]
    assert ours == pytest.approx([json.loads(line)["loss"] for line in ref_lines], abs=1e-6)
    assert_bitwise_equal(weights(tmp_path / "run"), weights(reference[0]))
    with pytest.raises(TrainingDiverged, match="nan at step 13.*step 10"):
        fit(tmp_path / "nan", texts, "model.nan_at=12")


def test_register_family_refuses_a_taken_name_and_a_module_without_the_contract():
    with pytest.raises(UserError, match="already registered"):
        models.register_family("gpt", "tests.pretrain.toy_family")
    with pytest.raises(UserError, match="lowercase"):
        models.register_family("My Family", "tests.pretrain.toy_family")
    models.register_family("broken", "textdecade.errors")  # a module, but not a family
    try:
        with pytest.raises(UserError, match="defines no Model, Config, PRESETS"):
            models.get_family("broken")
    finally:
        models.unregister_family("broken")


def test_resume_with_nothing_to_resume_is_refused_and_creates_nothing(tmp_path):
    missing, empty = tmp_path / "missing" / "run", tmp_path / "empty"
    empty.mkdir()
    for run_dir, where in ((missing, "does not exist"), (empty, "holds no textdecade run")):
        with pytest.raises(UserError, match=f"nothing to resume in .*{where}"):
            rundir.prepare_run_dir(run_dir, "toy", resume=True, overwrite=False)
    assert not missing.parent.exists() and not any(empty.iterdir())


def test_a_vocabulary_too_small_to_train_is_refused_before_the_run_directory(tmp_path, texts):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="tokenizer.vocab_size=100 is too small"):
        fit(run_dir, texts, "tokenizer.vocab_size=100")
    assert not run_dir.exists()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains_and_resumes_bitwise(name, tmp_path, texts):
    # the lab compares these on equal terms: each must train and resume exactly
    settings = [f"train.optimizer={name}", "train.lr=0.01", "train.steps=12", "train.ckpt_every=4"]
    straight = fit(tmp_path / "straight", texts, *settings)
    assert all(math.isfinite(v) for v in straight.metrics.values())
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(crashed, texts, *settings, "model.crash_at=9")
    fit(crashed, texts, *settings, resume=True)
    assert_bitwise_equal(weights(crashed), weights(tmp_path / "straight"))


def test_epochs_instead_of_steps_make_that_many_passes(tmp_path, texts):
    result = fit(tmp_path / "run", texts, "train.epochs=0.05", "train.steps=999")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    per_step = records[0]["epoch"] / records[0]["step"]
    assert result.step == records[-1]["step"] < 999  # epochs win over steps
    assert 0.05 <= records[-1]["epoch"] < 0.05 + per_step + 1e-4  # that far, not a step more


class _ZeroFirstWeight(Callback):
    """Keeps one weight at zero (as a pruning mask does) and stops at the first evaluation."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def on_start(self, model, step):
        self.calls.append(("start", step))
        self.after_step(model, step)

    def after_step(self, model, step):
        self.calls.append(("step", step))
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = 0.0

    def after_eval(self, step, record):
        self.calls.append(("eval", step))
        assert "val_loss" in record
        return True


def test_callbacks_see_every_step_change_weights_and_stop_the_run(tmp_path, texts):
    callback = _ZeroFirstWeight()
    result = fit(tmp_path / "run", texts, "train.eval_every=10", callbacks=[callback])
    assert result.stopped_early and result.step == 10
    assert callback.calls[0] == ("start", 0)
    assert [c for c in callback.calls if c[0] == "step"][1:] == [("step", s) for s in range(1, 11)]
    assert callback.calls[-1] == ("eval", 10)
    first = next(iter(weights(tmp_path / "run").values()))
    assert float(first.view(-1)[0]) == 0.0
    # the stopped run's checkpoint is its last step: a resume continues from there
    assert steps_logged(tmp_path / "run")[-1] == 10


def test_a_time_budget_measures_the_rate_then_fixes_the_step_count():
    budget = TimeBudget(60.0)
    assert budget.steps(1, 2.0) is None  # the first step pays for warm-up: not yet
    assert budget.steps(2, 2.5) is None
    assert budget.steps(3, 2.9) is None  # 3 steps, but under 5% of the budget (3 s)
    # steps 2..6 took 0.5 s each after the 2 s first one: the 55.5 s left fill 111 more
    assert budget.steps(6, 4.5) == 6 + 111


def test_train_minutes_runs_to_a_measured_total_and_a_resume_keeps_it(tmp_path, texts):
    run_dir = tmp_path / "run"
    result = fit(run_dir, texts, "train.minutes=0.02", "train.ckpt_every=1000")
    assert result.step > 3, result
    state = json.loads(next(run_dir.glob("state/step_*/trainer.json")).read_text())
    assert state["total"] == result.step  # the step count the budget fixed
    again = fit(run_dir, texts, "train.minutes=0.02", "train.ckpt_every=1000", resume=True)
    assert again.step == result.step  # nothing left: the budget is not measured again
    with pytest.raises(ConfigError, match="train.minutes"):
        fit(tmp_path / "bad", texts, "train.minutes=-1")
