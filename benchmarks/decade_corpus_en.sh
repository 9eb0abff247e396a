#!/usr/bin/env bash
# The decade on shared/data/corpus_en, homographs on CoarseWSD-20; its report.md goes into
# benchmarks/RESULTS.md. Resumable: run it again with --resume.
#   bash benchmarks/decade_corpus_en.sh [OUT_DIR] [--budget gpu|cpu] [extra textdecade decade args...]
# --budget gpu (default): the small preset at its own steps, for a lent GPU (about an hour
#   per family at most).
# --budget cpu: the tiny preset's models, every family given the same 7 minutes of
#   wall-clock training (`--minutes 7`): eight families, their data preparation and scoring
#   fit about 75-90 minutes of 2 CPU cores.
set -euo pipefail
DATA=${TEXTDECADE_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
OUT=${1:-decade-corpus_en}
shift || true
BUDGET=(--preset small)
if [ "${1:-}" = "--budget" ]; then
  case "${2:-}" in
    gpu) BUDGET=(--preset small) ;;
    cpu) BUDGET=(--preset tiny --minutes 7) ;;
    *) echo "--budget must be gpu or cpu, got '${2:-}'" >&2; exit 2 ;;
  esac
  shift 2
fi
# Runs from a checkout too (a lent GPU machine has no install): the repository on the path.
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$DATA/corpus_en" ] || { echo "no corpus_en under $DATA (set TEXTDECADE_DATA)" >&2; exit 2; }
[ -d "$DATA/coarsewsd20" ] || { echo "no coarsewsd20 under $DATA (set TEXTDECADE_DATA)" >&2; exit 2; }
# bible_web and bible_kjv hold the same verses: keep one (see corpus_en/README.md).
mapfile -t FILES < <(ls "$DATA"/corpus_en/*.txt | grep -v bible_kjv)
"${PYTHON:-python3}" -m textdecade decade --corpus "${FILES[@]}" "${BUDGET[@]}" -o "$OUT" \
  --homograph-data "$DATA/coarsewsd20" "$@"
echo "report: $OUT/report.md"
