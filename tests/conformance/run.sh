#!/usr/bin/env bash
# The conformance run (`make conformance`). On a fresh machine it installs what it needs: the
# external servers (tests/external/setup.sh), Autobahn|Testsuite (tests/autobahn/install.sh),
# libwsdom and the scenario server (cargo), and the wsdom wheel in .venv-test
# (python_env.sh). Then:
#   1. the scenario table with the Rust driver (core/tests/conformance.rs), the C driver
#      (c_driver.c, libwsdom) and the Python driver (test_py_driver.py, the wheel), each
#      against the scenario server, pywebsocket3, websockets and Node ws;
#   2. Autobahn|Testsuite cases 1.* to 13.* for the agents wsdom-rust and wsdom-python, in the
#      background while step 1 runs (it is bound by the fuzzingservers' compression);
# and writes tests/conformance/RESULTS.md. The output ends with the pass/fail counts; the exit
# status is non-zero if any part failed.
#
# Environment: CONFORMANCE_AUTOBAHN=0 skips Autobahn; AUTOBAHN_CASES="1.* 7.*" restricts it;
# CONFORMANCE_LANGS="rust c python" (default all three); WSDOM_SCENARIOS=text runs only the
# scenario ids containing `text` (the others then count as not run); CARGO (default cargo).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CARGO=${CARGO:-cargo}
LANGS=${CONFORMANCE_LANGS:-rust c python}
export WSDOM_CONFORMANCE_OUT=${WSDOM_CONFORMANCE_OUT:-$ROOT/target/conformance}
OUT=$WSDOM_CONFORMANCE_OUT
mkdir -p "$OUT"
export AUTOBAHN_OUT=${AUTOBAHN_OUT:-$ROOT/build/autobahn}
SCEN="python3 tests/scenarios/scenarios.py"
# Results of earlier runs must not show up as this run's.
rm -f "$OUT"/*.summary.json "$OUT"/*.jsonl "$OUT"/*.plan.jsonl "$OUT/timings.json" "$AUTOBAHN_OUT/summary.json"
T_START=$(date +%s)
status=0
failed_parts=()
declare -A took
order=()
has() { [[ " $LANGS " == *" $1 "* ]]; }
step() { # NAME COMMAND...: runs one part, times it, records a failure
  local name=$1; shift; local t0 rc
  t0=$(date +%s)
  echo "==> conformance: $name"
  "$@"; rc=$?
  took[$name]=$(( $(date +%s) - t0 )); order+=("$name")
  if [ $rc != 0 ]; then echo "==> conformance: $name FAILED ($rc)"; status=1; failed_parts+=("$name"); fi
  return 0
}

# ---- install and build (one cargo command at a time) ----
step "lint scenario table" $SCEN lint
step "external servers setup" bash tests/external/setup.sh
if [ "${CONFORMANCE_AUTOBAHN:-1}" != 0 ]; then
  step "autobahn install" bash tests/autobahn/install.sh
fi
build() {
  if has rust; then $CARGO test -q -p wsdom-core --test conformance --no-run || return 1; fi
  if has c || has python; then $CARGO build -q -p wsdom-testserver || return 1; fi
  if has c; then $CARGO build -q --release -p wsdom-ffi || return 1; fi
  if [ "${CONFORMANCE_AUTOBAHN:-1}" != 0 ]; then
    $CARGO build -q --release -p wsdom-core --example autobahn_client || return 1
  fi
  if has python; then bash tests/conformance/python_env.sh || return 1; fi
}
step "build" build

# ---- Autobahn in the background ----
AB_PID=
if [ "${CONFORMANCE_AUTOBAHN:-1}" != 0 ]; then
  ab_drivers=""
  has rust && ab_drivers+=" rust"
  has python && ab_drivers+=" python"
  if [ -n "$ab_drivers" ]; then
    echo "==> conformance: autobahn ($ab_drivers ) started in the background, log in $OUT/autobahn.log"
    AB_T0=$(date +%s)
    # shellcheck disable=SC2086
    AUTOBAHN_DRIVERS="${ab_drivers# }" AUTOBAHN_PY_READY=1 bash tests/autobahn/run.sh ${AUTOBAHN_CASES:-} \
      > "$OUT/autobahn.log" 2>&1 &
    AB_PID=$!
  fi
fi

# ---- the scenario table ----
if has rust; then
  # One cargo command; the test binary runs the four servers' suites in parallel threads.
  step "rust driver (4 servers)" env WSDOM_EXTERNAL=require $CARGO test -q -p wsdom-core --test conformance
fi

c_driver() {
  local bin="$OUT/c_driver" rc=0 srv cmd
  # The C library as a C program links it: the shared libwsdom, found through its rpath.
  gcc -std=c11 -O1 -g -Wall -Wextra -Werror -Iinclude tests/conformance/c_driver.c -o "$bin" \
    -L"$ROOT/target/release" -lwsdom -Wl,-rpath,"$ROOT/target/release" -lm -pthread || return 1
  for srv in wsdom pywebsocket3 websockets ws; do
    case $srv in
      wsdom) cmd=("$ROOT/target/debug/wsdom-testserver") ;;
      pywebsocket3) cmd=("$ROOT/.venv-ext/bin/python" tests/external/pywebsocket/serve.py) ;;
      websockets) cmd=("$ROOT/.venv-ext/bin/python" tests/external/websockets/server.py) ;;
      ws) cmd=(node tests/external/node/server.js) ;;
    esac
    $SCEN plan --lang c --server $srv > "$OUT/c-$srv.plan.jsonl" || { rc=1; continue; }
    "$bin" --plan "$OUT/c-$srv.plan.jsonl" --server $srv --out "$OUT/c-$srv.jsonl" --jobs 4 -- "${cmd[@]}" || rc=1
    $SCEN compare "$OUT/c-$srv.jsonl" --summary "$OUT/c-$srv.summary.json" || rc=1
  done
  return $rc
}
has c && step "c driver (4 servers)" c_driver

py_driver() {
  # From tests/conformance, so that `import wsdom` finds the installed wheel and not py/.
  local k=()
  [ -n "${WSDOM_SCENARIOS:-}" ] && k=(-k "$WSDOM_SCENARIOS")
  (cd tests/conformance && "$ROOT/.venv-test/bin/python" -m pytest -p no:cacheprovider -q -rfEs \
     --timeout=600 "${k[@]}" test_py_driver.py)
}
has python && step "python driver (4 servers)" py_driver

if [ -n "$AB_PID" ]; then
  echo "==> conformance: waiting for autobahn"
  wait "$AB_PID"; rc=$?
  cat "$OUT/autobahn.log"
  took["autobahn (${ab_drivers# })"]=$(( $(date +%s) - AB_T0 )); order+=("autobahn (${ab_drivers# })")
  if [ $rc != 0 ]; then echo "==> conformance: autobahn FAILED ($rc)"; status=1; failed_parts+=("autobahn"); fi
fi

took["total"]=$(( $(date +%s) - T_START )); order+=("total")
{
  echo "{"
  first=1
  for k in "${order[@]}"; do
    [ $first = 1 ] || echo ","
    printf '  "%s": %s' "$k" "${took[$k]}"; first=0
  done
  echo; echo "}"
} > "$OUT/timings.json"
# RESULTS.md, then the counts; the last line is the verdict with the totals.
CONFORMANCE_FAILED_PARTS="${failed_parts[*]}" python3 tests/conformance/results.py || status=1
exit $status
