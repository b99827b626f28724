#!/usr/bin/env bash
# Autobahn|Testsuite against wsdom: installs wstest if needed (install.sh), builds the client
# drivers, starts one fuzzingserver per driver (on 127.0.0.1 only), runs the
# drivers (at the same time unless AUTOBAHN_PARALLEL=0), stops the servers, summarises.
#
#   tests/autobahn/run.sh [PATTERN ...]      e.g. '1.*' '7.*'; none = every case (1.* to 13.*)
#
# Drivers (AUTOBAHN_DRIVERS, default "rust python"):
#   rust    core/examples/autobahn_client.rs, agent wsdom-rust
#   python  tests/autobahn/py_client.py with the wsdom wheel in .venv-test, agent wsdom-python
#           (tests/conformance/python_env.sh builds and installs the wheel unless
#           AUTOBAHN_PY_READY=1 says the caller just did)
#   c       tests/autobahn/c_client URL AGENT [PATTERN...], agent wsdom-c (not written yet)
# Each fuzzingserver is a single-threaded PyPy process; the permessage-deflate groups 12.* and
# 13.* are bound by its zlib compression (see README.md), so two drivers side by side take
# about as long as one on a 2-core machine.
#
# Environment: AUTOBAHN_DIR (default /tmp/wsdom-autobahn), AUTOBAHN_OUT (reports; default
# build/autobahn in the repo), AUTOBAHN_CASE_TIMEOUT (seconds a driver waits for a case's close,
# default 300: the server gives 12.*/13.* cases 480 s, and a driver that gives up first turns a
# slow case on a busy machine into FAILED),
# AUTOBAHN_PORT (first port; default: free ephemeral ports), CARGO.
# Output: $AUTOBAHN_OUT/<driver>/reports/clients/ (index.html, index.json, one file per case)
# and $AUTOBAHN_OUT/summary.json (counts per agent, read by tests/conformance/results.py).
# Exit status: non-zero if any case FAILED (see summarize.py) or a driver failed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export AUTOBAHN_DIR=${AUTOBAHN_DIR:-/tmp/wsdom-autobahn}
OUT=${AUTOBAHN_OUT:-$ROOT/build/autobahn}
CASE_TIMEOUT=${AUTOBAHN_CASE_TIMEOUT:-300}
DRIVERS=${AUTOBAHN_DRIVERS:-rust python}
PARALLEL=${AUTOBAHN_PARALLEL:-1}
CARGO=${CARGO:-cargo}
# Free ephemeral ports unless AUTOBAHN_PORT fixes the first one: other checkouts on the same
# machine may run their own fuzzingserver on the conventional 9001.
N_DRIVERS=$(wc -w <<< "$DRIVERS")
if [ -n "${AUTOBAHN_PORT:-}" ]; then
  PORTS=$(seq "$AUTOBAHN_PORT" $((AUTOBAHN_PORT + N_DRIVERS - 1)))
else
  PORTS=$(python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$N_DRIVERS")
fi

bash "$ROOT/tests/autobahn/install.sh"

# Build the drivers before the servers start (a build can take a while).
for d in $DRIVERS; do
  case "$d" in
    rust) (cd "$ROOT" && $CARGO build --release -q -p wsdom-core --example autobahn_client) ;;
    python) [ "${AUTOBAHN_PY_READY:-0}" = 1 ] || bash "$ROOT/tests/conformance/python_env.sh" ;;
    c) [ -x "$ROOT/tests/autobahn/c_client" ] || { echo "autobahn: tests/autobahn/c_client is missing" >&2; exit 2; } ;;
    *) echo "autobahn: unknown driver $d" >&2; exit 2 ;;
  esac
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
rm -rf "$OUT"
mkdir -p "$OUT"
SERVERS=()
cleanup() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVERS=()
}
trap cleanup EXIT
declare -A PORT PID
read -r -a port_list <<< "$(echo $PORTS)"
k=0
for d in $DRIVERS; do
  port=${port_list[$k]}; k=$((k + 1))
  PORT[$d]=$port
  if port_busy "$port"; then
    echo "autobahn: something already listens on 127.0.0.1:$port" >&2
    exit 2
  fi
  mkdir -p "$OUT/$d"
  cat > "$OUT/$d/fuzzingserver.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$OUT/$d/reports/clients",
  "cases": ["*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
  (cd "$OUT/$d" && exec "$AUTOBAHN_DIR/bin/wstest" -m fuzzingserver -s "$OUT/$d/fuzzingserver.json" --webport 0) \
    > "$OUT/$d/fuzzingserver.log" 2>&1 &
  SERVERS+=($!)
  PID[$d]=$!
done
for d in $DRIVERS; do
  for _ in $(seq 150); do
    port_busy "${PORT[$d]}" && break
    kill -0 "${PID[$d]}" 2>/dev/null || break
    sleep 0.2
  done
  sleep 0.5 # a server that lost the port to another process exits (CannotListenError)
  if ! port_busy "${PORT[$d]}" || ! kill -0 "${PID[$d]}" 2>/dev/null; then
    tail -n 20 "$OUT/$d/fuzzingserver.log" >&2
    echo "autobahn: the fuzzingserver for $d did not start on 127.0.0.1:${PORT[$d]}" >&2
    exit 2
  fi
done

run_driver() { # DRIVER PATTERN...: runs one driver against its server; output in $OUT/DRIVER/driver.log
  local d=$1; shift
  local url="ws://127.0.0.1:${PORT[$d]}" t0 rc=0
  t0=$(date +%s)
  case "$d" in
    rust)
      "$ROOT/target/release/examples/autobahn_client" --url "$url" --agent wsdom-rust \
        --case-timeout "$CASE_TIMEOUT" "$@" || rc=$? ;;
    python)
      "$ROOT/.venv-test/bin/python" "$ROOT/tests/autobahn/py_client.py" --url "$url" \
        --agent wsdom-python --case-timeout "$CASE_TIMEOUT" "$@" || rc=$? ;;
    c)
      "$ROOT/tests/autobahn/c_client" "$url" wsdom-c "$@" || rc=$? ;;
  esac
  echo "autobahn: driver $d took $(( $(date +%s) - t0 ))s (exit $rc)"
  return $rc
}

status=0
if [ "$PARALLEL" = 1 ]; then
  declare -A JOB
  for d in $DRIVERS; do
    run_driver "$d" "$@" > "$OUT/$d/driver.log" 2>&1 &
    JOB[$d]=$!
  done
  for d in $DRIVERS; do
    wait "${JOB[$d]}" || status=1
    sed "s/^/[$d] /" "$OUT/$d/driver.log"
  done
else
  for d in $DRIVERS; do
    run_driver "$d" "$@" 2>&1 | tee "$OUT/$d/driver.log" || status=1
  done
fi
cleanup
trap - EXIT

indexes=()
for d in $DRIVERS; do indexes+=("$OUT/$d/reports/clients/index.json"); done
python3 "$ROOT/tests/autobahn/summarize.py" "${indexes[@]}" --json "$OUT/summary.json" || status=1
echo "autobahn: reports in $OUT/<driver>/reports/clients (index.html)"
exit $status
