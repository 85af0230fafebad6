"""Latency measured on this machine: the Raspberry Pi's CPU, or the Coral USB Accelerator on it.

    from edgekit.pi import measure
    r = measure(Path("m_edgetpu.tflite").read_bytes(), accelerator=True)      # target coral
    r = measure(Path("m_int8.tflite").read_bytes(), accelerator=False)        # target rpi4
    r["first_ms"], r["latency_ms"], r["latency_ms_p90"], r["runtime"], r["libedgetpu"]

accelerator=True runs an Edge TPU-compiled model (`*_edgetpu.tflite`, holding the
edgetpu-custom-op) through pycoral when it imports, else through LiteRT with the libedgetpu
delegate. accelerator=False runs LiteRT on the CPU with XNNPACK and `threads` threads.

Timing: the input is set once; the FIRST invoke() is timed on its own (on the Edge TPU it uploads
the model's parameters into the ~8 MB on-chip cache: 154 ms, then 24 ms per call in
google-coral/edgetpu#451), then `warmup` untimed calls, then `runs` timed calls of invoke() alone,
reported as median and 90th percentile.

Every runtime lookup is a parameter (find_usb, find_libedgetpu, import_pycoral,
interpreter_module, load_delegate, libedgetpu_flavour), so each path and each failure can be
exercised without the hardware; stand_in_cpu=True runs the same timing path on LiteRT's CPU
kernels where no accelerator is attached, and says so in the result.
"""
from __future__ import annotations

import ctypes
import hashlib
import platform
import shutil
import subprocess
import sys
import time
import warnings
from typing import Callable

import numpy as np

from .. import crash
from ..errors import EdgekitError
from ..profile_report import ProfileReport
from ..runtime.litert import interpreter_module as litert_interpreter_module, quiet
from ..sim.simulate import simulate
from ..targets import Board, Connection, detect, load_board
from ..tflite_file import builtin_name, quantization_kind, read_model

EDGETPU_OP = "edgetpu-custom-op"
STAND_IN_LABEL = "LiteRT on the CPU standing in for the Edge TPU delegate; not an Edge TPU measurement"
# libedgetpu1-std is built with THROTTLE_EDGE_TPU: a USB accelerator runs at High = 250 MHz;
# libedgetpu1-max at 500 MHz (libedgetpu's throttling build flag; Coral's performance docs).
TPU_CLOCK_HZ = {"std": 250_000_000, "max": 500_000_000}

APT_REPO = 'echo "deb https://packages.cloud.google.com/apt coral-edgetpu-stable main" | ' \
           "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list"
APT_KEY = "curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | " \
          "sudo gpg --dearmor -o /etc/apt/trusted.gpg.d/coral-edgetpu.gpg"
INSTALL_LIBEDGETPU = (
    f"add Coral's apt repository and install it: `{APT_REPO}`, then the key: `{APT_KEY}`, then "
    "`sudo apt-get update && sudo apt-get install libedgetpu1-std` (or libedgetpu1-max: 500 instead of "
    "250 MHz over USB, and the accelerator runs hot), then unplug and replug the accelerator; pycoral "
    "(optional) is `sudo apt-get install python3-pycoral`, which needs Python 3.9 or older (Raspberry Pi "
    "OS 11): without it edgekit uses LiteRT with the libedgetpu delegate")
PLUG_IN = "plug the Coral USB Accelerator into a USB 3 (blue) port"
EDGEKIT_COMPILE_HINT = " (or run `edgekit compile MODEL.tflite` where edgetpu_compiler is installed)"


def delegate_library_name(system: str | None = None) -> str:
    """The libedgetpu file name the dynamic loader looks for on this OS."""
    system = system or platform.system()
    return {"Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(system, "libedgetpu.so.1")


# ---------------------------------------------------------------------------------------------
# The default lookups (each replaceable by a parameter of measure())
# ---------------------------------------------------------------------------------------------

def find_coral_usb():
    """The Coral's USB Connection (sysfs: 1a6e:089a before its firmware loads, 18d1:9302 after),
    or None. Elsewhere than Linux there is no sysfs to look in: a placeholder, and the delegate
    itself reports a missing device."""
    board = load_board("coral")
    if sys.platform != "linux":
        return Connection(board.key, "usb", "usb:?", "unknown", description="not looked up (no sysfs)")
    return detect(board)


def find_libedgetpu(name: str) -> str | None:
    """`name` if the dynamic loader can open it, else None."""
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    return name


def import_pycoral():
    """pycoral.utils.edgetpu, or None when pycoral is not installed (other import errors propagate)."""
    try:
        from pycoral.utils import edgetpu  # type: ignore
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "pycoral":
            return None
        raise
    return edgetpu


def libedgetpu_flavour() -> str | None:
    """'std' or 'max': which libedgetpu1 package dpkg has installed (None if neither, or no dpkg)."""
    dpkg = shutil.which("dpkg-query")
    if not dpkg:
        return None
    try:
        out = subprocess.run([dpkg, "-W", "-f=${Package} ${db:Status-Abbrev}\n", "libedgetpu1-std",
                              "libedgetpu1-max"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("ii") and parts[0].startswith("libedgetpu1-"):
            return parts[0].rsplit("-", 1)[1]
    return None


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

def model_ops(model: bytes) -> dict:
    """{'compiled': bool, 'edgetpu_ops': n, 'cpu_ops': [names], 'kind': 'int8' | ...}."""
    m = read_model(model)
    names = [builtin_name(m, op.opcodeIndex) for sg in m.subgraphs for op in (sg.operators or [])]
    tpu = sum(1 for n in names if n == f"CUSTOM({EDGETPU_OP})")
    return {"compiled": tpu > 0, "edgetpu_ops": tpu, "cpu_ops": [n for n in names if n != f"CUSTOM({EDGETPU_OP})"],
            "kind": quantization_kind(m)}


def _not_compiled(kind: str) -> EdgekitError:
    if kind not in ("int8", "uint8"):
        return EdgekitError(f"the Edge TPU runs only fully 8-bit models and this one is {kind}: convert it "
                            "(`edgekit convert MODEL --calib calib.npy`), compile the int8 model with "
                            "`edgetpu_compiler MODEL_int8.tflite`, and give edgekit the MODEL_int8_edgetpu.tflite")
    return EdgekitError(f"this {kind} model is not compiled for the Edge TPU (it has no {EDGETPU_OP}): compile it "
                        "with `edgetpu_compiler MODEL.tflite` (Coral's compiler, x86-64 Linux: `sudo apt-get "
                        "install edgetpu-compiler` from Coral's apt repository), which writes "
                        f"MODEL_edgetpu.tflite, and give edgekit that file{EDGEKIT_COMPILE_HINT}; --target rpi4 "
                        "measures this model on the Pi's CPU as it is")


# ---------------------------------------------------------------------------------------------
# Interpreters
# ---------------------------------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _cpu_interpreter(lite, model: bytes, threads: int, compiled: bool):
    try:
        with quiet(), crash.doing("LiteRT", "loading the model on the CPU"):
            it = lite.Interpreter(model_content=model, num_threads=threads)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        if compiled:
            raise EdgekitError(f"LiteRT on the CPU cannot run an Edge TPU-compiled model (it has the {EDGETPU_OP}): "
                               "give the int8 model from before edgetpu_compiler, or measure this one on the "
                               "Coral (--target coral)") from None
        raise EdgekitError(f"LiteRT cannot load this model: {_first_line(e)}") from None
    return it


def _delegate(load, library: str, options: dict):
    """load_delegate(library, options), its failure turned into one line (and its noise silenced)."""
    saved_hook = sys.unraisablehook
    sys.unraisablehook = lambda *_: None  # LiteRT's Delegate.__del__ complains after a failed load
    try:
        with quiet(), crash.doing("the Edge TPU delegate", f"loading {library}"):
            return load(library, options)
    except (ValueError, OSError, AttributeError, RuntimeError) as e:
        raise EdgekitError(
            f"libedgetpu is installed but its delegate failed to load ({library}: {_first_line(e)}): unplug and "
            "replug the Coral USB Accelerator (into a USB 3, blue, port; use a powered hub if the Pi's ports "
            "are shared), make sure no other program is using it, and that your user may open it (the udev "
            "rules come with libedgetpu1-std: `sudo usermod -aG plugdev $USER`, then log in again)") from None
    finally:
        import gc
        gc.collect()
        sys.unraisablehook = saved_hook


def _allocate(it, what: str):
    try:
        with quiet(), crash.doing(what, "preparing the model for the Edge TPU"):
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgekitError(f"{what} cannot prepare this model: {_first_line(e)}; compile it again with the "
                           "edgetpu_compiler that matches the installed libedgetpu") from None
    return it


def open_interpreter(model: bytes, accelerator: bool, threads: int = 4, usb=None, stand_in_cpu: bool = False,
                     *, find_usb: Callable | None = None, find_libedgetpu: Callable | None = None,
                     import_pycoral: Callable | None = None, interpreter_module: Callable | None = None,
                     load_delegate: Callable | None = None, libedgetpu_flavour: Callable | None = None,
                     delegate_library: str | None = None) -> tuple[object, dict]:
    """An allocated interpreter for `model` and what runs it: {'runtime', 'libedgetpu', 'usb', ...}.

    The checks, in order, each failing with a one-line EdgekitError: threads >= 1; the model is
    readable; with the accelerator, it is compiled for the Edge TPU, the accelerator is plugged in
    (usb: its Connection if already found, else find_usb()), libedgetpu loads, the delegate loads.
    """
    g = globals()
    find_usb = find_usb or g["find_coral_usb"]
    find_lib = find_libedgetpu or g["find_libedgetpu"]
    get_pycoral = import_pycoral or g["import_pycoral"]
    get_lite = interpreter_module or litert_interpreter_module
    flavour_of = libedgetpu_flavour or g["libedgetpu_flavour"]
    if int(threads) < 1:
        raise EdgekitError(f"threads must be 1 or more, not {threads}")
    ops = model_ops(model)
    info = {"accelerator": bool(accelerator), "compiled": ops["compiled"], "edgetpu_ops": ops["edgetpu_ops"],
            "cpu_ops": ops["cpu_ops"] if ops["compiled"] else None}

    if not accelerator or stand_in_cpu:
        lite = get_lite()
        it = _cpu_interpreter(lite, model, int(threads), ops["compiled"])
        name = "tflite-runtime" if getattr(lite, "__name__", "").startswith("tflite_runtime") else "litert"
        info.update(runtime=f"{name} (CPU, XNNPACK, {int(threads)} threads)", threads=int(threads),
                    libedgetpu=None)
        if accelerator:
            info.update(stand_in=True, label=STAND_IN_LABEL)
        return it, info

    if not ops["compiled"]:
        raise _not_compiled(ops["kind"])
    conn = usb if usb is not None else find_usb()
    if not conn:
        ids = " / ".join(f"{u.vid}:{u.pid}" for u in load_board("coral").usb)
        raise EdgekitError(f"no Coral USB Accelerator is connected (USB ids {ids} absent): {PLUG_IN}")
    library = delegate_library or delegate_library_name()
    if not find_lib(library):
        raise EdgekitError(f"libedgetpu ({library}, the Edge TPU runtime) is not installed: {INSTALL_LIBEDGETPU}")
    flavour = flavour_of()
    info.update(libedgetpu=flavour, tpu_clock_hz=TPU_CLOCK_HZ.get(flavour), usb=_usb_info(conn),
                threads=int(threads))

    note = None
    try:
        pycoral = get_pycoral()
    except Exception as e:  # installed but broken (e.g. its tflite_runtime against numpy 2)
        pycoral, note = None, f"pycoral is installed but does not import ({_first_line(e)}); used LiteRT"
    if pycoral is not None:
        it = _delegate(lambda lib, options: pycoral.make_interpreter(model), library, {})
        it = _allocate(it, "pycoral")
        info["runtime"] = "pycoral"
    else:
        lite = get_lite()
        delegate = _delegate(load_delegate or lite.load_delegate, library, {})
        try:
            with quiet():
                it = lite.Interpreter(model_content=model, experimental_delegates=[delegate], num_threads=int(threads))
        except (ValueError, RuntimeError) as e:
            raise EdgekitError(f"LiteRT could not apply the libedgetpu delegate to this model: {_first_line(e)}; "
                               "compile it again with an edgetpu_compiler matching the installed libedgetpu") from None
        it = _allocate(it, "LiteRT with libedgetpu")
        info["runtime"] = "litert+libedgetpu"
    if note:
        info["note"] = note
    return it, info


def _usb_info(conn) -> dict | None:
    if conn is True or conn is None:
        return None
    out = {k: getattr(conn, k, None) for k in ("device", "role", "speed_mbps")}
    if getattr(conn, "vid", None):
        out["id"] = f"{conn.vid}:{conn.pid}"
    return {k: v for k, v in out.items() if v is not None}


def _inputs(it, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for d in it.get_input_details():
        dtype, shape = np.dtype(d["dtype"]), tuple(int(s) for s in d["shape"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            x = rng.integers(max(info.min, -128), min(info.max, 255) + 1, shape, dtype=np.int64).astype(dtype)
        else:
            x = rng.uniform(0, 1, shape).astype(dtype)
        out.append((d["index"], x))
    return out


# ---------------------------------------------------------------------------------------------
# measure() and infer()
# ---------------------------------------------------------------------------------------------

def measure(model: bytes, accelerator: bool, runs: int = 50, warmup: int = 5, threads: int = 4, usb=None,
            stand_in_cpu: bool = False, **lookups) -> dict:
    """Inference latency of `model` on this machine (see the module docstring).

    usb: the Coral's Connection when already found (the backend passes its connection), else
    it is looked up. lookups: find_usb, find_libedgetpu, import_pycoral, interpreter_module,
    load_delegate, libedgetpu_flavour, delegate_library (see open_interpreter).
    Returns first_ms, latency_ms (median), latency_ms_p90, latency_ms_min, latency_ms_mean,
    runs, warmup, runtime, libedgetpu ('std', 'max' or None), mode ('measured' or 'stand-in')
    and, for the stand-in, label.
    """
    if int(runs) < 1 or int(warmup) < 0:
        raise EdgekitError(f"runs must be 1 or more and warmup 0 or more (got runs={runs}, warmup={warmup})")
    model = bytes(model)
    t0 = time.perf_counter()
    it, info = open_interpreter(model, accelerator, threads, usb, stand_in_cpu, **lookups)
    load_ms = (time.perf_counter() - t0) * 1e3
    for index, x in _inputs(it):
        it.set_tensor(index, x)
    invoke = it.invoke
    where = "the Edge TPU" if accelerator and not stand_in_cpu else "LiteRT"
    try:
        with crash.doing(where, "running the model"):
            t0 = time.perf_counter()
            invoke()
            first_ms = (time.perf_counter() - t0) * 1e3
            for _ in range(int(warmup)):
                invoke()
            times = np.empty(int(runs))
            for i in range(int(runs)):
                t0 = time.perf_counter()
                invoke()
                times[i] = time.perf_counter() - t0
    except (ValueError, RuntimeError) as e:
        raise EdgekitError(f"inference on {where} failed: {_first_line(e)}"
                           + ("; check the accelerator's USB cable and power, then replug it"
                              if where == "the Edge TPU" else "")) from None
    ms = times * 1e3
    median = float(np.median(ms))
    result = {
        "mode": "stand-in" if info.get("stand_in") else "measured",
        "first_ms": first_ms, "latency_ms": median, "latency_ms_p90": float(np.percentile(ms, 90)),
        "latency_ms_min": float(ms.min()), "latency_ms_mean": float(ms.mean()),
        "first_extra_ms": first_ms - median, "load_ms": load_ms,
        "runs": int(runs), "warmup": int(warmup), "timed": "invoke() only; input set once before the first call",
        **info,
    }
    if accelerator and not stand_in_cpu:
        result["first_note"] = ("the first call also uploads the model's parameters into the Edge TPU's "
                                "on-chip cache (and, on a fresh plug-in, its firmware)")
        speed = (result.get("usb") or {}).get("speed_mbps")
        if speed and speed < 5000 and (result["usb"].get("role") == "runtime"):
            result["warning"] = f"the accelerator runs over a {speed} Mb/s (USB 2) link: {PLUG_IN}"
    return result


def infer(model: bytes, inputs: np.ndarray, accelerator: bool, threads: int = 4, usb=None,
          stand_in_cpu: bool = False, **lookups) -> list[np.ndarray]:
    """Raw outputs (one array per model output, stacked over samples) for raw inputs stacked on the
    first axis, batch 1 each: the Pi's and the Coral's backends."""
    it, _ = open_interpreter(bytes(model), accelerator, threads, usb, stand_in_cpu, **lookups)
    inp = it.get_input_details()[0]
    outs = it.get_output_details()
    results = [[] for _ in outs]
    runtime = "the Edge TPU" if accelerator and not stand_in_cpu else "LiteRT"
    for x in np.asarray(inputs):
        it.set_tensor(inp["index"], np.ascontiguousarray(x[None]).astype(inp["dtype"], copy=False))
        with crash.doing(runtime, "running the model"):
            it.invoke()
        for k, d in enumerate(outs):
            results[k].append(it.get_tensor(d["index"])[0].copy())
    return [np.stack(r) for r in results]


# ---------------------------------------------------------------------------------------------
# The profile report measured here (edgekit running on the Pi)
# ---------------------------------------------------------------------------------------------

def profile_on_board(model: bytes, board: Board | str, runs: int = 10, connection=None,
                     duration_s: float | None = None, warmup: int = 5, simulation: ProfileReport | None = None,
                     **lookups) -> ProfileReport:
    """The standard profile report with latency measured here.

    board "rpi4": LiteRT on this Pi's CPU (threads from the descriptor); "coral": the Edge TPU
    through pycoral or LiteRT + libedgetpu (connection: the Coral's Connection, when found).
    Per-layer rows and the Iron Law stay the simulator's (`simulation`, else simulated here; marked
    "layers_source": "simulated"): no runtime times single layers from Python. Energy is the
    descriptor's power.active_w times the measured median. The measurement itself (first_ms, runs,
    libedgetpu, ...) is under "measured"; "runtime" names what ran it. No "via": render_profile
    reads that as a serial port.
    """
    if duration_s:
        raise EdgekitError(f"--duration is simulated only in this edgekit; add --sim to simulate {duration_s:g} s "
                           "of sustained running, or leave out --duration to measure")
    board = load_board(board) if isinstance(board, str) else board
    if board.kind not in ("linux", "accelerator"):
        raise EdgekitError(f"{board.name} is a microcontroller: it is measured over its serial port, not here")
    accelerator = board.kind == "accelerator"
    threads = int(board.num("compute.threads", 4))
    m = measure(model, accelerator, runs=runs, warmup=warmup, threads=threads, usb=connection, **lookups)
    if m["compiled"]:  # an opaque edgetpu-custom-op: nothing per layer to simulate
        report = ProfileReport(target=board.key, board=board.name, mode="measured", runs=runs, fits=True,
                               flash_bytes=len(model), ram_bytes=None, arena_bytes=None,
                               model_sha256=hashlib.sha256(model).hexdigest())
    else:
        if simulation is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                simulation = simulate(model, board, runs=runs)
        report = simulation.copy()
        report.extra.update(layers_source="simulated", latency_ms_simulated=simulation.latency_ms)
    report.mode = "measured" if m["mode"] == "measured" else "stand-in"
    report.latency_ms, report.latency_ms_p90 = m["latency_ms"], m["latency_ms_p90"]
    report.energy_mj = board.num("power.active_w") * m["latency_ms"]
    report.extra.update(energy_source=f"estimated: power.active_w ({board.source('power.active_w')}) x measured median",
                        measured=m, runtime=m["runtime"])
    return report
