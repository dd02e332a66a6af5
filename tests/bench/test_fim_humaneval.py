"""Tests of the HumanEval-infilling harness (bench/fim_humaneval): scoring with the canonical
solution (must pass) and a wrong one (must fail), the sandbox (infinite loop killed; writes
outside its directory, sockets, subprocesses refused), the cursor placement, clear errors for bad
data, and the call into the real `ghostline` binary. Run by ctest, one test per method; settings
come from the environment: GHOSTLINE_FIM_DATA (the data folder), GHOSTLINE_BINARY."""

import gzip
import json
import os
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HARNESS = os.path.join(REPO, "bench", "fim_humaneval")
RUN_PY = os.path.join(HARNESS, "run.py")
DATA = os.environ.get("GHOSTLINE_FIM_DATA",
                      os.path.join(REPO, "..", "shared", "data", "humaneval-infilling"))
BINARY = os.environ.get("GHOSTLINE_BINARY", os.path.join(REPO, "build", "ghostline"))
# The benchmark's data lives outside the repository (it must not be copied in); tests that read it
# are skipped, saying so, on a machine without it.
needs_data = unittest.skipUnless(os.path.isdir(DATA), f"HumanEval-infilling data not found at {DATA} "
                                                      "(set GHOSTLINE_FIM_DATA)")
sys.path.insert(0, HARNESS)

import sandbox  # noqa: E402
from completion import GhostlineSource  # noqa: E402
from tasks import cursor_of, editor_file, load_split, program_of, whole_line_hole  # noqa: E402


def run_harness(*args):
    """Runs run.py with its results written to a temporary file; returns (proc, report)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        proc = subprocess.run([sys.executable, RUN_PY, "--data", DATA, "--out", out, *args],
                              capture_output=True, text=True, timeout=600)
        report = None
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                report = json.load(f)
        return proc, report


class Scoring(unittest.TestCase):
    @needs_data
    def test_canonical_passes_every_split(self):
        proc, report = run_harness("--completion-source", "canonical", "--split", "all",
                                   "--limit", "4", "--jobs", "2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(set(report["splits"]), {"single", "multi", "random"})
        for split, r in report["splits"].items():
            self.assertEqual(r["tasks"], 4, split)
            self.assertEqual(r["passed"], 4, f"{split}: {r['statuses']}")
            self.assertEqual(r["pass_at_1"], 1.0)
            self.assertEqual(r["exact_match"], 1.0)
        self.assertEqual(len(proc.stdout.strip().splitlines()), 3)  # one summary line per split
        self.assertIn("pass@1 100.0% (4/4)", proc.stdout)

    @needs_data
    def test_wrong_completion_fails_every_task(self):
        proc, report = run_harness("--completion-source", "wrong", "--split", "all",
                                   "--limit", "4", "--jobs", "2", "--details")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for split, r in report["splits"].items():
            self.assertEqual(r["passed"], 0, split)
            self.assertEqual(r["exact_match"], 0.0, split)
            for rec in r["per_task"]:
                self.assertEqual(rec["status"], sandbox.FAILED, rec)

    @needs_data
    def test_result_file_name_and_summary_fields(self):
        proc, report = run_harness("--completion-source", "canonical", "--split", "random",
                                   "--limit", "2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(report["benchmark"], "fim_humaneval")
        self.assertEqual(report["completion_source"], "canonical")
        self.assertIn(report["network_isolation"], ("unshare", "audit-hook"))
        self.assertEqual([t["task_id"] for t in report["splits"]["random"]["per_task"]],
                         [t["task_id"] for t in load_split(DATA, "random", 2)])


class Sandbox(unittest.TestCase):
    def test_infinite_loop_is_killed(self):
        r = sandbox.run_program("while True:\n    pass\n", sandbox.Limits(timeout_s=1.5))
        self.assertEqual(r["status"], sandbox.TIMEOUT)

    def test_write_outside_directory_is_refused(self):
        with tempfile.TemporaryDirectory() as outside:
            target = os.path.join(outside, "escaped.txt")
            victim = os.path.join(outside, "victim.txt")
            open(victim, "w").close()
            for program in (f"open({target!r}, 'w').write('x')\n",
                            f"import os\nos.open({target!r}, os.O_WRONLY | os.O_CREAT)\n",
                            f"import os\nos.remove({victim!r})\n",
                            f"import os\nos.rename({victim!r}, 'stolen.txt')\n",
                            # catching the refusal does not make the task pass
                            f"try:\n    open({target!r}, 'a')\nexcept PermissionError:\n"
                            f"    pass\n"):
                r = sandbox.run_program(program)
                self.assertEqual(r["status"], sandbox.REFUSED, program + r["detail"])
                self.assertFalse(os.path.exists(target), program)
                self.assertTrue(os.path.exists(victim), program)

    def test_write_inside_directory_is_allowed(self):
        r = sandbox.run_program("with open('scratch.txt', 'w') as f:\n    f.write('ok')\n"
                                "assert open('scratch.txt').read() == 'ok'\n")
        self.assertEqual(r["status"], sandbox.PASSED, r["detail"])

    def test_socket_is_refused(self):
        for program in ("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
                        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9))\n"
                        "except OSError:\n    pass\n"):
            r = sandbox.run_program(program)
            self.assertEqual(r["status"], sandbox.REFUSED, program + r["detail"])

    def test_subprocess_is_refused(self):
        r = sandbox.run_program("import subprocess\nsubprocess.run(['true'])\n")
        self.assertEqual(r["status"], sandbox.REFUSED, r["detail"])

    def test_early_exit_is_not_a_pass(self):
        for program in ("import sys\nsys.exit(0)\nassert False\n",
                        "import os\nos._exit(0)\nassert False\n"):
            r = sandbox.run_program(program)
            self.assertEqual(r["status"], sandbox.EXITED_EARLY, program)

    def test_memory_limit_stops_a_huge_allocation(self):
        r = sandbox.run_program("x = bytearray(8 * 1024 ** 3)\n", sandbox.Limits(memory_mb=512))
        self.assertEqual(r["status"], sandbox.FAILED)
        self.assertIn("MemoryError", r["detail"])


class Cursor(unittest.TestCase):
    def test_column_counts_unicode_characters(self):
        self.assertEqual(cursor_of(""), (1, 1))
        self.assertEqual(cursor_of("def f():\n    x = 'é😀'"), (2, 13))  # 4 + len("x = 'é😀'") + 1
        self.assertEqual(cursor_of("a\n\n"), (3, 1))

    @needs_data
    def test_cursor_splits_each_task_file_at_the_hole(self):
        for split in ("single", "multi", "random"):
            for task in load_split(DATA, split, 20):
                line, col = cursor_of(task["prompt"])
                lines = (task["prompt"] + task["suffix"]).split("\n")
                before = "\n".join(lines[:line - 1] + [lines[line - 1][:col - 1]])
                self.assertEqual(before, task["prompt"], task["task_id"])

    @needs_data
    def test_whole_line_holes_are_an_empty_line_in_the_editor(self):
        for split in ("single", "multi"):
            for task in load_split(DATA, split, 20):
                self.assertTrue(whole_line_hole(task), task["task_id"])
                text, (line, col) = editor_file(task)
                self.assertEqual(col, 1)
                self.assertEqual(text.split("\n")[line - 1], "", task["task_id"])
                # A one-line completion without its newline fills the line; the canonical one as is.
                canonical = task["canonical_solution"]
                self.assertEqual(program_of(task, canonical), program_of(task, canonical[:-1]))
        for task in load_split(DATA, "random", 20):
            if not whole_line_hole(task):
                self.assertEqual(editor_file(task)[0], task["prompt"] + task["suffix"])

    def test_command_follows_the_cli_contract(self):
        src = GhostlineSource("/bin/ghostline", model="m", device="cpu", max_tokens=32)
        self.assertEqual(src.command("/t/a.py", 3, 5),
                         ["/bin/ghostline", "complete", "/t/a.py:3:5", "--json", "--model", "m",
                          "--device", "cpu", "--max-tokens", "32"])


class Errors(unittest.TestCase):
    def test_missing_data_directory(self):
        proc = subprocess.run([sys.executable, RUN_PY, "--data", "/nonexistent/fim-data",
                               "--no-save", "--completion-source", "canonical"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("data directory not found: /nonexistent/fim-data", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)

    def test_corrupt_data_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "HumanEval-SingleLineInfilling.jsonl.gz"), "wb") as f:
                f.write(b"not gzip at all")
            with gzip.open(os.path.join(tmp, "HumanEval-RandomSpanInfillingLight.jsonl.gz"),
                           "wt") as f:
                f.write('{"task_id": "x"}\n')
            for split, expected in (("single", "cannot read"), ("random", "lacks field")):
                proc = subprocess.run([sys.executable, RUN_PY, "--data", tmp, "--split", split,
                                       "--no-save", "--completion-source", "canonical"],
                                      capture_output=True, text=True, timeout=60)
                self.assertEqual(proc.returncode, 2, split)
                self.assertIn(expected, proc.stderr)
                self.assertNotIn("Traceback", proc.stderr)

    @needs_data
    def test_missing_binary(self):
        proc = subprocess.run([sys.executable, RUN_PY, "--data", DATA, "--limit", "1",
                               "--no-save", "--binary", "/nonexistent/ghostline"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("ghostline binary not found: /nonexistent/ghostline", proc.stderr)


class RealBinary(unittest.TestCase):
    @needs_data
    def test_one_task_through_ghostline_complete(self):
        """Whatever state the pipeline is in, the harness reports it honestly: a completion with
        timings from --json, or every call failed, exit 1, and ghostline's own message shown."""
        if not os.access(BINARY, os.X_OK):
            self.skipTest(f"no built binary at {BINARY}")
        proc, report = run_harness("--split", "single", "--limit", "1", "--max-tokens", "16",
                                   "--jobs", "1")
        r = report["splits"]["single"]
        self.assertEqual(r["tasks"], 1)
        if proc.returncode == 1:
            self.assertEqual(r["completion_errors"], 1)
            self.assertIn("every ghostline completion failed", proc.stderr)
            self.assertIn("ghostline complete exited", r["first_completion_error"])
        else:
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(r["completion_errors"], 0, r["first_completion_error"])
            self.assertIsNotNone(r["total_ms"], "ghostline --json gave no total_ms")
            self.assertIn("source=ghostline", proc.stdout)


if __name__ == "__main__":
    unittest.main()
