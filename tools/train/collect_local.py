"""Collect the training corpus that travels from the CPU machine to the GPU machine.

Owns: which local trees are used (Boost headers, Go's standard library, Rust's standard library
and compiler, permissively licensed npm packages from tools/train/corpus-npm), per-source size
caps, and writing .traindata/<source>.jsonl.xz plus .traindata/manifest.json (counts and sizes,
for DATA.md). Usage: python3 tools/train/collect_local.py [--out .traindata] [--scale 1.0]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PERMISSIVE = {"MIT", "APACHE-2.0", "BSD-2-CLAUSE", "BSD-3-CLAUSE", "ISC", "0BSD", "UNLICENSE",
              "CC0-1.0", "BLUEOAK-1.0.0", "PYTHON-2.0"}


def first_dir(rel):
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else "_root"


def go_pkg(rel):
    return os.path.dirname(rel) or "_root"


def rust_pkg(rel):
    parts = rel.split(os.sep)
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def npm_licence_ok(pkg_dir):
    try:
        with open(os.path.join(pkg_dir, "package.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False, "?"
    lic = meta.get("license", "")
    if isinstance(lic, dict):
        lic = lic.get("type", "")
    ids = [p.strip("() ").upper() for p in str(lic).replace(" OR ", "|").replace(" AND ", "|").split("|")]
    return bool(ids) and all(i in PERMISSIVE for i in ids if i), str(lic)


def npm_docs(root, report):
    """Walk node_modules; each package (scoped too) is licence-checked from its package.json."""
    pkgs = []
    for name in sorted(os.listdir(root)):
        if name.startswith("."):
            continue
        p = os.path.join(root, name)
        if name.startswith("@"):
            pkgs += [(f"{name}/{s}", os.path.join(p, s)) for s in sorted(os.listdir(p))]
        else:
            pkgs.append((name, p))
    for name, pdir in pkgs:
        ok, lic = npm_licence_ok(pdir)
        report.setdefault("npm_licences", {})[name] = lic
        if not ok:
            report.setdefault("npm_skipped", []).append(name)
            continue
        for d in corpus.walk_sources(pdir, lambda rel, n=name: n):
            d["path"] = f"{name}/{d['path']}"
            yield d


SOURCES = [
    # name, root, package function, licence, raw byte cap
    ("boost", "/usr/include/boost", first_dir, "BSL-1.0", 170e6),
    ("go", "/usr/share/go-1.19/src", go_pkg, "BSD-3-Clause", 60e6),
    ("rust", "/usr/src/rustc-1.63.0", rust_pkg, "MIT OR Apache-2.0", 70e6),
    ("npm", os.path.join(HERE, "corpus-npm", "node_modules"), None, "per package (MIT/Apache/BSD/ISC)", 45e6),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".traindata")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every byte cap (tests use 0.001)")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {}
    dedup = corpus.Dedup()
    for name, root, pkg_of, lic, cap in SOURCES:
        if args.only and name not in args.only.split(","):
            continue
        if not os.path.isdir(root):
            print(f"skip {name}: {root} missing", file=sys.stderr)
            continue
        report = {"licence": lic, "root": root}
        if name == "npm":
            gen = npm_docs(root, report)
        elif name == "rust":
            gen = (d for sub in ("library", "compiler")
                   for d in corpus.walk_sources(os.path.join(root, sub), pkg_of))
        else:
            gen = corpus.walk_sources(root, pkg_of)
        budget = cap * args.scale
        stats = {"files": 0, "bytes": 0, "heldout_files": 0, "heldout_pkgs": set()}

        def take():
            for d in gen:
                if stats["bytes"] >= budget:
                    return
                if not dedup.fresh(d["text"]):
                    continue
                d["src"] = name
                d["heldout"] = corpus.is_heldout(d["lang"], d["pkg"])
                if d["heldout"]:
                    stats["heldout_files"] += 1
                    stats["heldout_pkgs"].add(d["pkg"])
                stats["files"] += 1
                stats["bytes"] += len(d["text"].encode("utf-8"))
                yield d
        path = os.path.join(args.out, f"{name}.jsonl.xz")
        corpus.write_jsonl_xz(path, take())
        stats["heldout_pkgs"] = sorted(stats["heldout_pkgs"])
        stats["xz_bytes"] = os.path.getsize(path)
        report.update(stats)
        manifest[name] = report
        print(f"{name}: {stats['files']} files, {stats['bytes']/1e6:.1f} MB raw, "
              f"{stats['xz_bytes']/1e6:.1f} MB xz, {len(stats['heldout_pkgs'])} held-out packages",
              flush=True)
    manifest["_dedup_dropped"] = dedup.dropped
    old = {}
    mpath = os.path.join(args.out, "manifest.json")
    if os.path.exists(mpath) and args.only:
        old = json.load(open(mpath))
    old.update(manifest)
    with open(mpath, "w") as f:
        json.dump(old, f, indent=1)


if __name__ == "__main__":
    main()
