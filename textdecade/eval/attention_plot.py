"""Attention pictures: alignments of a translation, self-attention of GPT, BERT, Transformer-XL.

For attention seq2seq the alignment is the heatmap of Bahdanau et al. 2014 (their Figure
3), source words x target words. For the Transformer every decoder layer and head has its
own cross-attention: we draw a grid, one heatmap per (layer, head), or the one asked for.
The models attend over BPE pieces; we show words. A source word's weight is the *sum* over
its pieces (so each row still sums to 1), a target word's row the *mean* over its pieces.

For GPT, BERT and Transformer-XL (:class:`~textdecade.models.base.SelfAttentionMaps`; the
XL over the text alone, read from an empty memory) we draw one layer and
head's self-attention over the text's BPE pieces, as Vaswani et al. 2017 (Figures 3-5) and
Clark et al. 2019 ("What does BERT look at?") do. Every map uses one perceptual colour map
(viridis: lightness rises evenly with the weight, and it survives greyscale printing and
colour blindness) on a fixed 0-1 scale with a colour bar, so two pictures compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdecade.data.parallel import BOS_ID, EOS_ID, pad
from textdecade.errors import UserError
from textdecade.extras import require

#: The colour map of every attention picture (perceptual, sequential, 0 = dark).
CMAP = "viridis"
#: Tick labels longer than this are cut (an untrained model's translation can be one
#: long run of pieces).
LABEL_CHARS = 24


def _pieces_to_words(tokenizer: Any, text: str) -> tuple[list[str], list[int], list[int]]:
    """(words, ids, word index of each id) of a text, via the tokenizer's word splitter."""
    words = tokenizer.words(text)
    ids, word_of = tokenizer.encode_words(words)
    return words, list(ids), list(word_of)


def _pool(matrix: np.ndarray, groups: list[int], n: int, axis: int, how: str) -> np.ndarray:
    """Sum or average slices of ``matrix`` along ``axis`` by group index (0..n-1)."""
    moved = np.moveaxis(matrix, axis, 0)
    out = np.zeros((n, *moved.shape[1:]), dtype=np.float64)
    counts = np.zeros(n)
    for i, g in enumerate(groups):
        out[g] += moved[i]
        counts[g] += 1
    if how == "mean":
        out /= np.maximum(counts, 1).reshape(-1, *([1] * (out.ndim - 1)))
    return np.moveaxis(out, 0, axis)


@torch.no_grad()
def word_alignment(
    model: Any, tokenizer: Any, source: str, target: str | None = None, beam: int = 1
) -> tuple[list[str], list[str], np.ndarray]:
    """Cross-attention between the words of ``source`` and of its translation.

    Args:
        model: a seq2seq or transformer model (with ``attention_maps``).
        tokenizer: the run's tokenizer.
        source: the source sentence.
        target: a given translation (forced decoding); default: the model's own (greedy
            unless ``beam`` > 1).

    Returns:
        ``(source_words, target_words, weights)``: both word lists end with ``</s>``;
        weights is (L, H, n_target_words, n_source_words), each row summing to 1.
    """
    from textdecade.models.decoding import translate

    if target is None:
        target = translate(model, tokenizer, source, beam=beam)
    limit = model.config.max_len - 1
    src_words, src_ids, src_of = _pieces_to_words(tokenizer, source)
    tgt_words, tgt_ids, tgt_of = _pieces_to_words(tokenizer, target)
    src_ids, src_of = src_ids[:limit], src_of[:limit]
    tgt_ids, tgt_of = tgt_ids[:limit], tgt_of[:limit]
    src_words = src_words[: (src_of[-1] + 1 if src_of else 0)] + ["</s>"]
    tgt_words = tgt_words[: (tgt_of[-1] + 1 if tgt_of else 0)] + ["</s>"]
    device = next(model.parameters()).device
    src = pad([[*src_ids, EOS_ID]]).to(device)
    tgt_in = pad([[BOS_ID, *tgt_ids]]).to(device)
    was_training = model.training
    model.eval()
    maps = model.attention_maps(src, torch.ones_like(src), tgt_in)[0].float().cpu().numpy()
    model.train(was_training)  # maps: (L, H, T, S), T = target pieces + EOS, S = source + EOS
    maps = _pool(maps, [*src_of, len(src_words) - 1], len(src_words), axis=3, how="sum")
    maps = _pool(maps, [*tgt_of, len(tgt_words) - 1], len(tgt_words), axis=2, how="mean")
    return src_words, tgt_words, maps


def check_layer_head(
    n_layers: int, n_heads: int, layer: int | None, head: int | str | None
) -> tuple[int | None, int | str | None]:
    """Validate ``--layer``/``--head`` against a model's sizes (negative layers count back).

    Returns:
        ``(layer, head)`` with the layer made non-negative (None stays None).

    Raises:
        UserError: one line naming the sizes, when either is out of range.
    """
    if layer is not None:
        if not -n_layers <= layer < n_layers:
            raise UserError(
                f"--layer {layer}: this model has {n_layers} layer(s), 0 to {n_layers - 1}"
            )
        layer %= n_layers
    if head is not None and head != "mean" and not 0 <= int(head) < n_heads:
        raise UserError(
            f"--head {head}: this model has {n_heads} head(s), 0 to {n_heads - 1} (or mean)"
        )
    return layer, head


def _select(maps: np.ndarray, layer: int, head: int | str) -> np.ndarray:
    """One (rows, columns) map of (L, H, rows, columns): a head, or the heads' mean."""
    return maps[layer].mean(axis=0) if head == "mean" else maps[layer, int(head)]


def _short(text: str, limit: int = 90) -> str:
    """A title-sized text: the first ``limit`` characters, with an ellipsis if cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _new_figure(width: float, height: float):
    """An off-screen figure (no pyplot state) laid out so titles and colour bars fit."""
    require("matplotlib", "plot attention")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _heatmap(ax: Any, matrix: np.ndarray, columns: list[str], rows: list[str]) -> Any:
    """Draw ``matrix`` (rows x columns) on ``ax`` with its labels; returns the image."""
    image = ax.imshow(matrix, cmap=CMAP, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([_short(c, LABEL_CHARS) for c in columns], rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_short(r, LABEL_CHARS) for r in rows], fontsize=8)
    return image


def _label_room(labels: list[str]) -> float:
    """Inches the longest (shortened) tick label takes at font size 8."""
    return 0.07 * min(max((len(x) for x in labels), default=1), LABEL_CHARS) + 0.3


def _save(fig: Any, out: str | Path) -> Path:
    from textdecade.io import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def plot_attention(
    model: Any,
    tokenizer: Any,
    source: str,
    out: str | Path,
    target: str | None = None,
    beam: int = 1,
    layer: int | None = None,
    head: int | str | None = None,
) -> Path:
    """Draw the alignment heatmap(s) of ``source`` and write a PNG to ``out``.

    Source words on x, target words on y, the source and its translation as the title, and
    a colour bar. One heatmap for a single-head model such as seq2seq, or for the ``layer``
    and ``head`` asked for; else a grid of layers (rows) x heads (columns).

    Args:
        layer, head: one decoder layer and head (``head="mean"`` averages the heads); either
            given alone picks the last layer or head 0 for the other.

    Returns:
        The path written.
    """
    from textdecade.models.decoding import translate

    if target is None:
        target = translate(model, tokenizer, source, beam=beam)
    src_words, tgt_words, maps = word_alignment(model, tokenizer, source, target)
    n_layers, n_heads = maps.shape[:2]
    layer, head = check_layer_head(n_layers, n_heads, layer, head)
    if layer is not None or head is not None:
        layer = n_layers - 1 if layer is None else layer
        maps = _select(maps, layer, 0 if head is None else head)[None, None]
        n_layers = n_heads = 1
    cell = (
        0.35 * len(src_words) + _label_room(tgt_words) + 0.6,
        0.3 * len(tgt_words) + _label_room(src_words) + 0.6,
    )
    fig = _new_figure(max(cell[0] * n_heads + 1.2, 4.5), max(cell[1] * n_layers + 0.9, 3.5))
    axes = fig.subplots(n_layers, n_heads, squeeze=False)
    for i in range(n_layers):
        for j in range(n_heads):
            image = _heatmap(axes[i][j], maps[i, j], src_words, tgt_words)
            if n_layers * n_heads > 1:
                axes[i][j].set_title(f"layer {i}, head {j}", fontsize=9)
    axes[-1][0].set_xlabel("source")
    axes[-1][0].set_ylabel("translation")
    title = f"{_short(source)}\n\u2192 {_short(target)}"
    if layer is not None:
        title += f"\nlayer {layer}, head {0 if head is None else head}"
    fig.suptitle(title, fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="attention weight", shrink=0.8)
    return _save(fig, out)


def _piece_labels(tokenizer: Any, ids: list[int]) -> list[str]:
    """The BPE pieces of ``ids`` as readers see them, a leading space shown as "▁".

    Each piece is what it adds to the decoded prefix: decoding a byte-level piece alone
    drops its leading space, and a piece that is part of a character's bytes shows "�".
    """
    labels, before = [], ""
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=False)
        common = 0
        while common < min(len(before), len(text)) and before[common] == text[common]:
            common += 1
        piece = text[common:] or tokenizer.id_to_token(ids[k - 1]) or str(ids[k - 1])
        labels.append(piece.replace(" ", "\u2581"))
        before = text
    return labels


@torch.no_grad()
def self_attention(model: Any, tokenizer: Any, text: str) -> tuple[list[str], np.ndarray]:
    """Self-attention of a GPT, BERT or Transformer-XL over the BPE pieces of ``text``.

    The text is framed as the model reads it (BERT: ``<cls> text <sep>``) and cut to its
    context.

    Args:
        model: a :class:`~textdecade.models.base.SelfAttentionMaps` model.
        tokenizer: the run's tokenizer.
        text: the text.

    Returns:
        ``(pieces, maps)``: the T piece labels and (L, H, T, T) probabilities, rows
        (queries) summing to 1 over the columns (keys).
    """
    from textdecade.models.base import HiddenStates

    before, after = model.embed_framing(tokenizer) if isinstance(model, HiddenStates) else ((), ())
    body = tokenizer.encode(text)
    if not body:
        raise UserError("plot attention: the text has no tokens; give a sentence")
    limit = int(getattr(model, "context_size", len(body) + 2)) - len(before) - len(after)
    ids = [*before, *body[: max(limit, 1)], *after]
    device = next(model.parameters()).device
    maps = model.self_attention_maps(torch.tensor([ids], device=device))[0]
    return _piece_labels(tokenizer, ids), maps.float().cpu().numpy()


def plot_self_attention(
    model: Any,
    tokenizer: Any,
    text: str,
    out: str | Path,
    layer: int | None = None,
    head: int | str | None = None,
) -> Path:
    """Draw one layer and head's self-attention over the pieces of ``text`` as a PNG.

    Keys (attended to) on x, queries on y, the text and the choice as the title.

    Args:
        layer: default the last (counting from 0; negative counts back).
        head: default 0; ``"mean"`` averages the layer's heads.

    Returns:
        The path written.
    """
    n_layers, n_heads = model.attention_shape()
    layer, head = check_layer_head(n_layers, n_heads, layer, head)  # before any work
    layer = n_layers - 1 if layer is None else layer
    head = 0 if head is None else head
    pieces, maps = self_attention(model, tokenizer, text)
    side = 0.3 * len(pieces) + _label_room(pieces) + 0.6
    fig = _new_figure(max(side + 1.5, 4.5), max(side + 0.6, 3.5))
    ax = fig.subplots()
    image = _heatmap(ax, _select(maps, layer, head), pieces, pieces)
    ax.set_xlabel("attended to (key)")
    ax.set_ylabel("attending (query)")
    which = "mean of the heads" if head == "mean" else f"head {head}"
    name = getattr(model, "name", "") or type(model).__name__
    fig.suptitle(f"{_short(text)}\n{name} self-attention, layer {layer}, {which}", fontsize=10)
    fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
    return _save(fig, out)


def plot_attention_run(
    run_dir: str | Path,
    text: str,
    out: str | Path,
    target: str | None = None,
    beam: int = 1,
    layer: int | None = None,
    head: int | str | None = None,
) -> Path:
    """``textdecade plot attention RUN "text" [--layer L] [--head H] -o fig.png``.

    A translation model (seq2seq, Transformer) draws its alignment of ``text``; GPT, BERT and
    Transformer-XL their self-attention over it. Any other run is refused in one line.
    """
    from textdecade.errors import CheckpointError
    from textdecade.models.base import AttentionMaps, SelfAttentionMaps
    from textdecade.pretrain.rundir import load_run

    _, model, tokenizer = load_run(run_dir)
    if isinstance(model, AttentionMaps):
        return plot_attention(model, tokenizer, text, out, target, beam, layer, head)
    if not isinstance(model, SelfAttentionMaps):
        raise CheckpointError(
            f"{run_dir} is a {getattr(model, 'name', '?')} run: plot attention draws "
            "seq2seq, transformer, gpt, bert and transformer-xl runs"
        )
    if target is not None:
        raise UserError("plot attention: --target is for translation runs (seq2seq, transformer)")
    return plot_self_attention(model, tokenizer, text, out, layer, head)
