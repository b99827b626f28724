#!/usr/bin/env bash
# The wsdom benchmark: builds what it needs, runs every client against bench-server, and
# writes bench/RESULTS.md and bench/results.png (`make bench`).
#
#   bench/run.sh            full run (3 runs per case; 7-9 minutes on 2 cores, plus builds)
#   bench/run.sh --smoke    a few iterations of each client (seconds), to check the code works;
#                           writes bench/build/smoke/ and never asserts timings (`make test`)
#   extra arguments go to harness.py run, e.g. --clients wsdom-py,picows --cases rr256
#
# Needs: cargo, gcc, python3 (venv); installs the pinned peers into bench/.venv from PyPI.
# Optional: Debian's chromium + Node >= 20 for the chromium client of the compression cases.
# Keep the machine otherwise idle during a full run: the report shows how busy it was.
set -euo pipefail
BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH")"
cd "$ROOT"
SMOKE=0
ARGS=()
for a in "$@"; do
    if [ "$a" = "--smoke" ]; then SMOKE=1; else ARGS+=("$a"); fi
done
CARGO="${CARGO:-cargo}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"
BUILD="$BENCH/build"
VENV="$BENCH/.venv"
PY="$VENV/bin/python"
mkdir -p "$BUILD"

# Many connections from one process: raise the open-file limit as far as we may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== bench: Python venv with the pinned peers ($VENV)"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.requirements-installed"
if ! cmp -s "$BENCH/requirements.txt" "$STAMP"; then
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$BENCH/requirements.txt"
    cp "$BENCH/requirements.txt" "$STAMP"
fi

echo "== bench: building the server and the Rust clients (release)"
"$CARGO" build --release -q -p wsdom-bench --bins

echo "== bench: building the C clients"
gcc -O2 -Wall -Wextra -o "$BUILD/raw_client" "$BENCH/c/raw_client.c"
# The bindings are built here too; if one does not build, its client is skipped (and named
# as not measured in the report) rather than measured from a stale build.
rm -f "$BUILD/wsdom_client"
if [ -f "$ROOT/include/wsdom.h" ] && [ -d "$ROOT/ffi-c" ]; then
    if "$CARGO" build --release -q -p wsdom-ffi; then
        gcc -O2 -Wall -Wextra -I"$ROOT/include" -o "$BUILD/wsdom_client" "$BENCH/c/wsdom_client.c" \
            -L"$TARGET" -lwsdom -Wl,-rpath,"$TARGET" -lpthread
    else
        echo "!! libwsdom does not build: wsdom-c is not measured"
    fi
else
    echo "!! include/wsdom.h or ffi-c/ missing: wsdom-c is not measured"
fi

echo "== bench: building the wsdom wheel into the venv"
"$PY" -m pip uninstall --quiet --yes wsdom >/dev/null 2>&1 || true
if [ -f "$ROOT/py/pyproject.toml" ]; then
    "$PY" -m pip install --quiet --disable-pip-version-check "maturin>=1.8,<2"
    rm -rf "$BUILD/wheels"
    if "$VENV/bin/maturin" build --release --quiet -m "$ROOT/py/Cargo.toml" -o "$BUILD/wheels" >/dev/null; then
        "$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
            "$BUILD"/wheels/wsdom-*.whl
    else
        echo "!! the wsdom wheel does not build: wsdom-py is not measured"
    fi
else
    echo "!! py/pyproject.toml missing: wsdom-py is not measured"
fi

# The chromium client (compression case zsendjson) drives Debian's Chromium with
# playwright-core from tests/browser/node_modules: installed here from its lock file (as
# tests/browser/run.sh does) if it is missing. Chromium itself is never installed by the bench.
CHROMIUM_BIN="${CHROMIUM:-/usr/bin/chromium}"
BROWSER="$ROOT/tests/browser"
if [ -x "$CHROMIUM_BIN" ] && command -v npm >/dev/null 2>&1; then
    if [ ! -f "$BROWSER/node_modules/playwright-core/package.json" ]; then
        echo "== bench: npm ci in tests/browser (playwright-core for the chromium client)"
        if (cd "$BROWSER" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error); then
            cp "$BROWSER/package-lock.json" "$BROWSER/node_modules/.wsdom-lock"
        else
            echo "!! npm ci failed: chromium is not measured"
        fi
    fi
else
    echo "!! $CHROMIUM_BIN or npm is missing: chromium is not measured (the bench never installs it)"
fi

if [ "$SMOKE" = 1 ]; then
    OUT="$BUILD/smoke"
    mkdir -p "$OUT"
    echo "== bench: smoke run (timings are meaningless and never checked)"
    "$PY" "$BENCH/harness.py" run --smoke --out "$OUT/results.json" "${ARGS[@]}"
    "$PY" "$BENCH/harness.py" report --results "$OUT/results.json" \
        --md "$OUT/RESULTS.md" --png "$OUT/results.png"
else
    echo "== bench: full run"
    "$PY" "$BENCH/harness.py" run --out "$BENCH/results.json" "${ARGS[@]}"
    "$PY" "$BENCH/harness.py" report --results "$BENCH/results.json"
fi
