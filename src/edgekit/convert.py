"""The conversion pipeline: import -> calibrate -> quantize -> write int8 TFLite -> verify."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from . import budget, passes, reference
from .array_file import load_array
from .convert_report import render_text
from .errors import EdgekitError
from .export.tflite_writer import write_tflite
from .importers import Source, load
from .quantize.calibrate import calibrate
from .quantize.scheme import quantize_graph
from .runtime import litert
from .runtime.tflm import TflmChild, tflm_available
from .verify import Made, verify_model


def _to_nhwc(samples: np.ndarray, graph, layout: str, what: str) -> np.ndarray:
    """Check the samples' shape against the model's input and reorder NCHW data to NHWC."""
    shape = graph.tensors[graph.inputs[0]].shape
    if samples.ndim == 0 or samples.size == 0:
        raise EdgekitError(f"the {what} is empty; give at least one sample (100-500 is typical)")
    want = shape[1:]
    given = samples.shape[1:]
    if layout == "NCHW" and len(shape) == 4:
        want = (shape[3], shape[1], shape[2])
    if tuple(given) != tuple(want):
        raise EdgekitError(f"the {what} has shape {samples.shape}, but the model's input is "
                           f"{(1,) + tuple(want)}; give an array of shape (N, {', '.join(map(str, want))})")
    if layout == "NCHW" and len(shape) == 4:
        samples = samples.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(samples, np.float32)


def _check_working_memory(graph, samples: int, doing: str) -> None:
    """Refuse, before anything is allocated, work whose float activations exceed the memory budget.

    Calibration and verification run one sample at a time: they hold one sample's activations
    (float, and int8 beside them for per-layer SQNR) and every sample's outputs. Declared shapes
    count as they are (a batch other than 1 only makes the estimate larger)."""
    per_sample = {name: 4 * math.prod(max(int(d), 1) for d in t.shape)
                  for name, t in graph.tensors.items() if not t.is_const}
    every = sum(per_sample.values())
    ends = sum(per_sample.get(t, 0) for t in (*graph.inputs, *graph.outputs))
    need = 2 * every + 2 * ends * samples
    biggest = max(per_sample, key=per_sample.get)
    budget.check_memory(need, f"{doing} on {samples} sample(s) (the largest tensor, '{biggest}', "
                              f"holds {per_sample[biggest] / 2**20:,.1f} MB per sample)")


class Converted:
    """An int8 TFLite model with the evidence that it is right (see report())."""

    def __init__(self, tflite: bytes, source: Source, info: dict):
        self.tflite, self.source, self.info = tflite, source, info

    @property
    def graph(self):
        return self.source.graph

    def save(self, path) -> Path:
        """Write the model atomically: a failure leaves no half-written file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.tflite)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def predict(self, x) -> np.ndarray:
        """The int8 model's (dequantized) first output for a batch in the source's layout."""
        x = load_array(x, "input")
        if self.graph is not None:
            x = _to_nhwc(x, self.graph, self.source.layout, "input")
        return litert.run(self.tflite, x)[0][0]

    def float_predict(self, x) -> np.ndarray:
        """The float model's first output (numpy reference), for comparison."""
        g = self.graph
        if g is None:
            raise EdgekitError("this model was already int8; there is no float model to run")
        x = _to_nhwc(load_array(x, "input"), g, self.source.layout, "input")
        return reference.run(g, {g.inputs[0]: x})[g.outputs[0]]

    def to_dict(self) -> dict:
        return self.info

    def report(self) -> str:
        return render_text(self.info)

    def __repr__(self):
        return f"<Converted {self.source.name}: {len(self.tflite)} bytes int8>"


def _quantize(model, example_input, calibration, method, percentile, per_tensor_dense, step, t0):
    """Import, calibrate and quantize: (source, int8 bytes, Made or None, samples, info, timings)."""
    step("importing")
    src = load(model, example_input)
    timings = {}
    if src.graph is None:  # already int8: nothing to quantize
        info = {"source": src.kind, "name": src.name, "calibration": None}
        return src, src.data, None, None, _sized(info, src.data), timings
    g = src.graph
    passes.optimize(g)
    g.finalize()
    if len(g.inputs) != 1:
        raise EdgekitError(f"the model has {len(g.inputs)} inputs; edgekit converts single-input models")
    if calibration is None:
        raise EdgekitError("calibration data is needed to quantize: pass calibration= (or --calib "
                           "calib.npy) with 100-500 representative inputs")
    _check_working_memory(g, 1, "calibrating")  # absurd shapes are refused before reading any data
    samples = _to_nhwc(load_array(calibration), g, src.layout, "calibration set")
    _check_working_memory(g, len(samples), "calibrating")
    timings["import_s"] = time.perf_counter() - t0
    step(f"calibrating ({method}, {len(samples)} samples)")
    record: dict = {}
    ranges = calibrate(g, samples, method, percentile, record=record)
    step("quantizing")
    quant = quantize_graph(g, ranges, per_tensor_dense)
    tflite = write_tflite(g, quant, description=f"edgekit int8 from {src.kind}")
    timings["quantize_s"] = time.perf_counter() - t0 - timings["import_s"]
    float_bytes = len(src.data) if src.kind == "tflite-float" else len(write_tflite(g))  # as given, or as written
    info = {"source": src.kind, "name": src.name, "float_bytes": float_bytes,
            "calibration": {"method": method, "samples": int(len(samples))},
            "dense_weights": "per-tensor" if per_tensor_dense else "per-channel"}
    if method == "percentile":
        info["calibration"]["percentile"] = percentile
    return src, tflite, Made(g, quant, record["outputs"], record["observer"]), samples, _sized(info, tflite), timings


def _sized(info: dict, tflite: bytes) -> dict:
    info["model_sha256"] = hashlib.sha256(tflite).hexdigest()
    info["int8_bytes"] = len(tflite)
    return info


def convert(model, example_input=None, calibration=None, method: str = "minmax", val=None,
            percentile: float = 99.99, verify: bool = True, progress=None,
            per_tensor_dense: bool = False) -> Converted:
    """Convert a TinyTorch model, an .onnx or a float .tflite file, or an edgekit float `Graph`
    (e.g. from edgekit.zoo; the caller's graph is left unchanged) to a verified int8 model.

    An int8 .tflite passes through untouched (and is verified). `calibration` and `val` are
    arrays (or .npy/.npz paths) of inputs, in the model's own layout (NCHW for TinyTorch and ONNX,
    NHWC for a Graph). per_tensor_dense: one scale per dense weight tensor, for TFLite Micro before
    2024 (the Arduino library the Nano builds with); otherwise one per output, as TF writes them.
    """
    step = progress or (lambda msg: None)
    t0 = time.perf_counter()
    # TFLite Micro's child starts now, so its start-up overlaps calibration
    with (TflmChild() if verify and tflm_available()[0] else contextlib.nullcontext()) as tflm:
        src, tflite, made, samples, info, timings = _quantize(model, example_input, calibration, method,
                                                              percentile, per_tensor_dense, step, t0)
        if verify:
            t1 = time.perf_counter()
            val_samples = samples
            if val is not None and src.graph is not None:
                val_samples = _to_nhwc(load_array(val, "validation set"), src.graph, src.layout, "validation set")
                _check_working_memory(src.graph, len(val_samples), "verifying")
                made.float_outputs = None  # recorded on the calibration set, not the validation set
            info.update(verify_model(tflite, made, val_samples, step, tflm=tflm,
                                     val_kind="calibration set" if val is None else "validation set"))
            timings["verify_s"] = time.perf_counter() - t1
    timings["total_s"] = time.perf_counter() - t0
    info["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return Converted(tflite, src, info)
