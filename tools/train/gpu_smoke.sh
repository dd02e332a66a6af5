#!/usr/bin/env bash
# First GPU call: environment check, the real data preparation and tokenizer training (kept:
# tokenizer.json comes back), a few training steps uncompiled and compiled, export, transformers
# reload/logit check, a resume check. Run from the repository root with OUT set.
set -o pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, torch.cuda.get_device_name())"
mkdir -p "$OUT"
python3 prep.py --out /tmp/gl --carried ../../.traindata ${PREP_ARGS:-} 2>&1 | tee "$OUT/prep.log"
cp /tmp/gl/tokenizer.json /tmp/gl/stats.json /tmp/gl/cases.jsonl "$OUT/" 2>/dev/null
ls -la /tmp/gl
timeout 150 python3 train.py --data /tmp/gl --out /tmp/run_a --budget 40 --max-steps 30 --eval-cases 8 --eval-seconds 20 --ckpt-every 15 --export /tmp/exp_a 2>&1 | grep -v '"kind": "train"' | cut -c1-1500
grep '"kind": "train"' /tmp/run_a/train_log.jsonl | tail -2
timeout 150 python3 train.py --data /tmp/gl --out /tmp/run_b --budget 60 --max-steps 60 --eval-cases 0 --compile --export /tmp/exp_b 2>&1 | grep -E 'end_train|Error|error' | cut -c1-600
grep '"kind": "train"' /tmp/run_b/train_log.jsonl | tail -2
timeout 100 python3 train.py --data /tmp/gl --out /tmp/run_c --budget 10 --max-steps 5 --eval-cases 0 --resume '/tmp/run_a/shard*.safetensors' --export /tmp/exp_c 2>&1 | grep -E '"start"|val_final|Error' | cut -c1-300
ls -la /tmp/run_a /tmp/exp_a
tar czf "$OUT/small.tar.gz" -C /tmp run_a/train_log.jsonl run_a/loss.png run_b/train_log.jsonl run_c/train_log.jsonl exp_a/config.json exp_a/tokenizer_config.json 2>&1
echo SMOKE_DONE
