"""The conversion pipeline: import -> calibrate -> quantize -> write int8 TFLite -> verify."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
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

HOLD_OUT = 0.2          # without a validation set, this share of the calibration set is kept out
HOLD_OUT_MIN = 3        # of calibration (at least this many samples) to measure agreement on;
HOLD_OUT_FROM = 10      # smaller sets are calibrated on whole
FEW_SAMPLES = 50        # fewer calibration samples than this get a warning
RANGE_RATIO = 10        # calibration inputs this many times larger (or smaller) than the example get one


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
        """Write the model atomically: a failure leaves no half-written file. The file's mode
        follows the umask like any other output (mkstemp would make it 0600)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
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


def _quantize(model, example_input, calibration, method, percentile, per_tensor_dense, step, t0, hold_out):
    """Import, calibrate and quantize: (source, int8 bytes, Made or None, the samples calibrated on,
    those held out (or None), info, timings). hold_out: keep a seeded part of the calibration set out of calibration, so that
    agreement is measured on inputs the ranges were not fitted to."""
    step("importing")
    src = load(model, example_input)
    timings = {}
    if src.graph is None:  # already int8: nothing to quantize
        info = {"source": src.kind, "name": src.name, "calibration": None, "warnings": [], "notes": []}
        return src, src.data, None, None, None, _sized(info, src.data), timings
    g = src.graph
    passes.optimize(g)
    g.finalize()
    if len(g.inputs) != 1:
        raise EdgekitError(f"the model has {len(g.inputs)} inputs; edgekit converts single-input models")
    if calibration is None:
        raise EdgekitError("calibration data is needed to quantize: pass calibration= (or --calib "
                           "calib.npy) with 100-500 representative inputs")
    _check_working_memory(g, 1, "calibrating")  # absurd shapes are refused before reading any data
    given = _to_nhwc(load_array(calibration), g, src.layout, "calibration set")
    _check_working_memory(g, len(given), "calibrating")
    samples, held = _split(given) if hold_out else (given, None)
    warnings = _calibration_warnings(given, held, example_input)
    del given  # the split copied it: keep one copy of the data while the models load
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
            "calibration": {"method": method, "samples": int(len(samples)),
                            "held_out": 0 if held is None else int(len(held))},
            "dense_weights": "per-tensor" if per_tensor_dense else "per-channel",
            "warnings": warnings,
            "notes": list(g.notes)}  # what the importer and passes did that the user should know
    if method == "percentile":
        info["calibration"]["percentile"] = percentile
    made = Made(g, quant, record["outputs"], record["observer"])
    return src, tflite, made, samples, held, _sized(info, tflite), timings


def _split(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(calibrate on, held out): a seeded HOLD_OUT share of the samples is kept out, at least
    HOLD_OUT_MIN of them; sets smaller than HOLD_OUT_FROM are calibrated on whole."""
    n = len(samples)
    if n < HOLD_OUT_FROM:
        return samples, None
    held = np.zeros(n, bool)
    held[np.random.default_rng(0).permutation(n)[:max(HOLD_OUT_MIN, round(HOLD_OUT * n))]] = True
    return samples[~held], samples[held]


def _peak(x) -> float:
    """max |x|, without the copies np.abs would make of a whole data set."""
    x = np.asarray(getattr(x, "data", x))
    return max(-float(x.min()), float(x.max()))


def _calibration_warnings(given: np.ndarray, held, example_input) -> list[str]:
    """One line each for what makes int8 accuracy collapse while the conversion looks fine: too few
    calibration samples, or calibration inputs scaled unlike the example input."""
    out = []
    if len(given) < FEW_SAMPLES:
        kept = f" ({len(held)} more held out to measure agreement)" if held is not None else ""
        n = len(given) - (0 if held is None else len(held))
        out.append(f"calibrated on {n} sample{'' if n == 1 else 's'}{kept}: give "
                   "100-500 representative inputs, scaled as in training")
    if example_input is not None:
        out += _range_warning(_peak(given), _peak(example_input), "the example input")
    return out


def _range_warning(calib: float, other: float, what: str) -> list[str]:
    """A warning when the calibration inputs and `what` differ in magnitude by more than RANGE_RATIO
    (an all-zero input says nothing about scale)."""
    if calib == 0 or other == 0:
        return []
    ratio = max(calib, other) / min(calib, other)
    if ratio <= RANGE_RATIO:
        return []
    return [f"the calibration inputs reach |x| = {calib:.4g}, {what} |x| = {other:.4g} ({ratio:.0f}x apart): "
            f"scale the calibration inputs and {what} exactly as the training inputs were (e.g. pixels / 255)"]


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
        src, tflite, made, samples, held, info, timings = _quantize(
            model, example_input, calibration, method, percentile, per_tensor_dense, step, t0,
            hold_out=verify and val is None)
        if verify:
            t1 = time.perf_counter()
            val_samples, val_kind = samples, "calibration set"
            if held is not None:
                val_samples, val_kind = held, "held-out calibration samples"
                made.float_outputs = None  # calibration recorded the samples it calibrated on only
            if val is not None and src.graph is not None:
                calib_peak = _peak(samples)
                samples = val_samples = None  # freed first: one data set in memory at a time
                val_samples = _to_nhwc(load_array(val, "validation set"), src.graph, src.layout, "validation set")
                _check_working_memory(src.graph, len(val_samples), "verifying")
                made.float_outputs = None  # recorded on the calibration set, not the validation set
                val_kind = "validation set"
                if example_input is None:  # the example input, when given, was compared already
                    info["warnings"] += _range_warning(calib_peak, _peak(val_samples), "the validation set")
            info.update(verify_model(tflite, made, val_samples, step, tflm=tflm, val_kind=val_kind))
            timings["verify_s"] = time.perf_counter() - t1
    for warning in info.get("warnings", ()):  # `edgekit deploy --calib` prints these as they come
        step(f"warning: {warning}")
    timings["total_s"] = time.perf_counter() - t0
    info["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return Converted(tflite, src, info)
