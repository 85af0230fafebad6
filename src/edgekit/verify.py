"""Evidence that an int8 model is right: it loads in LiteRT and TFLite Micro, agrees with the
float model, and needs a known tensor arena."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import budget
from .errors import EdgekitError
from .graph import Graph
from .quantize.observe import Observer
from .runtime import litert
from .runtime.tflm import TflmChild, tflm_available
from .sim.arena import plan_arena
from .sim.layers import layers
from .tflite_file import NUMPY_TYPES, TFLiteModel, builtin_name, model_of, tensor_type_name, text

SQNR_SAMPLES = 32       # per-layer SQNR: at most this many samples,
SQNR_VALUES = 2**24     # and about this many activation values in all (MobileNetV2/224: 2 samples)
TFLM_SAMPLES = 8        # TFLM runs a few samples to show whether it agrees with LiteRT,
TFLM_WORK = 50_000_000  # about this many MACs in all: its reference kernels do ~1.5 GMAC/s on a PC


@dataclass
class Made:
    """What is known about a model edgekit made: the float graph and the int8 model's quantization,
    and from calibration the float model's first output over the samples and the float model
    loaded in LiteRT."""
    graph: Graph
    quant: dict
    float_outputs: np.ndarray | None = None
    float_observer: Observer | None = None


def _sqnr_db(signal: float, noise: float) -> float | None:
    """Signal-to-quantization-noise ratio in dB; each bit of precision is worth ~6 dB."""
    if noise == 0:
        return None  # exact: infinite SQNR (JSON has no infinity)
    return round(10 * np.log10(max(signal, 1e-30) / noise), 2)


def agreement(float_out: np.ndarray, int8_out: np.ndarray) -> dict:
    err = np.abs(float_out - int8_out)
    out = {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}
    if float_out.ndim >= 2 and float_out.shape[-1] > 1:  # a classifier: do the top-1 classes agree?
        same = float_out.reshape(len(float_out), -1).argmax(1) == int8_out.reshape(len(int8_out), -1).argmax(1)
        out["top1_agreement"] = float(same.mean())
    return out


def sqnr_samples(graph: Graph, available: int) -> int:
    """How many samples per-layer SQNR looks at: enough to be stable, bounded in work."""
    per_sample = sum(graph.nbytes(t) // 4 for t in graph.activations())
    return max(1, min(SQNR_SAMPLES, available, SQNR_VALUES // max(per_sample, 1)))


def per_layer_sqnr(graph: Graph, quant: dict, samples: np.ndarray, floats: Observer | None = None) -> list[dict]:
    """SQNR of every op's output: the float model (`floats`, if loaded already) against the int8
    one, both in LiteRT, one sample at a time (float32 sums): memory holds one sample's activations."""
    floats, ints = floats or Observer(graph), Observer(graph, quant)
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    for x in samples:
        ref: dict[str, np.ndarray] = {}
        floats.run(x, lambda t, v: ref.__setitem__(t, v.ravel().copy()))

        def compare(t, v):
            r = ref.pop(t)
            d = r - v.ravel()
            signal[t] = signal.get(t, 0.0) + float(np.dot(r, r))
            noise[t] = noise.get(t, 0.0) + float(np.dot(d, d))

        ints.run(x, compare)
    return [{"name": op.name, "op": op.kind, "tensor": op.outputs[0],
             "sqnr_db": _sqnr_db(signal[op.outputs[0]], noise[op.outputs[0]])} for op in graph.ops]


def tflm_samples(model: TFLiteModel | bytes) -> int:
    work = sum(layer.ops for layer in layers(model))
    return max(1, min(TFLM_SAMPLES, TFLM_WORK // max(work, 1)))


def _tflm(child: TflmChild | None, tflite: TFLiteModel, raw_inputs: np.ndarray, made: bool) -> dict:
    if child is None:
        ok, why = tflm_available()
        if not ok:
            return {"ran": False, "reason": why}
        child = TflmChild()
    guess = plan_arena(tflite).minimum if made else None  # the planner is exact on edgekit's own ops
    res = child.run(tflite, [raw_inputs], arena_guess=guess)
    return {"ran": True, "arena_bytes": res.arena_bytes, "samples": int(len(raw_inputs)), "outputs": res.outputs}


def random_inputs(tflite: TFLiteModel | bytes) -> np.ndarray:
    """Seeded random inputs of the model's input type and shape, read from the file itself."""
    model = model_of(tflite).parsed
    sub = model.subgraphs[0]
    t = sub.tensors[sub.inputs[0]]
    kind = tensor_type_name(t.type)
    if kind not in NUMPY_TYPES:
        raise EdgekitError(f"the model's input '{text(t.name)}' has type {kind}; edgekit feeds numeric inputs only")
    dtype = np.dtype(NUMPY_TYPES[kind])
    n = tflm_samples(tflite)
    shape = (n,) + tuple(int(d) for d in list(t.shape if t.shape is not None else [])[1:])
    budget.check_memory(float(np.prod(shape, dtype=float)) * dtype.itemsize, f"{n} test inputs")
    rng = np.random.default_rng(0)
    vocab = _gather_rows(model, sub.inputs[0])
    if vocab is not None:  # token ids: beyond the table, TFLite Micro reads out of bounds
        return rng.integers(0, vocab, shape).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _gather_rows(model, index: int) -> int | None:
    """The fewest rows of the tables a GATHER looks tensor `index` up in (its valid ids are 0..rows-1),
    or None when no GATHER reads it as indices."""
    sub, rows = model.subgraphs[0], []
    for op in sub.operators or []:
        if builtin_name(model, op.opcodeIndex) == "GATHER" and len(op.inputs) > 1 and op.inputs[1] == index:
            shape = list(sub.tensors[op.inputs[0]].shape if sub.tensors[op.inputs[0]].shape is not None else [])
            axis = int(getattr(op.builtinOptions, "axis", 0) or 0)
            if -len(shape) <= axis < len(shape):
                rows.append(int(shape[axis]))
    return max(min(rows), 1) if rows else None


def verify_model(tflite: bytes, made: Made | None, samples: np.ndarray | None, step=lambda m: None,
                 val_kind: str = "calibration set", tflm: TflmChild | None = None) -> dict:
    """Check a model edgekit made (`made` and samples given) or one made elsewhere (made None).

    For edgekit's own output any runtime failure is an error; a model made elsewhere may be
    refused by one runtime (e.g. uint8 models in TFLM), which the report states instead.
    TFLite Micro runs in a child process (`tflm`, if one was started ahead) while LiteRT checks.
    """
    tflite = model_of(tflite)  # parsed once for every check below
    step("verifying in LiteRT")
    try:
        it = litert.load(tflite, threads=os.cpu_count())
    except EdgekitError as e:
        if made is not None or isinstance(e, litert.ShapeMismatch):  # an inconsistent file, not a runtime's limit
            raise
        it, litert_error = None, str(e)
    info: dict = {}
    if it is None:
        info["litert"] = {"loaded": False, "reason": litert_error}
    else:
        info["input"] = _io(it.get_input_details()[0])
        info["outputs"] = [_io(o) for o in it.get_output_details()]
        if it.edgekit_fallback:
            info["litert"] = {"loaded": True, "fallback": it.edgekit_fallback}
    if made is not None:
        raw = np.stack([litert.quantize_input(x, it.get_input_details()[0]) for x in samples[:tflm_samples(tflite)]])
    else:  # a model made elsewhere: exercise it on seeded random inputs of its own type
        raw = random_inputs(tflite)
    with ThreadPoolExecutor(1) as pool:
        tflm_job = pool.submit(_tflm, tflm, tflite, raw, made is not None)
        if made is not None:
            graph = made.graph
            float_out = made.float_outputs
            if float_out is None or len(float_out) != len(samples):  # calibration's float model, if loaded
                floats = made.float_observer or Observer(graph)
                float_out = floats.first_outputs(samples)
            int8_out = litert.run_on(it, samples)[0][0]
            info["agreement"] = {"on": val_kind, "samples": int(len(samples)), **agreement(float_out, int8_out)}
            step("per-layer SQNR")
            info["layers"] = per_layer_sqnr(graph, made.quant, samples[:sqnr_samples(graph, len(samples))],
                                            made.float_observer)
        litert_raw = litert.run_on(it, raw, raw=True)[0] if it is not None else None
        step("verifying in TFLite Micro")
        try:
            info["tflm"] = tflm_job.result()
        except EdgekitError as e:
            if made is not None:
                raise
            info["tflm"] = {"ran": False, "reason": str(e)}
    if info["tflm"].get("ran") and litert_raw is not None:
        info["tflm"]["max_lsb_vs_litert"] = max(int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())
                                                for a, b in zip(info["tflm"].pop("outputs"), litert_raw))
    info["tflm"].pop("outputs", None)
    return info


def _io(d: dict) -> dict:
    return {"shape": [int(x) for x in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
            "scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}
