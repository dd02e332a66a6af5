"""Single-line fill-in-the-middle evaluation and held-out perplexity.

Owns: the scorer (exact match and edit similarity of the predicted rest of line, cut at the first
newline) and the backends that produce predictions:
  --backend hf        transformers on the GPU, greedy, with the SPM or PSM template of fim.py
  --backend ghostline the CPU pipeline: `ghostline complete FILE:LINE:COL --json`, field `text`
Cases: tools/train/eval/fim_cases.jsonl (file, lang, text, 1-based line, 1-based column in
Unicode characters, expected). Usage:
  python3 tools/train/eval_fim.py --backend ghostline --bin build/ghostline [--limit N]
  python3 tools/train/eval_fim.py --backend hf --model models/ghostline-coder-tiny --order spm
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fim  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = os.path.join(HERE, "eval", "fim_cases.jsonl")


def levenshtein(a, b):
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def first_line(s):
    return s.split("\n", 1)[0]


def score(pred, expected):
    p, e = first_line(pred).rstrip(), expected.rstrip()
    em = float(p == e)
    m = max(len(p), len(e))
    es = 1.0 if m == 0 else 1.0 - levenshtein(p, e) / m
    return em, es


def summarize(rows):
    n = len(rows)
    out = {"cases": n,
           "exact_match": sum(r["em"] for r in rows) / max(1, n),
           "edit_similarity": sum(r["es"] for r in rows) / max(1, n),
           "empty_predictions": sum(1 for r in rows if not first_line(r["pred"]).strip()) / max(1, n)}
    by = {}
    for r in rows:
        by.setdefault(r["lang"], []).append(r)
    out["by_lang"] = {l: {"cases": len(v), "exact_match": sum(x["em"] for x in v) / len(v),
                          "edit_similarity": sum(x["es"] for x in v) / len(v)} for l, v in sorted(by.items())}
    return out


def load_cases(path, limit=0):
    with open(path, encoding="utf-8") as f:
        cases = [json.loads(l) for l in f if l.strip()]
    return cases[:limit] if limit else cases


def prompt_ids(tok, prefix, suffix, order, max_prompt):
    sp = {s: tok.token_to_id(s) for s in fim.SPECIALS}
    p = tok.encode(prefix[-fim.PREFIX_CHARS:], add_special_tokens=False).ids
    s = tok.encode(suffix[:fim.SUFFIX_CHARS], add_special_tokens=False).ids
    ids = fim.layout(order, sp, p, [], s, max_prompt + 1)
    return ids[:-1]  # drop the EOS that closes the (empty) middle


def hf_predict(model, tok, cases, order, device, max_new=48, time_limit=1e9):
    """Greedy decoding with the KV cache, stopping at EOS or a newline."""
    import torch
    eos = tok.token_to_id(fim.EOS)
    rows, t0 = [], time.time()
    for c in cases:
        if time.time() - t0 > time_limit:
            break
        prefix, suffix = fim.split_at_cursor(c["text"], c["line"], c["column"])
        ids = prompt_ids(tok, prefix, suffix, order, 2048 - max_new)
        x = torch.tensor([ids], device=device)
        out, past = [], None
        with torch.no_grad():
            for _ in range(max_new):
                r = model(input_ids=x, past_key_values=past, use_cache=True)
                past = r.past_key_values
                nxt = int(r.logits[0, -1].argmax())
                if nxt == eos:
                    break
                out.append(nxt)
                if "\n" in tok.decode(out):
                    break
                x = torch.tensor([[nxt]], device=device)
        pred = tok.decode(out)
        em, es = score(pred, c["expected"])
        rows.append({"file": c["file"], "lang": c["lang"], "pred": first_line(pred),
                     "expected": c["expected"], "em": em, "es": es})
    return rows


def ghostline_predict(binary, cases, timeout=30):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, c in enumerate(cases):
            ext = os.path.splitext(c["file"])[1] or ".txt"
            path = os.path.join(tmp, f"case{i}{ext}")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(c["text"])
            try:
                r = subprocess.run([binary, "complete", f"{path}:{c['line']}:{c['column']}", "--json"],
                                   capture_output=True, text=True, timeout=timeout)
                pred = json.loads(r.stdout).get("text", "") if r.returncode == 0 else ""
                err = None if r.returncode == 0 else r.stderr.strip()[:200]
            except (subprocess.TimeoutExpired, ValueError) as e:
                pred, err = "", str(e)[:200]
            em, es = score(pred, c["expected"])
            rows.append({"file": c["file"], "lang": c["lang"], "pred": first_line(pred),
                         "expected": c["expected"], "em": em, "es": es, "error": err})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["hf", "ghostline"], required=True)
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "models", "ghostline-coder-tiny"))
    ap.add_argument("--order", choices=["spm", "psm"], default="spm")
    ap.add_argument("--bin", default="build/ghostline")
    ap.add_argument("--out", default="", help="write per-case rows (JSONL) here")
    args = ap.parse_args()
    cases = load_cases(args.cases, args.limit)
    if args.backend == "hf":
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModelForCausalLM
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).to(dev).eval()
        tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
        rows = hf_predict(model, tok, cases, args.order, dev)
    else:
        rows = ghostline_predict(args.bin, cases)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(json.dumps(summarize(rows), indent=1))


if __name__ == "__main__":
    main()
