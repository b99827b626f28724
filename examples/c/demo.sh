#!/usr/bin/env bash
# Builds libwsdom and the C examples, starts the scenario test server, and runs echo and
# poll_loop against its /echo endpoint.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release -q -p wsdom-ffi
cargo build -q -p wsdom-testserver
make -s --no-print-directory -C examples/c
coproc SERVER { exec target/debug/wsdom-testserver; }
trap 'exec {SERVER[1]}>&-; wait "$SERVER_PID" 2>/dev/null || true' EXIT
read -r word port <&"${SERVER[0]}"
[ "$word" = LISTENING ] || { echo "the test server did not start" >&2; exit 1; }
echo "--- echo ws://127.0.0.1:$port/echo"
target/examples-c/echo "ws://127.0.0.1:$port/echo"
echo "--- poll_loop ws://127.0.0.1:$port/echo"
target/examples-c/poll_loop "ws://127.0.0.1:$port/echo"
