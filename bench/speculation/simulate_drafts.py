#!/usr/bin/env python3
"""Replays drafting strategies offline on real greedy completions, to see what a drafter could
give before building it into the engine.

Input: the JSON lines that `bench_speculation --dump-tokens FILE` writes (each cursor point's
prompt ids, greedy output ids and whether the output is multi-line) and the cost of one forward
over n = 1..9 tokens (`forward_cost` of a bench_speculation JSON, or --cost). A strategy proposes
drafts at every step; the step accepts the longest agreeing run plus the model's own token, and
costs cost(1 + drafted) + the per-step overhead. The speed-up is the sum over points of
(tokens x one-token step) over the sum of step costs, as bench_speculation's aggregate.

Strategies (each picks the draft length that maximises expected tokens per millisecond from
acceptance rates measured on the same points, so these are upper estimates of a policy that has
to learn them):
  lookup      the engine's drafter: the most recent earlier occurrence of the longest match
              (8..1 tokens) over prompt + output, one source per match length, a per-token rate
  positional  the same drafts, acceptance per source and per draft position (token j accepted
              given tokens < j were)
  frequent    the most frequent continuation among all occurrences of the match, not the latest
  tree2       two branches (the two latest occurrences with different next tokens) in one step
  ngram       lookup plus an n-gram table of a code corpus (--corpus: uint16 token ids) where
              lookup has nothing better
  known       the drafts of `lookup` cut to the length that will be accepted (a policy that knows
              the future: the bound for choosing lengths)

With dumps that carry `previous_hint` (the suggestion one keystroke earlier), it also counts the
points where the typed character continued that suggestion: the server answers those from
typing-through, without the model (bench_speculation's realistic row still decodes them).

  bench/speculation/simulate_drafts.py TOKENS.jsonl --bench-json bench/results/speculation-....json
      [--cost 0.54,0.60,...] [--overhead 0.03] [--all] [--corpus corpus.u16]

--make-corpus OUT.u16 [--mb 6] writes such a corpus from this machine's sources that the
embedded model's training used (Boost headers, Go and Rust sources; tools/train/DATA.md),
leaving out the held-out packages the evaluation points come from.
"""
import argparse
import array
import collections
import itertools
import json
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V = 16384
MAX_DRAFT = 8


def detokenizer(model):
    """ids -> text for the model's byte-level BPE (tokenizer.json), special tokens as written."""
    tok = json.load(open(os.path.join(model, "tokenizer.json")))
    pieces = {v: k for k, v in tok["model"]["vocab"].items()}
    special = {a["id"] for a in tok.get("added_tokens", [])}
    for a in tok.get("added_tokens", []):
        pieces[a["id"]] = a["content"]
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    byte_of, n = {chr(b): b for b in printable}, 0
    for b in range(256):  # the bytes outside those ranges map to 256, 257, ... (GPT-2's table)
        if b not in printable:
            byte_of[chr(256 + n)] = b
            n += 1

    def decode(ids):
        return b"".join(pieces[i].encode() if i in special else bytes(byte_of[c] for c in pieces.get(i, "") if c in byte_of)
                        for i in ids).decode("utf-8", "replace")
    return decode, special


def typed_through(points, model):
    """Points whose typed character (the prompt's last prefix character) begins previous_hint."""
    decode, special = detokenizer(model)
    count = 0
    for p in points:
        prompt = p["prompt"]
        j = len(prompt) - 2  # the prefix: after the last special token before the final <fim_end>
        while j >= 0 and prompt[j] not in special:
            j -= 1
        typed = decode(prompt[j + 1:-1])[-1:]
        count += bool(typed) and decode(p["previous_hint"]).startswith(typed)
    return count


def make_corpus(out_path, mb, binary, model):
    sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
    import corpus
    from collect_local import first_dir, go_pkg, rust_pkg
    sources = [("/usr/include/boost", first_dir, [""]), ("/usr/share/go-1.19/src", go_pkg, [""]),
               ("/usr/src/rustc-1.63.0", rust_pkg, ["library", "compiler"])]
    ids = array.array("H")
    for root, pkg_of, subs in sources:
        docs = [d["text"] for sub in subs for d in corpus.walk_sources(os.path.join(root, sub) if sub else root, pkg_of)
                if not corpus.is_heldout(d["lang"], d["pkg"])]
        random.Random(1).shuffle(docs)
        text, total = [], 0
        for t in docs:
            if total > mb * 1e6:
                break
            text.append(t)
            total += len(t)
        out = subprocess.run([binary, "tokenize", "--model", model], input="\n\n".join(text).encode(),
                             capture_output=True, check=True).stdout
        ids.extend(json.loads(out))
        ids.append(1)
        print(f"{root}: {len(text)} files, {total / 1e6:.1f} MB", file=sys.stderr)
    with open(out_path, "wb") as f:
        f.write(ids.tobytes())


class NgramTable:
    """For contexts of 1..n tokens: the most frequent next token, its count and the total."""

    def __init__(self, toks, nmax=3):
        self.nmax, self.tables = nmax, {}
        for n in range(1, nmax + 1):
            cnt = collections.Counter()
            for i in range(n, len(toks)):
                c = 0
                for j in range(i - n, i):
                    c = c * V + toks[j]
                cnt[c * V + toks[i]] += 1
            best, tot = {}, collections.Counter()
            for key, v in cnt.items():
                c, t = divmod(key, V)
                tot[c] += v
                if c not in best or v > best[c][1]:
                    best[c] = (t, v)
            self.tables[n] = {c: (t, v, tot[c]) for c, (t, v) in best.items()}

    def draft(self, seq, maxlen, theta=0.5, cmin=3):
        seq, out = list(seq), []
        while len(out) < maxlen:
            hit = None
            for n in range(self.nmax, 0, -1):
                if len(seq) >= n:
                    c = 0
                    for t in seq[-n:]:
                        c = c * V + t
                    e = self.tables[n].get(c)
                    if e and e[2] >= cmin:
                        hit = e
                        break
            if not hit or hit[1] / hit[2] < theta:
                break
            out.append(hit[0])
            seq.append(hit[0])
        return out


def occurrences(seq, ng):
    n = len(seq)
    tail = seq[n - ng:]
    for s in range(n - ng - 1, -1, -1):
        if seq[s:s + ng] == tail:
            yield s + ng


def lookup(seq, maxlen, mode="recent", branches=1):
    """[(draft, match length)]: up to `branches` drafts of the longest match length."""
    n = len(seq)
    for ng in range(8, 0, -1):
        if n <= ng:
            continue
        starts = list(occurrences(seq, ng))
        if not starts:
            continue
        if mode == "frequent":
            counts = collections.Counter(seq[f] for f in starts)
            top = counts.most_common(1)[0][0]
            starts = [f for f in starts if seq[f] == top]
        out, firsts = [], set()
        for f in starts:
            if seq[f] not in firsts:
                firsts.add(seq[f])
                out.append((seq[f:f + min(maxlen, n - f)], ng))
                if len(out) >= branches:
                    break
        return out
    return []


def source(match):
    return "L8" if match >= 8 else "L5" if match >= 5 else "L3" if match >= 3 else "L2" if match == 2 else "L1"


def replay(points, cost, overhead, strategy, rates=None, table=None, collect=None):
    """Speed-up and tokens per step of one strategy; `collect` gathers acceptance per source and position."""
    base = spent = 0.0
    steps = tokens = 0
    for p in points:
        out, seq, g = p["output"], list(p["prompt"]), 0
        while g < len(out):
            room = min(len(out) - g - 1, MAX_DRAFT)
            cands = []
            if room > 0:
                mode = "frequent" if strategy == "frequent" else "recent"
                cands = [(source(m), d) for d, m in lookup(seq, room, mode, 2 if strategy == "tree2" else 1)]
                if strategy == "ngram" and table:
                    d = table.draft(seq, room)
                    if d:
                        cands.append(("NG", d))

            def accepted(d):
                k = 0
                while k < len(d) and d[k] == out[g + k]:
                    k += 1
                return k

            if collect is not None:
                for s, d in cands[:1] if strategy == "tree2" else cands:
                    k = accepted(d)
                    for j in range(min(k + 1, len(d))):
                        collect[s][j][0] += 1
                        collect[s][j][1] += j < k
            drafts = choose(cands, rates, cost, overhead, strategy)
            if strategy == "known" and drafts:
                drafts = [drafts[0][:accepted(drafts[0])]]
            k = max([accepted(d) for d in drafts] or [0])
            spent += cost[1 + sum(len(d) for d in drafts)] + overhead
            steps += 1
            seq += out[g:g + k + 1]
            g += k + 1
        base += len(out) * (cost[1] + overhead)
        tokens += len(out)
    return base / max(spent, 1e-9), tokens / max(steps, 1)


def expected(rates, s, k, positional, second=False):
    """Expected accepted tokens of a k-token draft from source s."""
    r = rates.get(s, [0.5] * MAX_DRAFT)
    e, p = 0.0, 1.0
    for j in range(k):
        p *= (r[j] if positional else r[0]) * (0.5 if second else 1.0)
        e += p
    return e


def choose(cands, rates, cost, overhead, strategy):
    if rates is None or not cands:
        return [cands[0][1]] if cands else []
    positional = strategy != "lookup"
    best, pick = 1.0 / (cost[1] + overhead), []
    if strategy == "tree2":
        options = [[(k, expected(rates, s, k, True, i > 0)) for k in range(len(d) + 1)] for i, (s, d) in enumerate(cands)]
        for combo in itertools.product(*options):
            total = sum(k for k, _ in combo)
            if total <= MAX_DRAFT:
                r = (1 + sum(e for _, e in combo)) / (cost[1 + total] + overhead)
                if r > best * 1.02:
                    best, pick = r, [cands[i][1][:k] for i, (k, _) in enumerate(combo) if k]
        return pick
    for s, d in cands:
        for k in range(1, len(d) + 1):
            r = (1 + expected(rates, s, k, positional)) / (cost[1 + k] + overhead)
            if r > best * 1.02:
                best, pick = r, [d[:k]]
    return pick


def measured_rates(points, cost, overhead, strategy, table):
    col = collections.defaultdict(lambda: [[0, 0] for _ in range(MAX_DRAFT)])
    replay(points, cost, overhead, strategy, None, table, col)
    if strategy == "lookup":  # one per-token rate per source, as the engine's DraftPolicy keeps
        return {s: [sum(v[1] for v in a) / max(1, sum(v[1] for v in a) + sum(v[0] - v[1] for v in a))] * MAX_DRAFT
                for s, a in col.items()}
    return {s: [(v[1] + 1) / (v[0] + 2) for v in a] for s, a in col.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokens", nargs="?")
    ap.add_argument("--bench-json")
    ap.add_argument("--cost", help="ms of a forward over n = 1..9 tokens, comma-separated")
    ap.add_argument("--overhead", type=float, default=0.03, help="engine ms per step outside the forward")
    ap.add_argument("--all", action="store_true", help="every point, not only the multi-line ones")
    ap.add_argument("--corpus")
    ap.add_argument("--make-corpus")
    ap.add_argument("--mb", type=float, default=6)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "ghostline"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "ghostline-coder-tiny"))
    a = ap.parse_args()
    if a.make_corpus:
        return make_corpus(a.make_corpus, a.mb, a.binary, a.model)
    if not a.tokens:
        ap.error("TOKENS.jsonl is needed")
    if a.cost:
        cost = [0.0] + [float(c) for c in a.cost.split(",")]
    elif a.bench_json:
        cost = [0.0] + [c["ms"] for c in sorted(json.load(open(a.bench_json))["forward_cost"], key=lambda c: c["n"])]
    else:
        ap.error("--cost or --bench-json is needed")
    if len(cost) < 2 + MAX_DRAFT:
        ap.error(f"the cost of 1..{MAX_DRAFT + 1} tokens is needed")
    points = [p for p in map(json.loads, open(a.tokens)) if p["output"] and (a.all or p.get("multiline"))]
    table = None
    if a.corpus:
        ids = array.array("H")
        ids.frombytes(open(a.corpus, "rb").read())
        table = NgramTable(ids.tolist())
    print(f"{len(points)} points, cost n=1..9: {', '.join(f'{c:.2f}' for c in cost[1:])} ms, overhead {a.overhead} ms")
    if all("previous_hint" in p for p in points):
        print(f"  the typed character continued the previous suggestion in {typed_through(points, a.model)} of {len(points)} points")
    strategies = ["lookup", "positional", "frequent", "tree2"] + (["ngram"] if table else []) + ["known"]
    for s in strategies:
        rates = measured_rates(points, cost, a.overhead, "lookup" if s == "known" else s, table)
        speedup, per_step = replay(points, cost, a.overhead, s, rates, table)
        print(f"  {s:<11} {speedup:.2f}x  {per_step:.2f} tokens/step")


if __name__ == "__main__":
    main()
