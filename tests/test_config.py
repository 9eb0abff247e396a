"""Config layering and the one-line errors for unknown keys and wrong types."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from textdecade.config import (
    DataConfig,
    TokenizerConfig,
    TrainConfig,
    build_config,
    config_from_json,
)
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


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (TrainConfig, {"batch_size": 0}, "train.batch_size must be a positive integer (got 0)"),
        (TrainConfig, {"steps": -5}, "train.steps must be a positive integer (got -5)"),
        (TrainConfig, {"lr": -1.0}, "train.lr must be a positive number (got -1.0)"),
        (TrainConfig, {"lr": float("nan")}, "train.lr must be a positive number (got nan)"),
        (TrainConfig, {"grad_accum": 0}, "train.grad_accum must be a positive integer"),
        (TrainConfig, {"eval_every": -1}, "train.eval_every must be a non-negative integer"),
        (TrainConfig, {"warmup_steps": -10}, "train.warmup_steps must be a non-negative"),
        (TrainConfig, {"threads": 0}, "train.threads must be a positive integer"),
        (TrainConfig, {"device": "tpu"}, "train.device must be auto, cpu, cuda, cuda:N or mps"),
        (TrainConfig, {"device": "cuda:x"}, "train.device must be"),
        (TrainConfig, {"optimizer": "weird"}, "train.optimizer must be one of sgd, momentum"),
        (TrainConfig, {"schedule": "weird"}, "train.schedule must be one of cosine, linear"),
        (TrainConfig, {"dtype": "weird"}, "train.dtype must be one of auto, fp32, bf16, fp16"),
        (TrainConfig, {"min_lr_ratio": 1.5}, "train.min_lr_ratio must be a number in [0, 1]"),
        (TrainConfig, {"beta2": 1.0}, "train.beta2 must be a number in [0, 1) (got 1.0)"),
        (TrainConfig, {"parallel": "zero"}, "train.parallel must be one of ddp, fsdp"),
        (TrainConfig, {"batch_size": True}, "train.batch_size must be a positive integer"),
        (TokenizerConfig, {"vocab_size": 0}, "tokenizer.vocab_size must be a positive integer"),
        (TokenizerConfig, {"backend": "wp"}, "tokenizer.backend must be one of bpe, sentencepiece"),
        (TokenizerConfig, {"max_texts": -1}, "tokenizer.max_texts must be a non-negative integer"),
        (DataConfig, {"max_texts": 0}, "data.max_texts must be a positive integer"),
        (DataConfig, {"split": " "}, "data.split must be a non-empty string"),
        (DataConfig, {"target": "t.en"}, "data.target ('t.en') needs data.source"),
    ],
)
def test_out_of_range_values_are_refused_by_the_dataclasses(section, values, message):
    """The Python API gets the same one-line ConfigError as ``--set``."""
    with pytest.raises(ConfigError) as info:
        section(**values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_edge_values_that_mean_something_are_kept():
    # 0 turns evaluation, clipping, warmup and weight decay off; "cuda:1" names a GPU.
    TrainConfig(eval_every=0, clip=0.0, warmup_steps=0, weight_decay=0.0, device="cuda:1")
    TrainConfig(threads=None, optimizer=None, schedule=None, min_lr_ratio=1.0, beta1=0.0)
    TokenizerConfig(max_texts=0)  # all texts: a recipe has no way to write None
    DataConfig(source="pairs.tsv")  # a source alone is a TSV of pairs


def test_a_bad_value_names_its_key_once():
    with pytest.raises(ConfigError) as info:
        build_config("gpt", ModelConfig, PRESETS, "tiny", None, ["train.batch_size=0"])
    assert str(info.value) == "train.batch_size must be a positive integer (got 0)"


def test_every_family_preset_is_valid():
    from textdecade.models import FAMILIES, get_family

    for family in FAMILIES:
        _, config_cls, presets = get_family(family)
        for preset in presets:
            build_config(family, config_cls, presets, preset)
