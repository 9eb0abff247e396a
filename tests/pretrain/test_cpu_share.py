"""A run uses the cores other work leaves free, and a resume keeps the count it began with."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.pretrain import toy_family
from textdecade import models
from textdecade.config import build_config
from textdecade.pretrain import cpu_share
from textdecade.pretrain.callbacks import Callback
from textdecade.pretrain.trainer import Trainer


def _stat(*cpus: tuple[int, int, int, int]) -> str:
    """A /proc/stat text: per CPU (user, nice, system, idle) ticks."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    for i, (user, nice, system, idle) in enumerate(cpus):
        lines.append(f"cpu{i} {user} {nice} {system} {idle} 0 0 0 0 0 0")
    return "\n".join(lines + ["intr 1 2 3", "ctxt 99"]) + "\n"


def _self_stat(utime: int, stime: int) -> str:
    # the command name may hold spaces and parentheses
    return f"123 (python (x) y) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0\n"


@pytest.mark.parametrize(
    ("after", "own", "busy"),
    [
        # 100 ticks pass on each of 2 CPUs (200 in all)
        (((100, 0, 0, 0), (0, 0, 0, 100)), 0, 1.0),  # one core kept busy by another process
        (((0, 100, 0, 0), (0, 0, 0, 100)), 0, 0.0),  # ... at a positive nice: it yields
        (((100, 0, 0, 0), (0, 0, 0, 100)), 100, 0.0),  # ... by this very process
        (((60, 0, 40, 0), (50, 0, 0, 50)), 50, 1.0),  # system time counts, our share does not
        (((0, 0, 0, 100), (0, 0, 0, 100)), 0, 0.0),  # idle
    ],
)
@pytest.mark.real_cpu_share
def test_busy_cores_are_other_processes_normal_priority_ticks(monkeypatch, after, own, busy):
    texts = iter(
        [_stat((0, 0, 0, 0), (0, 0, 0, 0)), _self_stat(0, 0), _stat(*after), _self_stat(own, 0)]
    )
    monkeypatch.setattr(cpu_share, "_read", lambda path: next(texts))
    monkeypatch.setattr(cpu_share, "_sleep", lambda s: None)
    monkeypatch.setattr(cpu_share.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert cpu_share.busy_cores_of_others(0.2) == pytest.approx(busy)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
@pytest.mark.real_cpu_share
def test_the_machine_reading_is_a_count_of_cores():
    busy = cpu_share.busy_cores_of_others(0.05)
    assert busy is not None and 0.0 <= busy <= cpu_share.affinity_cores()


@pytest.mark.parametrize(
    ("cores", "current", "busy", "threads"),
    [
        (2, 2, 0.0, 2),  # idle: the process's own count
        (2, 2, 0.2, 2),  # background noise is not a core
        (2, 2, 1.0, 1),  # one busy process on two cores: one thread
        (2, 2, 2.0, 1),  # never below one
        (2, 1, 0.0, 1),  # never above what the process set (OMP_NUM_THREADS, tests)
        (8, 8, 2.6, 5),
    ],
)
def test_the_thread_count_is_the_free_cores_within_the_process_setting(
    monkeypatch, cores, current, busy, threads
):
    monkeypatch.setattr(cpu_share, "affinity_cores", lambda: cores)
    chosen, why = cpu_share.threads_for_free_cores(current, busy)
    assert chosen == threads
    assert why.startswith(f"{threads} thread{'' if threads == 1 else 's'}")
    assert ("busy with other work" in why) == (threads < current)


class _ThreadCounts(Callback):
    def __init__(self):
        self.counts = set()

    def after_step(self, model, step):
        self.counts.add(torch.get_num_threads())


def test_a_run_on_busy_cores_uses_fewer_threads_and_its_resume_keeps_them(
    monkeypatch, tmp_path, corpus_lines, capsys
):
    models.register_family("toy", "tests.pretrain.toy_family")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(cpu_share, "affinity_cores", lambda: 2)
    texts = corpus_lines("gensim_lee.txt", 120)
    config = build_config("toy", toy_family.Config, toy_family.PRESETS, "tiny", None, [])
    run_dir = tmp_path / "run"
    try:
        monkeypatch.setattr(cpu_share, "busy_cores_of_others", lambda interval=0.2: 1.0)
        crashing = build_config(
            "toy", toy_family.Config, toy_family.PRESETS, "tiny", None, ["model.crash_at=17"]
        )
        first = _ThreadCounts()
        with pytest.raises(RuntimeError, match="simulated crash"):
            Trainer(crashing, run_dir, corpus=texts, callbacks=[first]).fit()
        assert first.counts == {1}
        assert "(1 thread (1.0 of 2 cores busy with other work))" in capsys.readouterr().err
        newest = sorted((run_dir / "state").iterdir())[-1]
        assert json.loads((newest / "trainer.json").read_text())["threads"] == 1

        # The cores are free again, but the resumed run computes as the first one did.
        monkeypatch.setattr(cpu_share, "busy_cores_of_others", lambda interval=0.2: 0.0)
        resumed = _ThreadCounts()
        Trainer(config, run_dir, corpus=texts, resume=True, callbacks=[resumed]).fit()
        assert resumed.counts == {1}
        assert "1 thread (as the run began)" in capsys.readouterr().err
        assert torch.get_num_threads() == 2  # the caller's count is back
    finally:
        torch.set_num_threads(before)
        models.unregister_family("toy")
