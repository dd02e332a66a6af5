#!/usr/bin/env python3
"""The FIM quality benchmark on HumanEval-infilling: for each task, a completion at the hole (from
`ghostline complete`, or the canonical/wrong solution to test the scoring), then the task's test in
a sandboxed Python process. Reports pass@1 (greedy), whitespace-normalised exact match and latency
percentiles per split; writes JSON to bench/results/fim_humaneval-<split>-<date>.json and prints a
one-line summary per split. Standard library only.

  bench/fim_humaneval/run.py --split single --limit 50
  bench/fim_humaneval/run.py --completion-source canonical --split all --jobs 2
Exit status: 0 done; 1 every ghostline completion failed (the pipeline is broken or missing);
2 bad arguments or data."""

import argparse
import concurrent.futures
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sandbox  # noqa: E402
from completion import SOURCES, make_source  # noqa: E402
from tasks import SPLIT_FILES, DataError, exact_match, load_split, program_of  # noqa: E402

REPO_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def parse_args(argv):
    p = argparse.ArgumentParser(description="FIM quality benchmark on HumanEval-infilling")
    p.add_argument("--data", default=os.path.join(REPO_ROOT, "..", "shared", "data",
                                                   "humaneval-infilling"),
                   help="folder with the HumanEval-*Infilling*.jsonl.gz files")
    p.add_argument("--split", default="single", choices=list(SPLIT_FILES) + ["all"])
    p.add_argument("--limit", type=int, default=None, help="first N tasks of each split")
    p.add_argument("--completion-source", default="ghostline", choices=SOURCES)
    p.add_argument("--binary", default=os.path.join(REPO_ROOT, "build", "ghostline"))
    p.add_argument("--model", default=None, help="model directory (default: the embedded one)")
    p.add_argument("--device", default=None, help="passed to ghostline as --device")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel test processes")
    p.add_argument("--complete-jobs", type=int, default=1,
                   help="parallel ghostline calls (1 keeps the latency numbers honest)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per test program")
    p.add_argument("--complete-timeout", type=float, default=300.0,
                   help="seconds per ghostline call")
    p.add_argument("--memory-mb", type=int, default=1024, help="address-space limit of a test")
    p.add_argument("--out", default=None,
                   help="result file (default bench/results/fim_humaneval-<split>-<date>.json)")
    p.add_argument("--no-save", action="store_true", help="print the summary only")
    p.add_argument("--details", action="store_true",
                   help="keep each task's completion and error output in the JSON")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.jobs < 1 or args.complete_jobs < 1:
        p.error("--jobs and --complete-jobs must be at least 1")
    if args.max_tokens is not None and args.max_tokens < 1:
        p.error("--max-tokens must be at least 1")
    return args


def percentiles(values):
    if not values:
        return None
    xs = sorted(values)

    def at(q):  # nearest rank
        return xs[min(len(xs) - 1, max(0, int(round(q / 100 * len(xs) + 0.5)) - 1))]
    return {"p50": at(50), "p90": at(90), "p99": at(99), "mean": round(sum(xs) / len(xs), 3),
            "n": len(xs)}


def evaluate_split(split, tasks, source, args, limits):
    with concurrent.futures.ThreadPoolExecutor(args.complete_jobs) as pool:
        completions = list(pool.map(source, tasks))
    programs = [program_of(t, c["text"]) for t, c in zip(tasks, completions)]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda src: sandbox.run_program(src, limits), programs))

    records, statuses = [], {}
    for task, comp, run in zip(tasks, completions, runs):
        rec = {"task_id": task["task_id"], "status": run["status"],
               "exact_match": exact_match(comp["text"], task["canonical_solution"])}
        for k in ("ttft_ms", "total_ms", "generated_tokens", "prompt_tokens", "cached_tokens"):
            if k in comp:
                rec[k] = comp[k]
        if comp["error"]:
            rec["completion_error"] = comp["error"]
        if args.details:
            rec["completion"] = comp["text"]
            rec["test_output"] = run["detail"][-600:]
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
        records.append(rec)

    n = len(records)
    passed = statuses.get(sandbox.PASSED, 0)
    exact = sum(r["exact_match"] for r in records)
    errors = [r["completion_error"] for r in records if "completion_error" in r]
    return {
        "split": split, "tasks": n, "passed": passed,
        "pass_at_1": round(passed / n, 4) if n else 0.0,
        "exact_match": round(exact / n, 4) if n else 0.0,
        "statuses": statuses, "completion_errors": len(errors),
        "first_completion_error": errors[0] if errors else None,
        "ttft_ms": percentiles([r["ttft_ms"] for r in records if "ttft_ms" in r]),
        "total_ms": percentiles([r["total_ms"] for r in records if "total_ms" in r]),
        "generated_tokens": percentiles([r["generated_tokens"] for r in records
                                         if "generated_tokens" in r]),
        "per_task": records,
    }


def summary_line(result, source_name, model):
    line = (f"fim_humaneval {result['split']}: pass@1 {100 * result['pass_at_1']:.1f}% "
            f"({result['passed']}/{result['tasks']}), exact {100 * result['exact_match']:.1f}%")
    for key in ("ttft_ms", "total_ms"):
        if result[key]:
            line += f", {key[:-3]} p50 {result[key]['p50']:.0f} ms p90 {result[key]['p90']:.0f} ms"
    if result["completion_errors"]:
        line += f", {result['completion_errors']} completion errors"
    return line + f" [source={source_name}" + (f" model={model}" if model else "") + "]"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    splits = list(SPLIT_FILES) if args.split == "all" else [args.split]
    try:
        loaded = {s: load_split(args.data, s, args.limit) for s in splits}
    except DataError as e:
        print(f"fim_humaneval: {e}", file=sys.stderr)
        return 2

    source = make_source(args.completion_source, binary=args.binary, model=args.model,
                         device=args.device, max_tokens=args.max_tokens,
                         timeout_s=args.complete_timeout) \
        if args.completion_source == "ghostline" else make_source(args.completion_source)
    if args.completion_source == "ghostline":
        problem = source.check_binary()
        if problem:
            print(f"fim_humaneval: {problem}", file=sys.stderr)
            return 2
    limits = sandbox.Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)

    started = datetime.datetime.now(datetime.timezone.utc)
    results = [evaluate_split(s, loaded[s], source, args, limits) for s in splits]
    report = {
        "benchmark": "fim_humaneval", "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "completion_source": args.completion_source,
        "binary": args.binary if args.completion_source == "ghostline" else None,
        "model": args.model or ("embedded default" if args.completion_source == "ghostline"
                                else None),
        "device": args.device, "max_tokens": args.max_tokens, "jobs": args.jobs,
        "complete_jobs": args.complete_jobs, "test_timeout_s": args.timeout,
        "network_isolation": sandbox.network_isolation(),
        "seconds": round((datetime.datetime.now(datetime.timezone.utc) - started)
                         .total_seconds(), 1),
        "splits": {r["split"]: r for r in results},
    }
    for r in results:
        print(summary_line(r, args.completion_source, args.model))
    if not args.no_save:
        out = args.out or os.path.join(
            REPO_ROOT, "bench", "results",
            f"fim_humaneval-{args.split}-{started.strftime('%Y-%m-%d')}.json")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        print(f"fim_humaneval: results in {out}", file=sys.stderr)

    if args.completion_source == "ghostline":
        total = sum(r["tasks"] for r in results)
        failed = sum(r["completion_errors"] for r in results)
        if total and failed == total:
            print(f"fim_humaneval: every ghostline completion failed; first error: "
                  f"{results[0]['first_completion_error']}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
