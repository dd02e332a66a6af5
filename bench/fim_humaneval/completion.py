"""Where a task's completion comes from. `ghostline` asks the real pipeline: it writes
prompt + suffix into a temporary .py file and runs `ghostline complete FILE:LINE:COL --json` with
the cursor at the hole, exactly as an editor's request would reach it. `canonical` and `wrong`
need no model: they exist to test the scoring (the canonical solution must pass, the wrong one
must fail). Each source returns a dict: text, error (None or a message), and for ghostline the
timings and token counts of its --json output."""

import json
import os
import re
import subprocess
import tempfile

from tasks import editor_file, whole_line_hole

SOURCES = ("ghostline", "canonical", "wrong")
WRONG_LINE = "raise AssertionError('ghostline-bench: deliberately wrong completion')"
TIMING_FIELDS = ("prompt_tokens", "cached_tokens", "generated_tokens", "draft_proposed",
                 "draft_accepted", "ttft_ms", "total_ms")


def wrong_completion(task):
    """A completion that must fail the task's test: the canonical one with a line raising an
    AssertionError in front of it (indented like it), or, when the hole starts mid-line, a bare
    name that is never defined. Where the hole lies in code the task's tests never reach (a branch
    they do not take) it still passes: 18 of 1,033 single-line and 154 of 5,815 multi-line tasks,
    measured 2026-11-29 — a weakness of the benchmark's tests, not of the harness."""
    canonical = task["canonical_solution"]
    if task["prompt"].endswith("\n") or task["prompt"] == "":
        indent = re.match(r"[ \t]*", canonical).group(0)
        return f"{indent}{WRONG_LINE}\n{canonical}"
    return "ghostline_bench_undefined_name " + canonical


class GhostlineSource:
    """Calls the built binary once per task. Thread-safe (each call has its own file)."""

    def __init__(self, binary, model=None, device=None, max_tokens=None, timeout_s=300.0):
        self.binary = binary
        self.model = model
        self.device = device
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s

    def check_binary(self):
        """None when the binary exists and is executable, else a message saying what is wrong."""
        if not os.path.isfile(self.binary):
            return f"ghostline binary not found: {self.binary} (build it, or pass --binary PATH)"
        if not os.access(self.binary, os.X_OK):
            return f"ghostline binary is not executable: {self.binary}"
        return None

    def command(self, file_path, line, col, mid_line=False):
        cmd = [self.binary, "complete", f"{file_path}:{line}:{col}", "--json"]
        if self.model:
            cmd += ["--model", self.model]
        if self.device:
            cmd += ["--device", self.device]
        if self.max_tokens is not None:
            cmd += ["--max-tokens", str(self.max_tokens)]
        if mid_line:
            cmd += ["--mid-line"]  # a hole inside a line: code follows the cursor
        return cmd

    def complete(self, task):
        text, (line, col) = editor_file(task)
        with tempfile.TemporaryDirectory(prefix="ghostline-fim-src-") as tmp:
            name = re.sub(r"[^A-Za-z0-9_]+", "_", task["task_id"]).strip("_") or "task"
            path = os.path.join(tmp, name + ".py")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            cmd = self.command(path, line, col, mid_line=not whole_line_hole(task))
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                return {"text": "", "error": f"ghostline complete timed out after "
                                             f"{self.timeout_s:g} s"}
            except OSError as e:
                return {"text": "", "error": f"cannot run {self.binary}: {e}"}
        stderr = proc.stderr.decode("utf-8", errors="replace").strip()
        if proc.returncode != 0:
            first = stderr.splitlines()[-1] if stderr else "(no message)"
            return {"text": "", "error": f"ghostline complete exited {proc.returncode}: {first}"}
        try:
            reply = json.loads(proc.stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return {"text": "", "error": f"ghostline complete --json printed no JSON object ({e})"}
        if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
            return {"text": "", "error": "ghostline complete --json: reply lacks a string 'text'"}
        result = {"text": reply["text"], "error": None}
        for k in TIMING_FIELDS:
            if isinstance(reply.get(k), (int, float)):
                result[k] = reply[k]
        return result

    __call__ = complete


def make_source(name, **ghostline_options):
    """A callable task -> completion dict for the named source."""
    if name == "canonical":
        return lambda task: {"text": task["canonical_solution"], "error": None}
    if name == "wrong":
        return lambda task: {"text": wrong_completion(task), "error": None}
    if name == "ghostline":
        return GhostlineSource(**ghostline_options)
    raise ValueError(f"unknown completion source '{name}' (expected one of {', '.join(SOURCES)})")
