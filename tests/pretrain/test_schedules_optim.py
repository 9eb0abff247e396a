"""Schedules have the shapes the papers give; optimizer state survives safetensors + JSON."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from textdecade.config import OPTIMIZERS, SCHEDULES, TrainConfig
from textdecade.errors import ConfigError
from textdecade.pretrain.optim import build_optimizer, load_optimizer_state, optimizer_state
from textdecade.pretrain.schedules import lr_at


def curve(name, total=100, warmup=10, lr=1.0, min_ratio=0.1):
    return [
        lr_at(name, s, lr=lr, total=total, warmup=warmup, min_ratio=min_ratio) for s in range(total)
    ]


def test_cosine_warms_up_linearly_then_decays_to_the_floor():
    c = curve("cosine")
    assert c[0] == pytest.approx(0.1) and c[9] == pytest.approx(1.0)
    assert c[10] == pytest.approx(1.0)  # the first step after warmup: the peak
    assert all(a >= b for a, b in zip(c[9:], c[10:], strict=False))
    assert c[-1] == pytest.approx(0.1)
    assert c[54] == pytest.approx(0.55, abs=0.02)  # halfway down


def test_linear_decay_like_word2vec_alpha():
    c = curve("linear", warmup=0, min_ratio=1e-4)
    assert c[0] == 1.0  # word2vec.c's first alpha
    assert c[-1] == pytest.approx(1e-4)  # gensim's min_alpha on the last step
    diffs = {round(a - b, 9) for a, b in zip(c, c[1:], strict=False)}
    assert len(diffs) == 1  # a straight line


def test_noam_peaks_at_warmup_then_falls_as_inverse_sqrt():
    c = curve("noam", warmup=16)
    assert max(c) == pytest.approx(1.0) and c.index(max(c)) == 15
    assert c[63] == pytest.approx(math.sqrt(16 / 64))


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="unknown schedule 'cosin'.*cosine"):
        lr_at("cosin", 0, lr=1, total=1, warmup=0, min_ratio=0)
    with pytest.raises(ConfigError, match="unknown optimizer 'lamb'.*adamw"):
        build_optimizer("lamb", torch.nn.Linear(2, 2), TrainConfig(), torch.device("cpu"))


def test_every_name_the_config_accepts_is_built():
    """TrainConfig checks train.optimizer/schedule against these tuples: none may fail later."""
    for name in OPTIMIZERS:
        config = TrainConfig(optimizer=name)
        build_optimizer(name, torch.nn.Linear(2, 2), config, torch.device("cpu"))
    for name in SCHEDULES:
        assert lr_at(TrainConfig(schedule=name).schedule, 5, lr=1, total=9, warmup=2, min_ratio=0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_round_trips_exactly(name, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    opt = build_optimizer(name, model, TrainConfig(lr=0.1), torch.device("cpu"))
    for _ in range(3):
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    tensors, meta = optimizer_state(opt)
    save_file(tensors, str(tmp_path / "opt.safetensors"))  # through the disk, as checkpoints do
    tensors = load_file(str(tmp_path / "opt.safetensors"))
    clone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    clone.load_state_dict(model.state_dict())
    opt2 = build_optimizer(name, clone, TrainConfig(lr=0.1), torch.device("cpu"))
    load_optimizer_state(opt2, tensors, meta)
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (clone, opt2)):
        m(x).square().mean().backward()
        o.step()
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(a, b)


def test_adamw_does_not_decay_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    opt = build_optimizer("adamw", model, TrainConfig(weight_decay=0.1), torch.device("cpu"))
    decayed = [g for g in opt.param_groups if g["weight_decay"] > 0]
    assert [p.shape for p in decayed[0]["params"]] == [torch.Size([8, 4])]
