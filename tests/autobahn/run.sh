#!/usr/bin/env bash
# Autobahn|Testsuite against wsdom: installs wstest if needed (install.sh), starts the
# fuzzingserver on 127.0.0.1:9001 only, runs the client drivers, stops the server, summarises.
#
#   tests/autobahn/run.sh [PATTERN ...]      e.g. '1.*' '7.*'; none = every case (1.* to 13.*)
#
# Environment: AUTOBAHN_DIR (default /tmp/wsdom-autobahn), AUTOBAHN_OUT (reports; default
# build/autobahn in the repo), AUTOBAHN_CASE_TIMEOUT (seconds per case, default 60),
# AUTOBAHN_DRIVERS (default "rust"; "rust c python" once those drivers exist).
# Exit status: non-zero if any case FAILED (see summarize.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export AUTOBAHN_DIR=${AUTOBAHN_DIR:-/tmp/wsdom-autobahn}
OUT=${AUTOBAHN_OUT:-$ROOT/build/autobahn}
CASE_TIMEOUT=${AUTOBAHN_CASE_TIMEOUT:-60}
DRIVERS=${AUTOBAHN_DRIVERS:-rust}
CARGO=${CARGO:-cargo}
PORT=9001

bash "$ROOT/tests/autobahn/install.sh"

# Build the Rust driver before the server starts (the build can take a while).
if [[ " $DRIVERS " == *" rust "* ]]; then
  (cd "$ROOT" && $CARGO build --release -q -p wsdom-core --example autobahn_client)
fi

if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
  echo "autobahn: something already listens on 127.0.0.1:$PORT" >&2
  exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
cat > "$OUT/fuzzingserver.json" <<EOF
{
  "url": "ws://127.0.0.1:$PORT",
  "outdir": "$OUT/reports/clients",
  "cases": ["*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
(cd "$OUT" && exec "$AUTOBAHN_DIR/bin/wstest" -m fuzzingserver -s "$OUT/fuzzingserver.json" --webport 0) \
  > "$OUT/fuzzingserver.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 150); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/fuzzingserver.log" >&2; exit 2; }
  sleep 0.2
done

status=0
for d in $DRIVERS; do
  t0=$(date +%s)
  case "$d" in
    rust)
      "$ROOT/target/release/examples/autobahn_client" --url "ws://127.0.0.1:$PORT" \
        --agent wsdom-rust --case-timeout "$CASE_TIMEOUT" "$@" || status=$? ;;
    c)
      "$ROOT/tests/autobahn/c_client" "ws://127.0.0.1:$PORT" wsdom-c "$@" || status=$? ;;
    python)
      "$ROOT/.venv/bin/python" "$ROOT/tests/autobahn/py_client.py" --url "ws://127.0.0.1:$PORT" \
        --agent wsdom-python "$@" || status=$? ;;
    *) echo "autobahn: unknown driver $d" >&2; status=2 ;;
  esac
  echo "autobahn: driver $d took $(( $(date +%s) - t0 ))s"
done
cleanup
trap - EXIT

python3 "$ROOT/tests/autobahn/summarize.py" "$OUT/reports/clients/index.json" \
  --json "$OUT/summary.json" || status=1
echo "autobahn: reports in $OUT/reports/clients (index.html)"
exit $status
