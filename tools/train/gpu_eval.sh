#!/usr/bin/env bash
# Evaluation-only GPU call on the committed model: export check without TF32, then the FIM scorer
# through transformers (SPM on N_SPM cases, PSM on N_PSM cases). Results land in $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
mkdir -p "$OUT"
M=../../models/ghostline-coder-tiny
python3 verify_export.py $M 2>&1 | grep -v Loading | tee "$OUT/verify.json"
timeout ${T_SPM:-100} python3 eval_fim.py --backend hf --model $M --order spm --limit ${N_SPM:-200} --out "$OUT/spm_rows.jsonl" 2>&1 | grep -v Loading | tee "$OUT/spm.json"
timeout ${T_PSM:-40} python3 eval_fim.py --backend hf --model $M --order psm --limit ${N_PSM:-60} --out "$OUT/psm_rows.jsonl" 2>&1 | grep -v Loading | tee "$OUT/psm.json"
