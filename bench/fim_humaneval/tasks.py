"""HumanEval-infilling tasks: reading the benchmark's .jsonl.gz files, placing the cursor at the
hole (LINE:COL as `ghostline complete` takes it), building the program a task's test runs, and
comparing a completion with the canonical solution. Pure functions over plain dicts; no I/O
besides reading the data files."""

import gzip
import json
import os

# The benchmark's file for each split, as published with the FIM paper (Bavarian et al., 2022).
SPLIT_FILES = {
    "single": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
REQUIRED_FIELDS = ("task_id", "prompt", "suffix", "canonical_solution", "test", "entry_point")


class DataError(Exception):
    """The data directory or one of its files is missing or malformed; the message says which."""


def load_split(data_dir, split, limit=None):
    """The tasks of one split as a list of dicts, in file order; at most `limit` of them."""
    if split not in SPLIT_FILES:
        raise DataError(f"unknown split '{split}' (expected one of {', '.join(SPLIT_FILES)})")
    if not os.path.isdir(data_dir):
        raise DataError(f"data directory not found: {data_dir} (it should hold "
                        f"{SPLIT_FILES[split]}; pass --data DIR)")
    path = os.path.join(data_dir, SPLIT_FILES[split])
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path} (split '{split}')")
    tasks = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if limit is not None and len(tasks) >= limit:
                    break
                if not line.strip():
                    continue
                try:
                    task = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
                missing = [k for k in REQUIRED_FIELDS
                           if not isinstance(task, dict) or not isinstance(task.get(k), str)]
                if missing:
                    raise DataError(f"{path}:{line_no}: task lacks field(s) {', '.join(missing)}")
                tasks.append(task)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not tasks and limit != 0:
        raise DataError(f"{path}: holds no tasks")
    return tasks


def cursor_of(prompt):
    """(line, column) of the hole, 1-based, the column in Unicode characters: the position just
    after `prompt` in the file prompt + suffix. Lines end at '\\n' only (a '\\r' before it belongs
    to the line, as in the CLI's resolver, which treats CRLF files the same way)."""
    line = prompt.count("\n") + 1
    last_line = prompt[prompt.rfind("\n") + 1:]
    return line, len(last_line) + 1


def whole_line_hole(task):
    """True when the hole is whole lines (single- and multi-line splits): it starts at a line start
    and its canonical text ends with a newline."""
    return (task["prompt"] == "" or task["prompt"].endswith("\n")) and task["canonical_solution"].endswith("\n")


def editor_file(task):
    """The file an editor would hold at the hole, and the cursor's (line, column). A whole-line hole
    is an empty line where the user is about to type (prompt + "\n" + suffix, cursor at its start),
    as in an editor; a hole inside a line is the prompt and suffix joined, the cursor between."""
    if whole_line_hole(task):
        return task["prompt"] + "\n" + task["suffix"], cursor_of(task["prompt"])
    return task["prompt"] + task["suffix"], cursor_of(task["prompt"])


def program_of(task, completion):
    """The Python program whose exit tells whether `completion` fills the task's hole correctly.
    For a whole-line hole the completion fills the empty line: it ends with its line break (the
    editor's, when the suggestion does not end with one itself)."""
    if whole_line_hole(task) and completion and not completion.endswith("\n"):
        completion += "\n"
    return (task["prompt"] + completion + task["suffix"] + "\n" + task["test"] + "\n"
            + f"check({task['entry_point']})\n")


def normalise_whitespace(text):
    return " ".join(text.split())


def exact_match(completion, canonical):
    return normalise_whitespace(completion) == normalise_whitespace(canonical)
