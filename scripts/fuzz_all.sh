#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for RUNS inputs (default 1,000,000) and prints one line per
# target: inputs run, seconds, coverage, and the crash file if one was found (docs/reliability.md,
# "Fuzzing"). Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   scripts/fuzz_all.sh                 # every target, 1,000,000 inputs each
#   RUNS=20000 scripts/fuzz_all.sh idx  # one target, a short run
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
RUNS=${RUNS:-1000000}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(digits rdata idx image_folder corpus qa_files tokenizer config reference_weights checkpoint)
fi
# no sanitizer (the code under test is safe Rust; the fuzzer looks for panics, hangs and large
# allocations), debug assertions on so arithmetic overflow panics as in a debug build
# every target asked for is built (a target left unbuilt would run a binary of older code)
for t in "${TARGETS[@]}"; do
  cargo +nightly fuzz build --sanitizer none --debug-assertions "$t"
done
BIN=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  start=$(date +%s)
  set +e
  # -timeout: an input taking over 2 s is a hang; -malloc_limit_mb: one allocation over 512 MB
  # from inputs of a few KB is one the input does not justify
  "$BIN/$t" "corpus/$t" "seeds/$t" -runs="$RUNS" -timeout=2 -malloc_limit_mb=512 \
    -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"logs/$t.log" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  crash=$(grep -o 'Test unit written to [^ ]*' "logs/$t.log" | sed 's/Test unit written to //' || true)
  echo "$t runs=$runs seconds=$secs cov=$cov rc=$rc ${crash:+crash=$crash}"
done
rm -rf /dev/shm/seqpe-fuzz-* 2>/dev/null || true
