"""Fill-in-the-middle transformation and evaluation-case extraction (pure Python).

Owns: where holes are cut in a document (random character spans as in "Efficient Training of
Language Models to Fill in the Middle", plus the holes editors ask for: the rest of a line from a
cursor, the rest of a line plus the following lines of its block, empty middles, cursors mid-word
and at token boundaries), the PSM/SPM token layouts the context layer renders, window trimming to
the context length, and extraction of single-line FIM evaluation cases from held-out files.

Layouts (BOS first; prefix, suffix and middle tokenized separately, as at inference):
  PSM: BOS <fim_begin> prefix <fim_hole> suffix <fim_end> middle EOS
  SPM: BOS <fim_hole> suffix <fim_begin> prefix <fim_end> middle EOS
  plain: BOS text EOS
"""
import random

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
FIM_BEGIN = "<｜fim▁begin｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_END = "<｜fim▁end｜>"
FILE_SEP = "<｜file▁sep｜>"
SPECIALS = [BOS, EOS, FIM_BEGIN, FIM_HOLE, FIM_END, FILE_SEP]

PREFIX_CHARS = 4000
SUFFIX_CHARS = 2000
MID_CHARS = 800


def _indent(line):
    return len(line) - len(line.lstrip(" \t"))


def _cursor_in_line(line, rng):
    """A cursor column in line: half uniformly over characters (often mid-word), half at a
    boundary between a word/space/punctuation run (where tokens tend to split)."""
    if not line:
        return 0
    start = _indent(line)
    if rng.random() < 0.5 or start >= len(line):
        return rng.randint(start, len(line))
    cuts = [i for i in range(start, len(line) + 1)
            if i == len(line) or i == start or (line[i - 1].isalnum() != line[i].isalnum())
            or line[i - 1] == " " or line[i] == " "]
    return rng.choice(cuts)


def choose_hole(text, rng):
    """Split text into (prefix, middle, suffix, kind) at character level."""
    r = rng.random()
    lines = text.split("\n")
    content = [i for i, l in enumerate(lines) if l.strip()]
    if r < 0.3 or not content:
        n = len(text)
        i = rng.randint(0, n)
        j = min(n, i + rng.randint(0, MID_CHARS))
        return text[:i], text[i:j], text[j:], "span"
    li = rng.choice(content)
    line = lines[li]
    col = _cursor_in_line(line, rng)
    start = sum(len(l) + 1 for l in lines[:li])
    cur = start + col
    if r < 0.7:  # rest of the line
        end = start + len(line)
        kind = "line"
    elif r < 0.9:  # rest of the line plus following lines of the block
        base = _indent(line)
        k = li + 1
        limit = li + rng.randint(1, 12)
        while k < len(lines) and k <= limit and (not lines[k].strip() or _indent(lines[k]) > base):
            k += 1
        end = sum(len(l) + 1 for l in lines[:k]) - 1
        end = min(max(end, start + len(line)), cur + MID_CHARS)
        kind = "block"
    else:  # empty middle
        end = cur
        kind = "empty"
    end = max(end, cur)
    return text[:cur], text[cur:end], text[end:], kind


def layout(order, sp, p, m, s, max_len):
    """Token ids for one FIM example; prefix is cut from the left and suffix from the right so
    the whole fits max_len. sp maps special strings to ids."""
    m = m[: max(0, max_len // 2)]
    room = max_len - 5 - len(m)
    if len(p) + len(s) > room:
        keep_s = min(len(s), max(room // 3, room - len(p)))
        keep_p = room - keep_s
        p = p[len(p) - keep_p:] if keep_p > 0 else []
        s = s[:keep_s]
    if order == "psm":
        return [sp[BOS], sp[FIM_BEGIN]] + p + [sp[FIM_HOLE]] + s + [sp[FIM_END]] + m + [sp[EOS]]
    return [sp[BOS], sp[FIM_HOLE]] + s + [sp[FIM_BEGIN]] + p + [sp[FIM_END]] + m + [sp[EOS]]


def doc_pieces(text, rng, fim_rate=0.8, spm_rate=0.6, max_len=2048):
    """Plan one document: ("plain", [text]) or (order, [prefix, middle, suffix]) with the
    prefix/suffix windows already cut around the hole."""
    if rng.random() >= fim_rate:
        return "plain", [text]
    p, m, s, _ = choose_hole(text, rng)
    p, s = p[-PREFIX_CHARS:], s[:SUFFIX_CHARS]
    order = "spm" if rng.random() < spm_rate else "psm"
    return order, [p, m, s]


def split_long(text, max_chars=6000):
    """Cut a long document into pieces of at most about max_chars at line boundaries, so that
    FIM windows around a hole do not throw most of a long file away."""
    if len(text) <= max_chars:
        return [text]
    out, cur, n = [], [], 0
    for line in text.split("\n"):
        if n + len(line) + 1 > max_chars and cur:
            out.append("\n".join(cur) + "\n")
            cur, n = [], 0
        cur.append(line)
        n += len(line) + 1
    if cur:
        out.append("\n".join(cur))
    return out


def encode_docs(texts, encode_batch, sp, seed, fim_rate=0.8, spm_rate=0.6, max_len=2048):
    """Turn documents into one flat token list (examples back to back). encode_batch(list of
    str) -> list of id lists, without special tokens."""
    rng = random.Random(seed)
    texts = [c for t in texts for c in split_long(t)]
    plans = [doc_pieces(t, rng, fim_rate, spm_rate, max_len) for t in texts]
    flat = [piece for _, pieces in plans for piece in pieces]
    ids = encode_batch(flat)
    out, k = [], 0
    for order, pieces in plans:
        if order == "plain":
            out += [sp[BOS]] + ids[k] + [sp[EOS]]
            k += 1
        else:
            p, m, s = ids[k], ids[k + 1], ids[k + 2]
            k += 3
            out += layout(order, sp, p, m, s, max_len)
    return out


def extract_cases(docs, n, seed=1234, max_file_chars=12000):
    """Single-line FIM cases from held-out files: a random line, a cursor at a random column,
    expected = the rest of that line; the file text given to the completer has that rest
    removed. Columns and lines are 1-based, columns in Unicode characters."""
    rng = random.Random(seed)
    pool = [d for d in docs if 200 <= len(d["text"]) <= max_file_chars]
    rng.shuffle(pool)
    cases = []
    for d in pool:
        if len(cases) >= n:
            break
        lines = d["text"].split("\n")
        cand = [i for i, l in enumerate(lines) if len(l.strip()) >= 8
                and not any(w in l for w in ("Copyright", "License", "LICENSE", "SPDX"))]
        if not cand:
            continue
        li = rng.choice(cand)
        line = lines[li]
        start = _indent(line)
        col0 = rng.randint(start, len(line.rstrip()) - 1)
        expected = line[col0:].rstrip()
        if not expected.strip():
            continue
        new_lines = list(lines)
        new_lines[li] = line[:col0]
        cases.append({"file": d["path"], "lang": d["lang"], "text": "\n".join(new_lines),
                      "line": li + 1, "column": col0 + 1, "expected": expected})
    return cases


def split_at_cursor(text, line, column):
    """(prefix, suffix) of text at a 1-based line and 1-based Unicode column."""
    lines = text.split("\n")
    off = sum(len(l) + 1 for l in lines[: line - 1]) + (column - 1)
    return text[:off], text[off:]
