#!/usr/bin/env bash
# The main job: set up this machine, then execute every course notebook headlessly with the real
# tools (labkit validate --mode auto). Executed notebooks and report.json land in _validate/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh course
exec .venv/bin/labkit validate --mode auto --out _validate --report _validate/report.json "$@"
