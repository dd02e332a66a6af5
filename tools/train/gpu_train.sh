#!/usr/bin/env bash
# Training GPU call: data preparation with the kept tokenizer, then training for whatever time is
# left before LIMIT seconds (minus RESERVE for the final export and evaluation), checkpoints to
# $OUT every 100 s. Usage: OUT=... LIMIT=560 [RESUME='glob'] bash tools/train/gpu_train.sh
set -o pipefail
export PYTHONUNBUFFERED=1
T0=$(date +%s)
LIMIT=${LIMIT:-560}
RESERVE=${RESERVE:-130}
cd "$(dirname "$0")"
mkdir -p "$OUT"
python3 prep.py --out /tmp/gl --carried ../../.traindata --tokenizer ../../models/ghostline-coder-tiny/tokenizer.json ${PREP_ARGS:-} 2>&1 | tee "$OUT/prep.log"
cp /tmp/gl/stats.json /tmp/gl/cases.jsonl "$OUT/"
BUDGET=$(( LIMIT - RESERVE - ($(date +%s) - T0) - 25 ))
echo "training budget ${BUDGET}s"
python3 train.py --data /tmp/gl --out "$OUT" --budget "$BUDGET" --eval-cases 200 --eval-seconds 70 \
  ${RESUME:+--resume "$RESUME"} ${TRAIN_ARGS:-} 2>&1 | grep -v '"kind": "train"' | cut -c1-3000
echo "TRAIN_DONE $(( $(date +%s) - T0 ))s"
