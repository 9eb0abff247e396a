#!/usr/bin/env bash
# The decade at the `small` preset on shared/data/corpus_en, homographs on CoarseWSD-20.
# Meant for a lent GPU (about an hour per family on one GPU at most) or a long CPU run;
# its report.md goes into benchmarks/RESULTS.md. Resumable: run it again with --resume.
#   bash benchmarks/decade_corpus_en.sh [OUT_DIR] [extra textdecade decade args...]
set -euo pipefail
DATA=${TEXTDECADE_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
OUT=${1:-decade-corpus_en-small}
# Runs from a checkout too (a lent GPU machine has no install): the repository on the path.
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
shift || true
[ -d "$DATA/corpus_en" ] || { echo "no corpus_en under $DATA (set TEXTDECADE_DATA)" >&2; exit 2; }
# bible_web and bible_kjv hold the same verses: keep one (see corpus_en/README.md).
mapfile -t FILES < <(ls "$DATA"/corpus_en/*.txt | grep -v bible_kjv)
"${PYTHON:-python3}" -m textdecade decade --corpus "${FILES[@]}" --preset small -o "$OUT" \
  --homograph-data "$DATA/coarsewsd20" "$@"
echo "report: $OUT/report.md"
