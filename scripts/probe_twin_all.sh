#!/usr/bin/env bash
# The PyTorch twin of every probe, trained and tested on our own examples: for each probe and
# seed, `seqpe probe-data` writes the training examples a run of that seed draws (in order) and
# the test set every run is scored on; scripts/probe_twin.py then trains the twin (same model
# size, steps, batch, learning rate) with APE at every seed and NoPE at seed 1. One JSON line per
# run is appended to docs/results/probes_twin.jsonl, which `cargo xtask report-probes` reads into
# the page's twin section.
#
#   scripts/probe_twin_all.sh                 # all probes, seeds 1 2 3 (about an hour on one core)
#   PROBES="copy" SEEDS="1" scripts/probe_twin_all.sh
#
# Needs python3 with torch and numpy (SEQPE_PYTHON or PYTHON), and the seqpe binary
# (`cargo xtask help` builds it; SEQPE overrides the path).
set -euo pipefail
cd "$(dirname "$0")/.."
SEQPE=${SEQPE:-target/debug/seqpe}
PY=${PYTHON:-${SEQPE_PYTHON:-python3}}
OUT=${OUT:-docs/results/probes_twin.jsonl}
DATA=${DATA:-${TMPDIR:-/tmp}/seqpe-twin}
PROBES=${PROBES:-"copy reverse relative quadrant"}
SEEDS=${SEEDS:-"1 2 3"}
export OMP_NUM_THREADS=1
mkdir -p "$DATA" "$(dirname "$OUT")"
for probe in $PROBES; do
  case $probe in
    # 2,000 steps of 64 strings; our 1-D APE stretches its table to longer inputs
    copy|reverse) n=128000; ape_extra="--ape-long interp" ;;
    # 1,500 steps of 64 images
    relative|quadrant) n=96000; ape_extra="" ;;
    *) echo "unknown probe $probe" >&2; exit 2 ;;
  esac
  for seed in $SEEDS; do
    file="$DATA/$probe-seed$seed.jsonl"
    [ -s "$file" ] || "$SEQPE" probe-data --probe "$probe" --seed "$seed" --train "$n" --out "$file"
    pes="ape"
    [ "$seed" = 1 ] && pes="ape nope"
    for pe in $pes; do
      extra=""
      [ "$pe" = ape ] && extra="$ape_extra"
      echo "twin: $probe $pe seed $seed" >&2
      # shellcheck disable=SC2086
      "$PY" scripts/probe_twin.py --task "$probe" --pe "$pe" --seed "$seed" --data "$file" \
        $extra --quiet | tail -n 1 >> "$OUT"
    done
  done
done
echo "wrote $OUT" >&2
