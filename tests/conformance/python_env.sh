#!/usr/bin/env bash
# Makes sure .venv-test has the wsdom wheel built from this checkout (for the Python
# conformance driver and the Autobahn agent wsdom-python), without running the pytest suite:
# tests/python/run.sh owns the recipe.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash tests/python/run.sh --no-tests
