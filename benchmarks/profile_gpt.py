"""Where a GPT training step's GPU time goes, for the MFU target of issue #3.

Builds bench_gpu.py's GPT-2 124M (12 x 768, context 1024, vocabulary 32,768, dropout 0)
and runs the engine's step by hand on random tokens: bf16 autocast, ``torch.compile``,
fused AdamW, gradient clipping. It prints the bare loop's tokens/s and MFU (beside the
engine's figure from bench_gpu.py, the difference is the engine's own overhead), then
profiles a few steps and sums the device time of the kernels by kind: matmuls,
attention, the loss (log-softmax / cross-entropy), optimizer and clipping, other fused
elementwise and normalisation kernels, copies.

Usage: python benchmarks/profile_gpt.py [--batch 32] [--compile-mode default] [--steps 20]
       python benchmarks/profile_gpt.py --smoke --device cpu    # rehearse on a CPU
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import torch

from textdecade.models import gpt
from textdecade.pretrain.device import peak_flops, select_device, select_precision

# Kernel-name fragments (lower case) and the kind they count as; the first match wins.
KINDS = [
    ("loss", ("log_softmax", "nll_loss", "cross_entropy", "logsumexp")),
    ("attention", ("flash", "fmha", "attention", "sdpa", "efficient_attention")),
    ("optimizer", ("adam", "multi_tensor", "foreach", "_norm_", "clip")),
    ("matmul", ("gemm", "cutlass", "xmma", "nvjet", "matmul", "mm_", "cublas", "addmm")),
    ("copy", ("memcpy", "memset", "copy_", "fill")),
    ("fused elementwise / norm", ("triton", "elementwise", "reduce", "layer_norm", "gelu")),
]


def kind_of(name: str) -> str:
    """The kind of a kernel, from its name."""
    low = name.lower()
    for kind, fragments in KINDS:
        if any(f in low for f in fragments):
            return kind
    return "other"


def build(args, device: torch.device) -> gpt.Model:
    sizes = dict(n_layers=12, n_heads=12, d_model=768, max_len=1024)
    if args.smoke:
        sizes = dict(n_layers=2, n_heads=2, d_model=64, max_len=64)
    config = gpt.Config(**sizes, dropout=0.0, vocab_size=args.vocab)
    torch.manual_seed(0)
    return gpt.Model(config, {"vocab_size": args.vocab}).to(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--steps", type=int, default=20, help="timed steps after warm-up")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--compile-mode", default="default", help="default, max-autotune, none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, any device")
    parser.add_argument("--top", type=int, default=15, help="kernels listed by time")
    args = parser.parse_args()
    device = select_device(args.device)
    if device.type != "cuda" and not args.smoke:
        print("profile_gpt: no CUDA GPU visible (use --smoke to rehearse)", file=sys.stderr)
        return 1
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    precision = select_precision("bf16" if device.type == "cuda" else "fp32", device)
    model = build(args, device)
    flops = model.flops_per_unit()
    step_model = model
    if args.compile_mode != "none":
        mode = None if args.compile_mode == "default" else args.compile_mode
        step_model = torch.compile(model, mode=mode)
    opt = torch.optim.AdamW(
        model.parameters(), lr=6e-4, betas=(0.9, 0.95), fused=device.type == "cuda"
    )
    t = model.config.max_len
    tokens = torch.randint(0, args.vocab, (args.batch, t + 1), device=device)
    batch = {"input_ids": tokens[:, :-1], "labels": tokens[:, 1:]}

    def step() -> torch.Tensor:
        with precision.autocast(device):
            loss = step_model(batch)  # forward is the family's loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(3):  # compilation and warm-up
        step()
    sync()
    print(f"warm-up (compile) {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - t0
    rate = args.steps * args.batch * t / seconds
    peak = peak_flops(device)
    mfu = f", MFU {flops * rate / peak:.1%}" if peak else ""
    print(
        f"bare loop: batch {args.batch} x {t}, compile {args.compile_mode}: "
        f"{rate:,.0f} tokens/s{mfu}, {seconds / args.steps * 1e3:.1f} ms/step, "
        f"loss {float(loss.detach()):.3f}"
    )
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(args.profile_steps):
            step()
        sync()
    # Kernels only (the ops that launched them carry the same time again); on a CPU
    # rehearsal, the ops' own CPU times stand in for kernel times.
    kernel = torch.autograd.DeviceType.CUDA if device.type == "cuda" else None
    timed_events = [e for e in prof.key_averages() if _time_us(e, device) > 0]
    # Unverified on this torch's CUDA build: if no event says CUDA, list all (ops included).
    events = [e for e in timed_events if kernel is None or e.device_type == kernel]
    events = events or timed_events
    timed = sorted(events, key=lambda e: -_time_us(e, device))
    total = sum(_time_us(e, device) for e in timed) or 1.0
    by_kind: dict[str, float] = defaultdict(float)
    for e in timed:
        by_kind[kind_of(e.key)] += _time_us(e, device)
    per_step = total / args.profile_steps / 1e3
    print(f"\nkernel time per step: {per_step:.1f} ms (wall {seconds / args.steps * 1e3:.1f} ms)")
    print("| kind | ms/step | share |\n|---|---|---|")
    for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {us / args.profile_steps / 1e3:.2f} | {us / total:.1%} |")
    print("\n| top kernels | calls/step | ms/step | share |\n|---|---|---|---|")
    for e in timed[: args.top]:
        us = _time_us(e, device)
        name = e.key if len(e.key) < 90 else e.key[:87] + "..."
        calls = e.count / args.profile_steps
        print(
            f"| `{name}` | {calls:.0f} | {us / args.profile_steps / 1e3:.3f} | {us / total:.1%} |"
        )
    return 0


def _device_us(event) -> float:
    # torch >= 2.4 names it device time; older releases, cuda time.
    return getattr(event, "self_device_time_total", None) or getattr(
        event, "self_cuda_time_total", 0.0
    )


def _time_us(event, device: torch.device) -> float:
    return _device_us(event) if device.type == "cuda" else event.self_cpu_time_total


if __name__ == "__main__":
    sys.exit(main())
