# wsdom: `make demo` builds everything and runs the demo; `make test` runs every test.
# Both install what they need on a fresh machine (see scripts under tests/ and .ci/).

CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build demo test lint test-rust test-c test-py conformance conformance-fast autobahn browser-parity reliability stress bench bench-smoke header install fuzz clean

all: build

build:
	$(CARGO) build --release --workspace --exclude wsdom-py

demo: build
	$(CARGO) run --release -q -p wsdom-core --example demo
	$(MAKE) -C examples/c demo

test: lint test-rust test-c test-py conformance browser-parity bench-smoke reliability

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The conformance driver runs in `make conformance`, against all four servers.
test-rust:
	$(CARGO) nextest run --workspace --exclude wsdom-py --no-fail-fast -E 'not binary(conformance)'

# The scenario table with the Rust, C and Python drivers against our server, pywebsocket3,
# websockets and Node ws, and the Autobahn|Testsuite (agents wsdom-rust, wsdom-python);
# writes tests/conformance/RESULTS.md.
conformance:
	bash tests/conformance/run.sh

# The same without Autobahn (about 2 minutes).
conformance-fast:
	CONFORMANCE_AUTOBAHN=0 bash tests/conformance/run.sh

autobahn:
	bash tests/autobahn/run.sh

# Differential tests against headless Chromium's own WebSocket (tests/browser/README.md);
# installs Debian's chromium (apt) and playwright-core (npm ci) if missing.
browser-parity:
	bash tests/browser/run.sh

# Fuzzing, sanitizers, load, soak, faults, TLS refusals, misuse (short form; RELIABILITY.md).
reliability:
	bash tests/reliability/run.sh

# The long forms: 10 M fuzz executions per target, 1,000 x 1,000 load, a 5-minute soak.
stress:
	bash tests/reliability/run.sh --stress

# Side by side with the peers (~9 min); writes bench/RESULTS.md and bench/results.png.
bench:
	bash bench/run.sh

# Checks that every benchmark client runs (a few iterations; no timing is asserted).
bench-smoke:
	bash bench/run.sh --smoke

test-c:
	bash tests/c/run.sh

test-py:
	bash tests/python/run.sh

# Regenerates include/wsdom.h from the C ABI's doc comments (cbindgen).
header:
	$(MAKE) -C ffi-c header

# Installs libwsdom.so/.a, wsdom.h and wsdom.pc under PREFIX.
install:
	$(MAKE) -C ffi-c install PREFIX=$(PREFIX)

clean:
	$(CARGO) clean
