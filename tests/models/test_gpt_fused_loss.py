"""The chunked output-layer loss equals the plain logits + cross-entropy, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from textdecade.models.gpt import Config, Model
from textdecade.models.losses import linear_cross_entropy


def _plain_and_fused(h, w, labels, chunk_rows, scale=1.0):
    """(loss, grad_h, grad_w) of the plain path, then of the chunked one."""
    out = []
    for fused in (False, True):
        hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
        if fused:
            loss = linear_cross_entropy(hh, ww, labels, chunk_rows=chunk_rows)
        else:
            loss = F.cross_entropy(hh @ ww.t(), labels, ignore_index=-100)
        (scale * loss).backward()
        out.append((loss.detach(), hh.grad, ww.grad))
    return out


@pytest.mark.parametrize("chunk_rows", [16, 64, 1000])
def test_chunked_loss_and_gradients_equal_the_plain_path(chunk_rows):
    g = torch.Generator().manual_seed(0)
    n, d, v = 300, 32, 509
    h = torch.randn(n, d, generator=g)
    w = torch.randn(v, d, generator=g) * 0.5
    labels = torch.randint(0, v, (n,), generator=g)
    labels[::5] = -100  # ignored rows count neither in the sum nor in the mean
    (lp, ghp, gwp), (lf, ghf, gwf) = _plain_and_fused(h, w, labels, chunk_rows, scale=2.5)
    assert lf.item() == pytest.approx(lp.item(), abs=1e-6)
    torch.testing.assert_close(ghf, ghp, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(gwf, gwp, atol=1e-6, rtol=1e-5)
    assert ghf[::5].abs().max() == 0  # an ignored row gets no gradient
    # the loss really is the mean over counted rows: dropping the ignored rows changes nothing
    kept = labels != -100
    assert lf.item() == pytest.approx(F.cross_entropy(h[kept] @ w.t(), labels[kept]).item(), 1e-6)


def test_no_grad_and_fallbacks():
    g = torch.Generator().manual_seed(1)
    h, w = torch.randn(40, 16, generator=g), torch.randn(97, 16, generator=g)
    labels = torch.randint(0, 97, (40,), generator=g)
    plain = F.cross_entropy(h @ w.t(), labels).item()
    with torch.no_grad():
        assert linear_cross_entropy(h, w, labels, chunk_rows=8).item() == pytest.approx(plain)
    # no counted label at all: NaN, as torch's own mean over nothing
    assert torch.isnan(linear_cross_entropy(h, w, torch.full((40,), -100)))
    # under autocast the plain path runs (its kernels choose the precision)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(h, w, labels)
    assert loss.item() == pytest.approx(plain, rel=0.05)


def test_gpt_loss_is_cross_entropy_of_its_logits():
    torch.manual_seed(0)
    model = Model(Config(d_model=32, n_heads=2, n_layers=2, max_len=16), {"vocab_size": 300})
    ids = torch.randint(7, 300, (3, 17))
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:].clone()}
    batch["labels"][0, :4] = -100
    loss = model.loss(batch)
    loss.backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    logits = model.logits(batch["input_ids"])
    plain = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
    plain.backward()
    assert loss.item() == pytest.approx(plain.item(), abs=1e-6)
    for name, p in model.named_parameters():  # wte gets both the input and the output part
        torch.testing.assert_close(fused[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_gpt_evaluate_equals_the_plain_validation_loss():
    from textdecade.data.lm import causal_eval_batches
    from textdecade.models.base import PreparedData

    torch.manual_seed(1)
    model = Model(Config(d_model=32, n_heads=2, n_layers=1, max_len=16), {"vocab_size": 200})
    valid = torch.randint(7, 200, (150,)).numpy()  # 9 full windows and a short tail
    data = PreparedData(meta={}, train=valid, valid=valid)
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in causal_eval_batches(valid, 4, 16, 20):
            logits = model.logits(batch["input_ids"])
            total += F.cross_entropy(
                logits.flatten(0, 1), batch["labels"].flatten(), reduction="sum"
            )
            count += batch["labels"].numel()
    model._eval_batch_size = 4
    assert model.evaluate(data)["val_loss"] == pytest.approx(float(total) / count, abs=1e-5)
