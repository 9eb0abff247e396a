"""The Word2Vec update kernel: skip-gram / CBOW with negative sampling as matrix products.

Mikolov et al. (2013) update one (input, output) pair at a time with its own negatives,
which is a chain of tiny vector operations. Following Ji et al. (2016, "Parallelizing
Word2Vec in Shared and Distributed Memory"), consecutive pairs are grouped into blocks of
``block`` pairs that *share* ``shared_negatives`` noise words, so a block's scores are one
(block x shared) matrix product, and many blocks are updated at once as a batched product.
Each shared negative's gradient is scaled by ``negative / shared_negatives`` so a pair
still sees the push of ``negative`` noise words on average (measured here: blocks of 32-64
pairs with 5-16 shared negatives match per-pair quality; large blocks with few negatives
diverge). Updates are plain sparse SGD (``index_add_`` into the rows touched), no optimizer
state, and the same code runs on CPU and CUDA.

Dimension legend: n words in a chunk, M pairs, nb blocks, P pairs per block, K shared
negatives, D vector size, W window.
"""

from __future__ import annotations

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


def sparse_add(table: torch.Tensor, rows: torch.Tensor, grads: torch.Tensor, cap: int) -> None:
    """``table[rows] += grads``, a row's summed step capped at ``cap`` gradients' worth.

    word2vec.c applies the updates of a frequent word one after another, each seeing the
    last; summing k simultaneous gradients instead overshoots once k * lr * |v|^2 nears 1
    (measured: a few hundred repeats of a frequent word in one update diverged). A row
    that occurs k > cap times in ``rows`` gets its summed step scaled by cap / k: exact
    for rare words, damped for the few very frequent ones.
    """
    counts = torch.bincount(rows, minlength=table.shape[0])
    if int(counts.max()) > cap:
        scale = (cap / counts.index_select(0, rows).clamp_min(cap).to(grads.dtype))[:, None]
        grads = grads * scale
    table.index_add_(0, rows, grads)


def window_offsets(window: int, device: torch.device) -> torch.Tensor:
    """(2W,) offsets -W..-1, 1..W."""
    left = torch.arange(-window, 0, device=device)
    return torch.cat([left, -left.flip(0)])


def context_windows(
    ids: torch.Tensor, doc: torch.Tensor, window: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each position's dynamic window (word2vec.c: a reduced window b ~ U{1..W}).

    Args:
        ids: (n,) word ids after subsampling.
        doc: (n,) document index of each position (windows never cross documents).
        window: the maximum window W.
        generator: randomness for the reduced windows.

    Returns:
        ``(ctx, valid)``: (n, 2W) context word ids and (n, 2W) bool mask of real contexts.
    """
    n = ids.numel()
    offsets = window_offsets(window, ids.device)
    reduced = torch.randint(1, window + 1, (n,), generator=generator, device=ids.device)
    pos = torch.arange(n, device=ids.device)[:, None] + offsets[None, :]  # (n, 2W)
    inside = (pos >= 0) & (pos < n)
    pos = pos.clamp(0, max(n - 1, 0))
    flat = pos.view(-1)
    same_doc = doc.index_select(0, flat).view_as(pos) == doc[:, None]
    valid = inside & (offsets.abs()[None, :] <= reduced[:, None]) & same_doc
    return ids.index_select(0, flat).view_as(pos), valid


def _negative_sampling(
    u: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    out_w: torch.Tensor,
    table: torch.Tensor,
    lr: float,
    cfg: KernelConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGNS step for M = nb * P inputs; updates ``out_w`` and returns the input gradient.

    Args:
        u: (nb, P, D) input-side vectors (a context word's row, or CBOW's window mean).
        target: (nb * P,) output word ids.
        mask: (nb, P) 1 for real pairs, 0 for padding.
        out_w: (V, D) output (syn1neg) table, updated in place.
        table: unigram^0.75 table on the same device.

    Returns:
        ``(grad_u, loss_sum)``: the (nb, P, D) ascent step for the inputs (lr applied) and
        the summed true SGNS loss of the real pairs (``negative`` noise terms per pair).
    """
    nb, p, d = u.shape
    k = cfg.shared_negatives
    scale = cfg.negative / k
    draw = torch.randint(0, table.numel(), (nb, k), generator=generator, device=u.device)
    negs = table.index_select(0, draw.view(-1)).long().view(nb, k)  # (nb, K)
    # index_select, not x[idx]: the advanced-indexing kernel is several times slower on CPU.
    v = out_w.index_select(0, target).view(nb, p, d)
    n = out_w.index_select(0, negs.view(-1)).view(nb, k, d)
    pos_score = (u * v).sum(-1)  # (nb, P)
    neg_score = torch.bmm(u, n.transpose(1, 2))  # (nb, P, K)
    # word2vec.c skips a noise word equal to the target: mask those entries.
    neg_mask = (negs[:, None, :] != target.view(nb, p, 1)).to(u.dtype) * mask[..., None]
    loss = (F.softplus(-pos_score) * mask).sum() + scale * (F.softplus(neg_score) * neg_mask).sum()
    g_pos = (1.0 - torch.sigmoid(pos_score)) * (lr * mask)  # (nb, P): ascent of log s(u.v)
    g_neg = torch.sigmoid(neg_score) * neg_mask * (-lr * scale)  # (nb, P, K)
    grad_u = torch.baddbmm(g_pos[..., None] * v, g_neg, n)  # (nb, P, D)
    grad_v = g_pos[..., None] * u
    grad_n = torch.bmm(g_neg.transpose(1, 2), u)  # (nb, K, D)
    sparse_add(out_w, target, grad_v.reshape(-1, d), cfg.max_repeats)
    sparse_add(out_w, negs.view(-1), grad_n.reshape(-1, d), cfg.max_repeats)
    return grad_u, loss


def _blocks(total: int, cfg: KernelConfig) -> list[tuple[int, int]]:
    """Slices of at most ``pairs_per_update`` items (a multiple of the block size)."""
    step = max(cfg.block, cfg.pairs_per_update // cfg.block * cfg.block)
    return [(s, min(s + step, total)) for s in range(0, total, step)]


def _pad(x: torch.Tensor, to: int, value: int = 0) -> torch.Tensor:
    if x.shape[0] == to:
        return x
    pad = x.new_full((to - x.shape[0], *x.shape[1:]), value)
    return torch.cat([x, pad])


@torch.no_grad()
def train_chunk(
    in_w: torch.Tensor,
    out_w: torch.Tensor,
    table: torch.Tensor,
    keep_prob: torch.Tensor,
    ids: torch.Tensor,
    doc: torch.Tensor,
    lr: float,
    cfg: KernelConfig,
    generator: torch.Generator,
) -> tuple[float, int]:
    """Subsample a chunk of the corpus, build its pairs and apply the SGNS updates.

    Args:
        in_w: (V, D) input vectors (syn0), updated in place.
        out_w: (V, D) output vectors (syn1neg), updated in place.
        table: unigram^0.75 table (int32, same device).
        keep_prob: (V,) subsampling keep probabilities (same device).
        ids: (n,) word ids of consecutive corpus positions (same device).
        doc: (n,) their document indices.
        lr: the learning rate for this chunk.
        cfg: kernel settings.
        generator: randomness (subsampling, windows, negatives) on the tables' device.

    Returns:
        ``(loss_sum, n_examples)``: summed SGNS loss and the number of pairs (skip-gram) or
        windows (CBOW) it covers, so callers can report the true mean.
    """
    ids = ids.long()
    keep = torch.rand(ids.shape, generator=generator, device=ids.device)
    kept = (keep < keep_prob.index_select(0, ids)).nonzero().squeeze(1)
    ids, doc = ids.index_select(0, kept), doc.index_select(0, kept)
    if ids.numel() < 2:
        return 0.0, 0
    ctx, valid = context_windows(ids, doc, cfg.window, generator)
    d = in_w.shape[1]
    total = torch.zeros((), dtype=torch.float64, device=in_w.device)
    if cfg.sg:
        # word2vec.c's skip-gram: the context word is the input, the centre the output.
        flat = valid.view(-1).nonzero().squeeze(1)
        centre = ids.index_select(0, flat // ctx.shape[1])
        inputs = ctx.view(-1).index_select(0, flat)
        count = inputs.numel()
        for s, e in _blocks(count, cfg):
            m = -(-(e - s) // cfg.block) * cfg.block
            inp, tgt = _pad(inputs[s:e], m), _pad(centre[s:e], m)
            mask = _pad(torch.ones(e - s, device=in_w.device), m).view(-1, cfg.block)
            u = in_w.index_select(0, inp).view(-1, cfg.block, d)  # (nb, P, D)
            grad_u, loss = _negative_sampling(u, tgt, mask, out_w, table, lr, cfg, generator)
            sparse_add(in_w, inp, grad_u.view(-1, d), cfg.max_repeats)
            total += loss
        return float(total), count
    rows = valid.any(1).nonzero().squeeze(1)
    ctx, valid, centre = ctx.index_select(0, rows), valid.index_select(0, rows), ids[rows]
    count = centre.numel()
    for s, e in _blocks(count, cfg):
        m = -(-(e - s) // cfg.block) * cfg.block
        c, vm, tgt = _pad(ctx[s:e], m), _pad(valid[s:e], m, False), _pad(centre[s:e], m)
        mask = _pad(torch.ones(e - s, device=in_w.device), m).view(-1, cfg.block)
        flat = vm.view(-1).nonzero().squeeze(1)  # the real contexts of the m windows
        owner = flat // c.shape[1]  # which window each belongs to
        words = c.view(-1).index_select(0, flat)
        width = torch.bincount(owner, minlength=m).clamp_min(1).to(in_w.dtype)
        # CBOW with the window mean as input (word2vec.c's cbow, gensim's cbow_mean=1).
        h = torch.zeros(m, d, dtype=in_w.dtype, device=in_w.device)
        h.index_add_(0, owner, in_w.index_select(0, words))
        h = h / width[:, None]  # (m, D)
        grad_h, loss = _negative_sampling(
            h.view(-1, cfg.block, d), tgt, mask, out_w, table, lr, cfg, generator
        )
        # The true gradient of the mean, grad_h / width. (word2vec.c gives every context
        # word the full grad_h; applied simultaneously to all windows of a batch, that
        # step is ~2 * window times too long and diverged here.)
        grad = (grad_h.view(m, d) / width[:, None]).index_select(0, owner)
        sparse_add(in_w, words, grad, cfg.max_repeats)
        total += loss
    return float(total), count
