"""deploy and profile: a model onto a target (the board, or its simulator), with the same code path.

deploy = convert if needed -> does it fit? -> flash -> check the board's outputs against TFLite
Micro on this machine -> profile. profile = the same without flashing checks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EdgekitError
from .targets.target import select

VERIFY_SAMPLES = 4


def int8_model(model, calibration=None, example_input=None, progress=lambda m: None,
               accept=("int8", "uint8")) -> tuple[bytes, dict | None]:
    """The int8 .tflite bytes for `model`: as is when already int8, else converted (needs calibration).
    accept: the quantization kinds taken as they are (the Coral also takes "mixed", to judge op by op)."""
    from .convert import Converted, convert
    if isinstance(model, Converted):
        return model.tflite, model.info
    if isinstance(model, (bytes, bytearray)):
        return bytes(model), None
    if isinstance(model, (str, Path)) and Path(model).suffix == ".tflite":
        from .importers import read_file
        from .tflite_file import quantization_kind, read_model
        from .tflite_check import check_memory
        data = read_file(Path(model))
        parsed = read_model(data, Path(model).name)
        if quantization_kind(parsed) in accept:
            check_memory(parsed, Path(model).name)  # before a board, its simulator or LiteRT allocates
            return data, None
    if calibration is None:
        raise EdgekitError("this model is not int8 yet: give calibration inputs (--calib calib.npy) so "
                           "edgekit can convert it, or run `edgekit convert` first")
    progress("converting to int8")
    q = convert(model, example_input=example_input, calibration=calibration, progress=progress)
    return q.tflite, q.info


def _host_arena(model: bytes, conversion: dict | None) -> int | None:
    """TFLite Micro's measured arena on this machine, if TFLM runs here."""
    if conversion and conversion.get("tflm", {}).get("ran"):
        return conversion["tflm"]["arena_bytes"]
    from .runtime.tflm import run_tflm, tflm_available
    from .tflite_file import quantization_kind, read_model
    if not tflm_available()[0] or quantization_kind(read_model(model)) != "int8":
        return None
    try:
        return run_tflm(model, [_sample_inputs(model, 1)]).arena_bytes
    except EdgekitError:
        return None  # the planner still gives the arena; TFLM's refusal shows up at deploy


def _sample_inputs(model: bytes, n: int) -> np.ndarray:
    from .verify import random_inputs
    return random_inputs(model)[:n]


def profile(model, target: str, runs: int = 10, force: str | None = None, duration_s: float | None = None,
            calibration=None, example_input=None, progress=lambda m: None, usb: int = 3,
            clock: str = "max") -> dict:
    """Profile `model` (an int8 .tflite, or anything convert() takes plus calibration) on `target`."""
    tflite, conversion = int8_model(model, calibration, example_input, progress=progress, accept=_accept(target))
    t, why = select(target, force)
    progress(why)
    coral, run = _coral(t, tflite, model, usb, clock, progress)
    host_arena = _host_arena(tflite, conversion) if t.board.kind == "mcu" else None
    report = t.profile(run, runs=runs, duration_s=duration_s, host_arena=host_arena)
    report["selected"] = why
    _add_coral(report, coral)
    return report


def deploy(model, target: str, runs: int = 10, force: str | None = None, calibration=None,
           example_input=None, progress=lambda m: None, usb: int = 3, clock: str = "max") -> dict:
    """Deploy `model` to `target` (the board, or its simulator) and profile it there."""
    tflite, conversion = int8_model(model, calibration, example_input, progress=progress, accept=_accept(target))
    t, why = select(target, force)
    progress(why)
    coral, run = _coral(t, tflite, model, usb, clock, progress)
    progress("checking memory")
    t.prepare(run)
    progress("flashing")
    t.flash(run)
    if t.mode == "measured" and t.board.kind == "accelerator":
        # a compiled model's edgetpu-custom-op has no reference runtime on the host to compare with
        check = {"samples": 0, "max_lsb": 0, "reference": "none (the Edge TPU's compiled op has no host reference)"}
    else:
        progress("checking the board's outputs against TFLite Micro on this machine")
        check = verify_outputs(t, tflite)
    host_arena = _host_arena(tflite, conversion) if t.board.kind == "mcu" else None
    progress("profiling")
    report = t.profile(run, runs=runs, host_arena=host_arena)
    report.update(selected=why, outputs_check=check, converted=conversion is not None)
    _add_coral(report, coral)
    return report


def _accept(target: str) -> tuple[str, ...]:
    """Quantization kinds a target takes as they are. The Coral's plan judges "mixed" models op by op
    (a float interface is fine, a float op in the middle is refused with its name)."""
    from .targets import load_board
    return ("int8", "uint8", "mixed") if load_board(target).kind == "accelerator" else ("int8", "uint8")


def _coral(t, tflite: bytes, model, usb: int, clock: str, progress):
    """For the Coral: the Edge TPU plan (compiled where edgetpu_compiler is, else predicted), made
    before anything runs, and the bytes the target runs (the compiled model on the accelerator).
    Other targets: (None, tflite)."""
    if t.board.kind != "accelerator":
        return None, tflite
    from .edgetpu.plan import need_compiled, plan
    name = Path(model).stem if isinstance(model, (str, Path)) else "model"
    p = plan(tflite, name)  # refuses float, partly quantized and nothing-maps models, naming the op
    from .tflite_file import quantization_kind, read_model
    if p.compiled is not tflite and quantization_kind(read_model(tflite)) == "mixed":
        raise EdgekitError("this model is int8 inside but takes or gives float32 at its edges (QUANTIZE/DEQUANTIZE "
                           "on the CPU); edgekit exchanges int8 with its targets: convert it with `edgekit convert` "
                           "for int8 inputs and outputs")
    progress(f"{t.key}: {p.note}")
    if t.mode == "measured":
        return p, need_compiled(p)
    if p.compiled is tflite:
        raise EdgekitError("the simulator needs the int8 model from before edgetpu_compiler (this one is already "
                           "compiled, its Edge TPU part opaque): give that model, or run this one on the Coral "
                           "itself (--hw)")
    t.options = {"usb": usb, "clock": clock, "partition": p.partition}
    return p, tflite


def _add_coral(report: dict, p) -> None:
    """The measured report gets the plan's `edgetpu` object (the simulated one has it already)."""
    if p is None:
        return
    from .edgetpu.plan import summary
    if "edgetpu" not in report:
        report["edgetpu"] = summary(p.partition)
    report["edgetpu"]["plan"] = p.note
    if p.compiled_path is not None:
        report["edgetpu"]["compiled_model"] = str(p.compiled_path)


def verify_outputs(t, tflite: bytes) -> dict:
    """The target's outputs on a few inputs against the host reference (TFLM, else LiteRT)."""
    from .runtime import litert
    from .runtime.tflm import run_tflm, tflm_available
    x = _sample_inputs(tflite, VERIFY_SAMPLES)
    got = t.infer(x)
    if tflm_available()[0]:
        want, ref = run_tflm(tflite, [x]).outputs, "TFLite Micro on this machine"
    else:
        want, ref = litert.run(tflite, x, raw=True)[0], "LiteRT on this machine"
    worst = max(int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max()) for a, b in zip(got, want))
    if worst > 1:
        i = int(np.argmax([np.abs(a.astype(np.int32) - b.astype(np.int32)).max() for a, b in zip(got, want)]))
        raise EdgekitError(f"the board's output {i} differs from {ref} by up to {worst} steps on the same "
                           "input; the firmware and the model disagree: rebuild and flash again")
    return {"samples": VERIFY_SAMPLES, "max_lsb": worst, "reference": ref}
