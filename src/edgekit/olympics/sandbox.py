"""Run one untrusted job (worker.py) in a child process with memory, CPU-time and file-size limits.

A submitted model is parsed, converted and run only in the child. Whatever the model does to it
(a runtime that crashes on a malformed file, a model so big it exhausts memory, a conversion that
never ends), the child dies alone and run_job returns {"status": "failed", "reason": one line}:
that submission fails on that board, and the run goes on.

Limits, from the track's [limits]: RLIMIT_AS (address space, memory_mb), RLIMIT_CPU (seconds of CPU),
RLIMIT_FSIZE (no file over 256 MB), no core dumps, and a wall-clock timeout (seconds + 30, for a
child blocked on I/O). The child runs in its own session, so the whole group (TFLite Micro's own
child included) is killed at once. It never sees the course key (EDGEKIT_OLYMPICS_KEY is removed
from its environment), so it cannot sign results. It runs as the same user, though: the limits
stop crashes and memory or time bombs, not a deliberate exploit of a parser bug (use a throw-away
user or container for that; see docs/olympics.md).

Each job has a private (0700) folder named edgekit-olympics-<run's pid>-...; a run killed before it
could remove one leaves it behind, and clean_stale() removes those of dead runs at the next start.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import crash
from ..errors import EdgekitError

KEY_ENV = "EDGEKIT_OLYMPICS_KEY"
WORK_PREFIX = "edgekit-olympics-"
MAX_RESULT_BYTES = 4 * 2**20
MAX_FILE_BYTES = 256 * 2**20
WALL_SLACK_S = 30
PR_SET_PDEATHSIG = 1  # Linux prctl: the signal a child gets when its parent dies


def limits_applier(memory_mb: float, seconds: float, only_parent_death: bool = False):
    """The function a child runs first after the fork (before exec, or before the fork server's child
    runs the job): its limits, before any submitted byte is read."""
    try:
        import resource
    except ImportError:  # Windows
        raise EdgekitError("edgekit olympics runs submissions in limited child processes, which needs Linux "
                           "or macOS; run it there (WSL works on Windows)") from None
    prctl = None
    if sys.platform.startswith("linux"):  # looked up here: between fork and exec, import nothing
        import ctypes
        prctl = ctypes.CDLL(None).prctl

    def apply():
        if prctl is not None:  # die with the run: a killed run leaves no worker behind
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if only_parent_death:  # the fork server: its children set their own limits
            return
        mem = int(memory_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (int(seconds), int(seconds) + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    # one BLAS thread: each OpenBLAS thread reserves its own buffers, which would eat the memory limit
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # the child imports this same edgekit, even when it runs from a source checkout
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _why_died(code: int, limits: dict, log: str) -> str:
    sig = -code
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    if sig == signal.SIGXCPU:
        return f"used more than the track's {limits['seconds']:g} s of CPU time and was stopped"
    if sig in (signal.SIGKILL, signal.SIGABRT) or "memory" in log.lower():
        return (f"the evaluation was killed ({name}), most likely out of memory (the track allows "
                f"{limits['memory_mb']:g} MB); the model is too large or malformed")
    return f"the evaluation crashed ({name}) on this model; it is malformed for the runtimes"


def _work_prefix(pid: int) -> str:
    return f"{WORK_PREFIX}{pid}-"  # the owner's pid in the name: clean_stale can tell a dead run's folder


def clean_stale() -> list[Path]:
    """Remove the job folders of runs that died without cleaning up (SIGKILL, a power cut): only
    this user's, and only those whose owner pid is no longer alive, never another live run's."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        pid = folder.name[len(WORK_PREFIX):].split("-", 1)[0]
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not pid.isdigit() or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class Cancelled(Exception):
    """The run was stopped (Ctrl-C in another thread) while this job ran: its child is killed."""


class _TimedOut(Exception):
    pass


class _Fresh:
    """A fresh Python process per job: `python -m edgekit.olympics.worker WORK`."""

    def run(self, work: Path, memory_mb: float, seconds: float, cancel=None) -> int:
        with open(work / "worker.log", "ab") as log:
            # cwd is the empty job folder, so nothing from the submission can shadow a module
            proc = subprocess.Popen([sys.executable, "-m", "edgekit.olympics.worker", str(work)], cwd=work,
                                    env=_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=limits_applier(memory_mb, seconds), start_new_session=True)
        try:
            return _wait(proc.pid, lambda step: _poll(proc, step), seconds + WALL_SLACK_S, cancel)
        finally:
            proc.wait()


def _poll(proc: subprocess.Popen, step: float) -> int | None:
    try:
        return proc.wait(timeout=step)
    except subprocess.TimeoutExpired:
        return None


def _wait(group: int, poll, wall: float, cancel) -> int:
    """The exit code of the job whose process group is `group`; on the wall-clock limit, a
    cancel or Ctrl-C its whole group is killed first. poll(step): the code, or None after step s."""
    deadline = time.monotonic() + wall
    try:
        while True:
            code = poll(min(0.2, max(0.0, deadline - time.monotonic())))
            if code is not None:
                break
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if time.monotonic() >= deadline:
                raise _TimedOut()
    except BaseException:  # a timeout, a cancel, Ctrl-C or a kill of the run: leave no child behind
        _killpg(group)
        raise
    _killpg(group)  # the TFLite Micro grandchild, should the worker have left it behind
    return code


def _killpg(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Zygote:
    """A fork server (forkserver.py) of this run: it has imported what a worker needs once, and
    forks a fresh, limited child per job. One job at a time; restarted if it dies."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self._buffer = b""

    def _start(self) -> None:
        self.close()
        die_with_run = limits_applier(float("inf"), float("inf"), only_parent_death=True)
        # cwd "/" and -P: no folder anyone can write to is on its module path
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "edgekit.olympics.forkserver"], cwd="/",
                                     env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=die_with_run, start_new_session=True)
        self._buffer = b""

    def _line(self, timeout: float | None) -> dict | None:
        """The server's next reply, or None if none came within `timeout` s."""
        end = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if end is None else max(0.0, end - time.monotonic())
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise EOFError("the fork server ended")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, work: Path, memory_mb: float, seconds: float, cancel=None) -> int:
        for attempt in (1, 2):  # a server that died (killed, out of memory) is started again, once
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write((json.dumps({"work": str(work), "memory_mb": memory_mb,
                                                   "seconds": seconds}) + "\n").encode())
                self.proc.stdin.flush()
                pid = self._line(None)["pid"]
                break
            except (OSError, EOFError, ValueError, TypeError, KeyError):
                self.close()
                if attempt == 2:
                    raise EdgekitError("the Olympics fork server cannot start (python -m "
                                       "edgekit.olympics.forkserver); run `edgekit doctor`") from None
        try:
            return _wait(pid, lambda step: (self._line(step) or {}).get("exit"), seconds + WALL_SLACK_S, cancel)
        except (EOFError, ValueError):  # the server died with its child: its status is lost
            self.close()
            return -signal.SIGKILL
        except BaseException:
            self.close()  # its reply to the killed job would be read as the next job's
            raise

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                pipe.close()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_job(job: dict, limits: dict, zygote: Zygote | None = None, cancel=None) -> dict:
    """Run worker.py on `job` in a limited child (forked by `zygote`, else a fresh process); its
    result dict, or a failure with the reason. cancel: a threading.Event that stops it (Cancelled)."""
    seconds, memory_mb = float(limits["seconds"]), float(limits["memory_mb"])
    with tempfile.TemporaryDirectory(prefix=_work_prefix(crash.visible_pid())) as work:
        work = Path(work)
        (work / "job.json").write_text(json.dumps(job))
        try:
            code = (zygote or _Fresh()).run(work, memory_mb, seconds, cancel)
        except _TimedOut:
            return {"status": "failed", "reason": f"took longer than the track's {seconds:g} s limit and was "
                    "stopped"}
        result = work / "result.json"
        if result.is_file() and result.stat().st_size <= MAX_RESULT_BYTES:
            try:
                return json.loads(result.read_text())
            except ValueError:
                pass
        log = work / "worker.log"
        text = log.read_bytes()[-4000:].decode(errors="replace") if log.is_file() else ""
        if code < 0:
            return {"status": "failed", "reason": _why_died(code, limits, text)}
        last = [ln.strip() for ln in text.splitlines() if ln.strip()]
        said = f" ({last[-1][:200]})" if last else ""
        if "memory" in text.lower():  # numpy, OpenBLAS or LiteRT could not allocate under RLIMIT_AS
            return {"status": "failed", "reason": f"ran out of memory (the track allows {memory_mb:g} MB){said}; "
                    "the model is too large or malformed"}
        return {"status": "failed", "reason": f"the evaluation stopped (exit {code}){said}"}
