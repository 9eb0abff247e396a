"""The Word2Vec kernel's pieces on the test device (TEXTDECADE_TEST_DEVICE: cpu here, cuda
in benchmarks/gpu.sh): the repeat cap, no host reads per GPU update, the compiled update."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

from textdecade.models import cbow, chunk, sgns

DEVICE = os.environ.get("TEXTDECADE_TEST_DEVICE", "cpu")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator(device=DEVICE).manual_seed(seed)


def _chunk(v: int = 500, dim: int = 16, n: int = 20_000):
    """``(in_w, out_w, noise table, keep_prob, ids, doc)``: random tables and words on DEVICE."""
    gen = torch.Generator().manual_seed(0)
    in_w = (torch.rand(v, dim, generator=gen) - 0.5) / dim
    out_w = torch.zeros(v, dim)
    ids = torch.randint(0, v, (n,), generator=gen)
    doc = torch.arange(n) // 50
    table = torch.randint(0, v, (10_000,), generator=gen, dtype=torch.int32)
    keep = torch.full((v,), 0.9)
    return tuple(x.to(DEVICE) for x in (in_w, out_w, table, keep, ids, doc))


def test_repeat_cap_counts_gradients_not_entries():
    """On the test device: the CPU counts with bincount, a GPU with index_add_."""
    rows = torch.tensor([0, 0, 0, 1], device=DEVICE)
    under = sgns.cap_scale(rows, 3, cap=3)  # nothing over the cap: no rescaling
    if DEVICE == "cpu":
        assert under is None  # the CPU reads the maximum and skips the factors
    else:
        torch.testing.assert_close(under.cpu(), torch.ones(4))  # a GPU applies factors of 1
    scale = sgns.cap_scale(rows, 3, cap=2).cpu()
    torch.testing.assert_close(scale, torch.tensor([2 / 3] * 3 + [1.0]))
    # A CBOW position that is a context of 2 windows carries 2 gradients.
    repeats = torch.tensor([1.0, 1.0, 2.0, 5.0], device=DEVICE)
    scale = sgns.cap_scale(rows, 3, cap=2, repeats=repeats).cpu()
    torch.testing.assert_close(scale, torch.tensor([0.5, 0.5, 0.5, 0.4]))
    table = torch.zeros(3, 2, device=DEVICE)
    sgns.sparse_add(table, rows, torch.ones(4, 2, device=DEVICE), cap=2)
    torch.testing.assert_close(table[:, 0].cpu(), torch.tensor([2.0, 1.0, 0.0]))


@pytest.mark.skipif(not DEVICE.startswith("cuda"), reason="counts CUDA syncs (gpu.sh runs it)")
@pytest.mark.parametrize("sg", [True, False])
def test_gpu_updates_never_wait_for_the_gpu(sg):
    """A chunk of hundreds of updates reads back from the GPU a fixed handful of times
    (which words and pairs survive subsampling, the loss), never once per update: each read
    would stall the CPU's launches until the GPU drains, which made a GPU update cost about
    1.2 ms whatever its size (H200, benchmarks/RESULTS.md)."""
    in_w, out_w, table, keep, ids, doc = _chunk()
    cfg = sgns.KernelConfig(sg=sg, pairs_per_update=256)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, count = chunk.train_chunk(in_w, out_w, table, keep, ids, doc, 0.025, cfg, _gen(1))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert count // cfg.pairs_per_update > 50  # many updates
    assert len(syncs) <= 6, syncs[:3]


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_compiled_update_matches_eager(sg):
    """``KernelConfig.compile``: the same arithmetic as the eager update, the learning rate a
    tensor, and one graph: skip-gram pads every update to full size, CBOW compiles its full
    updates with the positions they touch padded to the most there can be."""
    import torch._dynamo.utils

    in_w, out_w, table, keep, ids, doc = _chunk(n=6_000)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    runs = {}
    for compiled in (False, True):
        cfg = sgns.KernelConfig(sg=sg, pairs_per_update=1024, compile=compiled)
        tables = (in_w.clone(), out_w.clone())
        losses = []
        for i, (lr, end) in enumerate([(0.025, 6_000), (0.02, 4_321)]):  # a short last chunk
            loss, count = chunk.train_chunk(
                *tables, table, keep, ids[:end], doc[:end], lr, cfg, _gen(i)
            )
            losses.append(loss / count)
        runs[compiled] = (tables, losses)
    update = sgns.compiled_skipgram_update() if sg else cbow.compiled_cbow_update()
    assert not update.failed  # compiled, not the eager fallback
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs <= 1
    (eager, eager_losses), (compiled, compiled_losses) = runs[False], runs[True]
    assert (eager[0] - in_w).abs().max() > 1e-3  # the updates are not no-ops
    for ours, reference in zip(compiled, eager):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-6)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
