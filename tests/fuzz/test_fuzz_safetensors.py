"""safetensors files a user hands over (a run's ``model.safetensors``, a HF directory's
weights and ``config.json``): random bytes, a huge 8-byte header length, a JSON header with
wrong dtypes, shapes or offsets give weights or one line, and allocate nothing the file
does not hold."""

from __future__ import annotations

import json
import resource
import shutil
import struct

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import textdecade as td
from tests.conftest import data_path
from tests.fuzz.conftest import any_text, file_bytes, fuzz, result_or_user_error, scratch
from textdecade.errors import CheckpointError, UserError
from textdecade.interop.hf_files import read_hf_config, read_hf_weights
from textdecade.pretrain.rundir import load_weights

TINY = [
    "train.threads=1",
    "train.steps=2",
    "train.batch_size=4",
    "train.eval_every=100",
    "train.ckpt_every=100",
    "train.warmup_steps=1",
    "tokenizer.vocab_size=300",
    "model.d_model=16",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.max_len=16",
]

DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "XX", ""]
dims = st.one_of(st.integers(0, 4), st.integers(-3, 2**64), st.just(2**62))
shapes = st.one_of(st.lists(dims, max_size=3), st.just("3"), st.just([[2]]), st.none())
offsets = st.one_of(
    st.tuples(st.integers(0, 64), st.integers(0, 64)).map(list),
    st.tuples(st.integers(-1, 2**64), st.integers(-1, 2**64)).map(list),
    st.just([0]),
    st.just("0-4"),
)


def entries(names: list[str]):
    entry = st.fixed_dictionaries(
        {"dtype": st.sampled_from(DTYPES), "shape": shapes, "data_offsets": offsets}
    )
    metadata = st.one_of(
        st.dictionaries(any_text, any_text, max_size=2), st.dictionaries(any_text, st.integers())
    )
    return st.builds(
        lambda tensors, meta, with_meta: {
            **tensors,
            **({"__metadata__": meta} if with_meta else {}),
        },
        st.dictionaries(st.one_of(st.sampled_from(names), any_text), entry, max_size=3),
        metadata,
        st.booleans(),
    )


def safetensors_bytes(names: list[str]):
    """Files whose header is JSON with hostile entries, whose 8-byte length is true, off by
    a little, or anything (up to 2**64 - 1), and whose body is any bytes."""

    def build(header, length, body):
        text = json.dumps(header).encode("utf-8")
        size = {"true": len(text), "short": max(len(text) - 1, 0), "long": len(text) + 3}
        n = size.get(length, length) if isinstance(length, str) else length
        return struct.pack("<Q", n) + text + body

    lengths = st.one_of(
        st.sampled_from(["true", "true", "short", "long"]), st.integers(0, 2**64 - 1)
    )
    crafted = st.builds(build, entries(names), lengths, st.binary(max_size=80))
    return st.one_of(crafted, file_bytes, st.binary(min_size=8, max_size=8))


@pytest.fixture(scope="module")
def rss_bound():
    """The process's peak memory may grow by no more than 256 MiB over the module's examples:
    a header that names 2**62 elements must be refused, not allocated."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 256 * 1024, f"peak memory grew by {grown_kib} KiB"


TINY_MODEL_NAMES = ["0.weight", "0.bias", "1.weight"]


def tiny_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1, bias=False))


@fuzz(150)
@given(safetensors_bytes(TINY_MODEL_NAMES))
def test_load_weights_of_any_file(rss_bound, data):
    with scratch() as tmp:
        (tmp / "model.safetensors").write_bytes(data)
        model = tiny_model()
        result_or_user_error(lambda: load_weights(model, tmp / "model.safetensors"))


@fuzz(100)
@given(safetensors_bytes(["bert.embeddings.word_embeddings.weight"]))
def test_read_hf_weights_of_any_file(rss_bound, data):
    with scratch() as tmp:
        (tmp / "model.safetensors").write_bytes(data)
        out = result_or_user_error(lambda: read_hf_weights(tmp))
        if not isinstance(out, UserError):
            assert all(isinstance(t, torch.Tensor) for t in out.values())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
hf_configs = st.one_of(
    json_values.map(json.dumps),
    st.builds(
        lambda t, a, rest: json.dumps({"model_type": t, "architectures": a, **rest}),
        st.one_of(st.sampled_from(["bert", "gpt2", "llama"]), json_values),
        json_values,
        st.dictionaries(any_text, json_values, max_size=2),
    ),
    st.just('{"model_type": ' + "9" * 5000 + "}"),
    st.just('{"model_type": "t5\\nx", "architectures": ["A\\nB"]}'),  # newlines in names
    st.just("[" * 3000),
)


@fuzz(120)
@given(st.one_of(hf_configs.map(str.encode), file_bytes))
def test_read_hf_config_of_any_file(data):
    with scratch() as tmp:
        (tmp / "config.json").write_bytes(data)
        out = result_or_user_error(lambda: read_hf_config(tmp))
        if not isinstance(out, UserError):
            assert out["model_type"] in ("bert", "gpt2")


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    from textdecade.config import build_config
    from textdecade.models import get_family
    from textdecade.pretrain.trainer import Trainer

    path = data_path("corpus_en", "gensim_lee.txt")
    texts = [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()][:40]
    torch.set_num_threads(1)
    _, Config, presets = get_family("gpt")
    config = build_config("gpt", Config, presets, "tiny", None, TINY)
    run = tmp_path_factory.mktemp("runs") / "gpt"
    Trainer(config, run, corpus=texts, progress=False).fit()
    return run


@fuzz(40)
@given(data=st.data())
def test_load_a_run_with_a_crafted_weights_file(rss_bound, gpt_run, data):
    from safetensors import safe_open

    with safe_open(str(gpt_run / "model.safetensors"), framework="pt") as f:
        names = list(f.keys())
    crafted = data.draw(safetensors_bytes(names))
    with scratch() as tmp:
        run = tmp / "gpt"
        shutil.copytree(gpt_run, run, ignore=shutil.ignore_patterns("state", "data"))
        (run / "model.safetensors").write_bytes(crafted)
        result_or_user_error(lambda: td.load(run, device="cpu"))


# ---- regression tests: the bugs this suite found, one plain example each


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ('{"architectures": true}', "unsupported architecture 'unknown'"),
        ('{"model_type": []}', "unsupported architecture 'unknown'"),
        ('{"model_type": "t5", "architectures": [1, "T5Model"]}', "architecture 'T5Model'"),
        ('{"architectures": ["A\\nB"]}', "unsupported architecture 'A\\nB'"),
        ("[" * 3000, "config.json: not valid JSON"),
        ('{"model_type": ' + "9" * 5000 + "}", "config.json: not valid JSON"),
    ],
)
def test_a_hostile_hf_config_is_one_line(tmp_path, config, says):
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(UserError) as info:
        read_hf_config(tmp_path)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_a_header_length_past_the_file_is_refused_without_reading(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 2**64 - 1) + b"{}")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_weights(tiny_model(), tmp_path / "model.safetensors")


run_json = st.one_of(
    json_values.map(json.dumps),
    st.builds(
        lambda family, rest: json.dumps({"family": family, **rest}),
        st.one_of(st.sampled_from(["gpt", "bert", "nope"]), json_values),
        st.dictionaries(st.sampled_from(["model", "train", "data", "tokenizer"]), json_values),
    ),
    st.just('{"family": ' + "9" * 5000 + "}"),
    st.just("[" * 3000),
)


@fuzz(60)
@given(st.sampled_from(["config.json", "data_meta.json"]), st.one_of(run_json, any_text))
def test_load_a_run_with_a_crafted_json_file(rss_bound, gpt_run, name, text):
    with scratch() as tmp:
        run = tmp / "gpt"
        shutil.copytree(gpt_run, run, ignore=shutil.ignore_patterns("state", "data"))
        (run / name).write_text(text, encoding="utf-8")
        result_or_user_error(lambda: td.load(run, device="cpu"))


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("config.json", "null", "config.json: expected a JSON object"),  # via the HF reader
        ("config.json", '{"family": []}', "config.json is corrupt (not a JSON object naming"),
        ("config.json", "[" * 3000, "config.json is not valid JSON"),
        ("config.json", '{"family": ' + "9" * 5000 + "}", "config.json is not valid JSON"),
        ("data_meta.json", "null", "data_meta.json is corrupt (not a JSON object)"),
        ("data_meta.json", "[" * 3000, "data_meta.json is missing or corrupt"),
    ],
)
def test_a_run_with_a_hostile_json_file_is_one_line(tmp_path, gpt_run, name, text, says):
    run = tmp_path / "gpt"
    shutil.copytree(gpt_run, run, ignore=shutil.ignore_patterns("state", "data"))
    (run / name).write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as info:
        td.load(run, device="cpu")
    assert "\n" not in str(info.value)
    assert says in str(info.value)
