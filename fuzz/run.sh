#!/usr/bin/env bash
# Runs every fuzz target with libFuzzer (cargo-fuzz) from the committed seed corpora.
# Usage: fuzz/run.sh [RUNS_PER_TARGET] [MAX_SECONDS_PER_TARGET]   (defaults: a short smoke run)
# Prints executions and coverage per target; exits non-zero on any crash. New inputs found
# go to a scratch corpus, never into the committed seeds. A crash becomes a regression test
# by copying its artifact into fuzz/corpus/<target>/ (replayed by every later run).
#
# api_sequence (sequences of C ABI calls against an in-process server) runs about a hundred
# inputs a second, so its time limit is API_SEQUENCE_SECS (default: MAX_SECONDS_PER_TARGET);
# its -timeout turns a deadlock into a reported crash. FUZZ_TARGETS="a b" runs only those.
set -euo pipefail
cd "$(dirname "$0")"
RUNS="${1:-20000}"
SECS="${2:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list | grep -q '^nightly'; then
  FUZZ=(cargo +nightly fuzz)
else
  # Stable with unstable flags allowed: sanitizer coverage needs them.
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
status=0
printf '| target | executions | coverage (cov) | features (ft) | result |\n|---|---|---|---|---|\n' > "$SCRATCH/summary.md"
for target in ${FUZZ_TARGETS:-url_and_protocols handshake_response frames frames_deflate api_sequence}; do
  mkdir -p "$SCRATCH/$target"
  log="$SCRATCH/$target.log"
  secs=$SECS
  extra=(-rss_limit_mb=2048)
  if [ "$target" = api_sequence ]; then
    secs=${API_SEQUENCE_SECS:-$SECS}
    extra=(-rss_limit_mb=4096 -timeout=60)
  fi
  if "${FUZZ[@]}" run --release "$target" "$SCRATCH/$target" "corpus/$target" -- \
      -runs="$RUNS" -max_total_time="$secs" "${extra[@]}" -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  elif grep -q 'libFuzzer: run interrupted' "$log"; then
    # A signal stopped the run (libFuzzer's exit code 72): not a crash, but not a pass.
    result=INTERRUPTED; status=1
  else
    result=CRASH; status=1; tail -40 "$log"
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  printf '| %s | %s | %s | %s | %s |\n' "$target" "$execs" "$cov" "$ft" "$result" >> "$SCRATCH/summary.md"
done
cat "$SCRATCH/summary.md"
exit $status
