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
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import EdgekitError

KEY_ENV = "EDGEKIT_OLYMPICS_KEY"
WORK_PREFIX = "edgekit-olympics-"
MAX_RESULT_BYTES = 4 * 2**20
MAX_FILE_BYTES = 256 * 2**20
WALL_SLACK_S = 30
PR_SET_PDEATHSIG = 1  # Linux prctl: the signal a child gets when its parent dies


def _limit(memory_mb: float, seconds: float):
    """The function the child runs between fork and exec: its limits, before any submitted byte is read."""
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
        mem = int(memory_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (int(seconds), int(seconds) + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if prctl is not None:  # die with the run: a killed run leaves no worker behind
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return apply


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    # one BLAS thread: each OpenBLAS thread reserves its own buffers, which would eat the memory limit
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # the child imports this same edgekit, even when it runs from a source checkout
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


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


def run_job(job: dict, limits: dict) -> dict:
    """Run worker.py on `job` in a limited child; its result dict, or a failure with the reason."""
    seconds, memory_mb = float(limits["seconds"]), float(limits["memory_mb"])
    with tempfile.TemporaryDirectory(prefix=_work_prefix(os.getpid())) as work:
        work = Path(work)
        (work / "job.json").write_text(json.dumps(job))
        with open(work / "worker.log", "wb") as log:
            # cwd is the empty job folder, so nothing from the submission can shadow a module
            proc = subprocess.Popen([sys.executable, "-m", "edgekit.olympics.worker", str(work)], cwd=work,
                                    env=_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=_limit(memory_mb, seconds), start_new_session=True)
            try:
                code = proc.wait(timeout=seconds + WALL_SLACK_S)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return {"status": "failed", "reason": f"took longer than the track's {seconds:g} s limit and was "
                        "stopped"}
            except BaseException:  # Ctrl-C or a kill of the run: leave no child behind
                _kill(proc)
                raise
            try:  # the TFLite Micro grandchild, should the worker have left it behind
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        result = work / "result.json"
        if result.is_file() and result.stat().st_size <= MAX_RESULT_BYTES:
            try:
                return json.loads(result.read_text())
            except ValueError:
                pass
        text = (work / "worker.log").read_bytes()[-4000:].decode(errors="replace")
        if code < 0:
            return {"status": "failed", "reason": _why_died(code, limits, text)}
        last = [ln.strip() for ln in text.splitlines() if ln.strip()]
        said = f" ({last[-1][:200]})" if last else ""
        if "memory" in text.lower():  # numpy, OpenBLAS or LiteRT could not allocate under RLIMIT_AS
            return {"status": "failed", "reason": f"ran out of memory (the track allows {memory_mb:g} MB){said}; "
                    "the model is too large or malformed"}
        return {"status": "failed", "reason": f"the evaluation stopped (exit {code}){said}"}
