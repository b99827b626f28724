#!/usr/bin/env bash
# Installs Autobahn|Testsuite (`wstest`, PyPI autobahntestsuite, Python 2.7 only) for the
# conformance run, on Debian 12 without Docker, reaching only PyPI and Debian's archive.
# Based on shared/reference/install_autobahn.sh (see shared/reference/autobahn.md).
#
# Idempotent: a finished install leaves $AUTOBAHN_DIR/.installed; a second run with the same
# settings only checks that `bin/wstest --autobahnversion` still works (about 1 s).
#
# Settings (environment):
#   AUTOBAHN_DIR   install folder (default /tmp/wsdom-autobahn, kept across runs on one machine;
#                  `make`/CI may point it at the repo's ignored build/ folder instead)
#   AUTOBAHN_PY    which Python 2.7 runs wstest:
#                    auto (default)  PyPy 7.3.3 from Debian 11 bullseye .debs (what upstream's
#                                    Docker image uses); if bullseye cannot be fetched, pyenv's
#                                    CPython 2.7.18 when present
#                    pypy            bullseye PyPy only
#                    cpython         bullseye CPython 2.7 only
#                    /path/python2.7 an existing CPython 2.7 (e.g. $(pyenv root)/versions/2.7.18/bin/python2.7)
#   AUTOBAHN_TESTSUITE_VERSION  (default 25.10.1)
#   DEBIAN_MIRROR  (default: the first URIs: line of this machine's apt sources)
#
# Result: $AUTOBAHN_DIR/bin/wstest, a wrapper that forces every listening socket onto
# ${WSTEST_BIND:-127.0.0.1}, and $AUTOBAHN_DIR/config/fuzzingserver.json.
set -euo pipefail

DIR=${AUTOBAHN_DIR:-/tmp/wsdom-autobahn}
WANT=${AUTOBAHN_PY:-auto}
TESTSUITE_VERSION=${AUTOBAHN_TESTSUITE_VERSION:-25.10.1}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | awk '{print $2}' | sed 's#/debian/*$##' || true)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org}
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '==> autobahn install: %s\n' "$*" >&2; }

STAMP="$DIR/.installed"
STAMP_WANT="want=$WANT version=$TESTSUITE_VERSION"
if [ -f "$STAMP" ] && grep -qxF "$STAMP_WANT" "$STAMP" && [ -x "$DIR/bin/wstest" ] \
   && "$DIR/bin/wstest" --autobahnversion >/dev/null 2>&1; then
  log "already installed in $DIR ($(sed -n 2p "$STAMP"))"
  exit 0
fi

mkdir -p "$DIR"/{bin,config}
cd "$DIR"
ROOT="$DIR/py2root"
export PIP_CACHE_DIR="$DIR/.pip-cache"
export VIRTUALENV_OVERRIDE_APP_DATA="$DIR/.virtualenv-appdata"

# --- 0. host tools (all from bookworm) ---------------------------------------------------
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# --- 1. a Python 2.7 ---------------------------------------------------------------------
# Fetches bullseye .debs with a private apt config and unpacks them into $ROOT; the system's
# dpkg/apt state is not touched. Returns non-zero if bullseye cannot be fetched.
fetch_bullseye() {
  local flavor=$1 debs=()
  case "$flavor" in
    pypy)    debs=(pypy pypy-lib pypy-dev libssl1.1 libssl-dev libffi7) ;;
    cpython) debs=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib
                   python2.7-dev libpython2.7-dev libssl1.1 libffi7) ;;
  esac
  local A="$DIR/apt-bullseye"
  mkdir -p "$A"/{etc,state/lists/partial,cache/archives/partial,debs-$flavor}
  : > "$A/state/status"
  cat > "$A/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR/debian-security bullseye-security main
EOF
  cat > "$A/etc/apt.conf" <<EOF
Dir::State "$A/state";
Dir::State::status "$A/state/status";
Dir::Cache "$A/cache";
Dir::Etc::SourceList "$A/etc/sources.list";
Dir::Etc::SourceParts "$A/etc/none";
APT::Architecture "amd64";
APT::Sandbox::User "root";
EOF
  log "fetching bullseye .debs: ${debs[*]}"
  if ! APT_CONFIG="$A/etc/apt.conf" apt-get update -q >&2; then return 1; fi
  local have=1 d
  for d in "${debs[@]}"; do ls "$A/debs-$flavor/${d}_"*.deb >/dev/null 2>&1 || have=0; done
  if [ $have = 0 ]; then
    ( cd "$A/debs-$flavor" && APT_CONFIG="$A/etc/apt.conf" apt-get download "${debs[@]}" >&2 ) || return 1
  fi
  mkdir -p "$ROOT"
  local f
  for f in "$A/debs-$flavor"/*.deb; do dpkg-deb -x "$f" "$ROOT"; done
}

PYENV27="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/2.7.18/bin/python2.7"
FLAVOR=
case "$WANT" in
  auto)
    if fetch_bullseye pypy && [ -x "$ROOT/usr/bin/pypy" ]; then
      FLAVOR=pypy
    elif [ -x "$PYENV27" ]; then
      log "bullseye PyPy unavailable; falling back to pyenv's CPython 2.7.18"
      FLAVOR=$PYENV27
    else
      log "no Python 2.7: bullseye .debs cannot be fetched and pyenv has no 2.7.18"
      exit 1
    fi ;;
  pypy|cpython) fetch_bullseye "$WANT"; FLAVOR=$WANT ;;
  *) FLAVOR=$WANT ;;
esac
case "$FLAVOR" in
  pypy)    PY2="$ROOT/usr/bin/pypy" ;;
  cpython) PY2="$ROOT/usr/bin/python2.7" ;;
  *)       PY2="$FLAVOR" ;;
esac
LIBDIR="$ROOT/usr/lib/x86_64-linux-gnu"       # libssl.so.1.1, libcrypto.so.1.1, libffi.so.7
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CFLAGS="-I$ROOT/usr/include -I$ROOT/usr/include/x86_64-linux-gnu -I$ROOT/usr/include/python2.7"
export LDFLAGS="-L$LIBDIR"
"$PY2" -c 'import sys, ssl; print(sys.version.split()[0] + " " + ssl.OPENSSL_VERSION)' >&2

# --- 2. py2 virtualenv (virtualenv 20.21.x is the last line that can create py2 envs) ----
log "virtualenv for $PY2"
[ -x "$DIR/tools/bin/pip" ] || python3 -m venv "$DIR/tools"
"$DIR/tools/bin/pip" install -q 'virtualenv==20.21.1'
rm -rf "$DIR/venv27"
"$DIR/tools/bin/virtualenv" -q -p "$PY2" "$DIR/venv27"    # seeds pip 20.3.4, setuptools 44.1.1

# --- 3. the testsuite, pinned like its requirements.txt / docker/Dockerfile -----------------
log "pip install autobahntestsuite==$TESTSUITE_VERSION"
PIP="$DIR/venv27/bin/pip install -q"
if [ "$FLAVOR" = pypy ]; then
  # pip 20.3.4 on PyPy2: build isolation and .pyc compilation hit `assert os.path.exists(pyc_path)`;
  # Twisted's setup_requires pulls incremental 22.x (needs `typing`) unless 16.10.1 is there first.
  PIP="$PIP --no-compile --no-build-isolation"
  $PIP 'setuptools==44.0.0' 'wheel==0.36.2'
  $PIP 'incremental==16.10.1'
  $PIP 'cryptography==3.3.2' 'pyOpenSSL==19.1.0'
  $PIP 'Twisted==19.10.0' 'zope.interface==4.6.0'
fi
$PIP "autobahntestsuite==$TESTSUITE_VERSION"

# --- 4. loopback-only launcher --------------------------------------------------------------
# wstest binds every interface whatever the spec's "url" says; force the bind address.
cat > "$DIR/bin/wstest-loopback.py" <<'EOF'
import os
from autobahntestsuite import wstest      # first: installs the epoll reactor
from twisted.internet import reactor

BIND = os.environ.get("WSTEST_BIND", "127.0.0.1")
_tcp, _ssl = reactor.listenTCP, reactor.listenSSL

def listenTCP(port, factory, backlog=50, interface=""):
    return _tcp(port, factory, backlog, BIND)

def listenSSL(port, factory, contextFactory, backlog=50, interface=""):
    return _ssl(port, factory, contextFactory, backlog, BIND)

reactor.listenTCP, reactor.listenSSL = listenTCP, listenSSL

if __name__ == "__main__":
    wstest.run()
EOF
cat > "$DIR/bin/wstest" <<EOF
#!/bin/sh
# wstest (Autobahn|Testsuite $TESTSUITE_VERSION on $FLAVOR), listening on \${WSTEST_BIND:-127.0.0.1} only
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DIR/venv27/bin/python" "$DIR/bin/wstest-loopback.py" "\$@"
EOF
chmod +x "$DIR/bin/wstest"

cat > "$DIR/config/fuzzingserver.json" <<'EOF'
{
  "url": "ws://127.0.0.1:9001",
  "outdir": "./reports/clients",
  "cases": ["*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF

"$DIR/bin/wstest" --autobahnversion >&2
printf '%s\n%s\n' "$STAMP_WANT" "python=$FLAVOR" > "$STAMP"
log "installed in $DIR (python: $FLAVOR)"
