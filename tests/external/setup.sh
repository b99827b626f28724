#!/usr/bin/env bash
# Installs the external WebSocket servers used by the conformance drivers:
#   pywebsocket3 and websockets (PyPI) into .venv-ext at the repo root,
#   ws (npm) into tests/external/node/node_modules from the committed package-lock.json.
# Idempotent: a second run only checks the installs (a few seconds).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.venv-ext"
REQ="$ROOT/tests/external/requirements.txt"
NODE_DIR="$ROOT/tests/external/node"
log() { printf '==> external setup: %s\n' "$*" >&2; }

# --- Python servers ----------------------------------------------------------------------
PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  log "apt-get install python3-venv"
  apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv
fi
STAMP="$VENV/.requirements"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP"; then
  log ".venv-ext is up to date"
else
  log "creating .venv-ext"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$STAMP"
fi
"$VENV/bin/python" -c 'import pywebsocket3, websockets; print("pywebsocket3 ok, websockets", websockets.__version__)' >&2

# --- Node ws -------------------------------------------------------------------------------
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "apt-get install nodejs npm"
  apt-get update -q && apt-get install -y -q --no-install-recommends nodejs npm
fi
if [ -f "$NODE_DIR/node_modules/ws/package.json" ] \
   && [ "$(node -p "require('$NODE_DIR/node_modules/ws/package.json').version")" = \
        "$(node -p "require('$NODE_DIR/package-lock.json').packages['node_modules/ws'].version")" ]; then
  log "node ws is up to date"
else
  log "npm ci in tests/external/node"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
node -e "console.error('ws ok', require('$NODE_DIR/node_modules/ws/package.json').version)"
