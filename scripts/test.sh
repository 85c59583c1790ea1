#!/usr/bin/env bash
# The test job: set up this machine (incl. test-only packages), lint, then run the whole test suite
# against the real tools. This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q "$@"
