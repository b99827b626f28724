#!/usr/bin/env bash
# Browser parity: differential tests of wsdom against headless Chromium's own WebSocket.
# Used by `make browser-parity`; see tests/browser/README.md.
#
#   bash tests/browser/run.sh [--only REGEX] [--clients chromium,python,c] [--workers N] [--verbose]
#
# 1. Installs what is missing: Debian's chromium (apt-get, only if absent), playwright-core
#    (npm ci from package-lock.json), the scenario server and libwsdom (cargo, one build at a
#    time), and the wsdom wheel in .venv-test (only if absent or older than the sources).
# 2. harness.mjs runs every scenario in Chromium and through wsdom's Python package and C
#    library, each client against its own scenario servers, and writes target/browser/*.jsonl.
# 3. compare.py compares each wsdom trace with Chromium's, checks every difference against
#    divergences.json, prints the summary (last line "N passed, N failed") and exits 1 on a
#    difference that is not listed.
#
# Environment: CHROMIUM (browser binary, default /usr/bin/chromium), WSDOM_BROWSER_PYTHON (an
# interpreter with wsdom installed: skips the wheel step), WSDOM_BROWSER_WORKERS (scenarios run
# at once per client, default 4), CARGO.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/tests/browser
OUT=$ROOT/target/browser
CARGO=${CARGO:-cargo}

only=() clients=() workers=() verbose=()
while [ $# -gt 0 ]; do
    case "$1" in
        --only) only=(--only "$2"); shift 2 ;;
        --clients) clients=(--clients "$2"); shift 2 ;;
        --workers) workers=(--workers "$2"); shift 2 ;;
        --verbose) verbose=(--verbose); shift ;;
        *) echo "usage: $0 [--only REGEX] [--clients LIST] [--workers N] [--verbose]" >&2; exit 2 ;;
    esac
done

t_start=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# --- 1. what the run needs --------------------------------------------------------------------

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "== installing Debian's chromium (apt-get)"
    t=$(date +%s.%N)
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
    echo "   chromium installed in $(elapsed "$t") s"
fi
export CHROMIUM

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
    echo "browser parity needs Node >= 20 (playwright-core); found $(node --version 2>/dev/null || echo none)" >&2
    exit 2
fi

stamp=$HERE/node_modules/.wsdom-lock
if [ ! -f "$stamp" ] || ! cmp -s "$HERE/package-lock.json" "$stamp"; then
    echo "== npm ci (playwright-core; browsers are never downloaded)"
    (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp "$HERE/package-lock.json" "$stamp"
fi

echo "== building the scenario server and libwsdom"
"$CARGO" build -q -p wsdom-testserver
"$CARGO" build -q --release -p wsdom-ffi
export WSDOM_TESTSERVER=$ROOT/target/debug/wsdom-testserver
export WSDOM_LIBWSDOM=$ROOT/target/release/libwsdom.so

if [ -z "${WSDOM_BROWSER_PYTHON:-}" ]; then
    VENV=$ROOT/.venv-test
    PY=$VENV/bin/python
    # The installed wheel's record is older than a source of the package: rebuild.
    record=$(ls -d "$VENV"/lib/python3*/site-packages/wsdom-*.dist-info/RECORD 2>/dev/null | head -n 1 || true)
    stale=yes
    if [ -n "$record" ] && "$PY" -c 'import wsdom' 2>/dev/null; then
        newer=$(find core/src core/Cargo.toml py/src py/python py/Cargo.toml py/pyproject.toml Cargo.lock \
                     -newer "$record" -type f 2>/dev/null | head -n 1)
        [ -z "$newer" ] && stale=no
    fi
    if [ "$stale" = yes ]; then
        echo "== building and installing the wsdom wheel into $VENV"
        [ -x "$PY" ] || python3 -m venv "$VENV"
        "$PY" -m pip install --quiet --disable-pip-version-check maturin
        WHEELS=$(mktemp -d "${TMPDIR:-/tmp}/wsdom-browser-wheel.XXXXXX")
        "$VENV/bin/maturin" build --release -q -m py/Cargo.toml -o "$WHEELS"
        "$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall "$WHEELS"/wsdom-*.whl
        rm -rf "$WHEELS"
    fi
    export WSDOM_BROWSER_PYTHON=$PY
fi
echo "   ready in $(elapsed "$t_start") s"

# --- 2. the runs ---------------------------------------------------------------------------------

rm -rf "$OUT"
mkdir -p "$OUT"
t_run=$(date +%s.%N)
node "$HERE/harness.mjs" --out "$OUT" "${only[@]}" "${clients[@]}" "${workers[@]}"

# --- 3. the comparison ---------------------------------------------------------------------------

status=0
if ! python3 "$HERE/compare.py" --markdown "$OUT/DIVERGENCES.md" ||
   ! cmp -s "$OUT/DIVERGENCES.md" "$HERE/DIVERGENCES.md"; then
    echo "tests/browser/DIVERGENCES.md is not what divergences.json gives: run" >&2
    echo "  python3 tests/browser/compare.py --markdown tests/browser/DIVERGENCES.md" >&2
    status=1
fi
cmp_clients=python,c
if [ ${#clients[@]} -gt 0 ]; then cmp_clients=$(echo "${clients[1]}" | tr ',' '\n' | grep -v '^chromium$' | paste -sd, -); fi
set +e
python3 "$HERE/compare.py" --dir "$OUT" --clients "$cmp_clients" --report "$OUT/report.json" "${verbose[@]}" \
    >"$OUT/summary.txt"
cmp_status=$?
set -e
echo "   runs and comparison took $(elapsed "$t_run") s (whole script $(elapsed "$t_start") s)"
echo "   traces, report.json and summary.txt are in ${OUT#"$ROOT"/}"
echo
cat "$OUT/summary.txt"
if [ "$cmp_status" -ne 0 ] || [ "$status" -ne 0 ]; then exit 1; fi
