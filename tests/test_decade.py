"""The decade end to end on a slice of real text: a row per family with finite numbers, then a resume."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from textdecade.decade import ORDER, DecadeSettings, run_decade
from textdecade.errors import UserError
from textdecade.pretrain.trainer import Trainer

pytestmark = pytest.mark.slow

# Just enough steps for every family to train, checkpoint, validate and be scored.
QUICK = [
    "train.steps=6",
    "train.eval_every=3",
    "train.ckpt_every=3",
    "train.warmup_steps=2",
    "train.threads=1",
    "word2vec.train.batch_size=2000",
    "glove.train.batch_size=4096",
    "seq2seq.train.batch_size=8",
    "transformer.train.batch_size=8",
    "bert.train.batch_size=8",
    "gpt.train.batch_size=8",
    "elmo.train.batch_size=8",
    "transformer-xl.train.batch_size=8",
]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, corpus_lines):
    path = tmp_path_factory.mktemp("corpus") / "wiki.txt"
    path.write_text("\n".join(corpus_lines("gensim_enwiki_sample.txt", 400)) + "\n")
    return path


@pytest.fixture(scope="module")
def decade(tmp_path_factory, corpus_file):
    out = tmp_path_factory.mktemp("decade") / "out"
    settings = DecadeSettings(corpus=[str(corpus_file)], overrides=QUICK, sample_texts=200)
    report = run_decade(out, settings, progress=False)
    return out, report


def test_every_family_has_a_row_with_finite_numbers(decade):
    out, report = decade
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [r["family"] for r in rows] == list(ORDER)
    for row in rows:
        for key in (
            "parameters",
            "train_seconds",
            "final_loss",
            "analogy_coverage",
            "homograph_acc",
            "homograph_mfs",
        ):
            assert row.get(key) is not None and math.isfinite(row[key]), (row["family"], key)
        assert row["parameters"] > 0
    by_family = {r["family"]: r for r in rows}
    # A static model gives every occurrence one vector: exactly the most-frequent-sense score.
    assert by_family["word2vec"]["homograph_acc"] == pytest.approx(
        by_family["word2vec"]["homograph_mfs"]
    )
    assert "val_bpb" in by_family["gpt"]
    text = report.read_text()
    for name in ("Word2Vec", "GloVe", "Seq2seq", "Transformer", "BERT", "GPT"):
        assert name in text
    for picture in ("loss_curves.png", "sense_map.png", "attention.png"):
        assert (out / picture).stat().st_size > 1000, picture


def test_a_second_call_resumes_instead_of_retraining(decade, corpus_file, monkeypatch):
    out, _ = decade

    def refuse(self):
        raise AssertionError("retrained a finished family")

    monkeypatch.setattr(Trainer, "fit", refuse)
    settings = DecadeSettings(corpus=[str(corpus_file)], overrides=QUICK, sample_texts=200)
    report = run_decade(out, settings, progress=False)
    assert report.exists()


def test_a_deleted_run_directory_trains_that_family_again(decade, corpus_file, monkeypatch):
    out, _ = decade
    shutil.rmtree(out / "runs" / "glove")
    fitted = []
    fit = Trainer.fit

    def record(self):
        fitted.append(self.config.family)
        return fit(self)

    monkeypatch.setattr(Trainer, "fit", record)
    settings = DecadeSettings(corpus=[str(corpus_file)], overrides=QUICK, sample_texts=200)
    run_decade(out, settings, progress=False)
    assert fitted == ["glove"]
    rows = json.loads((out / "report.json").read_text())["rows"]
    glove = next(r for r in rows if r["family"] == "glove")
    assert math.isfinite(glove["final_loss"]) and glove["train_seconds"] > 0


def test_bad_inputs_are_one_line_errors(tmp_path, corpus_file):
    with pytest.raises(UserError, match="unknown family 'bogus'.*word2vec, glove"):
        run_decade(tmp_path / "a", DecadeSettings(families=["bogus"]))
    with pytest.raises(UserError, match="--seeds must be a positive integer, got 0"):
        DecadeSettings(seeds=0)
    with pytest.raises(UserError, match="--minutes must be positive, got -1"):
        DecadeSettings(minutes=-1.0)
    small = tmp_path / "small.txt"
    small.write_text("a few words only\n")
    with pytest.raises(UserError, match="has 4 words; the tiny preset needs at least 20,000"):
        run_decade(tmp_path / "b", DecadeSettings(corpus=[str(small)]))
    out = tmp_path / "c"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"settings": {"preset": "small"}, "families": {}}))
    with pytest.raises(UserError, match="other settings; pass --resume.*--overwrite"):
        run_decade(out, DecadeSettings(corpus=[str(corpus_file)]))
    # a start refused before any work leaves no directory behind to block the rerun
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_decade_directory_another_process_writes_is_refused(tmp_path, corpus_file):
    from textdecade.pretrain.lock import RunLock, RunLocked

    out = tmp_path / "busy"
    with RunLock(out), pytest.raises(RunLocked, match=r"in use by another textdecade process"):
        run_decade(out, DecadeSettings(corpus=[str(corpus_file)]), progress=False)
    assert list(out.iterdir()) == [out / ".lock"]  # nothing was started


def test_seeds_and_an_equal_time_budget(tmp_path, corpus_file):
    """Two seeds, each given the same few seconds: the seeds differ, the second trains on
    the first's data, the budget fixes the steps, the table shows the spread and FLOPs."""
    out = tmp_path / "out"
    quick = [o for o in QUICK if not o.startswith("train.steps")]
    settings = DecadeSettings(
        corpus=[str(corpus_file)],
        families=["gpt"],
        overrides=quick,
        sample_texts=100,
        seeds=2,
        minutes=0.04,
    )
    report = run_decade(out, settings, progress=False).read_text()
    plan = json.loads((out / "plan.json").read_text())
    assert set(plan["families"]) == {"gpt", "gpt-seed1"}
    assert plan["families"]["gpt-seed1"]["seed"] == plan["families"]["gpt"]["seed"] + 1
    first, second = (
        sorted((out / "runs" / n / "data").rglob("*.bin"))[0] for n in plan["families"]
    )
    assert first.stat().st_ino == second.stat().st_ino  # seed 1 reuses seed 0's data
    for name, state in plan["families"].items():
        # the budget fixed the step count (how many depends on the machine's speed)
        trainer = json.loads(next((out / "runs" / name).glob("state/*/trainer.json")).read_text())
        assert trainer["total"] == state["step"] >= 3, name
    rows = {r["family"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert rows["gpt"]["flops"] > 0 and len(rows["gpt"]["seeds"]) == 2
    assert "final_loss_seed_std" in rows["gpt"]
    assert "same 0.04 minutes" in report and "± " in report
