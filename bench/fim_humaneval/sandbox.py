"""Runs one untrusted Python program in a sandbox and says how it ended. Layers, each enough to
stop the common accident and together hard to get past: a fresh temporary directory as the working
directory (removed afterwards); resource limits (address space, CPU seconds, file size, process
count, no core files); a new session, so a timeout kills the whole process group; a network-less
user namespace (`unshare -rn`) where the kernel allows one; and inside the child, the audit-hook
guard of sandbox_runner.py (no sockets, no subprocesses, no writes outside the directory).
Thread-safe: each call owns its directory and process."""

import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from sandbox_runner import EXIT_EARLY, EXIT_RAISED, EXIT_REFUSED, REFUSED_MARK

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_runner.py")

# How a program ended, as reported in the results.
PASSED, FAILED, TIMEOUT, REFUSED, EXITED_EARLY, CRASHED = (
    "passed", "failed", "timeout", "refused", "exited_early", "crashed")

_unshare_works = None


def network_isolation():
    """'unshare' when the child runs in a user namespace with no network, else 'audit-hook'."""
    global _unshare_works
    if _unshare_works is None:
        unshare = shutil.which("unshare")
        _unshare_works = False
        if unshare:
            try:
                _unshare_works = subprocess.run(
                    [unshare, "-rn", "true"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                _unshare_works = False
    return "unshare" if _unshare_works else "audit-hook"


class Limits:
    def __init__(self, timeout_s=10.0, memory_mb=1024, file_mb=16, processes=64):
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.file_mb = file_mb
        self.processes = processes


def _limit_child(limits):
    def apply():
        mb = 1024 * 1024
        cpu = max(1, int(limits.timeout_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(source, limits=None, keep_output=2000):
    """Runs `source` (Python text) in the sandbox. Returns a dict: status (one of the constants
    above), returncode, seconds, and the last `keep_output` characters of stderr as `detail`."""
    limits = limits or Limits()
    workdir = tempfile.mkdtemp(prefix="ghostline-fim-")
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as f:
            f.write(source)
        cmd = [sys.executable, "-I", "-B", RUNNER]
        if network_isolation() == "unshare":
            cmd = ["unshare", "-rn"] + cmd
        nonce = secrets.token_hex(16)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "HOME": workdir, "TMPDIR": workdir}
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=_limit_child(limits))
        try:
            out, err = proc.communicate((nonce + "\n").encode(), timeout=limits.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            timed_out = True
        finally:
            _kill_group(proc)  # anything it left behind in its group
        seconds = time.monotonic() - start
        err_text = err.decode("utf-8", errors="replace")
        rc = proc.returncode
        if timed_out:
            status = TIMEOUT
        elif REFUSED_MARK in err_text or rc == EXIT_REFUSED:
            status = REFUSED
        elif rc == 0 and out.decode(errors="replace").rstrip().endswith(nonce):
            status = PASSED
        elif rc == 0 or rc == EXIT_EARLY:
            status = EXITED_EARLY
        elif rc == EXIT_RAISED:
            status = FAILED
        elif rc == -signal.SIGXCPU or rc == -signal.SIGKILL:
            status = TIMEOUT
        else:
            status = CRASHED
        return {"status": status, "returncode": rc, "seconds": round(seconds, 3),
                "detail": err_text[-keep_output:]}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
