"""Checkpoints verify every file before a resume trusts them, and skip a bad one with one line."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from textdecade.pretrain import checkpoint as ckpt

FILES = ("model.safetensors", "rng.safetensors", "optimizer.safetensors", "optimizer.json")


def _model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(3, 8)).sum().backward()
    optimizer.step()
    return model, optimizer


def _two_checkpoints(run_dir):
    model, optimizer = _model_and_optimizer()
    ckpt.save_checkpoint(run_dir, 1, model, optimizer, {"batcher": {"i": 1}}, keep_last=3)
    ckpt.save_checkpoint(run_dir, 2, model, optimizer, {"batcher": {"i": 2}}, keep_last=3)
    return run_dir / "state" / "step_00000002"


def _latest_with_warnings(run_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = ckpt.latest_checkpoint(run_dir)
    return found, [str(w.message) for w in caught]


def test_the_marker_records_every_file_size_and_sha256(tmp_path):
    newest = _two_checkpoints(tmp_path)
    files = json.loads((newest / "COMPLETE").read_text())["files"]
    assert sorted(files) == sorted([*FILES, "trainer.json"])
    for name, record in files.items():
        assert record["bytes"] == (newest / name).stat().st_size
        assert len(record["sha256"]) == 64


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_file_skips_the_checkpoint_with_one_line(tmp_path, name, damage):
    newest = _two_checkpoints(tmp_path)
    path = newest / name
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # same size, some bytes changed in place (e.g. a bad sector, a stray write)
        data[-4:] = bytes(b ^ 0xFF for b in data[-4:])
    path.write_bytes(bytes(data))
    found, messages = _latest_with_warnings(tmp_path)
    assert found is not None and found.step == 1
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert messages[0].startswith("skipping checkpoint step_00000002: " + name), messages
    fresh, fresh_opt = _model_and_optimizer(seed=1)
    ckpt.restore(found, fresh, fresh_opt)  # the fallback restores cleanly
    saved, _ = _model_and_optimizer()
    for a, b in zip(fresh.parameters(), saved.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_written_before_checksums_still_loads(tmp_path):
    newest = _two_checkpoints(tmp_path)
    (newest / "COMPLETE").write_text("ok\n")  # what older versions wrote
    found, messages = _latest_with_warnings(tmp_path)
    assert found is not None and found.step == 2 and not messages
    # Without checksums a truncated file is still caught by opening it.
    path = newest / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-8])
    found, messages = _latest_with_warnings(tmp_path)
    assert found.step == 1 and len(messages) == 1 and "model.safetensors" in messages[0]


class _Tied(torch.nn.Module):
    """Tied weights: safetensors stores them once and names the alias in its metadata."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


def test_equal_weights_are_written_as_equal_bytes(tmp_path):
    from textdecade.pretrain import rundir

    model = _Tied()
    seen = set()
    for i in range(10):  # safetensors' metadata order changes from one save to the next
        out = tmp_path / f"run{i}"
        out.mkdir()
        rundir.save_weights(model, out, "toy")
        seen.add((out / "model.safetensors").read_bytes())
    assert len(seen) == 1
    optimizer = torch.optim.AdamW(model.parameters())
    for i in range(2):
        torch.manual_seed(0)  # the same RNG state in both checkpoints
        ckpt.save_checkpoint(tmp_path / f"c{i}", 1, model, optimizer, {"batcher": {}}, 1)
    a, b = (tmp_path / f"c{i}" / "state" / "step_00000001" for i in range(2))
    for name in sorted(p.name for p in a.iterdir()):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("marker", ["{not json", '{"files": []}', '{"files": {"x": 1}}', "[]"])
def test_a_damaged_marker_skips_the_checkpoint(tmp_path, marker):
    newest = _two_checkpoints(tmp_path)
    (newest / "COMPLETE").write_text(marker)
    found, messages = _latest_with_warnings(tmp_path)
    assert found.step == 1 and len(messages) == 1 and "COMPLETE marker is corrupt" in messages[0]


def test_a_missing_file_skips_the_checkpoint(tmp_path):
    newest = _two_checkpoints(tmp_path)
    (newest / "optimizer.safetensors").unlink()
    found, messages = _latest_with_warnings(tmp_path)
    assert found.step == 1 and messages == [
        "skipping checkpoint step_00000002: optimizer.safetensors is missing"
    ]
