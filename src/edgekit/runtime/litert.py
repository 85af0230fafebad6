"""Running .tflite models in LiteRT (ai-edge-litert), with float <-> int8 at the edges."""
from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings

import numpy as np

from .. import crash
from ..errors import EdgekitError
from ..tflite_check import check_memory, check_runnable
from ..tflite_file import TFLiteModel, model_of, text


def interpreter_module():
    try:
        from ai_edge_litert import interpreter
        return interpreter
    except ImportError:  # Raspberry Pi OS may only have the older tflite-runtime package
        try:
            from tflite_runtime import interpreter  # type: ignore
            return interpreter
        except ImportError:
            raise EdgekitError("LiteRT is not installed; run: pip install ai-edge-litert") from None


SHAPES_CHECKED = "shapes checked by LiteRT"  # TFLiteModel memo: LiteRT loaded it, its shapes are consistent
_QUIET = threading.Lock()  # fd 2 is process-wide: two threads swapping it could leave it at /dev/null


@contextlib.contextmanager
def quiet():
    """LiteRT prints 'INFO: Created TensorFlow Lite XNNPACK delegate' on stderr; keep output clean."""
    with _QUIET, open(os.devnull, "w") as null:
        saved = os.dup(2)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def errors(doing: str):
    """LiteRT reports a model it cannot load or run as ValueError/RuntimeError: make that one line
    that keeps LiteRT's own words (they name the tensor, or the op as 'Node number N (KIND)'). A
    crash inside is named too (crash.py), as "loading" or "running" the model."""
    what = {"cannot load this model": "loading the model", "cannot run this model": "running the model"}
    try:
        with crash.doing("LiteRT", what.get(doing, doing)):
            yield
    except (ValueError, RuntimeError) as e:
        raise EdgekitError(f"LiteRT {doing}: {_first_message(str(e))}") from None


def _first_message(text: str) -> str:
    """LiteRT runs its messages together ("...Was 3.Tensor 33 has...", "...(2 != 0)Node number 0
    (CONV_2D) failed to prepare."): keep the first, prefixed with the op it names, if any."""
    node = re.search(r"Node number (\d+) \((\w+)\)", text)
    parts = re.split(r"\n|(?<=\.)(?=[A-Z])|(?=Node number)", text.strip())
    first = next((re.sub(r"^\S+\.(cc|h):\d+ ", "", p.strip()) for p in parts if p.strip()), "no message")
    if node and not first.startswith("Node number"):
        return f"op {node.group(1)} ({node.group(2)}): {first.rstrip('.')}"
    return first


def load(model: TFLiteModel | bytes, preserve_all: bool = False, threads: int | None = None):
    """An allocated LiteRT interpreter; preserve_all keeps every intermediate tensor readable,
    threads (default LiteRT's, one) is how many threads its kernels may use."""
    # LiteRT trusts the file: refuse what would crash it or take the machine's memory first
    model = model_of(model)
    parsed = model.parsed
    check_runnable(parsed, "the model")
    check_memory(parsed, "the model")
    lite = interpreter_module()
    builtin = lambda: dict(  # noqa: E731 (looked up only when used: older tflite-runtime lacks it)
        experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    fallback = None
    if preserve_all:  # the default (XNNPACK) resolver reuses intermediate buffers
        it = _interpreter(lite, model, threads, experimental_preserve_all_tensors=True, **builtin())
    else:
        try:
            it = _interpreter(lite, model, threads)
        except EdgekitError as e:
            refused = re.search(r"failed to delegate (\w+) node #(\d+)", str(e))
            if not refused and "XNNPack" not in str(e):
                raise
            # the default XNNPACK delegate accepted an op it then cannot prepare (e.g. an int8
            # RESIZE_BILINEAR whose output is quantized unlike its input): the built-in kernels run it
            it = _interpreter(lite, model, threads, **builtin())
            what = f"op {refused.group(2)} ({refused.group(1)})" if refused else "an op"
            fallback = (f"LiteRT's default XNNPACK delegate cannot prepare {what} of this model, "
                        "so LiteRT's built-in kernels (without default delegates) ran it")
    it.edgekit_fallback = fallback  # None, or why the default delegates were left out
    _check_declared_shapes(it, parsed)
    model.memo(SHAPES_CHECKED, lambda: None)  # TFLite Micro's runner need not load it again to check
    return it


def _interpreter(lite, model: TFLiteModel, threads: int | None, **kwargs):
    with errors("cannot load this model"), quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "preserve_all_tensors is for debugging"
        it = lite.Interpreter(model_content=model.data, num_threads=threads, **kwargs)
        it.allocate_tensors()
    return it


class ShapeMismatch(EdgekitError):
    """A tensor's declared shape is not what its op computes (TFLite Micro would trust it)."""


def _check_declared_shapes(it, model) -> None:
    """LiteRT computes every tensor's shape from the ops; TFLite Micro trusts the file's, and loops or
    crashes when they are wrong. A file whose declared shapes disagree with LiteRT's is inconsistent."""
    tensors = model.subgraphs[0].tensors
    for d in it.get_tensor_details():
        i = d["index"]
        if i >= len(tensors):  # LiteRT's own temporaries come after the file's tensors
            continue
        declared = [int(x) for x in (tensors[i].shape if tensors[i].shape is not None else [])]
        if declared != [int(x) for x in d["shape"]]:
            raise ShapeMismatch(f"the model is inconsistent: tensor {i} ('{text(tensors[i].name)}') is declared "
                                f"{declared} but its op makes {[int(x) for x in d['shape']]}; export it again")


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float -> the input tensor's type, using its scale and zero point (none for an unquantized integer input)."""
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zp = detail["quantization"]
    info = np.iinfo(dtype)
    if scale == 0:  # not quantized (e.g. int32 token ids): the values are the integers themselves
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    v = x / scale  # rounded half away from zero before the zero point is added, as TFLite's QUANTIZE does
    return np.clip(np.trunc(v + np.copysign(0.5, v)) + zp, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return q.astype(np.float32)
    scale, zp = detail["quantization"]
    return (q.astype(np.float32) - zp) * scale


def run(model: TFLiteModel | bytes, samples: np.ndarray, raw: bool = False, tensors: list[int] | None = None,
        threads: int | None = None):
    """Run each sample (first axis) through the model, batch 1 at a time.

    samples are float (quantized here) unless raw=True. Returns (outputs, intermediates):
    outputs is a list (one per model output) of arrays stacked over samples, dequantized unless
    raw; intermediates maps each requested tensor index to its raw values stacked over samples.
    """
    return run_on(load(model, preserve_all=bool(tensors), threads=threads), samples, raw, tensors)


def run_on(it, samples: np.ndarray, raw: bool = False, tensors: list[int] | None = None):
    """run() on an interpreter already loaded (load())."""
    inp = it.get_input_details()[0]
    outs = it.get_output_details()
    results = [[] for _ in outs]
    inter = {i: [] for i in tensors or []}
    with errors("cannot run this model"):
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
