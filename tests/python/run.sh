#!/usr/bin/env bash
# Python tests: builds the wsdom wheel, installs it into a fresh virtual environment and runs
# the pytest suite against it and the scenario server. Used by `make test-py`.
#
#   bash tests/python/run.sh [PYTEST ARGS...]
#
# WSDOM_TEST_PYTHON=/path/to/python3.X picks another interpreter (its own venv,
# .venv-test-3.X); the default is python3 and .venv-test.
set -euo pipefail
# --no-tests: build and install the wheel only (used by tests/conformance/python_env.sh).
BUILD_ONLY=0
if [ "${1:-}" = "--no-tests" ]; then BUILD_ONLY=1; shift; fi
cd "$(dirname "$0")/../.."
ROOT=$PWD

BASE_PY=${WSDOM_TEST_PYTHON:-python3}
if [ -n "${WSDOM_TEST_PYTHON:-}" ]; then
    VERSION=$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    VENV="$ROOT/.venv-test-$VERSION"
else
    VENV="$ROOT/.venv-test"
fi
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "== creating $VENV"
    "$BASE_PY" -m venv "$VENV"
fi
echo "== installing maturin, pytest, pytest-timeout"
"$PY" -m pip install --quiet --disable-pip-version-check maturin pytest pytest-timeout

echo "== building the wheel"
mkdir -p "$ROOT/target/wheels"
rm -f "$ROOT"/target/wheels/wsdom-*.whl
"$VENV/bin/maturin" build --release -m py/Cargo.toml -o target/wheels
WHEEL=$(ls -t "$ROOT"/target/wheels/wsdom-*.whl | head -n 1)
echo "== installing $WHEEL"
"$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall "$WHEEL"
[ "$BUILD_ONLY" = 1 ] && exit 0

echo "== building the scenario server"
cargo build -q -p wsdom-testserver
export WSDOM_TESTSERVER="$ROOT/target/debug/wsdom-testserver"

echo "== running pytest"
# From the tests folder, so that `import wsdom` finds the installed wheel and not py/.
cd "$ROOT/tests/python"
exec "$PY" -m pytest -p no:cacheprovider --timeout=60 -ra "$@"
