"""Every family through the CLI: SIGKILL at a random moment, or inside a checkpoint write,
then ``--resume``, ends on the uninterrupted run's weights and metrics, bit for bit (CPU, eager).

The kill moment is random but replayable: each run draws a seed (or takes
``TEXTDECADE_KILL_SEED``), and every failure message names it. Each family draws where to
die: ``write`` stops the process (SIGSTOP) while a ``state/.tmp-step_*`` folder exists, checks
the folder is still there, then SIGKILLs it, so the kill provably lands inside a checkpoint
write; ``anywhere`` kills at a random instant after a random checkpoint (mid-step, mid-eval,
mid-metrics line, mid-write). At least one family per run is a ``write`` case;
``TEXTDECADE_KILL_MODE=write`` (or ``anywhere``) makes every family one.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.pretrain.test_kill_resume import assert_same_weights, pretrain, wait_for_checkpoint
from textdecade.cli import main
from textdecade.pretrain.progress import read_metrics

pytestmark = pytest.mark.slow

STEPS = 24
CKPT_EVERY = 3
COMMON = [
    "--steps",
    str(STEPS),
    "-q",
    *("--set", "tokenizer.vocab_size=400"),
    # Pinned: the default takes the free cores at start, which would vary between the runs.
    *("--set", "train.threads=1"),
    *("--set", f"train.ckpt_every={CKPT_EVERY}"),
    *("--set", "train.eval_every=8"),
    *("--set", "train.eval_batches=2"),
    *("--set", "train.log_every=1"),  # a metrics record every step: any drift shows at once
]
NEURAL = ["train.batch_size=4", "train.warmup_steps=4", "model.dropout=0.1"]  # dropout: RNG
BLOCKS = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1"]
FAMILIES = {
    # One worker: Hogwild with two interleaves by timing (Family.nondeterminism()).
    "word2vec": ["model.d_model=16", "model.workers=1", "train.batch_size=2000"],
    "glove": ["model.d_model=16", "model.count_workers=1", "train.batch_size=2048"],
    "seq2seq": ["model.d_model=32", "model.d_hidden=32", "model.max_len=32", *NEURAL],
    "transformer": [*BLOCKS, "model.d_ff=64", "model.max_len=32", *NEURAL],
    "elmo": ["model.d_model=32", "model.hidden_size=64", "model.max_len=32", *NEURAL],
    "bert": [*BLOCKS, "model.max_len=32", *NEURAL],
    "gpt": [*BLOCKS, "model.max_len=32", *NEURAL],
    "transformer-xl": [*BLOCKS, "model.segment_len=16", "model.mem_len=16", *NEURAL],
}
# What differs between two identical runs: wall-clock time and the rates derived from it.
CLOCK_FIELDS = ("seconds",)

SEED = int(os.environ.get("TEXTDECADE_KILL_SEED", random.SystemRandom().randrange(2**31)))


def _modes(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    modes = {family: rng.choice(("write", "anywhere")) for family in FAMILIES}
    forced = os.environ.get("TEXTDECADE_KILL_MODE")
    if forced in ("write", "anywhere"):
        return dict.fromkeys(FAMILIES, forced)
    if "write" not in modes.values():
        modes[rng.choice(sorted(FAMILIES))] = "write"
    return modes


MODES = _modes(SEED)


def settings(family: str) -> list[str]:
    """The CLI arguments of a tiny run of ``family``."""
    return [*COMMON, *(arg for s in FAMILIES[family] for arg in ("--set", s))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, corpus_lines):
    path = tmp_path_factory.mktemp("corpus") / "lee.txt"
    path.write_text("\n".join(corpus_lines("gensim_lee.txt", 300)) + "\n")
    return path


def kill_inside_a_checkpoint_write(proc, run_dir: Path, minimum_step: int) -> str:
    """SIGKILL ``proc`` while it writes a checkpoint of at least ``minimum_step``.

    The process is frozen (SIGSTOP) as soon as a temporary checkpoint folder appears; if the
    folder is still there once it is frozen, the kill lands inside that write, otherwise
    the write had just finished and the process goes on (SIGCONT) to the next one.
    """
    state = run_dir / "state"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        tmps = [p for p in state.glob(".tmp-step_*") if int(p.name[10:18]) >= minimum_step]
        if not tmps:
            time.sleep(0.0005)
            continue
        proc.send_signal(signal.SIGSTOP)
        if tmps[0].exists():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return f"inside the write of {tmps[0].name}"
        proc.send_signal(signal.SIGCONT)
    raise AssertionError("no checkpoint write was caught")


def kill_anywhere(proc, run_dir: Path, minimum_step: int, rng: random.Random) -> str:
    """SIGKILL ``proc`` a random instant after its checkpoint of ``minimum_step``."""
    wait_for_checkpoint(run_dir, proc, minimum_step=minimum_step)
    delay = rng.uniform(0.0, 0.04)  # a tiny GPT runs 3 steps and a checkpoint in ~0.05 s
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"{delay:.3f} s after checkpoint {minimum_step}"


def complete_steps(run_dir: Path) -> list[int]:
    state = run_dir / "state"
    return sorted(int(p.name[5:]) for p in state.glob("step_*") if (p / "COMPLETE").exists())


def without_clock(records: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in CLOCK_FIELDS and not k.endswith("_per_s")}
        for r in records
    ]


def kill_in_the_background(victim, run_dir: Path, mode: str, minimum_step: int, rng) -> dict:
    """Start a thread that kills ``victim`` as ``mode`` says; its result lands in the dict
    (``where`` it died, or the ``error`` that stopped the watch)."""
    result: dict = {}

    def watch() -> None:
        try:
            if mode == "write":
                result["where"] = kill_inside_a_checkpoint_write(victim, run_dir, minimum_step)
            else:
                result["where"] = kill_anywhere(victim, run_dir, minimum_step, rng)
        except BaseException as exc:  # handed to the test's thread
            result["error"] = exc

    result["thread"] = threading.Thread(target=watch, daemon=True)
    result["thread"].start()
    return result


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sigkill_then_resume_is_bitwise(tmp_path, corpus, family, capsys):
    args = settings(family)
    rng = random.Random(f"{SEED}-{family}")
    mode = MODES[family]
    # A checkpoint in the first half, so later ones remain to catch a write in.
    minimum_step = CKPT_EVERY * rng.randint(1, STEPS // CKPT_EVERY // 2)
    run_dir = tmp_path / "run"
    victim = pretrain(run_dir, corpus, wait=False, family=family, settings=args)
    watch = kill_in_the_background(victim, run_dir, mode, minimum_step, rng)
    try:
        # The uninterrupted run, meanwhile, in this process: no second interpreter to start
        # (most of a tiny run's time), and a check that the CLI's runs match the library's.
        argv = ["pretrain", family, "--corpus", str(corpus), "-o", str(tmp_path / "ref"), *args]
        code = main(argv)
        assert code == 0, capsys.readouterr().err
        watch["thread"].join(timeout=300)
    finally:
        victim.kill()
        victim.wait()
    if "error" in watch:
        raise watch["error"]
    why = f"{family} killed {watch['where']} (TEXTDECADE_KILL_SEED={SEED})"
    if STEPS in complete_steps(run_dir):
        pytest.skip(f"the run finished before the signal arrived ({why})")
    assert victim.returncode == -signal.SIGKILL, why
    kept = complete_steps(run_dir)
    resume_step = kept[-1] if kept else 0  # killed inside the first write: from scratch
    if mode == "write":  # the half-written folder is on disk, and is not a checkpoint
        assert list((run_dir / "state").glob(".tmp-step_*")), why

    resumed = pretrain(run_dir, corpus, "--resume", family=family, settings=args)
    assert resumed.returncode == 0, f"{why}\n{resumed.stderr}"
    assert not list((run_dir / "state").glob(".tmp-step_*")), why  # stale write cleaned up

    try:
        assert_same_weights(run_dir, tmp_path / "ref")
    except AssertionError as exc:
        raise AssertionError(
            f"{why}: tensor {exc} differs after resuming from {resume_step}"
        ) from None
    want, got = read_metrics(tmp_path / "ref"), read_metrics(run_dir)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1)), why
    assert any(r["step"] > resume_step for r in want), why  # the resume trained, and is compared
    # All of them: those up to the checkpoint came from the killed run, the rest from
    # the resumed one; both must be the uninterrupted run's.
    for a, b in zip(without_clock(want), without_clock(got), strict=True):
        assert a == b, f"{why}: metrics differ at step {a['step']}\n{a}\n{b}"
