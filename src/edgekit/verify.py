"""Evidence that an int8 model is right: it loads in LiteRT and TFLite Micro, agrees with the
float model, and needs a known tensor arena."""
from __future__ import annotations

import numpy as np

from . import reference
from .runtime import litert

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


def per_layer_sqnr(tflite: bytes, graph, samples: np.ndarray) -> list[dict]:
    """SQNR of every op's output: the numpy float reference against LiteRT's int8 intermediates."""
    it = litert.load(tflite, preserve_all=True)
    details = {d["name"]: d for d in it.get_tensor_details()}
    names = [op.outputs[0] for op in graph.ops if op.outputs[0] in details]
    _, inter = litert.run(tflite, samples, tensors=[details[n]["index"] for n in names])
    floats = reference.run(graph, {graph.inputs[0]: samples}, keep=True)
    layers = []
    for op in graph.ops:
        name = op.outputs[0]
        if name not in details:
            continue
        d = details[name]
        scale, zp = d["quantization"]
        deq = (inter[d["index"]].astype(np.float32) - zp) * scale
        layers.append({"name": op.name, "op": op.kind, "tensor": name, "sqnr_db": _sqnr_db(floats[name], deq)})
    return layers


def _tflm(tflite: bytes, raw_inputs: np.ndarray, litert_raw: list[np.ndarray]) -> dict:
    from .runtime.tflm import run_tflm, tflm_available
    ok, why = tflm_available()
    if not ok:
        return {"ran": False, "reason": why}
    res = run_tflm(tflite, [raw_inputs])
    lsb = max(int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max()) for a, b in zip(res.outputs, litert_raw))
    return {"ran": True, "arena_bytes": res.arena_bytes, "max_lsb_vs_litert": lsb, "samples": int(len(raw_inputs))}


def verify_model(tflite: bytes, graph, samples: np.ndarray | None, step=lambda m: None,
                 val_kind: str = "calibration set") -> dict:
    step("verifying in LiteRT")
    it = litert.load(tflite)
    inp = it.get_input_details()[0]
    info: dict = {"input": {"shape": [int(d) for d in inp["shape"]], "dtype": np.dtype(inp["dtype"]).name,
                            "scale": float(inp["quantization"][0]), "zero_point": int(inp["quantization"][1])},
                  "outputs": [{"shape": [int(d) for d in o["shape"]], "dtype": np.dtype(o["dtype"]).name,
                               "scale": float(o["quantization"][0]), "zero_point": int(o["quantization"][1])}
                              for o in it.get_output_details()]}
    if samples is not None and graph is not None:
        float_out = reference.run(graph, {graph.inputs[0]: samples})[graph.outputs[0]]
        int8_out = litert.run(tflite, samples)[0][0]
        info["agreement"] = {"on": val_kind, "samples": int(len(samples)), **agreement(float_out, int8_out)}
        step("per-layer SQNR")
        info["layers"] = per_layer_sqnr(tflite, graph, samples[:SQNR_SAMPLES])
        raw = np.stack([litert.quantize_input(x, inp) for x in samples[:TFLM_SAMPLES]])
    else:  # a model made elsewhere: exercise it on seeded random inputs of its own type
        rng = np.random.default_rng(0)
        info_t = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
        shape = (TFLM_SAMPLES,) + tuple(int(d) for d in inp["shape"][1:])
        raw = (rng.integers(info_t.min, info_t.max + 1, shape).astype(inp["dtype"]) if info_t
               else rng.standard_normal(shape).astype(np.float32))
    litert_raw = litert.run(tflite, raw, raw=True)[0]
    step("verifying in TFLite Micro")
    info["tflm"] = _tflm(tflite, raw, litert_raw)
    return info
