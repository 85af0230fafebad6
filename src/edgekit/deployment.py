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


def int8_model(model, calibration=None, example_input=None, progress=lambda m: None) -> tuple[bytes, dict | None]:
    """The int8 .tflite bytes for `model`: as is when already int8, else converted (needs calibration)."""
    from .convert import Converted, convert
    if isinstance(model, Converted):
        return model.tflite, model.info
    if isinstance(model, (bytes, bytearray)):
        return bytes(model), None
    if isinstance(model, (str, Path)) and Path(model).suffix == ".tflite":
        from .importers import _read
        from .tflite_file import quantization_kind, read_model
        data = _read(Path(model))
        if quantization_kind(read_model(data, Path(model).name)) in ("int8", "uint8"):
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
    from .verify import _random_inputs
    return _random_inputs(model)[:n]


def profile(model, target: str, runs: int = 10, force: str | None = None, duration_s: float | None = None,
            calibration=None, example_input=None, progress=lambda m: None, usb: int = 3,
            clock: str = "max") -> dict:
    """Profile `model` (an int8 .tflite, or anything convert() takes plus calibration) on `target`."""
    tflite, conversion = int8_model(model, calibration, example_input, progress=progress)
    t, why = select(target, force)
    t.options = _coral_options(t, usb, clock)
    progress(why)
    host_arena = _host_arena(tflite, conversion) if t.board.kind == "mcu" else None
    report = t.profile(tflite, runs=runs, duration_s=duration_s, host_arena=host_arena)
    report["selected"] = why
    return report


def deploy(model, target: str, runs: int = 10, force: str | None = None, calibration=None,
           example_input=None, progress=lambda m: None, usb: int = 3, clock: str = "max") -> dict:
    """Deploy `model` to `target` (the board, or its simulator) and profile it there."""
    tflite, conversion = int8_model(model, calibration, example_input, progress=progress)
    t, why = select(target, force)
    t.options = _coral_options(t, usb, clock)
    progress(why)
    progress("checking memory")
    t.prepare(tflite)
    progress("flashing")
    t.flash(tflite)
    if t.mode == "measured" and t.board.kind == "accelerator":
        # a compiled model's edgetpu-custom-op has no reference runtime on the host to compare with
        check = {"samples": 0, "max_lsb": 0, "reference": "none (the Edge TPU's compiled op has no host reference)"}
    else:
        progress("checking the board's outputs against TFLite Micro on this machine")
        check = verify_outputs(t, tflite)
    host_arena = _host_arena(tflite, conversion) if t.board.kind == "mcu" else None
    progress("profiling")
    report = t.profile(tflite, runs=runs, host_arena=host_arena)
    report.update(selected=why, outputs_check=check, converted=conversion is not None)
    return report


def _coral_options(t, usb: int, clock: str) -> dict:
    """The Coral's link and clock, when they differ from the defaults (the simulator needs them)."""
    if t.board.kind != "accelerator" or (usb, clock) == (3, "max"):
        return {}
    return {"usb": usb, "clock": clock}


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
