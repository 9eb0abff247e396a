"""Alignment pictures: where the decoder looks in the source for each target word.

For attention seq2seq this is the heatmap of Bahdanau et al. 2014 (their Figure 3),
source words x target words. For the Transformer every decoder layer and head has its own
cross-attention (Vaswani et al. 2017, Figures 3-5 show self-attention the same way): we
draw a grid, one heatmap per (layer, head).

The models attend over BPE pieces; we show words. A source word's weight is the *sum* over
its pieces (so each row still sums to 1), a target word's row the *mean* over its pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdecade.data.parallel import BOS_ID, EOS_ID, pad


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


def plot_attention(
    model: Any,
    tokenizer: Any,
    source: str,
    out: str | Path,
    target: str | None = None,
    beam: int = 1,
) -> Path:
    """Draw the alignment heatmap(s) of ``source`` and write a PNG to ``out``.

    One heatmap (source words on x, target words on y) for a single-head model such as
    seq2seq; a grid of layers (rows) x heads (columns) for the Transformer.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from textdecade.io import atomic_path

    src_words, tgt_words, maps = word_alignment(model, tokenizer, source, target, beam)
    n_layers, n_heads = maps.shape[:2]
    cell = (0.35 * len(src_words) + 1.5, 0.3 * len(tgt_words) + 1.2)
    fig = Figure(figsize=(cell[0] * n_heads, cell[1] * n_layers), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_layers, n_heads, squeeze=False)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer][head]
            ax.imshow(maps[layer, head], cmap="gray_r", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_xticks(range(len(src_words)))
            ax.set_xticklabels(src_words, rotation=90, fontsize=8)
            ax.set_yticks(range(len(tgt_words)))
            ax.set_yticklabels(tgt_words, fontsize=8)
            if n_layers * n_heads > 1:
                ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def plot_attention_run(
    run_dir: str | Path, source: str, out: str | Path, target: str | None = None, beam: int = 1
) -> Path:
    """``textdecade plot attention RUN "source sentence" -o fig.png``."""
    from textdecade.errors import CheckpointError
    from textdecade.models.base import AttentionMaps
    from textdecade.pretrain.rundir import load_run

    _, model, tokenizer = load_run(run_dir)
    if not isinstance(model, AttentionMaps):
        raise CheckpointError(f"{run_dir} is not a seq2seq or transformer run")
    return plot_attention(model, tokenizer, source, out, target, beam)
