#!/usr/bin/env bash
# Quick start, part 1: install what is missing, build, and complete code at a cursor in a bundled
# example through the same pipeline an editor uses, with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh
example=tests/fixtures/examples/stats.py
cursor="${GHOSTLINE_EXAMPLE_CURSOR:-$example:13:5}"
echo "== ghostline complete $cursor" >&2
build/ghostline complete "$cursor" --json "$@"
