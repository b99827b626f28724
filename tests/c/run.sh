#!/usr/bin/env bash
# The C test suite of libwsdom (`make test-c`).
#
# 1. Builds libwsdom (release) and the scenario test server.
# 2. Regenerates include/wsdom.h with cbindgen (installed at the pinned version if missing)
#    and fails if the committed header differs.
# 3. Compiles the header as strict C99 and as C++, the tests against the shared library, the
#    static library, and the static library under AddressSanitizer (with leak detection),
#    the examples, and `make install` + pkg-config.
# 4. Starts the test server (plain and TLS) and runs every test of every build, each in its
#    own process with a time limit.
# The last line of output is "N passed, N failed"; the exit status is non-zero on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

CBINDGEN_VERSION=0.29.4
CC=${CC:-gcc}
CXX=${CXX:-g++}
CARGO=${CARGO:-cargo}
TEST_TIMEOUT=${WSDOM_C_TEST_TIMEOUT:-60}
RELEASE="$ROOT/target/release"
SERVER="$ROOT/target/debug/wsdom-testserver"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsdom-c-tests.XXXXXX")

passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
    failed=$((failed + 1))
    failures+=("$1")
    echo "FAIL $1"
    if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/     | /' "$2" | tail -n 40; fi
}
# check NAME LOG COMMAND...: runs COMMAND with output to LOG, records the result.
check() {
    local name=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name" "$log"; fi
}
summary() {
    if [ ${#failures[@]} -gt 0 ]; then
        echo "failed:"
        printf '  %s\n' "${failures[@]}"
    fi
    echo "$passed passed, $failed failed"
}
fatal() {
    echo "fatal: $1" >&2
    [ -n "${2:-}" ] && [ -s "$2" ] && tail -n 60 "$2" >&2
    failed=$((failed + 1))
    summary
    exit 1
}

SERVER_PIDS=()
cleanup() {
    # Closing the servers' stdin ends them; SIGTERM in case they are stuck.
    exec 7>&- 8>&- 9>&- 2>/dev/null || true
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. Build ----
echo "== building libwsdom (release) and the test server"
$CARGO build --release -p wsdom-ffi >"$WORK/build.log" 2>&1 || fatal "cargo build -p wsdom-ffi failed" "$WORK/build.log"
$CARGO build -p wsdom-testserver >>"$WORK/build.log" 2>&1 || fatal "cargo build -p wsdom-testserver failed" "$WORK/build.log"

# ---- 2. The committed header is what cbindgen generates ----
echo "== checking include/wsdom.h"
CBINDGEN=${CBINDGEN:-cbindgen}
if ! "$CBINDGEN" --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
    CBINDGEN="${CARGO_HOME:-$HOME/.cargo}/bin/cbindgen"
    if ! "$CBINDGEN" --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
        echo "   installing cbindgen $CBINDGEN_VERSION (cargo install --locked)"
        $CARGO install cbindgen --locked --version "$CBINDGEN_VERSION" >"$WORK/cbindgen.log" 2>&1 ||
            fatal "cannot install cbindgen $CBINDGEN_VERSION" "$WORK/cbindgen.log"
    fi
fi
header_check() {
    "$CBINDGEN" --quiet --config ffi-c/cbindgen.toml --crate wsdom-ffi --output "$WORK/wsdom.h" ffi-c &&
        diff -u include/wsdom.h "$WORK/wsdom.h"
}
check "header/committed-header-is-up-to-date (make -C ffi-c header)" "$WORK/header.log" header_check

# ---- 3. Compile ----
echo "== compiling"
STATIC_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" # rustc --print native-static-libs
CFLAGS="-std=c11 -g -O1 -Wall -Wextra -Werror -Iinclude"
SOURCES=(tests/c/harness.c tests/c/test_api.c tests/c/test_events.c tests/c/test_options.c
         tests/c/test_threads.c tests/c/test_dispatch.c tests/c/test_tls.c)
check "header/c99-pedantic" "$WORK/c99.log" \
    "$CC" -std=c99 -pedantic -Wall -Wextra -Werror -Iinclude -c tests/c/header_c99.c -o "$WORK/header_c99.o"
check "header/cxx-compiles-and-links" "$WORK/cxx.log" \
    "$CXX" -std=c++11 -pedantic -Wall -Wextra -Werror -Iinclude tests/c/header_cxx.cpp \
    -o "$WORK/header_cxx" -L"$RELEASE" -lwsdom -Wl,-rpath,"$RELEASE" -pthread
BUILDS=()
build_tests() { # NAME extra-flags...
    local name=$1
    shift
    # shellcheck disable=SC2086
    if "$CC" $CFLAGS "${SOURCES[@]}" -o "$WORK/tests_$name" "$@" >"$WORK/cc_$name.log" 2>&1; then
        pass "build/tests-$name"
        BUILDS+=("$name")
    else
        fail "build/tests-$name" "$WORK/cc_$name.log"
    fi
}
# shellcheck disable=SC2086
build_tests shared -L"$RELEASE" -lwsdom -Wl,-rpath,"$RELEASE" -pthread
# shellcheck disable=SC2086
build_tests static "$RELEASE/libwsdom.a" $STATIC_LIBS -pthread
# shellcheck disable=SC2086
build_tests asan -fsanitize=address -fno-omit-frame-pointer "$RELEASE/libwsdom.a" $STATIC_LIBS -pthread

check "examples/build" "$WORK/examples.log" make -s -C examples/c OUT="$WORK/examples"
install_check() {
    local pc=(env PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig" pkg-config)
    make -s -C ffi-c install PREFIX="$WORK/prefix" || return 1
    ls -l "$WORK/prefix/include/wsdom.h" "$WORK/prefix/lib/libwsdom.so" \
        "$WORK/prefix/lib/libwsdom.a" "$WORK/prefix/lib/pkgconfig/wsdom.pc" || return 1
    "${pc[@]}" --modversion wsdom || return 1
    # Dynamic: the README's compile line.
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Werror examples/c/echo.c -o "$WORK/echo_pc" \
        $("${pc[@]}" --cflags --libs wsdom) -Wl,-rpath,"$WORK/prefix/lib" || return 1
    # Static: the archive, then the system libraries it needs (Libs.private).
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Werror examples/c/echo.c -o "$WORK/echo_pc_static" \
        $("${pc[@]}" --cflags wsdom) "$WORK/prefix/lib/libwsdom.a" \
        $("${pc[@]}" --static --libs wsdom | sed 's/-lwsdom\b//') || return 1
    ! readelf -d "$WORK/echo_pc_static" | grep -q 'libwsdom'
}
check "install/make-install-and-pkg-config" "$WORK/install.log" install_check

# ---- 4. Run ----
start_server() { # NAME FD ARGS...: starts the server, stdin on a FIFO held open by FD
    local name=$1 fd=$2
    shift 2
    mkfifo "$WORK/$name.in"
    "$SERVER" "$@" <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PIDS+=($!)
    # While this script holds the FIFO open the server runs; it exits when the script ends.
    eval "exec $fd>\"\$WORK/\$name.in\""
    for _ in $(seq 1 200); do
        SERVER_PORT=$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$WORK/$name.out" 2>/dev/null)
        [ -n "$SERVER_PORT" ] && return 0
        sleep 0.05
    done
    return 1
}
echo "== starting the test servers"
start_server plain 7 || fatal "the test server did not start" "$WORK/plain.err"
PORT=$SERVER_PORT
start_server tls 8 --tls --ca-out "$WORK/ca.pem" || fatal "the TLS test server did not start" "$WORK/tls.err"
TLS_PORT=$SERVER_PORT
start_server proxy 9 --proxy http || fatal "the test proxy did not start" "$WORK/proxy.err"
PROXY_PORT=$SERVER_PORT
export WSDOM_TEST_PORT=$PORT WSDOM_TEST_TLS_PORT=$TLS_PORT WSDOM_TEST_CA="$WORK/ca.pem"
export WSDOM_TEST_PROXY_PORT=$PROXY_PORT
# Every proxy kind, with and without authentication (user "user", password "p@ss").
fd=10
for kind in http https socks5; do
    for auth in none user; do
        args=(--proxy "$kind")
        [ "$auth" = user ] && args+=(--proxy-auth 'user:p@ss')
        [ "$kind" = https ] && args+=(--ca-out "$WORK/proxy-ca-$auth.pem")
        start_server "proxy-$kind-$auth" $fd "${args[@]}" ||
            fatal "the $kind proxy did not start" "$WORK/proxy-$kind-$auth.err"
        export "WSDOM_TEST_PROXY_${kind^^}_${auth^^}=$SERVER_PORT"
        fd=$((fd + 1))
    done
done
export WSDOM_TEST_PROXY_CA_NONE="$WORK/proxy-ca-none.pem" WSDOM_TEST_PROXY_CA_USER="$WORK/proxy-ca-user.pem"
echo "   ws://127.0.0.1:$PORT  wss://localhost:$TLS_PORT  proxy http://127.0.0.1:$PROXY_PORT"

# AddressSanitizer: leaks are errors; huge allocations fail instead of aborting (the
# WS_OUT_OF_MEMORY test); suppressions cover only the library's one-time globals.
ASAN_ENV=(ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:exitcode=23"
          LSAN_OPTIONS="suppressions=$ROOT/tests/c/lsan.supp:print_suppressions=0")

for build in "${BUILDS[@]}"; do
    echo "== tests ($build)"
    bin="$WORK/tests_$build"
    env=()
    [ "$build" = asan ] && env=("${ASAN_ENV[@]}")
    for name in $("$bin" --list); do
        log="$WORK/run_${build}_$name.log"
        if env "${env[@]}" timeout "$TEST_TIMEOUT" "$bin" "$name" >"$log" 2>&1; then
            pass "$build/$name"
        else
            status=$?
            [ $status -eq 124 ] && echo "timed out after ${TEST_TIMEOUT}s" >>"$log"
            fail "$build/$name" "$log"
        fi
    done
done

echo "== programs"
if [ -x "$WORK/header_cxx" ]; then
    check "header/cxx-runs" "$WORK/cxx_run.log" timeout "$TEST_TIMEOUT" "$WORK/header_cxx" "ws://127.0.0.1:$PORT/echo"
fi
if [ -x "$WORK/examples/echo" ]; then
    examples_echo() {
        timeout "$TEST_TIMEOUT" "$WORK/examples/echo" "ws://127.0.0.1:$PORT/echo" >"$WORK/echo.out" 2>&1 &&
            grep -q 'received: Hello from C' "$WORK/echo.out" &&
            grep -q 'closed: code 1000' "$WORK/echo.out"
    }
    check "examples/echo" "$WORK/echo.out" examples_echo
    examples_poll() {
        timeout "$TEST_TIMEOUT" "$WORK/examples/poll_loop" "ws://127.0.0.1:$PORT/echo" >"$WORK/poll.out" 2>&1 &&
            grep -q 'echo: ping 3' "$WORK/poll.out" &&
            grep -q 'closed: code 1000' "$WORK/poll.out"
    }
    check "examples/poll_loop" "$WORK/poll.out" examples_poll
    check "examples/echo-built-with-pkg-config" "$WORK/echo_pc.out" \
        timeout "$TEST_TIMEOUT" "$WORK/echo_pc" "ws://127.0.0.1:$PORT/echo"
    check "examples/echo-static-with-pkg-config" "$WORK/echo_pc_static.out" \
        timeout "$TEST_TIMEOUT" "$WORK/echo_pc_static" "ws://127.0.0.1:$PORT/echo"
fi

summary
[ "$failed" -eq 0 ]
