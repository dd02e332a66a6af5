"""Runs inside the sandboxed child process: installs the guard (an audit hook that refuses
network, process creation, native code loading and any write outside the working directory),
then executes program.py from the working directory. It prints the nonce read from stdin only when
the program ran to its end with no refused operation, so an early sys.exit(0) or os._exit(0)
cannot pass for success. Exit codes: 0 ran to the end, 1 the program raised, 3 it exited early,
4 it tried a refused operation (a line starting GHOSTLINE-SANDBOX-REFUSED on stderr says which).
Standard library only; started as `python3 -I sandbox_runner.py` with cwd = the sandbox."""

import os
import sys

EXIT_RAISED, EXIT_EARLY, EXIT_REFUSED = 1, 3, 4
REFUSED_MARK = "GHOSTLINE-SANDBOX-REFUSED"


def install_guard(root):
    refused = []
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    # Events that change the file system, each with the index of its path argument(s).
    path_events = {"os.remove": (0,), "os.rename": (0, 1), "os.mkdir": (0,), "os.rmdir": (0,),
                   "os.chmod": (0,), "os.chown": (0,), "os.link": (0, 1), "os.symlink": (1,),
                   "os.truncate": (0,), "os.utime": (0,), "os.chflags": (0,), "os.mkfifo": (0,),
                   "os.mknod": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
                   "shutil.copytree": (1,), "shutil.move": (1,), "os.setxattr": (0,),
                   "os.removexattr": (0,)}
    always_refused = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                      "os.fork", "os.forkpty", "os.startfile", "os.kill", "os.killpg",
                      "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
                      "_posixsubprocess", "pty.spawn", "mmap.__new__", "sys.remote_exec",
                      "socket.", "urllib.", "http.", "ftplib.", "smtplib.", "poplib.",
                      "imaplib.", "nntplib.", "telnetlib.", "webbrowser.")
    realpath, join, isabs, sep = os.path.realpath, os.path.join, os.path.isabs, os.sep

    def inside(path):
        if isinstance(path, int):  # an already open descriptor
            return True
        try:
            path = os.fsdecode(path)
        except TypeError:
            return False
        full = realpath(path if isabs(path) else join(os.getcwd(), path))
        return full == root or full.startswith(root + sep)

    def refuse(what):
        if not refused:
            refused.append(what)
        try:
            os.write(2, f"{REFUSED_MARK}: {what}\n".encode(errors="replace"))
        except OSError:
            pass
        raise PermissionError(f"ghostline sandbox refused {what}")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (mode is None and isinstance(flags, int) and flags & write_flags)
            if writing and not inside(path):
                refuse(f"writing {path!r} outside the sandbox")
        elif event in path_events:
            for i in path_events[event]:
                if i < len(args) and not inside(args[i]):
                    refuse(f"{event} on {args[i]!r} outside the sandbox")
        elif event.startswith(always_refused):
            refuse(event)

    sys.addaudithook(hook)
    return refused


def main():
    root = os.path.realpath(os.getcwd())
    nonce = sys.stdin.readline().strip()
    with open("program.py", encoding="utf-8") as f:
        source = f.read()
    code = compile(source, "program.py", "exec")
    refused = install_guard(root)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(code, namespace)
    except SystemExit:
        print("program exited before its end", file=sys.stderr)
        os._exit(EXIT_REFUSED if refused else EXIT_EARLY)
    except BaseException as e:  # the verdict is the exit code; the traceback is for the reader
        import traceback
        traceback.print_exception(e, file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_REFUSED if refused else EXIT_RAISED)
    if refused:
        os._exit(EXIT_REFUSED)
    sys.stdout.write(nonce + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
