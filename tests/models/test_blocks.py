"""The swappable block parts (norm, norm placement, activation, init, residual) per family.

Every option value builds from config in each neural family that has it, gives the same
weights for the same seed, and trains a few steps on a small batch of real English (the
UTF-8 bytes of gensim's Lee corpus as token ids, so no tokenizer is trained). Batch norm
is shown to leave padding out of its statistics; the init schemes to give the variance
their papers derive; ``residual=false`` to remove the skip and nothing else.
"""

from __future__ import annotations

import math

import pytest
import torch

from textdecade.cli import main
from textdecade.config import build_config
from textdecade.data.lm import IGNORE_INDEX
from textdecade.data.parallel import BOS_ID, EOS_ID, PAD_ID, pad
from textdecade.errors import ConfigError, UserError
from textdecade.interop.hf_tables import check_exportable
from textdecade.models import bert, get_family, gpt, seq2seq, transformer
from textdecade.models.blocks import (
    ACTIVATIONS,
    INITS,
    NORM_POSITIONS,
    NORM_TYPES,
    MaskedBatchNorm,
    NoNorm,
    NoResidual,
)
from textdecade.models.layers import PostLNBlock, PreLNBlock
from textdecade.pretrain import fsdp

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_thread")]

V = 7 + 256  # the shared special ids 0..6, then one id per byte
MASK_ID = 6
TINY = {
    "gpt": {"d_model": 32, "n_heads": 2, "n_layers": 2, "max_len": 32},
    "bert": {"d_model": 32, "n_heads": 2, "n_layers": 2, "max_len": 32},
    "transformer": {"d_model": 32, "n_heads": 2, "n_layers": 2, "d_ff": 64, "max_len": 40},
    "seq2seq": {"d_model": 32, "d_hidden": 32, "max_len": 40},
}
BLOCK_FAMILIES = ("gpt", "bert", "transformer")


def _ids(text: str) -> list[int]:
    return [b + 7 for b in text.encode("utf-8")]


@pytest.fixture(scope="module")
def lines(corpus_lines):
    """Twelve lines of real English (gensim's Lee corpus)."""
    return corpus_lines("gensim_lee.txt", 12)


def _batch(family: str, lines: list[str]) -> dict[str, torch.Tensor]:
    """A small training batch of real text; every family but GPT's has padding."""
    if family == "gpt":
        ids = torch.tensor(_ids(" ".join(lines))[: 8 * 33]).view(8, 33)
        return {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    lengths = [12 + 2 * i for i in range(8)]  # 12..26 real tokens: padded rows
    rows = [_ids(line)[:n] for line, n in zip(lines, lengths)]
    if family == "bert":
        ids = pad(rows)
        mask = (ids != PAD_ID).long()
        gen = torch.Generator().manual_seed(0)
        chosen = (torch.rand(ids.shape, generator=gen) < 0.15) & mask.bool()
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
        inputs = torch.where(chosen, torch.full_like(ids, MASK_ID), ids)
        return {"input_ids": inputs, "attention_mask": mask, "labels": labels}
    rows = [r[:10] for r in rows] if family == "seq2seq" else rows  # a GRU loops per token
    src = pad([[*r, EOS_ID] for r in rows])  # copy the text: a task every option can learn
    return {
        "src": src,
        "src_mask": (src != PAD_ID).long(),
        "tgt_in": pad([[BOS_ID, *r] for r in rows]),
        "tgt_out": pad([[*r, EOS_ID] for r in rows]),
    }


def _build(family: str, **values) -> torch.nn.Module:
    """The family's model from dotted config overrides, as ``--set`` gives them."""
    Model, Config, presets = get_family(family)
    sets = [f"model.{k}={v}" for k, v in {**TINY[family], "dropout": 0.0, **values}.items()]
    config = build_config(family, Config, presets, "tiny", None, sets).model
    return Model(config, {"vocab_size": V})


def _options(family: str) -> list[tuple[str, dict]]:
    """Each option value, the others at the family's defaults (norm type x placement)."""
    opts: list[tuple[str, dict]] = []
    if family in BLOCK_FAMILIES:
        for kind in NORM_TYPES:
            opts += [(f"{kind}-{pos}", {"norm_type": kind, "norm": pos}) for pos in NORM_POSITIONS]
        opts += [("no-residual", {"residual": "false"}), ("residual", {"residual": "true"})]
    opts += [(f"act-{a}", {"activation": a}) for a in ACTIVATIONS]
    opts += [(f"init-{s}", {"init": s}) for s in INITS if s != "normal"]
    opts += [("init-normal-1", {"init": "normal", "init_std": 1.0})]
    opts += [("init-normal-0.01", {"init": "normal", "init_std": 0.01})]
    return opts


CASES = [(f, label, values) for f in (*BLOCK_FAMILIES, "seq2seq") for label, values in _options(f)]


@pytest.mark.parametrize(
    ("family", "label", "values"), CASES, ids=[f"{f}-{x}" for f, x, _ in CASES]
)
def test_option_builds_repeats_and_trains(family, label, values, lines):
    torch.manual_seed(0)
    model = _build(family, **values)
    torch.manual_seed(0)
    again = _build(family, **values)
    first, second = model.state_dict(), again.state_dict()
    assert list(first) == list(second)
    assert all(torch.equal(first[k], second[k]) for k in first), "same seed, other weights"

    batch = _batch(family, lines)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses), losses
    # Memorising one batch: every option learns, the naive N(0, 1) init from a high start.
    assert min(losses[-3:]) < losses[0] - 0.3, losses
    with torch.no_grad():  # eval: batch norm switches to its running statistics
        assert math.isfinite(model.eval().loss(batch).item())


# ------------------------------------------------------------------ batch norm and padding


def test_batchnorm_statistics_exclude_padding():
    torch.manual_seed(0)
    x = torch.randn(4, 9, 16) * 3 + 1
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[1, 5:], mask[2, 2:], mask[3, 7:] = 0, 0, 0
    real = x[mask.bool()]  # (M, D): the non-pad positions only
    noisy = x.masked_fill(~mask.bool()[..., None], 1e4)  # padding of any value
    bn = MaskedBatchNorm(16, eps=1e-5)
    ref = torch.nn.BatchNorm1d(16, eps=1e-5)  # torch's batch norm on the real rows alone
    mean, var, n = bn.batch_stats(noisy, mask)
    assert int(n) == int(mask.sum())
    assert torch.allclose(mean, real.mean(0), atol=1e-5)
    assert torch.allclose(var, real.var(0, unbiased=False), atol=1e-4)
    y, y_ref = bn(noisy, mask), ref(real)
    assert torch.allclose(y[mask.bool()], y_ref, atol=1e-4)
    assert torch.allclose(bn.running_mean, ref.running_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, ref.running_var, atol=1e-4)
    bn.eval(), ref.eval()
    assert torch.allclose(bn(x)[mask.bool()], ref(real), atol=1e-4)  # eval: running stats


@pytest.mark.parametrize(
    ("family", "position"), [("bert", "post"), ("bert", "pre"), ("transformer", "pre")]
)
def test_batchnorm_states_do_not_depend_on_padding(family, position, lines):
    """In training mode, a batch-normed model's states at real tokens are the same however
    much padding the batch carries: the statistics see real tokens only."""
    torch.manual_seed(0)
    model = _build(family, norm_type="batchnorm", norm=position).train()
    rows = [_ids(line)[:n] for line, n in zip(lines, (9, 14, 20))]
    short = pad(rows)
    long = torch.cat([short, torch.zeros(3, 6, dtype=torch.long)], 1)  # six more pads
    states = []
    for ids in (short, long):
        mask = (ids != PAD_ID).long()
        states.append(model.hidden_states(ids, mask)[-1][:, : short.shape[1]])
    real = short != PAD_ID
    assert torch.allclose(states[0][real], states[1][real], atol=1e-5)


# ------------------------------------------------------------------ init and residual


@pytest.mark.parametrize(
    ("scheme", "std", "expect"),
    [
        ("xavier_uniform", 0.02, math.sqrt(2 / (128 + 512))),  # Glorot & Bengio 2010
        ("xavier_normal", 0.02, math.sqrt(2 / (128 + 512))),
        ("kaiming_uniform", 0.02, math.sqrt(2 / 128)),  # He et al. 2015, fan_in
        ("kaiming_normal", 0.02, math.sqrt(2 / 128)),
        ("normal", 1.0, 1.0),  # the naive N(0, 1)
        ("normal", 0.01, 0.01),
        ("default", 0.02, 0.02),  # GPT-2's N(0, 0.02)
    ],
)
def test_init_schemes_give_their_std(scheme, std, expect):
    torch.manual_seed(0)
    model = _build("gpt", d_model=128, n_heads=4, init=scheme, init_std=std)
    fc = model.h[0].mlp.fc  # (F=512, D=128): fan_in 128, fan_out 512
    assert fc.weight.std().item() == pytest.approx(expect, rel=0.05)
    assert fc.bias.abs().max() == 0
    assert torch.equal(model.h[1].ln_2.weight, torch.ones(128))
    proj = model.h[0].mlp.proj.weight.std().item()  # (D, F): fan_in 512
    residual_scaled = {"default": 0.02 / math.sqrt(2 * 2)}  # GPT-2: 1 / sqrt(2 L), L = 2
    scale = {"kaiming_uniform": math.sqrt(2 / 512), "kaiming_normal": math.sqrt(2 / 512)}
    assert proj == pytest.approx(residual_scaled.get(scheme, scale.get(scheme, expect)), rel=0.05)


@pytest.mark.parametrize("family", ["bert", "transformer", "seq2seq"])
def test_xavier_normal_in_other_families(family):
    torch.manual_seed(0)
    model = _build(family, d_model=64, init="xavier_normal")
    name, w = next((n, p) for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n)
    fan_out, fan_in = w.shape
    assert w.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.1), name
    if family != "bert":  # the padding row stays zero, as nn.Embedding keeps it
        assert model.input_embeddings().weight[PAD_ID].abs().max() == 0


@pytest.mark.parametrize("block_cls", [PreLNBlock, PostLNBlock])
def test_no_residual_block_drops_the_skip(block_cls):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    with_skip = block_cls(16, 2, 32, norm=lambda d: NoNorm())
    without = block_cls(16, 2, 32, norm=lambda d: NoNorm(), residual=NoResidual())
    without.load_state_dict(with_skip.state_dict())
    for blk in (with_skip, without):  # silence both sublayers: only the skip is left
        for lin in (blk.attn.proj, blk.mlp.proj):
            torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    assert torch.equal(with_skip(x), x)
    assert without(x).abs().max() == 0


@pytest.mark.parametrize("family", BLOCK_FAMILIES)
def test_residual_false_same_weights_other_function(family, lines):
    torch.manual_seed(0)
    on = _build(family, residual="true").eval()
    torch.manual_seed(0)
    off = _build(family, residual="false").eval()
    count = [sum(p.numel() for p in m.parameters()) for m in (on, off)]
    assert count[0] == count[1]
    assert all(
        torch.equal(a, b) for a, b in zip(on.state_dict().values(), off.state_dict().values())
    )
    batch = _batch(family, lines)
    with torch.no_grad():
        assert abs(on.loss(batch).item() - off.loss(batch).item()) > 1e-3


# ------------------------------------------------------------------ config, bias, contracts


def test_gpt_bias_false_drops_the_norm_biases_too():
    """GPT's ``bias=False`` covers LayerNorms, as documented (the blocks' used to keep one)."""
    model = _build("gpt", bias="false")
    assert not [k for k in model.state_dict() if k.endswith(".bias")]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * 2 + 1 and all(m.bias is None for m in norms)
    batchnormed = _build("gpt", bias="false", norm_type="batchnorm")
    assert not [k for k in batchnormed.state_dict() if k.endswith(".bias")]


@pytest.mark.parametrize("family", BLOCK_FAMILIES)
@pytest.mark.parametrize("key", ["norm", "norm_type", "activation", "init"])
def test_unknown_names_are_config_errors(family, key):
    Model, Config, presets = get_family(family)
    with pytest.raises(ConfigError) as err:
        build_config(family, Config, presets, "tiny", None, [f"model.{key}=bogus"])
    message = str(err.value)
    assert f"model.{key}='bogus'" in message and "\n" not in message
    allowed = {"norm": NORM_POSITIONS, "norm_type": NORM_TYPES, "init": INITS}
    assert all(name in message for name in allowed.get(key, tuple(ACTIVATIONS)))
    with pytest.raises(ConfigError, match="init_std must be positive"):
        build_config(family, Config, presets, "tiny", None, ["model.init_std=0"])


def test_seq2seq_refuses_the_block_settings_it_lacks():
    for key, value in (("norm", "pre"), ("norm_type", "rmsnorm"), ("residual", "false")):
        with pytest.raises(
            ConfigError, match=f"model.{key}: seq2seq has no norm, norm_type or residual"
        ):
            build_config(
                "seq2seq", seq2seq.Config, seq2seq.PRESETS, "tiny", None, [f"model.{key}={value}"]
            )
    with pytest.raises(ConfigError, match="model.activation='bogus'"):
        seq2seq.Config(activation="bogus")


def test_cli_says_a_bad_name_in_one_line(capsys, tmp_path):
    code = main(["pretrain", "gpt", "--set", "model.norm_type=bogus", "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "model.norm_type='bogus'" in lines[0] and "rmsnorm" in lines[0]


def test_families_declare_their_blocks():
    torch.manual_seed(0)
    g, b, t = _build("gpt"), _build("bert"), _build("transformer")
    assert fsdp.fsdp_blocks(g) == list(g.h)
    assert fsdp.fsdp_blocks(b) == list(b.layer)
    assert fsdp.fsdp_blocks(t) == [*t.encoder, *t.decoder]  # forward order: decoder last
    assert fsdp.fsdp_blocks(_build("gpt", norm="post", norm_type="rmsnorm")) != []
    with pytest.raises(ConfigError, match="seq2seq has none"):
        fsdp.fsdp_blocks(_build("seq2seq"))


def test_default_transformer_keeps_its_state_dict_names():
    """Old run directories load: the default names are those from before the parts."""
    model = transformer.Model(
        transformer.Config(vocab_size=V, d_model=8, n_heads=2, n_layers=1, d_ff=16), {}
    )
    block = ["attn.qkv", "attn.proj", "ln_1", "mlp.fc", "mlp.proj", "ln_2"]
    cross = ["attn.qkv", "attn.proj", "ln_1", "cross_attn.qkv", "cross_attn.proj", "ln_2"]
    cross += ["mlp.fc", "mlp.proj", "ln_3"]
    names = ["embed.weight"]
    names += [f"encoder.0.{m}.{p}" for m in block for p in ("weight", "bias")]
    names += [f"decoder.0.{m}.{p}" for m in cross for p in ("weight", "bias")]
    assert list(model.state_dict()) == names
    pre = transformer.Model(
        transformer.Config(vocab_size=V, d_model=8, n_heads=2, n_layers=1, d_ff=16, norm="pre"), {}
    )
    assert [k for k in pre.state_dict() if k not in names] == [
        "enc_norm.weight", "enc_norm.bias", "dec_norm.weight", "dec_norm.bias"
    ]  # fmt: skip


def test_hf_export_refuses_what_hf_cannot_express():
    check_exportable("gpt2", gpt.Config())
    check_exportable("bert", bert.Config())
    for values in (
        {"norm_type": "rmsnorm"},
        {"residual": False},
        {"activation": "silu"},
        {"norm": "post"},
    ):
        with pytest.raises(UserError, match="cannot be exported"):
            check_exportable("gpt2", gpt.Config(**values))
    with pytest.raises(UserError, match="model.norm=pre"):
        check_exportable("bert", bert.Config(norm="pre"))
