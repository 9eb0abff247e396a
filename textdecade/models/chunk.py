"""One chunk of Word2Vec training: subsample the corpus positions, then skip-gram or CBOW.

The two architectures' kernels (:mod:`textdecade.models.sgns`, :mod:`textdecade.models.cbow`)
share the pieces in ``sgns``; this module is the one place that chooses between them, so
neither kernel module imports the other's caller.
"""

from __future__ import annotations

import torch

from textdecade.models.cbow import train_cbow
from textdecade.models.sgns import KernelConfig, train_skipgram


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
        doc: (n,) their document indices (nondecreasing, as consecutive positions are).
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
    train = train_skipgram if cfg.sg else train_cbow
    return train(in_w, out_w, table, ids, doc, lr, cfg, generator)


def hogwild_kernel(
    cfg: KernelConfig,
    tables: tuple[torch.Tensor, ...],
    share: dict[str, torch.Tensor],
    seed: int,
    lr: float,
) -> tuple[float, int]:
    """:func:`train_chunk` as a Hogwild worker's kernel (see :mod:`textdecade.models.hogwild`).

    Args:
        cfg: kernel settings.  tables: ``(in_w, out_w, noise table, keep_prob)``.
        share: this worker's ``{"ids", "doc"}``.  seed: its randomness.  lr: learning rate.
    """
    in_w, out_w, table, keep_prob = tables
    gen = torch.Generator().manual_seed(seed)
    return train_chunk(in_w, out_w, table, keep_prob, share["ids"], share["doc"], lr, cfg, gen)
