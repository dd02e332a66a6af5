#!/usr/bin/env bash
# `ghostline tokenize` / `detokenize` through the real binary: the ids of a corpus file equal the
# reference ids, detokenize gives the file back byte for byte, and bad input exits non-zero.
#   cli_roundtrip.sh GHOSTLINE_BINARY FIXTURES_DIR PACKAGES_DIR
set -euo pipefail
bin=$1 fixtures=$2 packages=$3
model=$packages/tokenizer-deepseek_v3/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in code_rust.rs prose_multilingual.txt; do
  "$bin" tokenize --model "$model" < "$fixtures/corpus/$f" > "$tmp/ids.json"
  python3 - "$tmp/ids.json" "$fixtures/refs/deepseek_v3.json" "$f" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2], encoding="utf-8"))["ids"][sys.argv[3]]
if got != want:
    k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    sys.exit(f"{sys.argv[3]}: ids differ from the reference at position {k}")
PY
  "$bin" detokenize --tokenizer "$model/tokenizer.json" < "$tmp/ids.json" > "$tmp/back"
  cmp "$fixtures/corpus/$f" "$tmp/back"
done
if echo '[1, "x"]' | "$bin" detokenize --model "$model" 2> "$tmp/err"; then
  echo "detokenize accepted a non-id"; exit 1
fi
grep -q "not a token id" "$tmp/err"
if echo hi | "$bin" tokenize --tokenizer "$tmp/missing.json" 2> "$tmp/err"; then
  echo "tokenize accepted a missing file"; exit 1
fi
grep -q "no such file" "$tmp/err"
echo "ok"
