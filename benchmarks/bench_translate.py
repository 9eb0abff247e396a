"""Multi30k de->en: BLEU of attention seq2seq and the Transformer after a fixed time budget,
and the Transformer's training tokens/s against a ``torch.nn.Transformer`` of the same size.

    python benchmarks/bench_translate.py --minutes 15            # the issue's CPU budget
    python benchmarks/bench_translate.py --minutes 10 --preset small --device cuda
    python benchmarks/bench_translate.py --minutes 3 --preset small --device cuda --families transformer

Both models share one joint BPE tokenizer; BLEU is sacrebleu on detokenized output
(test_2016_flickr, beam 4, length penalty 0.6), signature printed.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from textdecade.config import build_config
from textdecade.data.parallel import PAD_ID, ParallelCorpus
from textdecade.data.shared import shared_path
from textdecade.eval.bleu import evaluate_bleu, read_lines
from textdecade.models import get_family
from textdecade.pretrain.schedules import lr_at
from textdecade.tokenizer import Tokenizer


def train_for(family, corpus, tokenizer, minutes, preset, device, workdir):
    Model, Config, presets = get_family(family)
    run = build_config(family, Config, presets, preset)
    data = Model.prepare(corpus, tokenizer, run.model, workdir)
    torch.manual_seed(0)
    model = Model(run.model, data.meta).to(device)
    t = run.train
    opt = torch.optim.AdamW(
        model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay,
        fused=device.type == "cuda",
    )  # fmt: skip
    batches = model.batcher(data, t.batch_size, seed=0)
    # bf16 autocast on GPUs, as the engine does; the schedule spans the time budget: its
    # length in steps is estimated from the speed of the first 50 steps.
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else nullcontext()
    budget, total = minutes * 60, t.steps
    start, step, tokens = time.perf_counter(), 0, 0
    while time.perf_counter() - start < budget:
        if step == 50:
            total = int(50 / (time.perf_counter() - start) * budget)
        for group in opt.param_groups:
            group["lr"] = lr_at(
                Model.default_schedule, step, lr=t.lr, total=total, warmup=t.warmup_steps,
                min_ratio=t.min_lr_ratio,
            )  # fmt: skip
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        with autocast:
            loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
        opt.step()
        step += 1
        tokens += int((batch["tgt_out"] != PAD_ID).sum() + batch["src_mask"].sum())
    seconds = time.perf_counter() - start
    model.eval()
    return model, step, tokens / seconds, model.evaluate(data, 50)


class TorchTransformer(torch.nn.Module):
    """The same-sized baseline on ``torch.nn.Transformer`` (its own fused kernels)."""

    def __init__(self, c, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, c.d_model, padding_idx=PAD_ID)
        self.core = torch.nn.Transformer(
            c.d_model, c.n_heads, c.n_layers, c.n_layers, c.d_ff, c.dropout, batch_first=True,
            norm_first=c.norm == "pre",
        )  # fmt: skip
        pe = torch.zeros(c.max_len, c.d_model)
        pos = torch.arange(c.max_len)[:, None]
        freq = torch.exp(torch.arange(0, c.d_model, 2) * (-math.log(1e4) / c.d_model))
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        self.register_buffer("pe", pe)
        self.scale = math.sqrt(c.d_model)

    def loss(self, b):
        src = self.embed(b["src"]) * self.scale + self.pe[: b["src"].shape[1]]
        tgt = self.embed(b["tgt_in"]) * self.scale + self.pe[: b["tgt_in"].shape[1]]
        causal = self.core.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        pad = b["src_mask"] == 0
        h = self.core(src, tgt, tgt_mask=causal, src_key_padding_mask=pad,
                      memory_key_padding_mask=pad)  # fmt: skip
        logits = h @ self.embed.weight.t()
        return F.cross_entropy(
            logits.flatten(0, 1), b["tgt_out"].flatten(), ignore_index=PAD_ID, label_smoothing=0.1
        )


def tokens_per_s(model, batches, device, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    start, tokens = None, 0
    for i, batch in enumerate(batches[: steps + 3]):
        if i == 3:  # warm up allocators and kernels first
            start, tokens = time.perf_counter(), 0
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens += int((batch["tgt_out"] != PAD_ID).sum() + batch["src_mask"].sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget per model")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--test-lines", type=int, default=1000)
    parser.add_argument("--speed-steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--families", nargs="+", default=["seq2seq", "transformer"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    root = shared_path("multi30k")
    if root is None:
        raise SystemExit("multi30k not found (set TEXTDECADE_DATA)")
    corpus = ParallelCorpus(root / "train.de", root / "train.en",
                            valid=ParallelCorpus(root / "val.de", root / "val.en"))  # fmt: skip
    _, _, presets = get_family("transformer")
    tokenizer = Tokenizer.train(corpus, vocab_size=presets[args.preset]["tokenizer"]["vocab_size"])
    test_src = read_lines(root / "test_2016_flickr.de")[: args.test_lines]
    test_ref = read_lines(root / "test_2016_flickr.en")[: args.test_lines]
    print(f"torch {torch.__version__} | device {device} | threads {torch.get_num_threads()} | "
          f"preset {args.preset} | {args.minutes} min per model")  # fmt: skip
    import tempfile

    for family in args.families:
        with tempfile.TemporaryDirectory() as workdir:
            model, steps, rate, val = train_for(
                family, corpus, tokenizer, args.minutes, args.preset, device, workdir
            )
        result, _ = evaluate_bleu(model, tokenizer, test_src, test_ref, beam=4)
        print(f"{family}: {steps} steps, {rate:,.0f} tokens/s, val_loss {val['val_loss']:.3f}, "
              f"BLEU {result.score:.2f} ({result.signature})")  # fmt: skip
        if family == "transformer":
            data = type(model).prepare(corpus, tokenizer, model.config, tempfile.mkdtemp())
            it = model.batcher(data, build_config(family, *get_family(family)[1:], args.preset)
                               .train.batch_size, seed=1)  # fmt: skip
            batches = [next(it) for _ in range(args.speed_steps + 3)]
            ours = tokens_per_s(model, batches, device, args.speed_steps)
            torch.manual_seed(0)
            ref = TorchTransformer(model.config, tokenizer.vocab_size).to(device)
            theirs = tokens_per_s(ref, batches, device, args.speed_steps)
            print(f"training tokens/s: textdecade {ours:,.0f} | torch.nn.Transformer "
                  f"{theirs:,.0f} | ratio {ours / theirs:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
