"""A run uses the cores other work leaves free, and a resume keeps the count it began with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from tests.pretrain import toy_family
from textdecade import models
from textdecade.config import build_config
from textdecade.pretrain import cpu_share
from textdecade.pretrain.callbacks import Callback
from textdecade.pretrain.trainer import Trainer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")


def _busy_loop(nice: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )


@linux_only
@pytest.mark.real_cpu_share
def test_a_busy_process_counts_as_a_busy_core_and_a_niced_one_does_not():
    baseline = cpu_share.busy_cores_of_others(0.3)
    if baseline > cpu_share.affinity_cores() - 1.2:
        pytest.skip(f"other work already keeps {baseline:.1f} cores busy: one more cannot show")
    for nice, low, high in ((0, baseline + 0.6, None), (19, None, baseline + 0.35)):
        proc = _busy_loop(nice)
        try:
            time.sleep(0.3)  # until it runs
            busy = cpu_share.busy_cores_of_others(0.5)
        finally:
            proc.kill()
            proc.wait()
        assert low is None or busy >= low, (nice, baseline, busy)
        assert high is None or busy <= high, (nice, baseline, busy)


@linux_only
@pytest.mark.real_cpu_share
def test_this_process_own_work_is_not_counted():
    # Our own busy thread is excluded: only other processes lower the count.
    import threading

    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    baseline = cpu_share.busy_cores_of_others(0.3)
    thread = threading.Thread(target=spin)
    thread.start()
    try:
        busy = cpu_share.busy_cores_of_others(0.4)
    finally:
        stop.set()
        thread.join()
    assert busy < baseline + 0.5, (baseline, busy)


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
    assert why.startswith(f"{threads} threads")
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
        assert "(1 threads (1.0 of 2 cores busy with other work))" in capsys.readouterr().err
        newest = sorted((run_dir / "state").iterdir())[-1]
        assert json.loads((newest / "trainer.json").read_text())["threads"] == 1

        # The cores are free again, but the resumed run computes as the first one did.
        monkeypatch.setattr(cpu_share, "busy_cores_of_others", lambda interval=0.2: 0.0)
        resumed = _ThreadCounts()
        Trainer(config, run_dir, corpus=texts, resume=True, callbacks=[resumed]).fit()
        assert resumed.counts == {1}
        assert "1 threads (as the run began)" in capsys.readouterr().err
        assert torch.get_num_threads() == 2  # the caller's count is back
    finally:
        torch.set_num_threads(before)
        models.unregister_family("toy")
