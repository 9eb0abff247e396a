"""Config layering and the one-line errors for unknown keys and wrong types."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from textdecade.config import build_config, config_from_json
from textdecade.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64
    dropout: float = 0.1
    tie: bool = True


PRESETS = {"tiny": {"model": {"d_model": 32}, "train": {"steps": 10}}, "small": {}, "base": {}}


def test_layers_apply_in_order(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[model]\nd_model = 48\n[train]\nlr = 0.01\n[data]\ncorpus = ["a.txt"]\n')
    config = build_config(
        "gpt",
        ModelConfig,
        PRESETS,
        "tiny",
        recipe,
        ["model.dropout=0", "steps=7", "data.dataset=wikitext:wikitext-2"],
    )
    assert config.model == ModelConfig(d_model=48, dropout=0.0, tie=True)
    assert config.train.steps == 7 and config.train.lr == 0.01
    assert config.data.corpus == ("a.txt",) and config.data.dataset == "wikitext:wikitext-2"
    assert config_from_json(config.to_dict(), ModelConfig) == config


@dataclass(frozen=True)
class LMConfig:
    d_model: int = 64
    valid_fraction: float = 0.01


def test_older_run_configs_still_load():
    """``data.valid_fraction`` (the first versions) is now the family's own setting."""
    saved = build_config("gpt", LMConfig, PRESETS, "tiny", None, []).to_dict()
    saved["data"]["valid_fraction"] = 0.05
    del saved["model"]["valid_fraction"]
    assert config_from_json(saved, LMConfig).model.valid_fraction == 0.05
    # A family without the setting drops it rather than refusing the run directory.
    assert config_from_json(saved, ModelConfig).model == ModelConfig(d_model=32)
    assert "valid_fraction" in saved["data"]  # the caller's dict is left as it was


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.d_modle=3", "unknown config key 'model.d_modle' (allowed: d_model, dropout, tie)"),
        ("train.lr=fast", "train.lr must be a number, got 'fast'"),
        ("model.tie=1", "model.tie must be true or false"),
        ("optim.lr=1", "unknown config section 'optim'"),
        ("lr", "--set expects section.key=value"),
    ],
)
def test_mistakes_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError) as info:
        build_config("gpt", ModelConfig, PRESETS, "tiny", None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_preset_and_bad_recipe(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build_config("gpt", ModelConfig, PRESETS, "huge")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config("gpt", ModelConfig, PRESETS, "tiny", bad)
    with pytest.raises(ConfigError, match="config file not found"):
        build_config("gpt", ModelConfig, PRESETS, "tiny", tmp_path / "missing.toml")
