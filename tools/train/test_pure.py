"""Tests for the pure-Python parts of tools/train (no torch): licence scan, dedup, holdout,
FIM hole cutting and layouts, case extraction, the scorer and the safetensors shard merger.
Run: python3 -m unittest tools/train/test_pure.py
"""
import json
import os
import random
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import eval_fim  # noqa: E402
import fim  # noqa: E402
import merge_shards  # noqa: E402

SAMPLE = "\n".join(
    [f"def f{i}(x):\n    if x > {i}:\n        return x * {i}\n    return helper(x, {i})\n" for i in range(60)])
SP = {t: 100000 + i for i, t in enumerate(fim.SPECIALS)}


def enc(xs):
    return [[ord(c) for c in x] for x in xs]


class Corpus(unittest.TestCase):
    def test_copyleft_header_is_dropped(self):
        self.assertTrue(corpus.is_copyleft("/* SPDX-License-Identifier: GPL-2.0 */\nint x;"))
        self.assertTrue(corpus.is_copyleft("# GNU Lesser General Public License v2.1\n"))
        self.assertFalse(corpus.is_copyleft("// Distributed under the Boost Software License\n"))
        self.assertFalse(corpus.is_copyleft("x = 1\n" * 2000 + "# GPL\n"))  # beyond the header

    def test_dedup_and_holdout_are_stable(self):
        d = corpus.Dedup()
        self.assertTrue(d.fresh("a\n"))
        self.assertFalse(d.fresh("  a  "))
        self.assertEqual(d.dropped, 1)
        self.assertEqual(corpus.is_heldout("go", "net/http"), corpus.is_heldout("go", "net/http"))
        share = sum(corpus.is_heldout("py", f"p{i}") for i in range(5000)) / 5000
        self.assertTrue(0.01 < share < 0.06, share)


class Fim(unittest.TestCase):
    def test_holes_partition_the_text(self):
        rng = random.Random(3)
        kinds = set()
        for _ in range(500):
            p, m, s, k = fim.choose_hole(SAMPLE, rng)
            self.assertEqual(p + m + s, SAMPLE)
            kinds.add(k)
            if k == "line":
                self.assertNotIn("\n", m)
            if k == "empty":
                self.assertEqual(m, "")
        self.assertEqual(kinds, {"span", "line", "block", "empty"})

    def test_layouts_and_trimming(self):
        ex = fim.layout("spm", SP, list(range(3000)), [7, 8], list(range(3000)), 2048)
        self.assertEqual(len(ex), 2048)
        self.assertEqual(ex[:2], [SP[fim.BOS], SP[fim.FIM_HOLE]])
        self.assertEqual(ex[-4:], [SP[fim.FIM_END], 7, 8, SP[fim.EOS]])
        ex = fim.layout("psm", SP, [1], [2], [3], 2048)
        self.assertEqual(ex, [SP[fim.BOS], SP[fim.FIM_BEGIN], 1, SP[fim.FIM_HOLE], 3, SP[fim.FIM_END], 2, SP[fim.EOS]])

    def test_split_long_keeps_every_character(self):
        parts = fim.split_long(SAMPLE * 5, 6000)
        self.assertEqual("".join(parts), SAMPLE * 5)
        self.assertTrue(all(len(p) <= 6100 for p in parts))

    def test_encode_docs_rates(self):
        out = fim.encode_docs([SAMPLE] * 200, enc, SP, seed=1, fim_rate=0.8, spm_rate=0.6)
        n_bos = out.count(SP[fim.BOS])
        n_fim = out.count(SP[fim.FIM_END])
        spm = sum(1 for i in range(len(out) - 1) if out[i] == SP[fim.BOS] and out[i + 1] == SP[fim.FIM_HOLE])
        self.assertEqual(out.count(SP[fim.EOS]), n_bos)
        self.assertTrue(0.7 < n_fim / n_bos < 0.9, n_fim / n_bos)
        self.assertTrue(0.5 < spm / n_fim < 0.7, spm / n_fim)

    def test_cases_point_at_the_removed_rest_of_line(self):
        docs = [{"path": f"f{i}.py", "lang": "python", "text": SAMPLE[: 3000 + 50 * i]} for i in range(30)]
        cases = fim.extract_cases(docs, 20, seed=5)
        self.assertEqual(len(cases), 20)
        for c in cases:
            orig = next(d["text"] for d in docs if d["path"] == c["file"])
            prefix, suffix = fim.split_at_cursor(c["text"], c["line"], c["column"])
            self.assertTrue(orig.startswith(prefix + c["expected"]))
            self.assertTrue(orig.endswith(suffix))
            self.assertTrue(suffix == "" or suffix.startswith("\n"))

    def test_committed_cases_are_well_formed(self):
        cases = eval_fim.load_cases(eval_fim.DEFAULT_CASES)
        self.assertGreaterEqual(len(cases), 200)
        for c in cases:
            prefix, suffix = fim.split_at_cursor(c["text"], c["line"], c["column"])
            line = c["text"].split("\n")[c["line"] - 1]
            self.assertEqual(len(line), c["column"] - 1)  # the rest of the line was removed
            self.assertTrue(c["expected"].strip())


class Scorer(unittest.TestCase):
    def test_score(self):
        self.assertEqual(eval_fim.score("return x\nmore", "return x"), (1.0, 1.0))
        em, es = eval_fim.score("return y", "return x")
        self.assertEqual(em, 0.0)
        self.assertAlmostEqual(es, 1 - 1 / 8)
        self.assertEqual(eval_fim.score("", "x"), (0.0, 0.0))
        self.assertEqual(eval_fim.levenshtein("kitten", "sitting"), 3)


class Merge(unittest.TestCase):
    def _write(self, path, tensors):
        header, blob = {}, b""
        for name, data in tensors.items():
            header[name] = {"dtype": "BF16", "shape": [len(data) // 2], "data_offsets": [len(blob), len(blob) + len(data)]}
            blob += data
        hj = json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj + blob)

    def test_merge_round_trip(self):
        with tempfile.TemporaryDirectory() as t:
            self._write(os.path.join(t, "a"), {"x": b"\x01\x02\x03\x04", "y": b"\x05\x06"})
            self._write(os.path.join(t, "b"), {"z": b"\x07\x08"})
            merge_shards.merge(os.path.join(t, "m"), [os.path.join(t, "a"), os.path.join(t, "b")])
            header, data, meta = merge_shards.read(os.path.join(t, "m"))
            got = {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}
            self.assertEqual(got, {"x": b"\x01\x02\x03\x04", "y": b"\x05\x06", "z": b"\x07\x08"})
            self._write(os.path.join(t, "c"), {"z": b"\x00\x00"})
            with self.assertRaises(ValueError):
                merge_shards.merge(os.path.join(t, "m2"), [os.path.join(t, "b"), os.path.join(t, "c")])


if __name__ == "__main__":
    unittest.main()
