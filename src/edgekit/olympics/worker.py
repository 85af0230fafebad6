"""The child process that touches a submitted model: `python -m edgekit.olympics.worker JOB_FOLDER`.

sandbox.run_job starts it with limits, after writing JOB_FOLDER/job.json:

  {"kind": "evaluate", "model": path, "track": track.toml, "target": "nano33ble", "force": null|"sim"|"hw"|"emu", "runs": 10}
  {"kind": "check",    "model": path, "track": track.toml, "targets": [...]}

and reads JOB_FOLDER/result.json (written whole, then renamed: never half-written). Every problem
with the model becomes {"status": "failed", "reason": one line}; only a crash of the child itself
is left to the sandbox to explain.

evaluate: int8 model (converted with the track's calibration set when float or ONNX) -> input and
output shapes against the track -> the target (the board when connected, else its simulator, as
`edgekit deploy` chooses) -> does it fit (the simulator's memory plan)? -> outputs for the whole test
set -> the metric -> latency, memory and energy from the target's profile.
On a board the outputs come from the board (`db load` + `infer` per sample, through the protocol);
on a simulated board from TFLite Micro (microcontrollers) or LiteRT (the Pi, the Coral) on this
machine, which is what the simulated board computes anyway, without a serial round trip per sample.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..backends import open_backend
from ..convert import convert
from ..errors import EdgekitError
from ..importers import read_file
from ..runtime import litert
from ..runtime.tflm import run_tflm, tflm_available
from ..targets import load_board
from ..tflite_file import TFLiteModel, tensor_type_name
from .scoring import metric
from .tracks import load_track

CALIBRATION_SAMPLES = 200


def _model_layout(suffix: str) -> str:
    return "NCHW" if suffix == ".onnx" else "NHWC"  # ONNX (and TinyTorch exports) are NCHW


def _to_layout(x: np.ndarray, have: str, want: str) -> np.ndarray:
    if x.ndim != 4 or have == want:
        return x
    return x.transpose(0, 2, 3, 1) if want == "NHWC" else x.transpose(0, 3, 1, 2)


def int8_model(path: Path, track, model_mb: float, calibration: np.ndarray | None,
               targets: list[str]) -> tuple[bytes, dict]:
    """The submission's int8 .tflite bytes: as submitted, or converted by edgekit (no verification run:
    the test set is the verification) for every board in `targets`. calibration is in the track's layout."""
    if path.stat().st_size > model_mb * 2**20:  # checked again here: the file may have grown since
        raise EdgekitError(f"'{path.name}' is over the track's {model_mb:g} MB limit")
    data = read_file(path)
    calib = None
    if calibration is not None:
        calib = _to_layout(calibration[:CALIBRATION_SAMPLES], track.layout, _model_layout(path.suffix))
    try:
        per_tensor = any(load_board(t).dense_weights == "per-tensor" for t in targets)
        q = convert(path, calibration=calib, verify=False, per_tensor_dense=per_tensor)
    except EdgekitError as e:  # say which file, once
        raise EdgekitError(str(e) if path.name in str(e) else f"{path.name}: {e}") from None
    info = {"source": q.info["source"], "converted": q.info["source"] != "tflite-int8",
            "int8_sha256": q.info["model_sha256"], "int8_bytes": q.info["int8_bytes"],
            "submitted_bytes": len(data)}
    return q.tflite, info


def check_shapes(model: TFLiteModel, track) -> None:
    """The int8 model must take one sample of the track's input and give one score per class."""
    sub = model.parsed.subgraphs[0]
    if len(sub.inputs) != 1 or len(sub.outputs) != 1:
        raise EdgekitError(f"the model has {len(sub.inputs)} inputs and {len(sub.outputs)} outputs; a track "
                           "takes models with one input and one output")
    inp, out = sub.tensors[sub.inputs[0]], sub.tensors[sub.outputs[0]]
    in_shape, out_shape = tuple(int(d) for d in inp.shape), tuple(int(d) for d in out.shape)
    if in_shape[1:] != track.model_input_shape or in_shape[0] != 1:
        raise EdgekitError(f"the model's input shape is {in_shape}, but track '{track.name}' gives "
                           f"{(1,) + track.model_input_shape}; build the model for the track's input")
    if out_shape[0] != 1 or int(np.prod(out_shape[1:])) != track.classes:
        want = "one score per class" if track.metric == "accuracy" else "one anomaly score"
        raise EdgekitError(f"the model's output shape is {out_shape}, but track '{track.name}' needs "
                           f"(1, {track.classes}): {want}")
    for what, t in (("input", inp), ("output", out)):
        if tensor_type_name(t.type) not in ("int8", "uint8"):
            raise EdgekitError(f"the model's {what} is {tensor_type_name(t.type)}; the boards exchange int8: "
                               "convert it with `edgekit convert`")


def quantized_inputs(tflite: TFLiteModel, x: np.ndarray) -> np.ndarray:
    """The test inputs as the int8 model takes them (its input scale and zero point)."""
    detail = litert.load(tflite).get_input_details()[0]
    return litert.quantize_input(x, detail)


def evaluate(job: dict) -> dict:
    started = time.monotonic()
    track = load_track(job["track"])
    path = Path(job["model"])
    x, y = track.test_set()
    tflite, info = int8_model(path, track, track.limits["model_mb"], track.calibration_set(), [job["target"]])
    model = TFLiteModel(tflite, path.stem)
    check_shapes(model, track)
    xq = quantized_inputs(model, _to_layout(x, track.layout, "NHWC"))

    backend = open_backend(job["target"], job.get("force"))
    result = {"mode": backend.mode, "detail": {**info, "selected": backend.why, "samples": int(len(y))}}
    with backend:
        backend.load(model, runs=int(job.get("runs", 10)), measure_arena=False)  # the test set measures it
        plan = backend.simulation  # the memory plan: a model that does not fit never runs
        if not plan.fits:
            result.update(status="violates", reason=plan.no_fit_message(), flash_bytes=plan.flash_bytes,
                          ram_bytes=plan.ram_bytes)
            return result
        if backend.mode in ("measured", "emulated"):
            backend.flash()
            outputs, by = backend.infer(xq)[0], f"the board ({backend.board.name}, {backend.mode})"
        elif backend.board.runtime == "tflm" and tflm_available()[0]:
            left = max(10.0, track.limits["seconds"] - (time.monotonic() - started))
            r = run_tflm(model, [xq], timeout=left)
            outputs, by = r.outputs[0], "TFLite Micro on this machine"
            backend.use_host_arena(r.arena_bytes)
        else:
            outputs, by = litert.run(model, xq, raw=True)[0][0], "LiteRT on this machine"
        report = backend.profile()
    result["detail"].update(outputs_by=by, via=report.via, firmware=(report.board_info or {}).get("firmware"))
    result.update(status="ok", reason=None, metric_value=metric(track.metric, outputs.astype(np.float64), y),
                  latency_ms=float(report.latency_ms), flash_bytes=int(report.flash_bytes),
                  ram_bytes=int(report.ram_bytes), arena_bytes=int(report.arena_bytes or 0),
                  energy_mj=float(report.energy_mj))
    if not report.fits:
        result.update(status="violates", reason=report.no_fit_message())
    return result


def check(job: dict) -> dict:
    """Is the model valid for the track, and does it fit each board? (No test set needed.)"""
    track = load_track(job["track"])
    path = Path(job["model"])
    notes = []
    if track.calibration_path.is_file():
        calib = track.calibration_set()
    else:  # a team may not have the calibration set: size and speed do not depend on its values
        calib = np.random.default_rng(0).uniform(0, 1, (64,) + track.input_shape).astype(np.float32)
        notes.append("the track's calibration set is not here: converted with random inputs, enough to "
                     "check sizes (the staff convert with the real one)")
    tflite, info = int8_model(path, track, track.limits["model_mb"], calib, job["targets"])
    model = TFLiteModel(tflite, path.stem)
    check_shapes(model, track)
    boards = []
    for key in job["targets"]:
        row = {"target": key}
        try:
            with open_backend(key, force="sim") as backend:  # the memory plan is the simulator's, board or not
                backend.load(model, measure_arena=False)
                plan = backend.simulation
            row.update(fits=bool(plan.fits), latency_ms=plan.latency_ms, flash_bytes=plan.flash_bytes,
                       ram_bytes=plan.ram_bytes, energy_mj=plan.energy_mj,
                       reason=None if plan.fits else plan.no_fit_message())
        except EdgekitError as e:
            row.update(fits=False, reason=str(e))
        boards.append(row)
    return {"status": "ok", "model": info, "boards": boards, "notes": notes}


def main(argv: list[str]) -> int:
    work = Path(argv[0])
    job = json.loads((work / "job.json").read_text())
    try:
        result = (check if job["kind"] == "check" else evaluate)(job)
    except EdgekitError as e:
        result = {"status": "failed", "reason": str(e)}
    except MemoryError:
        result = {"status": "failed", "reason": "ran out of memory (the track's memory_mb limit); the model is "
                                                "too large or malformed"}
    except Exception as e:  # a malformed model can trip any parser: it fails this submission only
        msg = " ".join(str(e).split())[:200]
        result = {"status": "failed", "reason": f"the model could not be evaluated ({type(e).__name__}: {msg})"}
    tmp = work / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, work / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
