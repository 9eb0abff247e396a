"""Recipes (TOML) and ``--set section.key=value`` overrides: any text gives a RunConfig or
one ConfigError line."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import any_text, file_bytes, fuzz, result_or_user_error, scratch
from textdecade.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig, build_config
from textdecade.errors import ConfigError
from textdecade.models import get_family

_, GPT, PRESETS = get_family("gpt")
SECTIONS = {"model": GPT, "train": TrainConfig, "data": DataConfig, "tokenizer": TokenizerConfig}
KEYS = sorted({f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)})

section = st.one_of(st.sampled_from(sorted(SECTIONS)), any_text.filter(lambda t: "=" not in t))
key = st.one_of(st.sampled_from(KEYS), any_text.filter(lambda t: "=" not in t))
toml_value = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0", "-1", "true", "[]", "[1, 'a']"]),
    st.sampled_from(['"cpu"', '"cuda:99"', '""', "{a = 1}", "[[[", "'''", '"\\ud800"']),
    st.just("9" * 5000),  # past Python's int-digits limit
    st.just("[" * 3000 + "]" * 3000),  # nesting deeper than the parser recurses
    st.floats().map(repr),
    any_text,
)
overrides = st.lists(
    st.one_of(
        st.builds(lambda s, k, v: f"{s}.{k}={v}", section, key, toml_value),
        st.builds(lambda k, v: f"{k}={v}", key, toml_value),
        any_text,
    ),
    max_size=3,
)


def built(recipe=None, sets=()) -> object:
    out = result_or_user_error(lambda: build_config("gpt", GPT, PRESETS, "tiny", recipe, sets))
    assert isinstance(out, (RunConfig, ConfigError)), type(out)
    return out


@fuzz(200)
@given(overrides)
def test_any_set_overrides(sets):
    built(sets=sets)


recipe_text = st.lists(
    st.builds(lambda s, k, v: f"[{s}]\n{k} = {v}", section, key, toml_value), max_size=3
).map("\n".join)


@fuzz(120)
@given(st.one_of(file_bytes, recipe_text.map(str.encode)))
def test_any_recipe_file(data):
    with scratch() as tmp:
        (tmp / "r.toml").write_bytes(data)
        built(recipe=tmp / "r.toml")


# ---- regression tests: the bugs this suite found, one plain example each


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("model.d_model=" + "9" * 5000, "--set 'model.d_model': value is a number past"),
        ("data.corpus=" + "[" * 3000 + "]" * 3000, "--set 'data.corpus': value is a number"),
        ("train.lr=1" + "0" * 400, "train.lr must be a number within float range"),
        ("model.d\nx=1", "unknown config key 'model.d\\nx'"),
        ("x\ny=1", "unknown config section 'x\\ny' in --set 'x\\ny=1'"),
    ],
)
def test_hostile_set_values_are_one_line(override, says):
    with pytest.raises(ConfigError) as info:
        build_config("gpt", GPT, PRESETS, "tiny", None, [override])
    assert says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("recipe", "says"),
    [
        ("[model]\nd_model = " + "9" * 5000, "a number past 4300 digits"),
        ('["a\\nb"]\nx = 1', "unknown config section 'a\\nb'"),
        ('[model]\n"a\\nb" = 1', "unknown config key 'model.a\\nb'"),
    ],
)
def test_hostile_recipes_are_one_line(tmp_path, recipe, says):
    (tmp_path / "r.toml").write_text(recipe)
    with pytest.raises(ConfigError) as info:
        build_config("gpt", GPT, PRESETS, "tiny", tmp_path / "r.toml")
    assert says in str(info.value) and "\n" not in str(info.value)
