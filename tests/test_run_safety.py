"""Nothing a user opens or writes loses a run: refused outputs, damaged weights, one line each."""

from __future__ import annotations

import errno
import hashlib
import shutil
import subprocess
import sys

import pytest
import torch

from tests.test_cli import assert_one_line_error
from textdecade.cli import main

TINY = [
    "train.threads=1",
    "train.steps=4",
    "train.batch_size=4",
    "train.eval_every=100",
    "train.ckpt_every=2",
    "train.warmup_steps=1",
    "tokenizer.vocab_size=300",
    "model.d_model=16",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.max_len=16",
]


def train_gpt(run_dir, texts, *extra):
    from textdecade.config import build_config
    from textdecade.models import get_family
    from textdecade.pretrain.trainer import Trainer

    _, Config, presets = get_family("gpt")
    config = build_config("gpt", Config, presets, "tiny", None, [*TINY, *extra])
    return Trainer(config, run_dir, corpus=texts, progress=False).fit()


@pytest.fixture(scope="module")
def texts(corpus_lines):
    return corpus_lines("gensim_lee.txt", 60)


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, texts):
    run = tmp_path_factory.mktemp("runs") / "gpt"
    train_gpt(run, texts)
    return run


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("corpus") / "lee.txt"
    path.write_text("\n".join(texts) + "\n")
    return path


def pretrain(capsys, corpus, run_dir, *extra):
    settings = [x for kv in TINY for x in ("--set", kv)]
    return run(
        capsys, "pretrain", "gpt", "--corpus", corpus, "-o", run_dir, "-q", *settings, *extra
    )


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def digests(directory):
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def assert_same_tensors(a, b):
    from safetensors.torch import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


# ----------------------------------------------------------------------------- export hf
def test_export_refuses_a_directory_holding_a_run_unless_overwrite(
    capsys, tmp_path, gpt_run, texts
):
    other = tmp_path / "other"
    train_gpt(other, texts, "model.d_model=32")
    before = digests(other)
    code, _, err = run(capsys, "export", "hf", gpt_run, "-o", other)
    assert_one_line_error(code, err, "already holds a gpt run")
    assert digests(other) == before  # nothing of the other run was touched
    code, _, err = run(capsys, "export", "hf", gpt_run, "-o", other, "--overwrite")
    assert code == 0, err
    assert (other / "config.json").is_file() and not (other / "state").exists()
    assert not (other / ".lock").exists()  # a HF directory now, not a run


def test_export_refuses_a_directory_holding_other_files_unless_overwrite(capsys, tmp_path, gpt_run):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "export", "hf", gpt_run, "-o", out)
    assert_one_line_error(code, err, "not empty")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    code, _, err = run(capsys, "export", "hf", gpt_run, "-o", out, "--overwrite")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").is_file()


def test_export_never_writes_onto_its_own_source(capsys, tmp_path, gpt_run):
    source = tmp_path / "gpt"
    shutil.copytree(gpt_run, source)
    before = digests(source)
    for target in (source, tmp_path):  # the run itself, and a directory that holds it
        for flags in ((), ("--overwrite",)):
            code, _, err = run(capsys, "export", "hf", source, "-o", target, *flags)
            assert_one_line_error(code, err, "is (or holds) the model being exported")
    assert digests(source) == before


# ------------------------------------------------------------------ damaged weights, loaders
@pytest.fixture
def truncated_run(tmp_path, gpt_run):
    run_dir = tmp_path / "gpt"
    shutil.copytree(gpt_run, run_dir)
    weights = run_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    return run_dir


def test_every_loader_says_a_truncated_weights_file_in_one_line(capsys, tmp_path, truncated_run):
    import textdecade as td
    from textdecade.errors import CheckpointError

    with pytest.raises(CheckpointError, match="model.safetensors is not a readable") as caught:
        td.load(truncated_run)
    assert "\n" not in str(caught.value)
    texts = tmp_path / "texts.txt"
    texts.write_text("The fire spread.\nRain fell in Sydney.\n")
    for argv in (
        ("embed", truncated_run, "--input", texts),
        ("generate", truncated_run, "The fire", "--max-new-tokens", "2"),
        ("eval", "perplexity", truncated_run, "--corpus", texts),
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "model.safetensors is not a readable safetensors file")


def test_a_truncated_hf_weights_file_is_one_line(capsys, tmp_path, gpt_run):
    import textdecade as td
    from textdecade.errors import CheckpointError

    hf = tmp_path / "hf"
    assert run(capsys, "export", "hf", gpt_run, "-o", hf)[0] == 0
    data = (hf / "model.safetensors").read_bytes()[:-100]
    for name in ("model.safetensors", "model-00001-of-00001.safetensors"):  # one file, shards
        (hf / "model.safetensors").unlink(missing_ok=True)
        (hf / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=f"{name} is not a readable") as caught:
            td.load(hf)
        assert "\n" not in str(caught.value)


def test_resume_with_other_shapes_is_one_line_and_keeps_the_run(capsys, tmp_path, gpt_run, texts):
    import textdecade as td

    run_dir = tmp_path / "gpt"
    shutil.copytree(gpt_run, run_dir)
    before = digests(run_dir)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n")
    settings = [x for kv in TINY for x in ("--set", kv)]
    code, _, err = run(
        capsys,
        *("pretrain", "gpt", "--corpus", corpus, "-o", run_dir, "--resume", "-q"),
        *settings,
        *("--set", "train.steps=6", "--set", "model.d_model=32"),
    )
    assert_one_line_error(code, err, "the checkpoint's shapes do not match the config")
    assert "weight is (16, 16) there, (16, 32) in the model the config builds" in err, err
    assert digests(run_dir) == before  # config.json still the run's own
    assert td.load(run_dir).model.config.d_model == 16


# ---------------------------------------------------------------------------- disk full
def disk_full(kind: str) -> Exception:
    """What a writer raises on a full disk: an OSError, or safetensors' own error."""
    if kind == "safetensors":
        from safetensors import SafetensorError

        return SafetensorError(
            "Error while serializing: IoError(Os { code: 28, kind: "
            'StorageFull, message: "No space left on device" })'
        )
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    ("where", "kind"),
    [("checkpoint", "oserror"), ("checkpoint", "safetensors"), ("weights", "oserror")],
)
def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(
    capsys, monkeypatch, tmp_path, corpus_file, where, kind
):
    import textdecade as td
    from textdecade.pretrain import checkpoint, rundir

    if where == "checkpoint":  # the optimizer file of step 4's checkpoint cannot be written
        real = checkpoint.save_file

        def save_file(tensors, path, *args, **kwargs):
            if "step_00000004" in path and "optimizer" in path:
                open(path, "wb").write(b"half")  # noqa: SIM115 - a partial file, then the error
                raise disk_full(kind)
            return real(tensors, path, *args, **kwargs)

        monkeypatch.setattr(checkpoint, "save_file", save_file)
    else:  # step 4's checkpoint is written, the run's model.safetensors is not
        real_model = rundir.save_model
        calls = []

        def save_model(model, path, *args, **kwargs):
            calls.append(path)
            if len(calls) == 2:
                raise disk_full(kind)
            return real_model(model, path, *args, **kwargs)

        monkeypatch.setattr(rundir, "save_model", save_model)
    run_dir = tmp_path / "run"
    code, _, err = pretrain(capsys, corpus_file, run_dir)
    kept = 2 if where == "checkpoint" else 4
    assert_one_line_error(code, err, "no space left on device while writing the checkpoint")
    assert f"(step {kept}) is intact" in err, err
    assert not list((run_dir / "state").glob(".tmp-*")) and not list(run_dir.glob(".*.tmp-*"))
    assert checkpoint.latest_checkpoint(run_dir).step == kept
    td.load(run_dir)  # the run's weights are whole
    monkeypatch.undo()
    code, _, err = pretrain(capsys, corpus_file, run_dir, "--resume")
    assert code == 0, err
    newest = checkpoint.latest_checkpoint(run_dir)
    assert newest.step == 4
    # the run's weights are those of its last checkpoint, even where nothing was left to train
    assert_same_tensors(run_dir / "model.safetensors", newest.path / "model.safetensors")


def test_resume_removes_what_a_killed_writer_left_behind(capsys, tmp_path, gpt_run, corpus_file):
    run_dir = tmp_path / "gpt"
    shutil.copytree(gpt_run, run_dir)
    stale = run_dir / "state" / ".tmp-step_00000006-99999"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    (run_dir / ".model.safetensors.tmp-99999").write_bytes(b"half")
    code, _, err = pretrain(capsys, corpus_file, run_dir, "--resume", "--set", "train.steps=6")
    assert code == 0, err
    assert not stale.exists() and not (run_dir / ".model.safetensors.tmp-99999").exists()


# --------------------------------------------------------------------- one writer per run
HOLDER = (
    "import sys, time\n"
    "from textdecade.pretrain.lock import RunLock\n"
    "RunLock(sys.argv[1]).acquire()\n"
    "print('locked', flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.fixture
def held_run(tmp_path, gpt_run):
    """A copy of a run whose lock another live process holds (as a training run would)."""
    run_dir = tmp_path / "gpt"
    shutil.copytree(gpt_run, run_dir)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield run_dir, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: runs are not locked")
def test_a_live_run_refuses_a_second_writer_and_is_free_once_its_holder_is_killed(
    capsys, tmp_path, held_run, corpus_file
):
    from textdecade.pretrain.lock import RunLock

    run_dir, holder = held_run
    before = digests(run_dir)
    hf = tmp_path / "hf"
    assert run(capsys, "export", "hf", run_dir, "-o", hf)[0] == 0  # reading is fine
    in_use = f"is in use by another textdecade process (pid {holder.pid})"
    for argv in (
        ("--resume", "--set", "train.steps=6"),
        ("--overwrite",),
    ):
        code, _, err = pretrain(capsys, corpus_file, run_dir, *argv)
        assert_one_line_error(code, err, in_use)
    for argv in (
        ("export", "hf", run_dir.parent / "other", "-o", run_dir, "--overwrite"),
        ("import", "hf", hf, "-o", run_dir, "--overwrite"),
    ):
        if argv[0] == "export":
            shutil.copytree(run_dir, argv[2])
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, in_use)
    assert digests(run_dir) == before  # nothing written, nothing deleted
    holder.kill()  # SIGKILL: no cleanup runs, yet the kernel drops the lock at once
    holder.wait()
    with RunLock(run_dir):
        pass
    code, _, err = pretrain(capsys, corpus_file, run_dir, "--resume", "--set", "train.steps=6")
    assert code == 0, err


@pytest.mark.parametrize("kind", ["oserror", "safetensors"])
def test_a_full_disk_anywhere_is_one_line(capsys, monkeypatch, tmp_path, gpt_run, kind):
    from textdecade.interop import hf

    def full(*args, **kwargs):
        raise disk_full(kind)

    monkeypatch.setattr(hf, "save_file", full)  # the HF weights of an export
    code, _, err = run(capsys, "export", "hf", gpt_run, "-o", tmp_path / "hf")
    assert_one_line_error(code, err, "no space left on device")
    assert not any(p.name.startswith(".") for p in (tmp_path / "hf").iterdir())


def test_a_config_with_absurd_sizes_is_one_line_before_anything_is_allocated(
    capsys, tmp_path, gpt_run
):
    """A hand-edited config.json (d_model 10**6, 48 layers) is checked against the weight
    file on the meta device: one line, instead of torch trying to allocate hundreds of GB."""
    import json

    edited = tmp_path / "edited"
    shutil.copytree(gpt_run, edited)
    config = json.loads((edited / "config.json").read_text())
    config["model"].update(d_model=1_000_000, n_layers=48)
    (edited / "config.json").write_text(json.dumps(config))
    for argv in (["eval", "perplexity", str(edited)], ["embed", str(edited), "--words", "the"]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "the checkpoint's shapes do not match the config")


def test_weights_stored_as_integers_are_one_line_not_silently_converted(capsys, tmp_path, gpt_run):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    edited = tmp_path / "ints"
    shutil.copytree(gpt_run, edited)
    path = str(edited / "model.safetensors")
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    weights = {k: v.to(torch.int32) for k, v in load_file(path).items()}
    save_file(weights, path, metadata=metadata)
    code, _, err = run(capsys, "eval", "perplexity", str(edited))
    assert_one_line_error(code, err, "is stored as I32, not as floating-point weights")
