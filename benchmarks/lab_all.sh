#!/usr/bin/env bash
# Every lab experiment at the tiny preset, 3 seeds, one after another, on the built-in sample.
#   bash benchmarks/lab_all.sh            (from the repository root; reports under $OUT)
#
# Prints each experiment's wall time and the machine's load; each report is
# $OUT/EXPERIMENT/report.md with its pictures beside it. Rerunning resumes (finished cells
# are skipped). FAMILY (default gpt) and SEEDS (default 3) choose the grid; EXPERIMENTS
# (default: all) a subset, e.g. EXPERIMENTS="search double-descent".
set -uo pipefail
OUT=${OUT:-lab-out}
FAMILY=${FAMILY:-gpt}
SEEDS=${SEEDS:-3}
PYTHON=${PYTHON:-python}
mkdir -p "$OUT"
echo "$(uname -m), $(nproc) CPUs, $($PYTHON -c 'import torch; print("torch", torch.__version__)'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for experiment in ${EXPERIMENTS:-init activation optimizer residual norm depth lottery search double-descent}; do
  start=$(date +%s)
  case $experiment in
    # its own data (CoarseWSD-20 senses on frozen MiniLM features): no family
    double-descent) args=(--seeds "$SEEDS") ;;
    # 24 trials of one budget each (seeds do not apply), plus the tiny preset on it
    search) args=(--family "$FAMILY") ;;
    *) args=(--family "$FAMILY" --seeds "$SEEDS") ;;
  esac
  $PYTHON -m textdecade lab "$experiment" "${args[@]}" \
    -o "$OUT/$experiment" -q > "$OUT/$experiment.log" 2>&1
  rc=$?
  echo "$experiment: exit $rc, $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg) -> $OUT/$experiment/report.md"
done
