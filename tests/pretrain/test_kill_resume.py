"""GPT through the CLI: SIGKILL at any moment, then --resume, ends on bitwise-identical weights."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SETTINGS = [
    "--steps",
    "120",
    "-q",
    "--set",
    "model.d_model=32",
    "--set",
    "model.n_heads=2",
    "--set",
    "model.n_layers=1",
    "--set",
    "model.max_len=32",
    "--set",
    "model.dropout=0.1",
    "--set",
    "tokenizer.vocab_size=400",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.ckpt_every=4",
    "--set",
    "train.eval_every=20",
    "--set",
    "train.threads=1",
    "--set",
    "train.warmup_steps=4",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, corpus_lines):
    path = tmp_path_factory.mktemp("corpus") / "lee.txt"
    path.write_text("\n".join(corpus_lines("gensim_lee.txt", 150)) + "\n")
    return path


def pretrain(run_dir, corpus, *extra, wait=True, family="gpt", settings=SETTINGS):
    """``textdecade pretrain FAMILY`` in a subprocess: its result, or the running process."""
    cmd = [
        sys.executable,
        "-m",
        "textdecade",
        "pretrain",
        family,
        "--corpus",
        str(corpus),
        "-o",
        str(run_dir),
        *settings,
        *extra,
    ]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run_dir, proc, minimum_step=1):
    """Wait until a complete checkpoint of at least ``minimum_step`` is on disk."""
    state = run_dir / "state"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        steps = [int(p.name[5:]) for p in state.glob("step_*") if (p / "COMPLETE").exists()]
        if steps and max(steps) >= minimum_step:
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def assert_same_weights(a, b):
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    proc = pretrain(run_dir, corpus)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def test_sigkill_at_a_random_moment_then_resume(tmp_path, corpus, reference):
    run_dir = tmp_path / "run"
    proc = pretrain(run_dir, corpus, wait=False)
    rng = random.Random(os.getpid())
    wait_for_checkpoint(run_dir, proc, minimum_step=4 * rng.randint(1, 6))
    time.sleep(rng.uniform(0.0, 0.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = [p.name for p in (run_dir / "state").glob("step_*") if (p / "COMPLETE").exists()]
    if "step_00000120" in done:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == -signal.SIGKILL
    resumed = pretrain(run_dir, corpus, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run_dir, reference)


def test_sigint_checkpoints_and_exits_130(tmp_path, corpus, reference):
    run_dir = tmp_path / "run"
    proc = pretrain(run_dir, corpus, wait=False)
    wait_for_checkpoint(run_dir, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "SIGINT received" in err and "--resume" in err and "Traceback" not in err
    resumed = pretrain(run_dir, corpus, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run_dir, reference)
    again = pretrain(run_dir, corpus)
    assert again.returncode == 2 and "already holds a gpt run" in again.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: runs are not locked")
def test_a_live_run_refuses_a_second_writer_until_it_is_killed(tmp_path, corpus):
    from textdecade.pretrain.lock import RunLock

    run_dir = tmp_path / "run"
    live = pretrain(run_dir, corpus, "--steps", "1000000", wait=False)  # runs until killed
    try:
        wait_for_checkpoint(run_dir, live)
        for flag in ("--resume", "--overwrite"):
            second = pretrain(run_dir, corpus, flag)
            assert second.returncode == 2, second.stderr
            assert f"in use by another textdecade process (pid {live.pid})" in second.stderr
            assert "Traceback" not in second.stderr
        assert live.poll() is None and (run_dir / "config.json").is_file()  # not deleted
    finally:
        live.kill()
        live.wait()
    with RunLock(run_dir) as lock:  # SIGKILL ran no cleanup, yet the lock is free at once
        assert lock.held
