"""Running the virtual board's model: TFLite Micro in one persistent child process, or LiteRT.

`run_tflm` (edgekit.runtime.tflm) starts a fresh child per call (~0.25 s) and also searches the
exact arena; a board answering `infer` many times cannot pay that each time. `TflmWorker` starts
one child that loads the model once and then runs inputs sent over a pipe (~0.1 ms each). The child
is still a separate process, so a model that crashes TFLite Micro kills the child, not the caller:
the caller gets one EdgekitError with TFLite Micro's last messages.

`ModelRunner` picks the runtime (TFLite Micro for MCU boards when the wheel is installed, LiteRT
otherwise and for the Pi and Coral) and caches outputs by input bytes.
"""
from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict

import numpy as np

from .. import crash
from ..console import err
from ..errors import EdgekitError
from ..runtime import litert
from ..runtime.tflm import child_env, tflm_available, tflm_messages
from ..tflite_file import TFLiteModel, builtin_name, model_of, tensor_type_name

FIRST_ARENA = 64 * 2**20  # as run_tflm: untouched arena pages cost nothing

# The child: reads length-prefixed messages on stdin, answers on its original stdout (fd 1 is then
# pointed at a log file, where TFLite Micro's C-level prints go).
WORKER = r'''
import ctypes, json, os, re, struct, sys
resp = os.fdopen(os.dup(1), "wb", buffering=0)
req = os.fdopen(os.dup(0), "rb", buffering=0)
try:
    libc = ctypes.CDLL(None)
    libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
    libc.setvbuf(ctypes.c_void_p.in_dll(libc, "stdout"), None, 2, 0)
except Exception:
    pass
log_path = sys.argv[1]
log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
os.dup2(log_fd, 1)
os.dup2(log_fd, 2)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)

def mark(phase):
    os.write(1, ("@@phase " + phase + "\n").encode())

def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = req.read(n - len(buf))
        if not chunk:
            sys.exit(0)  # the parent went away
        buf += chunk
    return buf

def recv():
    return read_exact(struct.unpack("<I", read_exact(4))[0])

def send(kind, payload):
    resp.write(struct.pack("<BI", kind, len(payload)) + payload)

mark("start")
import numpy as np
from tflite_micro.python.tflite_micro import runtime
model = recv()  # stays referenced: TFLite Micro reads the model in place
spec = json.loads(recv())
try:
    mark("load")
    it = runtime.Interpreter.from_bytes(model, arena_size=spec["arena"])
    it.print_allocations()
    log = open(log_path, errors="replace").read()
    m = re.findall(r"Arena allocation total (\d+) bytes", log)
    send(0, json.dumps({"arena_used": int(m[-1]) if m else None}).encode())
except Exception as e:
    send(1, str(e).encode(errors="replace"))
    sys.exit(0)
mark("run")
inputs = [(tuple(s), np.dtype(d)) for s, d in spec["inputs"]]
while True:
    data = recv()
    try:
        pos = 0
        for i, (shape, dtype) in enumerate(inputs):
            n = int(np.prod(shape)) * dtype.itemsize
            it.set_input(np.frombuffer(data[pos:pos + n], dtype=dtype).reshape(shape), i)
            pos += n
        it.invoke()
        out = b"".join(np.ascontiguousarray(np.array(it.get_output(j))).tobytes()
                       for j in range(spec["n_outputs"]))
        send(0, out)
    except Exception as e:
        send(1, str(e).encode(errors="replace"))
'''


def tflm_refusal(model: TFLiteModel | bytes) -> str | None:
    """Why TFLite Micro cannot run this model, when the file alone tells (else None).

    uint8 (legacy, pre-int8) quantization: TFLite Micro's kernels take int8 only and refuse the
    first uint8 op while allocating ("Hybrid models are not supported on TFLite Micro"), which
    reaches the caller as a bare "failed to allocate tensors". QUANTIZE and DEQUANTIZE do take
    uint8 (an int8 model may convert a uint8 camera input), so those are allowed."""
    m = model_of(model).parsed
    sg = m.subgraphs[0]
    for o in sg.operators or []:
        name = builtin_name(m, o.opcodeIndex)
        if name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        used = list(o.inputs if o.inputs is not None else []) + list(o.outputs if o.outputs is not None else [])
        if any(i >= 0 and tensor_type_name(sg.tensors[i].type) == "uint8" for i in used):
            return ("this model is uint8 (legacy quantization), which TensorFlow Lite Micro does not run: convert "
                    "its float original (.onnx or float .tflite) to int8 with `edgekit convert float_model.onnx "
                    "--calib calib.npy`")
    return None


class TflmWorker:
    """One TFLite Micro interpreter in a child process, kept for many `run` calls."""

    def __init__(self, model: TFLiteModel | bytes, inputs: list[tuple[tuple[int, ...], str]], n_outputs: int,
                 timeout: float = 60.0):
        ok, why = tflm_available()
        if not ok:
            raise EdgekitError(f"cannot run TFLite Micro: {why}")
        model = model_of(model)
        refusal = tflm_refusal(model)
        if refusal:  # said before starting the child, whose own error would not name the cause
            raise EdgekitError(refusal)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="edgekit-tflm-worker-")
        self._log = os.path.join(self._dir.name, "tflm.log")
        self._proc = subprocess.Popen([sys.executable, "-c", WORKER, self._log], env=child_env(),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, cwd=self._dir.name)
        self._send(model.data)  # the child parses the bytes itself
        self._send(json.dumps({"arena": FIRST_ARENA, "inputs": [[list(s), d] for s, d in inputs],
                               "n_outputs": n_outputs}).encode())
        kind, payload = self._recv()
        if kind != 0:  # the exception says only "failed to allocate tensors": the log says why
            _, said = tflm_messages(open(self._log, errors="replace").read())
            self.close()
            raise EdgekitError(f"TFLite Micro cannot load this model: {payload.decode(errors='replace')}"
                               f"{' (' + said + ')' if said else ''}")
        self.arena_used = json.loads(payload).get("arena_used")

    def _send(self, payload: bytes) -> None:
        try:
            self._proc.stdin.write(struct.pack("<I", len(payload)) + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died()

    def _recv(self) -> tuple[int, bytes]:
        head = self._read_exact(5)
        kind, n = struct.unpack("<BI", head)
        return kind, self._read_exact(n)

    def _read_exact(self, n: int) -> bytes:
        fd = self._proc.stdout.fileno()
        buf = bytearray()
        deadline = time.monotonic() + self.timeout
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise EdgekitError(f"TFLite Micro did not answer within {self.timeout:g} s; the model may be "
                                   "too large for a virtual board: try a smaller one")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, n - len(buf))
                if not chunk:
                    self._died()
                buf += chunk
        return bytes(buf)

    def _died(self):
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        code = self._proc.returncode
        log = open(self._log, errors="replace").read() if os.path.exists(self._log) else ""
        phase, said = tflm_messages(log)
        self.close()
        how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
        raise EdgekitError(f"TFLite Micro's worker process died ({how}) while {phase}"
                           f"{': ' + said if said else ''}; the model is malformed for TFLite Micro even if "
                           "LiteRT runs it: check its weight shapes and buffers")

    def run(self, data: bytes) -> bytes:
        """The raw output bytes (all outputs concatenated) for the raw input bytes."""
        with self._lock:
            if self._proc is None:
                raise EdgekitError("the TFLite Micro worker was closed; create the virtual board again")
            self._send(data)
            kind, payload = self._recv()
        if kind != 0:
            raise EdgekitError(f"TFLite Micro failed to invoke the model: {payload.decode(errors='replace')}")
        return payload

    def close(self) -> None:
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is not None:
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        d = getattr(self, "_dir", None)
        if d is not None:
            d.cleanup()
            self._dir = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


class LiteRTRunner:
    """LiteRT in this process (fast to start; used for the Pi, the Coral and without TFLite Micro)."""

    def __init__(self, model: TFLiteModel, inputs, n_outputs: int):
        self._model = model
        self._it = litert.load(model)
        self.note = self._it.edgekit_fallback
        if self.note:  # the outputs still come, from other kernels than the board's default: say so
            err.print(f"note: {self.note}", highlight=False)
        self._inputs = [(d["index"], tuple(d["shape"]), np.dtype(d["dtype"])) for d in self._it.get_input_details()]
        self._outputs = [d["index"] for d in self._it.get_output_details()]
        self._lock = threading.Lock()
        self.arena_used = None

    def run(self, data: bytes) -> bytes:
        with self._lock:
            pos = 0
            for index, shape, dtype in self._inputs:
                n = int(np.prod(shape)) * dtype.itemsize
                self._it.set_tensor(index, np.frombuffer(data[pos:pos + n], dtype=dtype).reshape(shape))
                pos += n
            with crash.doing("LiteRT", "running the model on the virtual board"):
                self._it.invoke()
            return b"".join(np.ascontiguousarray(self._it.get_tensor(i)).tobytes() for i in self._outputs)

    def close(self) -> None:
        self._it = None


class ModelRunner:
    """Outputs of one model for raw input bytes, cached by input (a board runs one input many times).

    runtime: "tflm" or "litert" (what the board uses), "auto" = TFLite Micro when the board runs it
    and the wheel is installed, else LiteRT. The runtime starts on first use (or `start()`).
    """

    def __init__(self, model: TFLiteModel | bytes, inputs: list[tuple[tuple[int, ...], str]], n_outputs: int,
                 runtime: str = "auto", cache: int = 64):
        self.model, self.inputs, self.n_outputs = model_of(model), inputs, n_outputs
        if runtime == "auto":
            runtime = "tflm" if tflm_available()[0] else "litert"
        self.runtime = runtime
        self._impl = None
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_size = cache
        self._lock = threading.Lock()
        self.runs = 0  # model invocations actually made (cache misses)

    def start(self):
        with self._lock:
            if self._impl is None:
                cls = TflmWorker if self.runtime == "tflm" else LiteRTRunner
                self._impl = cls(self.model, self.inputs, self.n_outputs)
            return self._impl

    @property
    def arena_used(self) -> int | None:
        return self.start().arena_used

    def run(self, data: bytes) -> bytes:
        data = bytes(data)
        hit = self._cache.get(data)
        if hit is not None:
            self._cache.move_to_end(data)
            return hit
        out = self.start().run(data)
        self.runs += 1
        self._cache[data] = out
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def close(self) -> None:
        with self._lock:
            if self._impl is not None:
                self._impl.close()
                self._impl = None
