"""Running .tflite models in LiteRT (ai-edge-litert), with float <-> int8 at the edges."""
from __future__ import annotations

import contextlib
import os
import re
import warnings

import numpy as np

from ..errors import EdgekitError


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
        return interpreter
    except ImportError:  # Raspberry Pi OS may only have the older tflite-runtime package
        try:
            from tflite_runtime import interpreter  # type: ignore
            return interpreter
        except ImportError:
            raise EdgekitError("LiteRT is not installed; run: pip install ai-edge-litert") from None


@contextlib.contextmanager
def _quiet():
    """LiteRT prints 'INFO: Created TensorFlow Lite XNNPACK delegate' on stderr; keep output clean."""
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load(model: bytes, preserve_all: bool = False):
    """An allocated LiteRT interpreter; preserve_all keeps every intermediate tensor readable."""
    lite = _interpreter_module()
    kwargs = {}
    if preserve_all:  # the default (XNNPACK) resolver reuses intermediate buffers
        kwargs = dict(experimental_preserve_all_tensors=True,
                      experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "preserve_all_tensors is for debugging"
            it = lite.Interpreter(model_content=model, **kwargs)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        # LiteRT runs its messages together ("...Was 3.Tensor 33 has..."): keep the first one
        msg = re.split(r"\n|(?<=\.)(?=[A-Z])", str(e).strip())[0] or type(e).__name__
        raise EdgekitError(f"LiteRT cannot load this model: {msg}") from None
    return it


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float -> the input tensor's type, using its scale and zero point."""
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zp = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale + zp), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return q.astype(np.float32)
    scale, zp = detail["quantization"]
    return (q.astype(np.float32) - zp) * scale


def run(model: bytes, samples: np.ndarray, raw: bool = False, tensors: list[int] | None = None):
    """Run each sample (first axis) through the model, batch 1 at a time.

    samples are float (quantized here) unless raw=True. Returns (outputs, intermediates):
    outputs is a list (one per model output) of arrays stacked over samples, dequantized unless
    raw; intermediates maps each requested tensor index to its raw values stacked over samples.
    """
    it = load(model, preserve_all=bool(tensors))
    inp = it.get_input_details()[0]
    outs = it.get_output_details()
    results = [[] for _ in outs]
    inter = {i: [] for i in tensors or []}
    for x in samples:
        x = x[None]
        it.set_tensor(inp["index"], x if raw else quantize_input(x, inp))
        it.invoke()
        for k, d in enumerate(outs):
            y = it.get_tensor(d["index"])
            results[k].append(y[0] if raw else dequantize(y, d)[0])
        for i in inter:
            inter[i].append(it.get_tensor(i)[0].copy())
    return [np.stack(r) for r in results], {i: np.stack(v) for i, v in inter.items()}
