"""CBOW's update kernel: word2vec.c's window mean in, its full step out, as matrix products.

Built on :mod:`textdecade.models.sgns` (negatives shared within blocks, the repeat cap);
:func:`textdecade.models.chunk.train_chunk` calls :func:`train_cbow` for a CBOW chunk.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from textdecade.models.sgns import (
    KernelConfig,
    cap_scale,
    draw_negatives,
    negative_sampling,
    pad_rows,
    update_size,
    update_spans,
    window_offsets,
)


def train_cbow(
    in_w: torch.Tensor,
    out_w: torch.Tensor,
    table: torch.Tensor,
    ids: torch.Tensor,
    doc: torch.Tensor,
    lr: float,
    cfg: KernelConfig,
    generator: torch.Generator,
) -> tuple[float, int]:
    """CBOW on a subsampled chunk: word2vec.c's window mean in, its full step out.

    Each window's input is the mean of its context rows and every context row takes the
    window's whole gradient (word2vec.c's ``cbow``, gensim's ``cbow_mean=1``), not the
    mean's true gradient (1 / width of it), which learned ~6x slower here. Three things
    keep the simultaneous updates of a whole batch of windows stable and as good:

    - strided blocks: the P windows sharing negatives are nb apart in the text, not
      neighbours whose means share most of their words (neighbours in one block pushed
      the same few noise rows with near-identical gradients: analogy 1.6-2.0% vs 2.8-3.2%
      on ``bench_static.py --mb 6 --cbow``);
    - a context row's cap counts the window steps it takes (a word in 3 windows is 3)
      and is half of ``max_repeats``; a shared negative counts the block's gradients it
      sums (see :func:`cap_scale`);
    - the per-window work runs as two fused ``embedding_bag`` calls: contexts -> window
      means, and window gradients -> each position's summed step, so a context row is
      read and written once per update rather than once per window it is in.
    """
    n, w = ids.numel(), cfg.window
    dev, dt = in_w.device, in_w.dtype
    p = cfg.block
    offsets = window_offsets(w, dev)
    # The same draw as context_windows, with the bounds from sorted document ids: window
    # i spans positions lo..hi (its centre excluded), a range both cut at document edges.
    reduced = torch.randint(1, w + 1, (n,), generator=generator, device=dev)
    pos = torch.arange(n, device=dev)
    lo = torch.maximum(pos - reduced, torch.searchsorted(doc, doc))
    hi = torch.minimum(pos + reduced, torch.searchsorted(doc, doc, right=True) - 1)
    width = hi - lo
    real = (width > 0).to(dt)
    at = pos[:, None] + offsets[None, :]  # (n, 2W) context positions
    valid = (at >= lo[:, None]) & (at <= hi[:, None])
    ctx = ids.index_select(0, at.clamp_(0, n - 1).view(-1)).view(n, 2 * w)
    mean_w = valid.to(dt) * (1.0 / width.clamp_min(1).to(dt))[:, None]  # weights of the mean
    # The blocked order of the whole chunk: segment g (one update) fills slots
    # [start_g, start_g + nb_g * P), and its slot b * P + i holds its window i * nb_g + b
    # (strided blocks); padding slots point at window n, a dummy with no contexts.
    segments, perm, start = [], [], 0
    for s, e in update_spans(n, cfg):
        nb = -(-(e - s) // p)
        order = torch.arange(nb * p, device=dev).view(p, nb).t().reshape(-1) + s
        perm.append(torch.where(order < e, order, n))
        segments.append((s, e, start, nb))
        start += nb * p
    perm = torch.cat(perm)  # (slots,) window of each slot
    ctx_b = pad_rows(ctx, n + 1).index_select(0, perm)  # (slots, 2W)
    mean_b = pad_rows(mean_w, n + 1).index_select(0, perm)
    tgt_b = pad_rows(ids, n + 1).index_select(0, perm)
    real_b = pad_rows(real, n + 1).index_select(0, perm)
    # Position q is the context at offset o of window q - o. Tables padded with W windows
    # that use nothing on either side: ``back`` (n, 2W) says which of those windows really
    # use q, ``owner_slot`` where they sit in the blocked order.
    owner = (pos + w)[:, None] - offsets[None, :]  # (n, 2W), in the padded numbering
    edge = valid.new_zeros(w, 2 * w)
    back = torch.cat([edge, valid, edge]).gather(0, owner)
    slot_of = torch.full((n + 2 * w,), -1, dtype=torch.long, device=dev)
    slot_of[perm + w] = torch.arange(perm.numel(), device=dev)
    owner_slot = slot_of.index_select(0, owner.view(-1)).view_as(owner)
    total = torch.zeros((), dtype=torch.float64, device=dev)
    negs = draw_negatives(table, perm.numel() // p, cfg.shared_negatives, generator)
    full, compiled, rate = update_size(cfg) // p, None, lr
    if cfg.compile:  # full updates compiled (one shape), a shorter last one eager
        compiled, rate = compiled_cbow_update(), torch.tensor(lr, device=dev)
    for s, e, start, nb in segments:
        mp = nb * p
        # Each position of the segment (and the W either side) sums the steps of the
        # windows of this segment it is a context of.
        first, last = max(s - w, 0), min(e + w, n)
        slot, used, rows = owner_slot[first:last] - start, back[first:last], ids[first:last]
        update = cbow_update
        if compiled is not None and nb == full:
            # Fewer positions at a chunk's edges: padded with unused ones to the most an
            # update can touch, every full update has one shape, so one graph.
            update, most = compiled, mp + 2 * w
            slot, used, rows = pad_rows(slot, most), pad_rows(used, most), pad_rows(rows, most)
        total += update(
            in_w,
            out_w,
            ctx_b[start : start + mp],
            mean_b[start : start + mp],
            tgt_b[start : start + mp],
            real_b[start : start + mp].view(nb, p),
            negs[start // p : start // p + nb],
            slot,
            used,
            rows,
            rate,
            cfg,
        )
    return float(total), int(real.sum())


def cbow_update(
    in_w: torch.Tensor,
    out_w: torch.Tensor,
    ctx: torch.Tensor,
    mean: torch.Tensor,
    target: torch.Tensor,
    real: torch.Tensor,
    negs: torch.Tensor,
    slot: torch.Tensor,
    back: torch.Tensor,
    rows: torch.Tensor,
    lr: float | torch.Tensor,
    cfg: KernelConfig,
) -> torch.Tensor:
    """One CBOW update of nb blocks of P windows; returns their summed loss.

    Args:
        in_w, out_w: the (V, D) tables, updated in place.
        ctx, mean: (mp, 2W) each window's context ids and their weights in its mean.
        target: (mp,) centre words.  real: (nb, P) 1 for windows with a context.
        negs: (nb, K) shared noise words.
        slot: (r, 2W) for each of the r positions the update touches, the window (its
            place in this update) that uses it at each offset; back: (r, 2W) whether that
            window really does.  rows: (r,) the positions' word ids.
        lr: the learning rate (a 0-d tensor when compiled).  cfg: kernel settings.
    """
    nb, p = real.shape
    mp, d = nb * p, in_w.shape[1]
    dt = in_w.dtype
    # A context row's step sums whole window steps, and windows that share the row have
    # near-identical means, so they add up faster than skip-gram's: half the cap kept
    # 2 Hogwild workers stable at twice word2vec.c's CBOW lr (0.1), where the full cap
    # diverged at 0.075 (bench_static.py --mb 6 --cbow). Output rows keep the full cap.
    cap, cap_in = cfg.max_repeats, cfg.max_repeats / 2
    h = F.embedding_bag(ctx, in_w, per_sample_weights=mean, mode="sum")  # (mp, D) means
    grad_h, loss = negative_sampling(
        h.view(nb, p, d), target, real, out_w, negs, lr, cfg, cap, True, not cfg.compile
    )
    usef = (back & (slot >= 0) & (slot < mp)).to(dt)
    scale = cap_scale(rows, in_w.shape[0], cap_in, usef.sum(1), check=False).to(dt)
    step = F.embedding_bag(
        slot.clamp(0, mp - 1),
        grad_h.view(mp, d),
        per_sample_weights=usef * scale[:, None],
        mode="sum",
    )  # (r, D): each position's summed step
    in_w.index_add_(0, rows, step)
    return loss


@functools.cache
def compiled_cbow_update():
    """:func:`cbow_update` under ``torch.compile`` (eager, with a warning, if it fails)."""
    from textdecade.models.compiling import try_compile

    return try_compile(cbow_update, dynamic=False)
