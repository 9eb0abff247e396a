"""The lab on real text: the decade's lessons show at the tiny budget, and bad input is one line.

Each claim was measured first with these exact settings (the tiny budget: 4-layer GPT of
width 64, 300 steps of 8 x 64 tokens, one seed, the built-in sample) and the floors sit
inside the measured margins (numbers in the comments; see benchmarks/RESULTS.md, "lab").
"""

from __future__ import annotations

import json

import pytest

from textdecade.cli import main
from textdecade.lab import LabSettings, run_lab
from textdecade.lab.experiments import EXPERIMENTS
from textdecade.lab.runner import make_cells


def lab(tmp_path, experiment: str, **settings):
    out = tmp_path / experiment
    run_lab(out, LabSettings(experiment=experiment, seeds=1, **settings), progress=False)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rows = {(r["variant"], r["depth"]): r for r in report["rows"]}
    return out, report, rows


@pytest.mark.slow
def test_depth_without_the_lessons_does_not_learn_and_with_them_does(tmp_path):
    out, report, rows = lab(tmp_path, "depth", depths=[8])
    without, with_ = rows[("without", 8)], rows[("with", 8)]
    unigram = report["unigram_loss"]  # measured: 6.545 nats per token
    # Measured: 6.458 with the lessons, below a context-free model; 153.9 without, where
    # N(0, 1) weights make the logits enormous and nothing moves them far in 300 steps.
    assert with_["val_loss_mean"] < unigram
    assert without["val_loss_mean"] > 10 * unigram
    # At step 1: 99.6% of the sigmoids saturated; the blocks' gradient norms spread over
    # 769x without the lessons, 2.8x with them (Glorot & Bengio's picture).
    assert without["saturated"] > 0.9
    assert without["grad_spread"] > 30 * with_["grad_spread"]
    # The report, its pictures, and every cell an ordinary run directory.
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "with the lessons" in text and "unigram" in text
    assert (out / "loss_curves.png").stat().st_size > 0
    assert (out / "gradient_by_depth.png").stat().st_size > 0
    assert (out / "runs" / "with_L8_s1" / "model.safetensors").is_file()
    # A rerun finds every cell done and only rewrites the report.
    before = (out / "runs" / "with_L8_s1" / "model.safetensors").stat().st_mtime_ns
    run_lab(out, LabSettings(experiment="depth", seeds=1, depths=[8]), progress=False)
    assert (out / "runs" / "with_L8_s1" / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow
def test_adam_beats_sgd_at_their_best_swept_rates(tmp_path):
    _, report, rows = lab(tmp_path, "optimizer", variants=["sgd", "adam"])
    # Measured: Adam 6.031 at lr 3e-3, SGD 6.160 at lr 1.0 (each the best of four rates).
    assert report["best_lr"]["adam"] in EXPERIMENTS["optimizer"].sweep["adam"]
    assert rows[("adam", None)]["val_loss_mean"] < rows[("sgd", None)]["val_loss_mean"]
    assert len(report["sweep"]) == 8


@pytest.mark.slow
def test_without_residuals_depth_hurts_and_with_them_it_does_not(tmp_path):
    _, _, rows = lab(tmp_path, "residual", depths=[2, 12])
    # Measured: residual 6.233 (2 layers) and 6.240 (12); plain 6.552 and 6.553, which is
    # the unigram baseline: a plain pre-norm stack learns nothing in 300 steps here.
    assert rows[("plain", 12)]["val_loss_mean"] > rows[("residual", 12)]["val_loss_mean"] + 0.2
    assert rows[("residual", 12)]["val_loss_mean"] < rows[("residual", 2)]["val_loss_mean"] + 0.1


def test_the_grid_crosses_variants_depths_and_seeds():
    cells = make_cells(EXPERIMENTS["residual"], seeds=3)
    assert len(cells) == 2 * 4 * 3 and len({c.name for c in cells}) == len(cells)
    sweep = make_cells(EXPERIMENTS["optimizer"], seeds=3)  # first seed only, every rate
    assert len(sweep) == 5 * 4 and {c.seed for c in sweep} == {1}
    best = {name: rates[1] for name, rates in EXPERIMENTS["optimizer"].sweep.items()}
    full = make_cells(EXPERIMENTS["optimizer"], seeds=3, best_lr=best)
    assert len(full) == 5 * 4 + 5 * 2  # then the other seeds at each best rate


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lab", "dropout"], "unknown experiment 'dropout' (choose from: init, activation"),
        (["lab", "norm", "--family", "word2vec"], "lab norm does not apply to word2vec"),
        (["lab", "norm", "--family", "seq2seq"], "lab norm does not apply to seq2seq"),
        (["lab", "norm", "--variants", "groupnorm"], "lab norm has no variant 'groupnorm'"),
        (["lab", "activation", "--depths", "4"], "--depths does not apply"),
        (["lab", "init", "--set", "model.norm_type=bogus"], "model.norm_type='bogus'"),
        (["lab", "init", "--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main([*argv, "-o", str(out), "-q"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_a_directory_that_holds_another_experiment_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"settings": {"experiment": "norm"}, "cells": {}}))
    assert main(["lab", "init", "-o", str(out), "-q"]) == 2
    assert "holds the lab's norm experiment" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["lab", "init", "-o", str(tmp_path / "other"), "-q"]) == 2
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_help_lists_every_experiment_with_its_paper(capsys):
    assert main(["lab", "--help"]) == 0
    text = capsys.readouterr().out
    for experiment in [*EXPERIMENTS.values()]:
        assert experiment.name in text
    for name in ("lottery", "search", "double-descent"):
        assert name in text
    assert "Glorot & Bengio 2010" in text and "He et al. 2016" in text
