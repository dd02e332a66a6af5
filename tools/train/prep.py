"""Data preparation on the GPU machine: corpus, tokenizer, token streams, evaluation cases.

Owns: collecting the GPU machine's own code (Python site-packages with a per-distribution licence
check, CUDA/C++ headers), merging the carried .traindata/*.jsonl.xz, deduplication, the package
holdout split, training the byte-level BPE tokenizer (unless --tokenizer is given), tokenizing
train documents with the FIM transformation in parallel, and writing:
  OUT/train.u16, OUT/val_<lang>.u16 (plain held-out documents), OUT/cases.jsonl (FIM eval cases),
  OUT/tokenizer.json, OUT/stats.json (files, bytes, tokens per language).
Usage: python3 prep.py --out /tmp/gl [--tokenizer tok.json] [--scale 1.0]
"""
import argparse
import glob
import json
import multiprocessing as mp
import os
import random
import sys
import sysconfig
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import fim  # noqa: E402

# Letter runs (one optional leading space), single digits, punctuation runs (one optional leading
# space), newlines on their own, and whitespace runs kept whole so indentation is one token.
PRETOK_REGEX = r"\r?\n|\r| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\p{N}|[^\S\r\n]+"
VOCAB = 16384
COPYLEFT_WORDS = ("GPL", "GENERAL PUBLIC", "AFFERO", "MPL", "MOZILLA PUBLIC")


def site_licences(sp):
    """top-level import name -> licence text from the distribution's METADATA."""
    out = {}
    for dist in glob.glob(os.path.join(sp, "*.dist-info")):
        lic = []
        try:
            for line in open(os.path.join(dist, "METADATA"), encoding="utf-8", errors="replace"):
                if not line.strip():
                    break
                if line.startswith(("License:", "License-Expression:", "Classifier: License")):
                    lic.append(line.strip()[:200])
        except OSError:
            continue
        tops = set()
        tl = os.path.join(dist, "top_level.txt")
        if os.path.exists(tl):
            tops |= {t.strip() for t in open(tl) if t.strip()}
        rec = os.path.join(dist, "RECORD")
        if os.path.exists(rec):
            for line in open(rec, encoding="utf-8", errors="replace"):
                first = line.split(",")[0].split("/")[0]
                if first and not first.endswith((".dist-info", ".data")) and first != "..":
                    tops.add(first.replace(".py", ""))
        for t in tops:
            out[t] = " | ".join(lic)
    return out


def gpu_docs(caps, report, seed=0):
    sp = sysconfig.get_paths()["purelib"]
    lic = site_licences(sp)
    rng = random.Random(seed)
    tops = sorted(e for e in os.listdir(sp) if not e.endswith((".dist-info", ".data", ".pth"))
                  and e not in ("__pycache__",))
    rng.shuffle(tops)  # so the byte cap samples many packages, not the first letters
    skipped = []
    py = []
    for t in tops:
        l = lic.get(t, lic.get(t.replace(".py", ""), ""))
        if any(w in l.upper() for w in COPYLEFT_WORDS) and "LGPL-COMPATIBLE" not in l.upper():
            skipped.append(f"{t}: {l[:80]}")
            continue
        path = os.path.join(sp, t)
        if os.path.isdir(path):
            py.append(corpus.walk_sources(path, lambda rel, t=t: t, exts={".py"}))
    report["python_skipped_licence"] = skipped
    yield from _capped("python", py, caps["python"], report)
    roots = [os.path.realpath("/usr/local/cuda/include"), sp, "/usr/local/include", "/usr/include"]
    hdr = [corpus.walk_sources(r, lambda rel, r=r: r.strip("/").replace("/", "_") + "/" + "/".join(rel.split(os.sep)[:2]),
                               exts={".h", ".hpp", ".cuh", ".cu", ".cc", ".cpp", ".c", ".inl"})
           for r in roots if os.path.isdir(r)]
    yield from _capped("headers", hdr, caps["headers"], report)


def _capped(name, gens, cap, report):
    n = b = 0
    for g in gens:
        for d in g:
            if b >= cap:
                break
            d["src"] = name
            n += 1
            b += len(d["text"].encode())
            yield d
        if b >= cap:
            break
    report[name] = {"files": n, "bytes": b}


def carried_docs(dirpath):
    for p in sorted(glob.glob(os.path.join(dirpath, "*.jsonl.xz"))):
        yield from corpus.read_jsonl_xz(p)


def train_tokenizer(texts, path):
    from tokenizers import Tokenizer, Regex, models, pre_tokenizers, decoders, trainers, processors
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOK_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=fim.SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  max_token_length=24, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    bos = tok.token_to_id(fim.BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{fim.BOS} $A", pair=f"{fim.BOS} $A $B", special_tokens=[(fim.BOS, bos)])
    tok.save(path)
    return tok


_TOK = None


def _init(path):
    global _TOK
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer
    _TOK = Tokenizer.from_file(path)


def _encode_chunk(args):
    lang, texts, seed, fim_rate = args
    sp = {s: _TOK.token_to_id(s) for s in fim.SPECIALS}
    enc = lambda xs: [e.ids for e in _TOK.encode_batch(xs, add_special_tokens=False)]
    if fim_rate is None:  # plain held-out documents
        out = []
        for t, ids in zip(texts, enc(texts)):
            out += [sp[fim.BOS]] + ids + [sp[fim.EOS]]
    else:
        out = fim.encode_docs(texts, enc, sp, seed, fim_rate=fim_rate, spm_rate=0.6)
    return lang, np.asarray(out, dtype=np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--carried", default=".traindata")
    ap.add_argument("--tokenizer", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--tok-sample-mb", type=float, default=100)
    ap.add_argument("--fim-rate", type=float, default=0.8)
    ap.add_argument("--cases", type=int, default=320)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    report = {}
    caps = {"python": 330e6 * args.scale, "headers": 220e6 * args.scale}
    dedup = corpus.Dedup()
    train, held = [], []
    for d in list(carried_docs(args.carried)) + list(gpu_docs(caps, report)):
        if not dedup.fresh(d["text"]):
            continue
        held_out = d.get("heldout") if "heldout" in d else corpus.is_heldout(d["lang"], d["pkg"])
        (held if held_out else train).append(d)
    report["dedup_dropped"] = dedup.dropped
    print(f"[prep] {len(train)} train docs, {len(held)} held-out docs, {time.time()-t0:.0f}s", flush=True)
    rng = random.Random(0)
    rng.shuffle(train)

    tok_path = os.path.join(args.out, "tokenizer.json")
    if args.tokenizer:
        import shutil
        shutil.copy(args.tokenizer, tok_path)
    else:
        budget, sample = args.tok_sample_mb * 1e6, []
        for d in train:
            if budget <= 0:
                break
            sample.append(d["text"])
            budget -= len(d["text"])
        train_tokenizer(sample, tok_path)
        print(f"[prep] tokenizer trained on {len(sample)} docs, {time.time()-t0:.0f}s", flush=True)

    jobs = []
    CH = 256
    for i in range(0, len(train), CH):
        jobs.append(("train", [d["text"] for d in train[i:i + CH]], i, args.fim_rate))
    by_lang = {}
    for d in held:
        by_lang.setdefault(d["lang"], []).append(d)
    for lang, ds in by_lang.items():
        jobs.append((f"val_{lang}", [d["text"] for d in ds[:400]], 0, None))
    langs_of_chunk = {}
    for i in range(0, len(train), CH):
        for d in train[i:i + CH]:
            langs_of_chunk.setdefault(i, {}).setdefault(d["lang"], 0)
            langs_of_chunk[i][d["lang"]] += len(d["text"])
    outs = {}
    with mp.get_context("fork").Pool(args.workers, initializer=_init, initargs=(tok_path,)) as pool:
        for lang, arr in pool.imap_unordered(_encode_chunk, jobs, chunksize=1):
            outs.setdefault(lang, []).append(arr)
    stats = {"report": report, "files": {}, "bytes": {}, "train_tokens": 0, "val_tokens": {}}
    for d in train:
        stats["files"][d["lang"]] = stats["files"].get(d["lang"], 0) + 1
        stats["bytes"][d["lang"]] = stats["bytes"].get(d["lang"], 0) + len(d["text"].encode())
    for name, arrs in outs.items():
        a = np.concatenate(arrs)
        a.tofile(os.path.join(args.out, f"{name}.u16"))
        if name == "train":
            stats["train_tokens"] = int(a.size)
        else:
            stats["val_tokens"][name[4:]] = int(a.size)
    stats["chars_per_token"] = sum(stats["bytes"].values()) / max(1, stats["train_tokens"])
    stats["heldout_packages"] = sorted({f"{d['lang']}/{d['pkg']}" for d in held})
    stats["heldout_files"] = len(held)
    # FIM cases, balanced over languages, from held-out packages only.
    cases = []
    per = max(1, args.cases // max(1, len(by_lang)))
    for lang in sorted(by_lang):
        cases += fim.extract_cases(by_lang[lang], per, seed=7)
    if len(cases) < args.cases:
        cases += fim.extract_cases(held, args.cases - len(cases), seed=11)
    with open(os.path.join(args.out, "cases.jsonl"), "w") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    stats["cases"] = len(cases)
    stats["seconds"] = time.time() - t0
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(f"[prep] train tokens {stats['train_tokens']/1e6:.1f}M, val {stats['val_tokens']}, "
          f"cases {len(cases)}, {stats['seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
