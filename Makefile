# wsdom: `make demo` builds everything and runs the demo; `make test` runs every test.
# Both install what they need on a fresh machine (see scripts under tests/ and .ci/).

CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build demo test lint test-rust test-c test-py header install fuzz clean

all: build

build:
	$(CARGO) build --release --workspace --exclude wsdom-py

demo: build
	$(CARGO) run --release -q -p wsdom-core --example demo
	$(MAKE) -C examples/c demo

test: lint test-rust test-c

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --exclude wsdom-py --all-targets -- -D warnings

test-rust:
	$(CARGO) nextest run --workspace --exclude wsdom-py --no-fail-fast

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
