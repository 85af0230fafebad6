"""Evidence that an int8 model is right: it loads in LiteRT and TFLite Micro, agrees with the
float model, and needs a known tensor arena."""
from __future__ import annotations

import numpy as np

from . import budget, reference
from .errors import EdgekitError
from .runtime import litert
from .runtime.tflm import run_tflm, tflm_available
from .tflite_file import NUMPY_TYPES, TFLiteModel, model_of, tensor_type_name, text

SQNR_SAMPLES = 32  # per-layer SQNR needs every intermediate tensor: a subset is plenty
TFLM_SAMPLES = 8   # TFLM runs in a child process; a few samples show whether it agrees with LiteRT


def _sqnr_db(ref: np.ndarray, test: np.ndarray) -> float | None:
    """Signal-to-quantization-noise ratio in dB; each bit of precision is worth ~6 dB."""
    noise = float(np.sum((ref.astype(np.float64) - test) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
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


def per_layer_sqnr(tflite: bytes, graph, samples: np.ndarray, floats: dict | None = None) -> list[dict]:
    """SQNR of every op's output: the numpy float reference against LiteRT's int8 intermediates.

    `floats` may hold the reference's values for these samples already (from calibration).
    """
    it = litert.load(tflite, preserve_all=True)
    details = {d["name"]: d for d in it.get_tensor_details()}
    names = [op.outputs[0] for op in graph.ops if op.outputs[0] in details]
    _, inter = litert.run(tflite, samples, tensors=[details[n]["index"] for n in names])
    if floats is None:
        floats = reference.run(graph, {graph.inputs[0]: samples}, keep=True)
    layers = []
    for op in graph.ops:
        name = op.outputs[0]
        if name not in details:
            continue
        d = details[name]
        scale, zp = d["quantization"]
        deq = (inter[d["index"]].astype(np.float32) - zp) * scale
        ref = floats[name][:len(samples)]
        layers.append({"name": op.name, "op": op.kind, "tensor": name, "sqnr_db": _sqnr_db(ref, deq)})
    return layers


def _tflm(tflite: bytes, raw_inputs: np.ndarray) -> dict:
    ok, why = tflm_available()
    if not ok:
        return {"ran": False, "reason": why}
    res = run_tflm(tflite, [raw_inputs])
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
    shape = (TFLM_SAMPLES,) + tuple(int(d) for d in list(t.shape if t.shape is not None else [])[1:])
    budget.check_memory(float(np.prod(shape, dtype=float)) * dtype.itemsize, f"{TFLM_SAMPLES} test inputs")
    rng = np.random.default_rng(0)
    if dtype.kind in "iu":
        return rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def verify_model(tflite: bytes, graph, samples: np.ndarray | None, step=lambda m: None,
                 val_kind: str = "calibration set", floats: dict | None = None) -> dict:
    """Check a model edgekit made (graph and samples given) or one made elsewhere (graph None).

    For edgekit's own output any runtime failure is an error; a model made elsewhere may be
    refused by one runtime (e.g. uint8 models in TFLM), which the report states instead.
    `floats` may carry the float model's "outputs" for these samples and all its tensors for
    the first ones ("first_chunk"), recorded during calibration, so the model is not run twice.
    TFLite Micro runs in a child process, at the same time as the LiteRT checks.
    """
    from concurrent.futures import ThreadPoolExecutor
    floats = floats or {}
    step("verifying in LiteRT")
    try:
        it = litert.load(tflite)
    except EdgekitError as e:
        if graph is not None or isinstance(e, litert.ShapeMismatch):  # an inconsistent file, not a runtime's limit
            raise
        it, litert_error = None, str(e)
    info: dict = {}
    if it is None:
        info["litert"] = {"loaded": False, "reason": litert_error}
    else:
        info["input"] = _io(it.get_input_details()[0])
        info["outputs"] = [_io(o) for o in it.get_output_details()]
    if graph is not None:
        raw = np.stack([litert.quantize_input(x, it.get_input_details()[0]) for x in samples[:TFLM_SAMPLES]])
    else:  # a model made elsewhere: exercise it on seeded random inputs of its own type
        raw = random_inputs(tflite)
    with ThreadPoolExecutor(1) as pool:
        tflm_job = pool.submit(_tflm, tflite, raw)
        if graph is not None:
            float_out = floats.get("outputs")
            if float_out is None or len(float_out) != len(samples):
                float_out = reference.run(graph, {graph.inputs[0]: samples})[graph.outputs[0]]
            int8_out = litert.run(tflite, samples)[0][0]
            info["agreement"] = {"on": val_kind, "samples": int(len(samples)), **agreement(float_out, int8_out)}
            step("per-layer SQNR")
            first = floats.get("first_chunk")
            n = min(SQNR_SAMPLES, len(samples))
            usable = first is not None and len(first[graph.inputs[0]]) >= n
            info["layers"] = per_layer_sqnr(tflite, graph, samples[:n], first if usable else None)
        litert_raw = litert.run(tflite, raw, raw=True)[0] if it is not None else None
        step("verifying in TFLite Micro")
        try:
            info["tflm"] = tflm_job.result()
        except EdgekitError as e:
            if graph is not None:
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
