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
from ..protocol.client import BoardGone, BoardReset, BoardTimeout, BoardUnreachable
from ..importers import read_file
from ..runtime import litert
from ..runtime.tflm import TflmChild, tflm_available
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
    declared = declared_shapes(path, data)
    if declared is not None:  # before converting: a wrong shape is the team's to fix, not the calibration set's
        check_declared(*declared, track, _model_layout(path.suffix))
    calib = None
    if calibration is not None:
        calib = _to_layout(calibration[:CALIBRATION_SAMPLES], track.layout, _model_layout(path.suffix))
    try:
        per_tensor = any(load_board(t).per_tensor_dense for t in targets)
        q = convert(path, calibration=calib, verify=False, per_tensor_dense=per_tensor)
    except EdgekitError as e:  # say which file, once
        raise EdgekitError(str(e) if path.name in str(e) else f"{path.name}: {e}") from None
    info = {"source": q.info["source"], "converted": q.info["source"] != "tflite-int8",
            "int8_sha256": q.info["model_sha256"], "int8_bytes": q.info["int8_bytes"],
            "submitted_bytes": len(data)}
    return q.tflite, info


Shape = tuple  # of int, or None for a dimension the file leaves open (a dynamic batch)


def declared_shapes(path: Path, data: bytes) -> tuple[list[Shape], list[Shape]] | None:
    """The input and output shapes the model file declares, or None when it cannot be read this way
    (a malformed file: the conversion that follows says what is wrong with it)."""
    try:
        if path.suffix.lower() == ".onnx":
            import onnx  # lazy: ~0.5 s to import

            g = onnx.load_model_from_string(data).graph
            weights = {t.name for t in g.initializer}

            def dims(v):
                if not v.type.tensor_type.HasField("shape"):
                    return None
                return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                             for d in v.type.tensor_type.shape.dim)
            return [dims(v) for v in g.input if v.name not in weights], [dims(v) for v in g.output]
        sub = TFLiteModel(data, path.stem).parsed.subgraphs[0]

        def dims(i):
            t = sub.tensors[i]
            sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else t.shape
            return tuple(int(d) if d > 0 else None for d in (sig if sig is not None else []))
        return [dims(i) for i in sub.inputs], [dims(i) for i in sub.outputs]
    except Exception:  # noqa: BLE001 - any parser may trip on a malformed file: left to the conversion
        return None


def _text(shape: Shape) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _same(have: Shape, want: tuple[int, ...]) -> bool:
    return len(have) == len(want) and all(h is None or h == w for h, w in zip(have, want))


def _input_problem(shape: Shape | None, track, layout: str) -> str | None:
    """What is wrong with a model input of `shape` (batch first) for the track, said to the team."""
    if shape is None:  # the file does not say: the conversion will tell
        return None
    per_sample = track.input_shape if layout == track.layout or len(track.input_shape) != 3 else (
        track.model_input_shape if layout == "NHWC" else
        (track.input_shape[2], track.input_shape[0], track.input_shape[1]))
    take = f"take {list(per_sample)} (a batch of one: {_text((1,) + tuple(per_sample))})"
    if len(shape) >= 1 and _same(shape[1:], per_sample) and shape[0] not in (None, 1):
        return f"your model takes a batch of {shape[0]}, {_text(shape)}; export your model to {take}"
    if not _same(shape, (1,) + tuple(per_sample)):
        given = f" ({track.layout}; your {layout} model takes it as {list(per_sample)})" if (
            len(track.input_shape) == 3 and tuple(per_sample) != track.input_shape) else ""
        return (f"your model takes {_text(shape)}; the track's input is {list(track.input_shape)} per sample"
                f"{given}: export your model to {take}")
    return None


def _output_problem(shape: Shape | None, track) -> str | None:
    if shape is None or any(d is None for d in shape[1:]) or not shape:
        return None
    want = (f"one score per class, {_text((1, track.classes))}" if track.metric == "accuracy"
            else "one anomaly score per sample, (1, 1)")
    per_sample = int(np.prod(shape[1:]))
    if shape[0] not in (None, 1) or per_sample != track.classes:
        what = f"{per_sample} score(s) per sample" if shape[0] in (None, 1) else f"a batch of {shape[0]}"
        return (f"your model gives {_text(shape)}, {what}; track '{track.name}' has {track.classes} "
                f"{'classes' if track.metric == 'accuracy' else 'output'}: export your model to give {want}")
    return None


def check_declared(inputs: list[Shape], outputs: list[Shape], track, layout: str) -> None:
    """The model must take one sample of the track's input and give one score per class."""
    if len(inputs) != 1 or len(outputs) != 1:
        raise EdgekitError(f"your model has {len(inputs)} input(s) and {len(outputs)} output(s); a track takes "
                           f"models with one input ({list(track.input_shape)} per sample) and one output")
    problem = _input_problem(inputs[0], track, layout) or _output_problem(outputs[0], track)
    if problem:
        raise EdgekitError(problem)


def check_shapes(model: TFLiteModel, track) -> None:
    """The int8 model (NHWC, as edgekit converts) must fit the track, and exchange int8 with the boards."""
    sub = model.parsed.subgraphs[0]
    shapes = [[tuple(int(d) for d in sub.tensors[i].shape) for i in ids] for ids in (sub.inputs, sub.outputs)]
    check_declared(*shapes, track, "NHWC")
    for what, t in (("input", sub.tensors[sub.inputs[0]]), ("output", sub.tensors[sub.outputs[0]])):
        if tensor_type_name(t.type) not in ("int8", "uint8"):
            raise EdgekitError(f"the model's {what} is {tensor_type_name(t.type)}; the boards exchange int8: "
                               "convert it with `edgekit convert`")


def quantized_inputs(tflite: TFLiteModel, x: np.ndarray) -> np.ndarray:
    """The test inputs as the int8 model takes them (its input scale and zero point)."""
    detail = litert.load(tflite).get_input_details()[0]
    return litert.quantize_input(x, detail)


def evaluate(job: dict) -> dict:
    started = time.monotonic()
    board = load_board(job["target"])
    # forked now, while this process has no threads (LiteRT starts its own): it waits for its job
    tflm = TflmChild(fork=True) if board.runtime == "tflm" and tflm_available()[0] else None
    try:
        return _evaluate(job, started, tflm)
    finally:
        if tflm is not None:
            tflm.close()


def _evaluate(job: dict, started: float, tflm) -> dict:
    track = load_track(job["track"])
    path = Path(job["model"])
    x, y = track.test_set()
    tflite, info = int8_model(path, track, track.limits["model_mb"], track.calibration_set(), [job["target"]])
    model = TFLiteModel(tflite, path.stem)
    check_shapes(model, track)
    xq = quantized_inputs(model, _to_layout(x, track.layout, "NHWC"))

    backend = open_backend(job["target"], job.get("force"), port=job.get("port"))
    result = {"mode": backend.mode, "detail": {**info, "selected": backend.why, "samples": int(len(y))}}
    with backend:
        lab_pc = {"lab_pc": job["lab_pc"]} if job.get("lab_pc") else {}  # a lab board's PC, to flash it there
        backend.load(model, runs=int(job.get("runs", 10)), measure_arena=False, **lab_pc)  # the test set measures it
        plan = backend.simulation  # the memory plan: a model that does not fit never runs
        if not plan.fits:
            result.update(status="violates", reason=plan.no_fit_message(), flash_bytes=plan.flash_bytes,
                          ram_bytes=plan.ram_bytes)
            return result
        if backend.mode in ("measured", "emulated"):
            backend.flash()
            result["mode"] = backend.mode  # a virtual board behind a port (a lab's stand-in) is simulated
            outputs, by = backend.infer(xq)[0], f"the board ({backend.board.name}, {backend.mode})"
        elif tflm is not None:
            left = max(10.0, track.limits["seconds"] - (time.monotonic() - started))
            r = tflm.run(model, [xq], timeout=left)
            outputs, by = r.outputs[0], "TFLite Micro on this machine"
            backend.use_host_arena(r.arena_bytes)
            backend.sim_runtime = "litert"  # the profile wants the timing: TFLite Micro's outputs are here
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
    # the int8 model each board's run will evaluate: the run converts per board, and a board whose
    # TFLite Micro reads one weight scale per dense layer gets a model of its own
    groups: dict[bool, list[str]] = {}
    for key in job["targets"]:
        groups.setdefault(load_board(key).per_tensor_dense, []).append(key)
    models, info = {}, None
    for keys in groups.values():
        tflite, made = int8_model(path, track, track.limits["model_mb"], calib, keys)
        model = TFLiteModel(tflite, path.stem)
        check_shapes(model, track)
        info = info or made
        if not made["converted"]:  # submitted as int8: every board runs that very file
            models = {k: (model, made["int8_bytes"]) for k in job["targets"]}
            break
        models.update({k: (model, made["int8_bytes"]) for k in keys})
    boards = []
    for key in job["targets"]:
        model, int8_bytes = models[key]
        row = {"target": key, "int8_bytes": int8_bytes}
        try:
            with open_backend(key, force="sim") as backend:  # the memory plan is the simulator's, board or not
                # the arena as the run gets it: TFLite Micro's own, measured here (its value does not
                # depend on the inputs), the planner's only where TFLite Micro does not run
                backend.load(model, measure_arena=True)
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
    except (BoardTimeout, BoardGone, BoardReset, BoardUnreachable) as e:  # the board, not the model:
        result = {"status": "failed", "reason": str(e), "board_lost": bool(job.get("port"))}  # try another
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
