"""The lottery on real text: masks hold, pruning and rewinding do what they say, and a
killed run resumes without redoing finished rounds.

One lottery (GPT at the tiny preset's shape, 30 steps, one seed, levels 50% and 80%, all
four controls, rewind step 15) is run once for the module, killed before its second round
and resumed; every test reads what it left. The quality claim (the rewound ticket beats
random reinitialisation) is measured at the tiny budget in benchmarks/lab_all.sh, not here.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import textdecade as td
from textdecade.cli import main
from textdecade.lab import lottery, pruning
from textdecade.lab.lottery import LotterySettings, run_lottery
from textdecade.pretrain.checkpoint import STATE_DIR
from textdecade.pretrain.rundir import load_run, load_weights

STEPS, K = 30, 15
QUICK = [
    f"train.steps={STEPS}",
    "train.eval_every=15",
    "train.ckpt_every=15",
    "train.warmup_steps=3",
    "train.diagnostics_every=0",
]
LEVELS = [0.5, 0.8]


class Killed(Exception):
    """Stands in for a kill between rounds."""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The lottery's output dir, each masked cell's weights as training started, and the
    files' modification times of round 1 before the resume."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("lottery") / "out"
    settings = dict(seeds=1, sparsities=LEVELS, rewind_step=K, overrides=QUICK)
    starts: dict[str, dict[str, torch.Tensor]] = {}
    original_start, original_cell = pruning.Masked.on_start, lottery.run_cell

    def recording_start(self, model, step):
        original_start(self, model, step)
        starts[self.run_dir.name] = {n: p.detach().clone() for n, p in model.named_parameters()}

    def killed_at_round_2(out_, settings_, cell, *args):
        if cell.round == 2:
            raise Killed
        return original_cell(out_, settings_, cell, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pruning.Masked, "on_start", recording_start)
        mp.setattr(lottery, "run_cell", killed_at_round_2)
        with pytest.raises(Killed):
            run_lottery(out, LotterySettings(**settings), progress=False)
        plan_after_kill = json.loads((out / "plan.json").read_text())
        mtimes = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/model.safetensors")}
        mp.setattr(lottery, "run_cell", original_cell)
        run_lottery(out, LotterySettings(**settings), progress=False)
    torch.set_num_threads(threads)
    return out, starts, plan_after_kill, mtimes


def cell(name: str, level: float = 0.8) -> str:
    return f"p{100 * level:g}_{name}_s1"


def test_a_kill_between_rounds_resumes_without_redoing_finished_rounds(run):
    out, _, after_kill, mtimes = run
    # Killed before round 2: the dense run and the four round-1 cells are recorded done.
    assert after_kill["rounds_done"] == [0, 1]
    assert sorted(after_kill["cells"]) == sorted(
        ["dense_s1", *(cell(c, 0.5) for c in lottery.CONTROLS)]
    )
    assert len(mtimes) == 5
    # The rerun trained round 2 only: round 0 and 1's weights are the files they were.
    for name, mtime in mtimes.items():
        assert (out / "runs" / name / "model.safetensors").stat().st_mtime_ns == mtime, name
    plan = json.loads((out / "plan.json").read_text())
    assert plan["rounds_done"] == [0, 1, 2] and len(plan["cells"]) == 9
    assert all(state["done"] and state["step"] == STEPS for state in plan["cells"].values())


def test_pruned_weights_are_exactly_zero_through_training_and_in_the_saved_model(run):
    out, _, _, _ = run
    for control in lottery.CONTROLS:
        for level in LEVELS:
            run_dir = out / "runs" / cell(control, level)
            mask = pruning.load_mask(run_dir / pruning.MASK)
            # Mid-run (the checkpoint of step 15) and at the end (model.safetensors).
            for weights in (
                load_file(str(run_dir / STATE_DIR / "step_00000015" / "model.safetensors")),
                dict(load_run(run_dir)[1].named_parameters()),
            ):
                for name, kept in mask.items():
                    assert torch.count_nonzero(weights[name][~kept]) == 0, (run_dir.name, name)
                    assert torch.count_nonzero(weights[name][kept]) == int(kept.sum())
    plan = json.loads((out / "plan.json").read_text())
    # The saved model's own zeros, as the report gives them: the level over the prunable
    # weights, and less over all parameters (embeddings, norms and biases stay dense).
    state = plan["cells"][cell("rewind-k")]
    assert state["sparsity_prunable"] == pytest.approx(0.8, abs=1e-4)
    assert 0.2 < state["sparsity_overall"] < 0.8
    assert plan["cells"]["dense_s1"]["sparsity_prunable"] == 0


def reference_mask(weights: dict, mask: dict, level: float) -> dict:
    """Global magnitude pruning in numpy: the threshold is the n-th smallest surviving
    magnitude (n chosen so the level is met), and everything below it goes."""
    names = list(mask)
    flat_w = np.concatenate([weights[n].detach().numpy().ravel() for n in names])
    flat_m = np.concatenate([mask[n].numpy().ravel() for n in names])
    to_prune = round(level * flat_w.size) - int((~flat_m).sum())
    alive = np.abs(flat_w[flat_m])
    threshold = np.sort(alive)[to_prune] if to_prune < alive.size else np.inf
    keep = flat_m & (np.abs(flat_w) >= threshold)
    out, start = {}, 0
    for n in names:
        out[n] = keep[start : start + mask[n].numel()].reshape(mask[n].shape)
        start += mask[n].numel()
    return out


def test_global_magnitude_pruning_matches_a_numpy_reference(run):
    out, _, _, _ = run
    # Round 1 pruned the dense run's trained weights; round 2 the 50% rewind-k ticket's.
    for previous, level, name in (
        ("dense_s1", 0.5, cell("rewind-k", 0.5)),
        (cell("rewind-k", 0.5), 0.8, cell("rewind-k", 0.8)),
    ):
        model = load_run(out / "runs" / previous)[1]
        names = pruning.prunable_names(model)
        prior = out / "runs" / previous / pruning.MASK
        before = pruning.load_mask(prior) if prior.exists() else pruning.dense_mask(model, names)
        got = pruning.load_mask(out / "runs" / name / pruning.MASK)
        want = reference_mask(dict(model.named_parameters()), before, level)
        assert sorted(got) == sorted(names)
        assert all(np.array_equal(got[n].numpy(), want[n]) for n in names)
        total = sum(m.numel() for m in got.values())
        assert pruning.sparsity(got) == round(level * total) / total
        assert all(torch.all(before[n] | ~got[n]) for n in names)  # pruned stays pruned
    # Prunable: the blocks' Linear weights; the tied embedding / output matrix only on request.
    assert all(n.endswith(".weight") and n.startswith("h.") for n in names)
    assert "wte.weight" not in names and "wte.weight" in pruning.prunable_names(model, True)


def weights(path, like) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors by parameter name (a tied matrix under every name)."""
    model = copy.deepcopy(like)
    load_weights(model, path)
    return {n: p.detach() for n, p in model.named_parameters()}


def test_rewinding_restores_the_step_0_and_step_k_values_exactly(run):
    out, starts, _, _ = run
    dense = out / "runs" / "dense_s1"
    config, model, _ = load_run(dense)
    step0 = weights(dense / pruning.snapshot_name(0), model)
    stepk = weights(dense / pruning.snapshot_name(K), model)
    # The snapshots are the dense run's own weights: its init, and its checkpoint at step k.
    torch.manual_seed(1)
    fresh = dict(type(model)(config.model, model.meta).named_parameters())
    assert all(torch.equal(step0[n], fresh[n]) for n in step0)
    at_k = weights(dense / STATE_DIR / f"step_{K:08d}" / "model.safetensors", model)
    assert all(torch.equal(stepk[n], at_k[n]) for n in stepk)
    assert not torch.equal(stepk["h.0.mlp.fc.weight"], step0["h.0.mlp.fc.weight"])
    for control, snapshot in (("rewind-init", step0), ("rewind-k", stepk)):
        for level in LEVELS:
            name = cell(control, level)
            mask = pruning.load_mask(out / "runs" / name / pruning.MASK)
            for param, value in starts[name].items():
                kept = mask.get(param, torch.ones_like(value, dtype=torch.bool))
                assert torch.equal(value[kept], snapshot[param][kept]), (name, param)
                assert torch.count_nonzero(value[~kept]) == 0


def test_each_control_builds_what_it_says(run):
    out, starts, _, _ = run
    dense = out / "runs" / "dense_s1"
    step0 = weights(dense / pruning.snapshot_name(0), load_run(dense)[1])
    masks = {c: pruning.load_mask(out / "runs" / cell(c) / pruning.MASK) for c in lottery.CONTROLS}
    ticket = masks["rewind-k"]
    # rewind-init and reinit use the ticket's mask; random-mask prunes as many weights of
    # every tensor, elsewhere: its survivors overlap the ticket's as chance has it (a
    # tensor keeping a share d of its weights shares about d of them), not more.
    for control in ("rewind-init", "reinit"):
        assert all(torch.equal(masks[control][n], ticket[n]) for n in ticket)
    shared = chance = 0.0
    for n, kept in ticket.items():
        assert int(masks["random-mask"][n].sum()) == int(kept.sum())
        shared += int((masks["random-mask"][n] & kept).sum())
        chance += int(kept.sum()) ** 2 / kept.numel()
    assert shared == pytest.approx(chance, rel=0.05)
    # random-mask starts from the step-0 weights under its own mask; reinit from fresh ones.
    random_start = starts[cell("random-mask")]
    for n, kept in masks["random-mask"].items():
        assert torch.equal(random_start[n][kept], step0[n][kept])
    reinit = starts[cell("reinit")]
    for n in ("wpe.weight", "h.0.mlp.fc.weight"):
        kept = ticket.get(n, torch.ones_like(reinit[n], dtype=torch.bool))
        assert not torch.equal(reinit[n][kept], step0[n][kept])
        # Drawn as the init is (the ticket's own survivors are not: they are the init's
        # larger weights, so the whole step-0 tensor is the reference).
        assert float(reinit[n][kept].std()) == pytest.approx(float(step0[n].std()), rel=0.1)


def test_a_pruned_run_loads_embeds_and_reports_like_a_dense_one(run):
    out, _, _, _ = run
    run_dir = out / "runs" / cell("rewind-k")
    handle = td.load(run_dir)
    vectors = handle.embed(["The quick brown fox jumps over the lazy dog.", "A second text."])
    assert vectors.shape[0] == 2 and np.isfinite(vectors).all() and np.abs(vectors).sum() > 0
    weight = dict(handle.model.named_parameters())["h.0.mlp.fc.weight"]
    assert (weight == 0).float().mean() > 0.5  # global pruning: about 80%, unevenly per layer
    report = json.loads((out / "report.json").read_text())
    assert len(report["rows"]) == 1 + len(LEVELS) * len(lottery.CONTROLS)
    assert {(c["ticket"], c["control"]) for c in report["comparisons"]} >= {("rewind-k", "reinit")}
    text = (out / "report.md").read_text()
    assert "random reinit, same mask" in text and "80%" in text
    assert (out / "lottery.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sparsities", "0.5,1"], "sparsity 1 is outside [0, 1)"),
        (["--sparsities", "-0.1"], "sparsity -0.1 is outside [0, 1)"),
        (["--controls", "rewind-k", "magnitude"], "unknown control 'magnitude'"),
        (["--controls", "reinit"], "--controls needs rewind-k or rewind-init"),
        (["--rewind-step", "301"], "--rewind-step 301 is outside the 300 training steps"),
        (["--family", "glove"], "lab lottery does not apply to glove"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["lab", "lottery", *argv, "-o", str(out), "-q"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_the_lottery_options_are_refused_by_the_other_experiments(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lab", "depth", "--sparsities", "0.5", "-o", str(out), "-q"]) == 2
    assert "--sparsities applies to lab lottery only" in capsys.readouterr().err
    assert not out.exists()
