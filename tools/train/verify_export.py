"""Check an exported model folder: transformers' logits against the training code's (full fp32,
TF32 off), on held-out text from the evaluation cases. Usage: verify_export.py MODEL_DIR [CASES]
Prints one JSON object (max relative error = max |diff| / max |logit| per sequence, worst case).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
import export_hf  # noqa: E402
import eval_fim  # noqa: E402


def main():
    d = sys.argv[1]
    cases = sys.argv[2] if len(sys.argv) > 2 else eval_fim.DEFAULT_CASES
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    cfg = json.load(open(os.path.join(d, "config.json")))
    seqs = []
    for c in eval_fim.load_cases(cases)[::40][:6]:
        seqs.append(tok.encode(c["text"]).ids[:512])
    holder = M.DeepseekV2LM(cfg)
    res = export_hf.verify_with_transformers(d, holder, seqs, dev)
    res["sequences"] = [len(s) for s in seqs]
    res["tf32"] = False
    print(json.dumps(res))


if __name__ == "__main__":
    main()
