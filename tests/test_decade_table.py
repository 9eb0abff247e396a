"""The decade's table: intervals beside every score, * where the homograph gain holds."""

from __future__ import annotations

from textdecade.decade.report import markdown_table


def _row(**extra):
    row = {
        "family": "bert",
        "parameters": 1000,
        "train_seconds": 60.0,
        "seen": 5000,
        "unit": "tokens",
        "analogy_acc": 0.1,
        "analogy_acc_low": 0.08,
        "analogy_acc_high": 0.12,
        "analogy_coverage": 0.5,
        "wordsim353.tsv_spearman": 0.2,
        "wordsim353.tsv_spearman_low": 0.1,
        "wordsim353.tsv_spearman_high": 0.3,
        "homograph_acc": 0.7,
        "homograph_acc_low": 0.62,
        "homograph_acc_high": 0.77,
        "homograph_mfs": 0.5,
        "homograph_vs_mfs_p": 0.0005,
        "homograph_probe_acc": 0.55,
        "homograph_probe_acc_low": 0.48,
        "homograph_probe_acc_high": 0.62,
        "homograph_probe_vs_mfs_p": 0.2,
        "val_ppl": 120.0,
        "val_ppl_low": 110.0,
        "val_ppl_high": 131.0,
    }
    return row | extra


def test_cells_show_intervals_and_mark_what_beats_mfs():
    line = markdown_table([_row()]).splitlines()[2]
    assert "10.0 [8.0, 12.0] (50.0)" in line
    assert "0.200 [0.100, 0.300]" in line
    assert "70.0 [62.0, 77.0]* (50.0)" in line  # p = 0.0005 against MFS: marked
    assert "55.0 [48.0, 62.0] |" in line  # p = 0.2: not marked
    assert "120.00 [110.00, 131.00]" in line


def test_rows_scored_before_intervals_still_render():
    old = {k: v for k, v in _row().items() if not k.endswith(("_low", "_high", "_p"))}
    line = markdown_table([old]).splitlines()[2]
    assert "70.0 (50.0)" in line and "[" not in line and "*" not in line


def test_seeds_show_mean_and_spread_beside_the_within_run_interval():
    from textdecade.decade.report import table_rows

    def state(acc, low, high, p):
        scores = {"homograph_acc": acc, "homograph_acc_low": low, "homograph_acc_high": high}
        return {"n_params": 10, "seconds": 6.0, "scores": scores | {"homograph_vs_mfs_p": p}}

    plan = {
        "families": {
            "bert": state(0.70, 0.66, 0.74, 0.001),
            "bert-seed1": state(0.60, 0.55, 0.65, 0.01),
            "bert-seed2": state(0.65, 0.62, 0.68, 0.04),
        }
    }
    (row,) = table_rows(plan, ["bert"], seeds=3)
    assert abs(row["homograph_acc"] - 0.65) < 1e-12
    assert abs(row["homograph_acc_seed_std"] - 0.05) < 1e-12  # sample std of .70 .60 .65
    assert abs(row["homograph_acc_ci_half"] - (0.04 + 0.05 + 0.03) / 3) < 1e-12
    assert row["homograph_vs_mfs_p"] == 0.04 and len(row["seeds"]) == 3
    line = markdown_table([row]).splitlines()[2]
    assert "65.0 ± 5.0 (±4.0)*" in line  # every seed's p < 0.05: marked
    plan["families"]["bert-seed2"]["scores"]["homograph_vs_mfs_p"] = 0.2
    (row,) = table_rows(plan, ["bert"], seeds=3)
    assert "*" not in markdown_table([row]).splitlines()[2]
