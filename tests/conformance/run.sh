#!/usr/bin/env bash
# The conformance run (`make conformance`): installs the external servers, runs the scenario
# table with the Rust driver against the scenario server and against pywebsocket3, websockets
# and Node ws, runs Autobahn|Testsuite (unless CONFORMANCE_AUTOBAHN=0), and writes
# tests/conformance/RESULTS.md. Exit status: non-zero if any part failed.
#
# Environment: CONFORMANCE_AUTOBAHN=0 skips Autobahn; WSDOM_SCENARIOS=text runs a subset;
# AUTOBAHN_CASES="1.* 7.*" restricts Autobahn; CARGO (default cargo).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CARGO=${CARGO:-cargo}
export WSDOM_CONFORMANCE_OUT=${WSDOM_CONFORMANCE_OUT:-$ROOT/target/conformance}
mkdir -p "$WSDOM_CONFORMANCE_OUT"
export AUTOBAHN_OUT=${AUTOBAHN_OUT:-$ROOT/build/autobahn}
# Results of earlier runs must not show up as this run's.
rm -f "$WSDOM_CONFORMANCE_OUT"/*.summary.json "$WSDOM_CONFORMANCE_OUT"/*.jsonl \
      "$WSDOM_CONFORMANCE_OUT/timings.json" "$AUTOBAHN_OUT/summary.json"
status=0
declare -A took
step() { local name=$1; shift; local t0; t0=$(date +%s)
  echo "==> conformance: $name"; "$@"; local rc=$?
  took[$name]=$(( $(date +%s) - t0 )); [ $rc = 0 ] || { echo "==> conformance: $name FAILED ($rc)"; status=1; }
  return 0; }

step "lint scenario table" python3 tests/scenarios/scenarios.py lint
step "external servers setup" bash tests/external/setup.sh
# One cargo command; the test binary runs the four servers' suites in parallel threads.
step "rust driver (4 servers)" env WSDOM_EXTERNAL=require $CARGO test -q -p wsdom-core --test conformance
if [ "${CONFORMANCE_AUTOBAHN:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  step "autobahn (rust)" bash tests/autobahn/run.sh ${AUTOBAHN_CASES:-}
fi
{
  echo "{"
  first=1
  for k in "lint scenario table" "external servers setup" "rust driver (4 servers)" "autobahn (rust)"; do
    [ -n "${took[$k]:-}" ] || continue
    [ $first = 1 ] || echo ","
    printf '  "%s": %s' "$k" "${took[$k]}"; first=0
  done
  echo; echo "}"
} > "$WSDOM_CONFORMANCE_OUT/timings.json"
python3 tests/conformance/results.py || status=1
exit $status
