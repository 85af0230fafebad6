"""Running a model in TFLite Micro (the `tflite_micro` wheel) and measuring its exact tensor arena.

TFLite Micro trusts the model: a malformed one can abort or crash the whole process (e.g. SIGFPE
on a conv whose filter does not match its input). So it always runs in a child Python process,
one per call (started ahead of its job where the caller has other work: TflmChild), which does
every sample and the arena measurement, and reports back through files in a temporary folder. A child that dies becomes one EdgekitError; the caller survives.

The arena: TFLite Micro's recording allocator prints "Arena allocation total N bytes" (C-level
stdout, which the child sends to a log file). On the host that total is usually the exact
minimum, but for tiny models it can be too low (tflite-micro PR 798: the init-time temp area
can exceed the head). So the child then checks N and N-1 with fresh interpreters (from_bytes:
TFLite Micro allocates everything while loading, nothing while invoking) and, if N is not the
minimum, searches until it finds the byte that is.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from ..errors import EdgekitError
from ..tflite_check import check_memory
from ..tflite_file import NUMPY_TYPES, TFLiteModel, model_of, tensor_type_name, text
from . import litert

FIRST_ARENA = 64 * 2**20  # generous first try: the wheel does not touch untouched arena pages
PHASES = {"start": "starting", "load": "loading the model", "run": "running the samples",
          "arena": "measuring the arena"}


@dataclass
class TflmResult:
    outputs: list[np.ndarray]  # one per model output, stacked over samples, raw (e.g. int8)
    arena_bytes: int           # exact minimum arena_size that loads and invokes the model
    arena_head: int            # non-persistent part recorded by TFLite Micro (activations, scratch)
    arena_tail: int            # persistent part (tensor structs, kernel data); head + tail can be
    #                            below arena_bytes for tiny models, see the module docstring


def tflm_available() -> tuple[bool, str]:
    """(True, "") if TFLite Micro can run here, else (False, why), without importing it."""
    if not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")):
        return False, "tflite-micro has wheels for Linux x86-64 only"
    if importlib.util.find_spec("tflite_micro") is None:
        return False, "tflite-micro is not installed; run: pip install tflite-micro"
    return True, ""


# The child: plain Python run with `python -c`, importing only numpy and tflite_micro (~0.2 s).
CHILD = r'''
import ctypes, json, os, re, sys
work = sys.argv[1]
# TFLite Micro prints its messages and print_allocations() with C stdio on stderr. Send fds 1 and 2
# to a log file, where the arena totals can be read back and the parent finds the last messages
# even if we die (C stderr is unbuffered; make stdout unbuffered too).
try:
    libc = ctypes.CDLL(None)
    libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
    libc.setvbuf(ctypes.c_void_p.in_dll(libc, "stdout"), None, 2, 0)  # 2 = _IONBF
except Exception:
    pass
log_path = os.path.join(work, "tflm.log")
log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
os.dup2(log_fd, 1)
os.dup2(log_fd, 2)

def mark(phase):  # the parent names the phase a crash happened in
    os.write(1, ("@@phase " + phase + "\n").encode())

mark("start")
import numpy as np
from tflite_micro.python.tflite_micro import runtime

sys.stdin.readline()  # started ahead of its job (TflmChild): the parent says when the files are there
job = json.load(open(os.path.join(work, "job.json")))
model = open(os.path.join(work, "model.tflite"), "rb").read()  # stays referenced: TFLM reads it in place
with np.load(os.path.join(work, "inputs.npz")) as f:
    xs = [f["x%d" % i] for i in range(job["n_inputs"])]

def invoke(it, k):
    for i, x in enumerate(xs):
        it.set_input(x[k:k + 1], i)
    it.invoke()

def fits(arena):
    # Each probe runs in a forked process: with some too-small arenas TFLite Micro aborts
    # ("All temp buffers must be freed ...") instead of failing cleanly, and an abort means "no".
    # Loading is enough: TFLite Micro takes everything from the arena while loading (tensors,
    # kernel data, scratch) and nothing while invoking (tests/test_arena.py runs the size found).
    pid = os.fork()
    if pid == 0:
        try:
            runtime.Interpreter.from_bytes(model, arena_size=arena)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

def minimum_arena(guess):
    """The smallest arena that fits, bracketing from TFLite Micro's recorded total."""
    step = 16
    if fits(guess):
        lo, hi = guess - 1, guess
        while lo > 0 and fits(lo):  # the recorded total was too high: widen downwards
            lo, hi, step = max(lo - step, 0), lo, step * 2
    else:  # too low (PR 798): widen upwards, never past the arena that worked
        lo, hi = guess, min(guess + step, job["arena"])
        while not fits(hi):
            if hi >= job["arena"]:
                raise RuntimeError("the arena search found no working size")
            lo, hi, step = hi, min(hi + step, job["arena"]), step * 2
    while hi - lo > 1:  # invariant: lo fails, hi fits
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi

result = {}
try:
    mark("load")
    it = runtime.Interpreter.from_bytes(model, arena_size=job["arena"])
    mark("run")
    outs = [[] for _ in range(job["n_outputs"])]
    for k in range(job["samples"]):
        invoke(it, k)
        for j in range(job["n_outputs"]):
            outs[j].append(np.array(it.get_output(j))[0])
    np.savez(os.path.join(work, "outputs.npz"), **{"y%d" % j: np.stack(o) for j, o in enumerate(outs)})
    mark("arena")
    it.print_allocations()
    log = open(log_path, errors="replace").read()
    recorded = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", log)}
    # without a recorded total (a wheel that prints differently) the search just starts lower
    result = dict(recorded, arena_bytes=minimum_arena(job.get("guess") or recorded.get("total", 4096)))
except RuntimeError as e:
    result = {"error": str(e)}
with open(os.path.join(work, "result.json"), "w") as f:
    json.dump(result, f)
os._exit(0)  # done: skip tearing the interpreter down (~30 ms the parent would wait for)
'''


def child_env() -> dict:
    """The child must import the same numpy and tflite_micro as this process."""
    paths = []
    for pkg in ("tflite_micro", "numpy"):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            paths.append(os.path.dirname(list(spec.submodule_search_locations)[0]))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def tflm_messages(log: str) -> tuple[str, str]:
    """(phase, last TFLite Micro messages) from the child's log."""
    phase, lines = "start", []
    for line in log.splitlines():
        if line.startswith("@@phase "):
            phase, lines = line.split()[1], []
        elif line.strip() and not line.startswith(("[RecordingMicroAllocator]", "Traceback", "  ")):
            lines.append(re.sub(r"^\S+\.(cc|h)(:\d+)? ", "", line.strip()))  # drop source paths
    return PHASES.get(phase, phase), "; ".join(lines[-2:])


def _check_inputs(model: TFLiteModel, inputs: list[np.ndarray]) -> tuple[int, int]:
    """Inputs must match the model's inputs in number, type and per-sample shape.

    Returns (samples, number of model outputs)."""
    m = model.parsed
    check_memory(m, "the model")
    sg = m.subgraphs[0]
    wanted = [sg.tensors[i] for i in sg.inputs]
    if len(inputs) != len(wanted):
        raise EdgekitError(f"the model has {len(wanted)} inputs but {len(inputs)} arrays were given; "
                           "give one array (samples first) per model input")
    counts = set()
    for i, (x, t) in enumerate(zip(inputs, wanted)):
        x = np.asarray(x)
        dtype, shape = tensor_type_name(t.type), tuple(int(d) for d in list(t.shape if t.shape is not None else [])[1:])
        if x.dtype != NUMPY_TYPES.get(dtype):
            raise EdgekitError(f"input {i} ('{text(t.name)}') is {x.dtype} but the model wants {dtype}; "
                               "quantize it with the input's scale and zero point first")
        if x.shape[1:] != shape:
            raise EdgekitError(f"input {i} ('{text(t.name)}') has samples of shape {x.shape[1:]} but the "
                               f"model wants {shape}; the first axis counts samples")
        counts.add(len(x))
    if len(counts) != 1 or 0 in counts:
        raise EdgekitError(f"the input arrays hold {sorted(counts)} samples; give the same number (>= 1) for every input")
    return counts.pop(), len(sg.outputs)


def _check_shapes_in_litert(model: TFLiteModel) -> None:
    """TFLite Micro trusts declared shapes and can loop forever on wrong ones, which no crash
    isolation catches quickly: refuse a model whose shapes LiteRT computes differently. A model
    LiteRT refuses for another reason still runs in the child, which survives its crash."""
    try:
        litert.load(model)
    except litert.ShapeMismatch:
        raise
    except EdgekitError:
        pass


class TflmChild:
    """A TFLite Micro child process started ahead of its job, so that its start-up (Python, numpy
    and tflite_micro: ~0.2 s) overlaps the caller's other work. run() gives it one job.

    fork=True forks this process instead of starting Python afresh (nothing to import
    when this process has imported tflite_micro already, as the Olympics' fork server has): for a
    process with no threads yet, which nothing else's state can leak into (a worker process)."""

    def __init__(self, fork: bool = False):
        ok, why = tflm_available()
        if not ok:
            raise EdgekitError(f"cannot run TFLite Micro: {why}")
        self.work = tempfile.mkdtemp(prefix="edgekit-tflm-")
        self.proc = _Forked(self.work) if fork else subprocess.Popen(
            [sys.executable, "-c", CHILD, self.work], cwd=self.work, env=child_env(),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stderr):
            if pipe and not pipe.closed:
                pipe.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def run(self, model: TFLiteModel | bytes, inputs: list[np.ndarray], timeout: float = 60,
            arena_guess: int | None = None) -> TflmResult:
        """Run each sample (first axis of each input) through TFLite Micro with batch 1.

        Returns the raw outputs and the exact minimum tensor arena (searched from arena_guess, e.g.
        edgekit's planner's, when given: two probes when it is right). Raises EdgekitError if TFLite
        Micro rejects the model, crashes on it or does not finish within `timeout` s.
        """
        try:
            return self._run(model_of(model), inputs, timeout, arena_guess)
        finally:
            self.close()

    def _run(self, model: TFLiteModel, inputs: list[np.ndarray], timeout: float, guess: int | None) -> TflmResult:
        samples, n_outputs = _check_inputs(model, inputs)
        model.memo(litert.SHAPES_CHECKED, lambda: _check_shapes_in_litert(model))
        work = self.work
        with open(os.path.join(work, "model.tflite"), "wb") as f:
            f.write(model.data)
        np.savez(os.path.join(work, "inputs.npz"), **{f"x{i}": np.asarray(x) for i, x in enumerate(inputs)})
        with open(os.path.join(work, "job.json"), "w") as f:
            json.dump({"n_inputs": len(inputs), "n_outputs": n_outputs, "samples": samples,
                       "arena": FIRST_ARENA, "guess": guess}, f)
        try:
            _, err = self.proc.communicate(b"go\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgekitError(f"TFLite Micro did not finish within {timeout:g} s on this model; "
                               "try fewer samples or a larger timeout") from None
        except BrokenPipeError:  # it died starting up: its log and exit status say why
            err = b""
            self.proc.wait()
        returncode = self.proc.returncode
        log_path = os.path.join(work, "tflm.log")
        log = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
        phase, said = tflm_messages(log)
        if returncode < 0:
            sig = -returncode
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else "?"
            raise EdgekitError(f"TFLite Micro crashed on this model (signal {sig}, {name}) while {phase}"
                               f"{': ' + said if said else ''}; the model is malformed for TFLite Micro "
                               "even if LiteRT runs it: check its weight shapes and buffers")
        result_path = os.path.join(work, "result.json")
        if returncode != 0 or not os.path.exists(result_path):  # e.g. a Python error in the child
            err = (err or b"").decode(errors="replace").strip().splitlines()
            raise EdgekitError(f"the TFLite Micro child process failed (exit {returncode}) while {phase}: "
                               f"{said or (err[-1] if err else 'no message')}")
        with open(result_path) as f:
            result = json.load(f)
        if "error" in result:
            raise EdgekitError(f"TFLite Micro cannot run this model while {phase}: {said or result['error']}")
        with np.load(os.path.join(work, "outputs.npz")) as f:
            outputs = [f[f"y{j}"] for j in range(n_outputs)]
        return TflmResult(outputs, result["arena_bytes"], result.get("head", 0), result.get("tail", 0))


class _Forked:
    """CHILD run in a fork of this process, behind the part of Popen's interface TflmChild uses."""

    def __init__(self, work: str):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: CHILD's stdin is the pipe, its argument the folder
            try:
                os.close(write)
                os.dup2(read, 0)
                sys.stdin = open(0, closefd=False)
                sys.argv = ["-c", work]
                exec(CHILD, {"__name__": "__main__"})
            finally:
                os._exit(1)  # CHILD ends with os._exit(0); reaching here means it failed
        os.close(read)
        self.pid, self.returncode, self.stderr = pid, None, None
        self.stdin = os.fdopen(write, "wb")

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)

    def communicate(self, data: bytes, timeout: float) -> tuple[None, bytes]:
        try:
            self.stdin.write(data)
            self.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("TFLite Micro", timeout)
            time.sleep(0.002)
        return None, b""


def run_tflm(model: TFLiteModel | bytes, inputs: list[np.ndarray], timeout: float = 60) -> TflmResult:
    """Run each sample (first axis of each input) through TFLite Micro with batch 1, in a child
    process (see TflmChild.run)."""
    model = model_of(model)
    _check_inputs(model, inputs)  # a wrong input is refused before a child is started
    return TflmChild().run(model, inputs, timeout)
