"""``textdecade plot attention`` draws GPT's, BERT's and Transformer-XL's self-attention from a
run directory.

Three runs of two steps on real text (seconds each). The PNG holds the map of the layer and
head asked for in the perceptual colour map (its pixels are viridis colours, not grey),
and a layer or head the model does not have is one line and exit 2.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_cli import assert_one_line_error, run
from textdecade.cli import main
from textdecade.eval.attention_plot import self_attention
from textdecade.pretrain.rundir import load_run

TEXT = "The river bank was flooded after the storm."


FAMILIES = ["gpt", "bert", "transformer-xl"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_lines):
    """A GPT, a BERT and a Transformer-XL run (2 layers, 2 heads) of two steps on 150 lines
    of real text."""
    root = tmp_path_factory.mktemp("attn")
    text = root / "c.txt"
    text.write_text("\n".join(corpus_lines("gensim_lee.txt", 150)) + "\n", encoding="utf-8")
    small = ["--set", "tokenizer.vocab_size=400", "--set", "train.threads=1", "--steps", "2"]
    for key, value in (("d_model", 32), ("n_layers", 2), ("n_heads", 2)):
        small += ["--set", f"model.{key}={value}"]
    small += ["--set", "train.batch_size=4"]
    context = {"max_len": 32}
    for family in FAMILIES:
        if family == "transformer-xl":  # segments and a memory instead of a context
            context = {"segment_len": 32, "mem_len": 32}
        sizes = [a for k, v in context.items() for a in ("--set", f"model.{k}={v}")]
        argv = ["pretrain", family, "-q", "--corpus", str(text), "-o", str(root / family)]
        assert main([*argv, *small, *sizes]) == 0
    return root


def _viridis_share(path) -> float:
    """The share of the image's coloured (non-grey) pixels that lie on viridis (weighted by
    pixel count: antialiased edges blend a few colours)."""
    import matplotlib
    import matplotlib.image

    image = matplotlib.image.imread(path)[..., :3]
    pixels, counts = np.unique(np.round(image.reshape(-1, 3), 2), axis=0, return_counts=True)
    coloured = np.ptp(pixels, axis=1) > 0.15  # distinct colours only: few, fast
    lut = matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3]
    pixels, counts = pixels[coloured], counts[coloured]
    nearest = np.min(np.linalg.norm(pixels[:, None, :] - lut[None], axis=2), axis=1)
    return float(counts[nearest < 0.02].sum() / max(counts.sum(), 1))


@pytest.mark.parametrize("family", FAMILIES)
def test_cli_writes_the_self_attention_png(capsys, runs, tmp_path, family):
    out = tmp_path / f"{family}.png"
    argv = ["plot", "attention", str(runs / family), TEXT, "-o", str(out), "--head", "1"]
    code, printed, err = run(capsys, *argv)
    assert code == 0, err
    assert printed.strip() == str(out) and out.stat().st_size > 5000
    assert _viridis_share(out) > 0.9  # the map and its colour bar, in the perceptual map
    _, model, tokenizer = load_run(runs / family)
    pieces, maps = self_attention(model, tokenizer, TEXT)
    assert maps.shape == (2, 2, len(pieces), len(pieces))
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    if family == "bert":
        assert pieces[0] == "<cls>" and pieces[-1] == "<sep>"  # as it was pretrained
    else:  # causal: the future gets nothing
        assert (maps[..., np.triu(np.ones(maps.shape[-2:], dtype=bool), 1)] == 0).all()
    assert TEXT in "".join(pieces).replace("\u2581", " ")  # the pieces spell the text
    code, _, err = run(capsys, "plot", "attention", str(runs / family), TEXT, "-o", str(out),
                       "--head", "mean", "--layer", "-2")  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--layer", "99"], "--layer 99: this model has 2 layer(s), 0 to 1"),
        (["--layer", "-3"], "--layer -3: this model has 2 layer(s)"),
        (["--head", "2"], "--head 2: this model has 2 head(s), 0 to 1"),
        (["--head", "all"], "argument --head: expected a head number or mean"),
        (["--target", "x"], "--target is for translation runs"),
    ],
)
def test_a_layer_or_head_the_model_lacks_is_one_line(capsys, runs, tmp_path, extra, fragment):
    out = tmp_path / "no.png"
    code, _, err = run(capsys, "plot", "attention", str(runs / "gpt"), TEXT, "-o", str(out), *extra)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


def test_translation_alignment_has_a_colour_bar_and_checks_layer_and_head(tmp_path):
    """An untrained tiny Transformer (seconds): the grid and a single map both come out in
    viridis, and a layer it lacks is a UserError before anything is drawn."""
    import matplotlib.image
    import torch

    from tests.conftest import data_path
    from tests.test_api_support import tiny_tokenizer
    from textdecade.errors import UserError
    from textdecade.eval.attention_plot import plot_attention
    from textdecade.models import transformer

    lines = []
    for side in ("de", "en"):
        with open(data_path("multi30k", f"train.{side}"), encoding="utf-8") as f:
            lines += [next(f).strip() for _ in range(150)]
    tokenizer = tiny_tokenizer(lines, 400)
    torch.manual_seed(0)
    config = transformer.Config(d_model=32, n_heads=2, n_layers=2, d_ff=64, max_len=24)
    model = transformer.Model(config, {"vocab_size": tokenizer.vocab_size}).eval()
    source, target = "Ein Mann fährt Fahrrad .", "A man rides a bike ."
    grid = plot_attention(model, tokenizer, source, tmp_path / "grid.png", target=target)
    one = plot_attention(model, tokenizer, source, tmp_path / "one.png", target, layer=-1, head=1)
    assert _viridis_share(grid) > 0.9 and _viridis_share(one) > 0.9
    wide, narrow = (matplotlib.image.imread(p).shape[1] for p in (grid, one))
    assert wide > 1.5 * narrow  # 2 heads side by side, against one map
    with pytest.raises(UserError, match="--layer 2: this model has 2 layer"):
        plot_attention(model, tokenizer, source, tmp_path / "no.png", target, layer=2)
    assert not (tmp_path / "no.png").exists()
