"""A crash in native code (LiteRT, pycoral, the Edge TPU delegate) as one line, not exit 139.

`edgekit` runs each command in a forked child (supervise); the parent only waits. Before native
code that can take the process down, edgekit says what it is doing (`with doing("LiteRT",
"loading the model")`) into a pipe the parent reads. A child killed by SIGSEGV, SIGBUS, SIGILL,
SIGFPE or SIGABRT becomes `error: LiteRT crashed (SIGSEGV) while loading the model; ...` and
exit 2, as any other error. TFLite Micro runs in its own child already (runtime/tflm.py).

Signals: Ctrl-C at a terminal reaches the child directly (same process group); a SIGINT, SIGTERM
or SIGHUP sent to the parent alone (kill PID, a test harness) is passed on to the child. The child
dies with the parent (Linux), and names its temporary folders by the parent's pid (visible_pid),
the process the user sees. EDGEKIT_NO_SUPERVISOR=1 runs the command in this process instead (for a
debugger or a profiler).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

CRASHES = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_phase_fd: int | None = None  # the child's end of the pipe, when supervised
_parent: int | None = None    # the supervising parent's pid, when supervised


@contextlib.contextmanager
def doing(runtime: str, what: str):
    """Native code of `runtime` runs in this block: a crash in it is named after it."""
    if _phase_fd is None:
        yield
        return
    _say(f"{runtime}\t{what}")
    try:
        yield
    finally:
        _say("")


def _say(line: str) -> None:
    try:
        os.write(_phase_fd, (line + "\n").encode(errors="replace"))
    except OSError:  # the parent is gone: nothing to tell
        pass


def visible_pid() -> int:
    """The pid the user (and other edgekit runs) see for this command: the supervisor's, if any."""
    return _parent or os.getpid()


def supervise(main, argv: list[str]) -> int:
    """Run main(argv) in a forked child; its exit code, or 2 after one line if native code crashed it."""
    if not hasattr(os, "fork") or os.environ.get("EDGEKIT_NO_SUPERVISOR"):
        return main(argv)
    global _phase_fd, _parent
    read, write = os.pipe()
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    # Held back from fork until each side's handlers are right: the parent's KeyboardInterrupt would be
    # raised in an at-fork hook, which drops it, and the child drops what came just before its fork
    # handling; a Ctrl-C then stopped neither (the supervisor is single-threaded here: one mask is enough)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # the command's own handlers take it from here
        os.close(read)
        _phase_fd, _parent = write, parent
        _die_with(parent)
        sys.exit(main(argv))  # a normal exit: atexit handlers and temporary folders are cleaned up
    os.close(write)
    terminal_group = _terminal_group()
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: _forward(pid, s, terminal_group))
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one that came meanwhile is forwarded now
    while True:  # polled, not one blocking wait: a signal handler must run (under qemu-user a blocked
        done, status = os.waitpid(pid, os.WNOHANG)  # waitpid was seen not to let it)
        if done:
            break
        time.sleep(0.05)
    phases = _read_all(read).decode(errors="replace").splitlines()
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = os.WTERMSIG(status)
    if sig in CRASHES:
        runtime, _, what = (phases[-1] if phases and phases[-1] else "native code\t").partition("\t")
        name = signal.Signals(sig).name
        sys.stderr.write(f"error: {runtime} crashed ({name}){' while ' + what if what else ''}; the model or "
                         f"this machine's {runtime} is at fault, not your data: check the model with `edgekit "
                         "inspect`, or update the runtime (`edgekit doctor`)\n")
        return 2
    return 130 if sig == signal.SIGINT else 128 + sig


def _forward(pid: int, sig: int, terminal_group: int | None) -> None:
    # Ctrl-C at the terminal went to the whole foreground group, the child included: not twice
    if sig == signal.SIGINT and terminal_group is not None and terminal_group == os.getpgrp():
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _terminal_group() -> int | None:
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd)
        except OSError:
            continue
    return None


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # lazy: Linux only, in the child

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _read_all(fd: int) -> bytes:
    """What is in the pipe now: a forked grandchild may still hold its write end open."""
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # BlockingIOError included: nothing more for now
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)
