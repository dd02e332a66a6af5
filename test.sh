#!/usr/bin/env bash
# Quick start, part 2: install what is missing, build, and run every test (ctest).
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
ctest --test-dir build --output-on-failure -j"$jobs" "$@"
