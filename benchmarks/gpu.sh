#!/usr/bin/env bash
# Every GPU check of the project in one call, for a lent GPU machine (see benchmarks/RESULTS.md).
#   run from the repository root:  bash benchmarks/gpu.sh
# It installs the project without touching the machine's torch, runs the test suite on the
# GPU-relevant parts, then the throughput/MFU measurements; results go to $OUT (or ./gpu-out).
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-deps -e . 2>&1 | tail -1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
# 1. the engine and the models on CUDA (bf16 autocast, fused AdamW, SDPA): tests that take a device.
TEXTDECADE_TEST_DEVICE=cuda timeout 240 python3 -m pytest -q -x tests/pretrain tests/models \
  -k "not distributed" 2>&1 | tail -5 | tee "$OUT/tests.txt"
# 2. throughput and MFU, and nanoGPT's Shakespeare config (needs ../shared/data: pass it with
#    TEXTDECADE_DATA pointing at a copy carried with the tree).
timeout 330 python3 benchmarks/bench_gpu.py --steps "${STEPS:-60}" --out "$OUT/gpu_table.md" \
  2>&1 | tee "$OUT/bench.txt"
# 3. translation BLEU after a short GPU budget per model (targets: seq2seq >= 28, Transformer
#    >= 35 within 10 minutes each; here 1.5 minutes each to fit one call).
timeout 240 python3 benchmarks/bench_translate.py --preset small --minutes 1.5 --device cuda \
  --test-lines 1000 2>&1 | tail -20 | tee "$OUT/translate.txt"
