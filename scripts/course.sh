#!/usr/bin/env bash
# The main job: set up this machine, then execute every course notebook headlessly with the real
# tools (labkit validate --mode auto). Executed notebooks and report.json land in _validate/.
#
# Chapter 3's ZeroTier cells need a daemon. As root, with ../shared/tools/zerotier beside the clone
# (or LABKIT_ZT_TOOLS), the two-node lab is built once and brought up for this run, exported as
# LABKIT_ZT_LAB, and taken down when the run ends (trap); otherwise those cells are planned.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh course

tools=${LABKIT_ZT_TOOLS:-../shared/tools/zerotier}
[ -f "$tools/lab.sh" ] || [ -n "${LABKIT_ZT_TOOLS:-}" ] || tools=../../shared/tools/zerotier  # a worktree
if [ -z "${LABKIT_ZT_LAB:-}" ] && [ "$(id -u)" = 0 ] && [ -f "$tools/lab.sh" ] && [ -f "$tools/build.sh" ]; then
    lab=$(mktemp -d "${TMPDIR:-/tmp}/labkit-ztlab.XXXXXX")
    trap 'bash "$tools/lab.sh" down "$lab" >/dev/null 2>&1 || true; rm -rf "$lab"' EXIT
    if bash "$tools/build.sh" >&2 && bash "$tools/lab.sh" up "$lab" >&2; then
        export LABKIT_ZT_LAB=$lab
        echo "course.sh: ZeroTier lab up in $lab (LABKIT_ZT_LAB)" >&2
    else
        echo "course.sh: the ZeroTier lab did not come up; chapter 3's ZeroTier cells are planned" >&2
    fi
fi
status=0
.venv/bin/labkit validate --mode auto --out _validate --report _validate/report.json "$@" || status=$?
exit "$status"
