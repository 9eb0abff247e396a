"""The Word2Vec update kernel: skip-gram / CBOW with negative sampling as matrix products.

Mikolov et al. (2013) update one (input, output) pair at a time with its own negatives,
which is a chain of tiny vector operations. Following Ji et al. (2016, "Parallelizing
Word2Vec in Shared and Distributed Memory"), pairs are grouped into blocks of ``block``
pairs that *share* ``shared_negatives`` noise words, so a block's scores are one
(block x shared) matrix product, and many blocks are updated at once as a batched product.
Each shared negative's gradient is scaled by ``negative / shared_negatives`` so a pair
still sees the push of ``negative`` noise words on average (measured here: blocks of 32-64
pairs with 5-16 shared negatives match per-pair quality; large blocks with few negatives
diverge). Updates are plain sparse SGD (``index_add_`` into the rows touched), no optimizer
state, and the same code runs on CPU and CUDA. Skip-gram deals a chunk's pairs
round-robin into its updates (:func:`spread_order`), so a block's pairs come from all over
the chunk; CBOW (:mod:`textdecade.models.cbow`) strides its windows within each update,
with word2vec.c's full step to every context word.

Dimension legend: n words in a chunk, M pairs, nb blocks, P pairs per block, K shared
negatives, D vector size, W window.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class KernelConfig:
    """What the kernel needs to know (a subset of the Word2Vec config)."""

    sg: bool = True
    window: int = 5
    negative: int = 5
    shared_negatives: int = 10
    block: int = 32
    pairs_per_update: int = 2048
    max_repeats: int = 32
    compile: bool = False


def cap_scale(
    rows: torch.Tensor,
    size: int,
    cap: float,
    repeats: torch.Tensor | None = None,
    check: bool = True,
) -> torch.Tensor | None:
    """Per-entry factors that cap a row's summed step at ``cap`` gradients' worth.

    word2vec.c applies the updates of a frequent word one after another, each seeing the
    last; summing k simultaneous gradients instead overshoots once k * lr * |v|^2 nears 1
    (measured: a few hundred repeats of a frequent word in one update diverged). A row
    whose entries carry k > cap gradients in all gets each entry scaled by cap / k: exact
    for rare words, damped for the few very frequent ones.

    Args:
        rows: (k,) row ids, one per entry.
        size: the table's row count.
        cap: the most gradients a row may take in one update.
        repeats: (k,) gradients each entry carries (None: one each).
        check: return None when no row exceeds the cap (on the CPU only, where reading
            the maximum costs nothing). False always returns the factors, with no host
            read and no branch on the data: for callers that fold them into a small
            tensor, and for a compiled update.

    Returns:
        (k,) factors in (0, 1], or None (only on the CPU, when no row exceeds the cap).
    """
    if check and rows.device.type == "cpu":
        counts = torch.bincount(rows, weights=repeats, minlength=size)
        if check and float(counts.max()) <= cap:
            return None
    else:
        # Off the CPU, a host read stalls the stream: bincount reads the ids' min and max
        # back (two syncs) and the shortcut above a third, so each update would wait for
        # the last to finish before its launches begin. index_add_ counts without a read,
        # and the factors are always applied (exactly 1 under the cap).
        weights = torch.ones_like(rows, dtype=torch.float32) if repeats is None else repeats
        counts = weights.new_zeros(size).index_add_(0, rows, weights)
    return cap / counts.index_select(0, rows).clamp_min(cap)


def sparse_add(
    table: torch.Tensor,
    rows: torch.Tensor,
    grads: torch.Tensor,
    cap: float,
    repeats: torch.Tensor | None = None,
    check: bool = True,
) -> None:
    """``table[rows] += grads``, a row's summed step capped (see :func:`cap_scale`)."""
    scale = cap_scale(rows, table.shape[0], cap, repeats, check)
    if scale is not None:
        grads = grads * scale.to(grads.dtype)[:, None]
    table.index_add_(0, rows, grads)


def window_offsets(window: int, device: torch.device) -> torch.Tensor:
    """(2W,) offsets -W..-1, 1..W."""
    left = torch.arange(-window, 0, device=device)
    return torch.cat([left, -left.flip(0)])


def window_mask(
    ids: torch.Tensor, doc: torch.Tensor, window: int, generator: torch.Generator
) -> torch.Tensor:
    """Each position's dynamic window (word2vec.c: a reduced window b ~ U{1..W}).

    Args:
        ids: (n,) word ids after subsampling.
        doc: (n,) document index of each position (windows never cross documents).
        window: the maximum window W.
        generator: randomness for the reduced windows.

    Returns:
        (n, 2W) bool: whether position i's context at offset ``window_offsets[j]`` is real.
    """
    n = ids.numel()
    offsets = window_offsets(window, ids.device)
    reduced = torch.randint(1, window + 1, (n,), generator=generator, device=ids.device)
    pos = torch.arange(n, device=ids.device)[:, None] + offsets[None, :]  # (n, 2W)
    inside = (pos >= 0) & (pos < n)
    pos = pos.clamp(0, max(n - 1, 0))
    same_doc = doc.index_select(0, pos.view(-1)).view_as(pos) == doc[:, None]
    return inside & (offsets.abs()[None, :] <= reduced[:, None]) & same_doc


def context_windows(
    ids: torch.Tensor, doc: torch.Tensor, window: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`window_mask` and the context word ids.

    Returns:
        ``(ctx, valid)``: (n, 2W) context word ids and (n, 2W) bool mask of real contexts.
    """
    n = ids.numel()
    valid = window_mask(ids, doc, window, generator)
    pos = torch.arange(n, device=ids.device)[:, None] + window_offsets(window, ids.device)
    flat = pos.clamp(0, max(n - 1, 0)).view(-1)
    return ids.index_select(0, flat).view_as(valid), valid


def draw_negatives(
    table: torch.Tensor, blocks: int, k: int, generator: torch.Generator
) -> torch.Tensor:
    """(blocks, k) noise word ids from the unigram^0.75 table, a whole chunk's in one draw."""
    draw = torch.randint(0, table.numel(), (blocks, k), generator=generator, device=table.device)
    return table.index_select(0, draw.view(-1)).long().view(blocks, k)


def negative_sampling(
    u: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    out_w: torch.Tensor,
    negs: torch.Tensor,
    lr: float | torch.Tensor,
    cfg: KernelConfig,
    cap: float,
    weigh_negatives: bool = False,
    check: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGNS step for M = nb * P inputs; updates ``out_w`` and returns the input gradient.

    Args:
        u: (nb, P, D) input-side vectors (a context word's row, or CBOW's window mean).
        target: (nb * P,) output word ids.
        mask: (nb, P) 1 for real pairs, 0 for padding.
        out_w: (V, D) output (syn1neg) table, updated in place.
        negs: (nb, K) each block's shared noise words (:func:`draw_negatives`).
        lr: the learning rate (a 0-d tensor in a compiled update: a float would be
            specialized on, recompiling as it decays).
        cap: :func:`cap_scale`'s cap for the output rows.
        weigh_negatives: count a shared negative's row as the block's P * negative / K
            gradients it sums, not as one (CBOW: window means share a common direction,
            so those gradients add up; unweighted, lr 0.1 diverged).
        check: :func:`cap_scale`'s ``check`` (False in a compiled update).

    Returns:
        ``(grad_u, loss_sum)``: the (nb, P, D) ascent step for the inputs (lr applied) and
        the summed true SGNS loss of the real pairs (``negative`` noise terms per pair).
    """
    nb, p, d = u.shape
    k = cfg.shared_negatives
    scale = cfg.negative / k
    # index_select, not x[idx]: the advanced-indexing kernel is several times slower on CPU.
    v = out_w.index_select(0, target).view(nb, p, d)
    n = out_w.index_select(0, negs.view(-1)).view(nb, k, d)
    pos_score = (u * v).sum(-1)  # (nb, P)
    # Scores as (nb, K, P) = n @ u^T: this layout's batched products measured ~1.5x
    # faster on CPU than u @ n^T's (nb, P, K).
    neg_score = torch.bmm(n, u.transpose(1, 2))  # (nb, K, P)
    # word2vec.c skips a noise word equal to the target: mask those entries.
    neg_mask = (negs[:, :, None] != target.view(nb, 1, p)).to(u.dtype) * mask[:, None, :]
    loss = (F.softplus(-pos_score) * mask).sum() + scale * (F.softplus(neg_score) * neg_mask).sum()
    g_pos = (1.0 - torch.sigmoid(pos_score)) * (lr * mask)  # (nb, P): ascent of log s(u.v)
    g_neg = torch.sigmoid(neg_score) * neg_mask * (-lr * scale)  # (nb, K, P)
    grad_u = torch.baddbmm(g_pos[..., None] * v, g_neg.transpose(1, 2), n)  # (nb, P, D)
    # The target rows' cap folds into their (nb, P) coefficients: no (M, D) rescaling.
    t_scale = cap_scale(target, out_w.shape[0], cap, mask.view(-1), check)
    if t_scale is not None:
        g_pos = g_pos * t_scale.to(u.dtype).view(nb, p)
    out_w.index_add_(0, target, (g_pos[..., None] * u).reshape(-1, d))
    grad_n = torch.bmm(g_neg, u)  # (nb, K, D)
    repeats = (neg_mask.sum(2) * scale).view(-1) if weigh_negatives else None
    sparse_add(out_w, negs.view(-1), grad_n.reshape(-1, d), cap, repeats, check)
    return grad_u, loss


def update_size(cfg: KernelConfig) -> int:
    """Items per update: ``pairs_per_update`` rounded down to whole blocks (one at least)."""
    return max(cfg.block, cfg.pairs_per_update // cfg.block * cfg.block)


def update_spans(total: int, cfg: KernelConfig) -> list[tuple[int, int]]:
    """Slices of at most :func:`update_size` items."""
    step = update_size(cfg)
    return [(s, min(s + step, total)) for s in range(0, total, step)]


def spread_order(count: int, updates: int, device: torch.device) -> torch.Tensor:
    """The order that deals ``count`` items round-robin into ``updates`` equal updates.

    Item j goes to update j % updates, so each update, and each block of pairs sharing
    negatives within it, samples the whole chunk rather than one stretch of text, where
    a block's pairs would share a few centre words and most of their context words.
    Measured (``bench_static.py --mb 20``, one worker, chunks of 1M words): analogy 9.1%
    -> 10.7% and WS-353 0.458 -> 0.481 at 2,048 pairs per update; 8.1% -> 9.0% at 65,536.
    """
    per = -(-count // updates)
    order = torch.arange(per * updates, device=device).view(per, updates).t().reshape(-1)
    return order[order < count]


def pad_rows(x: torch.Tensor, to: int, value: int = 0) -> torch.Tensor:
    if x.shape[0] == to:
        return x
    pad = x.new_full((to - x.shape[0], *x.shape[1:]), value)
    return torch.cat([x, pad])


@torch.no_grad()
def train_skipgram(
    in_w: torch.Tensor,
    out_w: torch.Tensor,
    table: torch.Tensor,
    ids: torch.Tensor,
    doc: torch.Tensor,
    lr: float,
    cfg: KernelConfig,
    generator: torch.Generator,
) -> tuple[float, int]:
    """Skip-gram updates over an already subsampled chunk (see :func:`chunk.train_chunk`).

    Returns:
        ``(loss_sum, n_pairs)``.
    """
    # word2vec.c's skip-gram: the context word is the input, the centre the output.
    ctx, valid = context_windows(ids, doc, cfg.window, generator)
    total = torch.zeros((), dtype=torch.float64, device=in_w.device)
    flat = valid.view(-1).nonzero().squeeze(1)
    if flat.numel() == 0:
        return 0.0, 0
    # Deal the pairs round-robin into the chunk's updates (see spread_order).
    spans = update_spans(flat.numel(), cfg)
    flat = flat.index_select(0, spread_order(flat.numel(), len(spans), flat.device))
    centre = ids.index_select(0, flat // ctx.shape[1])
    inputs = ctx.view(-1).index_select(0, flat)
    p = cfg.block
    sizes = [-(-(e - s) // p) for s, e in spans]  # blocks per update
    update, rate = skipgram_update, lr
    if cfg.compile:
        # Every update padded to the full size: one shape, one compiled graph.
        update, rate = compiled_skipgram_update(), torch.tensor(lr, device=in_w.device)
        sizes = [update_size(cfg) // p] * len(sizes)
    negs = draw_negatives(table, sum(sizes), cfg.shared_negatives, generator)
    for (s, e), nb, neg in zip(spans, sizes, negs.split(sizes)):
        inp, tgt = pad_rows(inputs[s:e], nb * p), pad_rows(centre[s:e], nb * p)
        mask = pad_rows(torch.ones(e - s, device=in_w.device), nb * p).view(nb, p)
        total += update(in_w, out_w, inp, tgt, mask, neg, rate, cfg)
    return float(total), inputs.numel()


def skipgram_update(
    in_w: torch.Tensor,
    out_w: torch.Tensor,
    inputs: torch.Tensor,
    centres: torch.Tensor,
    mask: torch.Tensor,
    negs: torch.Tensor,
    lr: float | torch.Tensor,
    cfg: KernelConfig,
) -> torch.Tensor:
    """One update of nb blocks of P (context -> centre) pairs; returns their summed loss.

    Args:
        in_w, out_w: the (V, D) tables, updated in place.
        inputs, centres: (nb * P,) the pairs' context (input) and centre (output) ids.
        mask: (nb, P) 1 for real pairs, 0 for padding.  negs: (nb, K) shared noise words.
        lr: the learning rate (a 0-d tensor when compiled).  cfg: kernel settings; with
            ``cfg.compile`` the update reads nothing back and never branches on data.
    """
    d, check = in_w.shape[1], not cfg.compile
    u = in_w.index_select(0, inputs).view(-1, cfg.block, d)  # (nb, P, D)
    grad_u, loss = negative_sampling(
        u, centres, mask, out_w, negs, lr, cfg, cfg.max_repeats, check=check
    )
    sparse_add(in_w, inputs, grad_u.view(-1, d), cfg.max_repeats, mask.view(-1), check)
    return loss


@functools.cache
def compiled_skipgram_update():
    """:func:`skipgram_update` under ``torch.compile`` (eager, with a warning, if it fails).

    Eager, a GPU update is some 70 small kernels, each launched from Python, so the host's
    launches, not the GPU, set its time; compiled, they fuse into a few.
    """
    from textdecade.models.compiling import try_compile

    return try_compile(skipgram_update, dynamic=False)
