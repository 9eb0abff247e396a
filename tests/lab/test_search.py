"""lab search on real text: a killed search resumes without redoing its trials, the pruner
stops a run through ``after_eval``, the best config is a recipe ``pretrain --config``
builds and trains, and bad input or a foreign study is one line before any work.

Tiny budgets (96 training sequences a trial, widths 32-64, 1-2 layers, the built-in
sample): every trial is a couple of seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textdecade.cli import main
from textdecade.errors import UserError

optuna = pytest.importorskip("optuna")

from textdecade.lab.search import (  # noqa: E402 - after the importorskip
    SearchSettings,
    build_trial_config,
    open_study,
    run_search,
    trial_name,
)
from textdecade.lab.space import build_space  # noqa: E402

SPACE = ["n_layers=1,2", "d_model=32,64", "batch_size=8"]
BUDGET = "96"


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def finished(db: Path) -> dict[str, int]:
    """Trials per state, read straight from Optuna's SQLite tables."""
    try:
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall()
    except sqlite3.OperationalError:  # the file exists before Optuna has made its tables
        return {}
    return dict(rows)


def _settings() -> SearchSettings:
    return SearchSettings(
        family="gpt", space=dict(s.split("=", 1) for s in SPACE), budget=int(BUDGET)
    )


@pytest.mark.slow
def test_a_killed_search_resumes_without_redoing_its_trials(tmp_path, one_thread):
    out = tmp_path / "search"
    cmd = [sys.executable, "-m", "textdecade", "lab", "search", "--trials", "4"]
    cmd += ["--budget", BUDGET, "--space", *SPACE, "-o", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # generous: the machine may be shared
    try:  # kill -9 once two trials are in the study (one finished, the next started)
        while time.time() < deadline and proc.poll() is None:
            db = out / "study.db"
            if db.is_file() and sum(finished(db).values()) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the search ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    before = finished(out / "study.db")
    done = before.get("COMPLETE", 0) + before.get("PRUNED", 0)
    assert done >= 1 and before.get("RUNNING", 0) >= 1, before
    first = out / "runs" / trial_name(0) / "model.safetensors"
    stamp = first.stat().st_mtime_ns
    report = run_search(out, _settings(), trials=4, progress=False)
    after = finished(out / "study.db")
    # The finished trials are kept, the killed one is marked failed, and only the rest ran.
    assert after.get("COMPLETE", 0) + after.get("PRUNED", 0) == 4
    assert after.get("FAIL", 0) == before.get("RUNNING", 0)
    assert first.stat().st_mtime_ns == stamp
    # The report, the picture, and the best config as a recipe pretrain accepts.
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(data["trials"]) == 4 and data["baseline"]["val_loss"] > 0
    assert "| trial | state | val loss | params | seconds |" in report.read_text(encoding="utf-8")
    assert (out / "search.png").stat().st_size > 0
    best = data["best"]
    recipe = out / "best.toml"
    from textdecade.config import build_config
    from textdecade.models import get_family

    _, Config, presets = get_family("gpt")
    loaded = build_config("gpt", Config, presets, "tiny", recipe)
    assert loaded == build_trial_config(_settings(), best["params"], [])
    run = tmp_path / "again"
    argv = ["pretrain", "gpt", "--config", str(recipe), "--set", "train.steps=2"]
    assert main([*argv, "--set", "train.eval_every=2", "-o", str(run), "-q"]) == 0
    assert (run / "model.safetensors").is_file()
    # A rerun asking for more trials continues the same study.
    run_search(out, _settings(), trials=5, progress=False)
    assert sum(v for k, v in finished(out / "study.db").items() if k != "FAIL") == 5


def test_the_pruner_stops_a_run_through_after_eval(tmp_path, one_thread):
    """A trial whose pruner always says prune stops at its first evaluation."""
    from textdecade.lab.search import ReportToTrial
    from textdecade.pretrain.trainer import Trainer

    config = build_trial_config(_settings(), {**_params(), "n_layers": 1, "d_model": 32}, [])
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    trial = study.ask()
    callback = ReportToTrial(trial)
    result = Trainer(config, tmp_path / "run", progress=False, callbacks=[callback]).fit()
    assert result.stopped_early and result.step == config.train.eval_every < config.train.steps
    assert list(study.get_trials()[0].intermediate_values) == [1]


def _params() -> dict:
    return {
        "n_layers": 1,
        "d_model": 32,
        "n_heads": 2,
        "ffn_mult": 2,
        "activation": "gelu",
        "norm_type": "layernorm",
        "lr": 3e-3,
        "batch_size": 8,
    }


def test_a_study_from_another_search_is_refused(tmp_path):
    gpt = _settings()
    a = tmp_path / "a"
    a.mkdir()
    open_study(optuna, a, gpt, build_space("gpt", gpt.space))
    b = tmp_path / "b"
    b.mkdir()
    shutil.copy(a / "study.db", b / "study.db")
    bert = SearchSettings(family="bert", space=gpt.space, budget=gpt.budget)
    with pytest.raises(UserError, match=r"belongs to another search \(its family differ"):
        open_study(optuna, b, bert, build_space("bert", bert.space))
    narrower = SearchSettings(family="gpt", space={**gpt.space, "lr": "1e-3"}, budget=gpt.budget)
    with pytest.raises(UserError, match="its space differ"):
        open_study(optuna, b, narrower, build_space("gpt", narrower.space))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--space", "depth=4"], "--space: unknown key 'depth' (choose from: n_layers"),
        (["--space", "d_model=48,50"], "d_model 50 is not divisible by n_heads 4"),
        (["--space", "d_model=3:3"], "is empty"),
        (["--space", "lr=fast"], "--space lr: 'fast' is not a number"),
        (["--sampler", "grid"], "unknown sampler 'grid'"),
        (["--pruner", "asha"], "unknown pruner 'asha'"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--family", "seq2seq"], "lab search does not apply to seq2seq"),
        (["--set", "model.norm_type=bogus"], "model.norm_type='bogus'"),
        (["--widths", "4"], "--widths applies to lab double-descent only"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["lab", "search", *argv, "-o", str(out), "-q"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_search_options_are_refused_on_other_experiments(tmp_path, capsys):
    assert main(["lab", "depth", "--trials", "3", "-o", str(tmp_path / "x"), "-q"]) == 2
    assert "--trials applies to lab search only" in capsys.readouterr().err


def test_without_optuna_the_search_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ModuleNotFoundError
    assert main(["lab", "search", "-o", str(tmp_path / "x"), "-q"]) == 2
    assert capsys.readouterr().err.strip().endswith("pip install 'textdecade[lab]'")


@pytest.mark.parametrize("budget", [480, 2400])
def test_every_batch_size_gets_the_budget_and_four_evaluations(budget):
    from textdecade.lab.search import N_EVALS, budget_overrides

    for batch in (4, 8, 16):
        values = dict(o.split("=", 1) for o in budget_overrides(budget, batch))
        steps, every = int(values["train.steps"]), int(values["train.eval_every"])
        assert budget - batch < steps * batch <= budget  # the same sequences to one batch
        early = [s for s in range(every, steps, every)]  # then the Trainer's final one
        assert len(early) + 1 == N_EVALS, (budget, batch, steps, every)
        assert int(values["train.eval_batches"]) * batch == 64  # the same validation windows
