"""Shape arithmetic in float .tflite files, folded to constants at import.

Keras 3 exports a model with batch None with its reshapes' new shapes computed at run time:
SHAPE(x) -> STRIDED_SLICE (the batch) -> PACK with the other dims -> RESHAPE(x, shape). edgekit's
models have batch 1 and static shapes, so these ops only ever give one value: they are evaluated
here on the declared shapes and constants, and the RESHAPE gets that value as its static shape.
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as fb

SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER")


def shape_only_ops(kinds: list[str], sg: fb.SubGraphT) -> set[int]:
    """Indices of the shape ops whose outputs end only in RESHAPE's shape input (maybe through
    other such ops): folding them changes nothing else. Ops arrive in execution order, so one
    backward pass sees every consumer before its producer."""
    consumers: dict[int, list[tuple[int, int]]] = {}
    for k, op in enumerate(sg.operators or []):
        for pos, i in enumerate(op.inputs if op.inputs is not None else []):
            consumers.setdefault(int(i), []).append((k, pos))
    graph_outputs = {int(i) for i in (sg.outputs if sg.outputs is not None else [])}
    folded: set[int] = set()
    for k in reversed(range(len(kinds))):
        op = sg.operators[k]
        outs = [int(o) for o in (op.outputs if op.outputs is not None else [])]
        if kinds[k] in SHAPE_OPS and outs and all(
                o not in graph_outputs and consumers.get(o) and
                all((kinds[c] == "RESHAPE" and pos == 1) or c in folded for c, pos in consumers[o])
                for o in outs):
            folded.add(k)
    return folded


def evaluate(kind: str, opts, args: list[np.ndarray | None], in_shape: tuple[int, ...]) -> np.ndarray | None:
    """The op's value from its inputs' values (SHAPE: from its input's declared shape), or None
    when they are not all known here or the op uses a form shape arithmetic does not need."""
    if kind == "SHAPE":
        return np.array(in_shape, np.int64) if in_shape and min(in_shape) >= 1 else None
    if any(a is None or a.dtype.kind not in "iu" for a in args):
        return None
    if kind == "STRIDED_SLICE" and len(args) == 4 and args[0].ndim == 1 and all(a.size == 1 for a in args[1:]):
        return _slice_1d(opts, *args)
    if kind == "PACK" and args and opts is not None and len({a.shape for a in args}) == 1:
        return np.stack(args, axis=opts.axis)
    if kind == "CONCATENATION" and args and opts is not None and opts.fusedActivationFunction == 0 \
            and all(a.ndim == 1 for a in args):
        return np.concatenate(args)
    if kind == "GATHER" and len(args) == 2 and opts is not None and not opts.batchDims \
            and -args[0].ndim <= opts.axis < args[0].ndim:
        n = args[0].shape[opts.axis]
        return np.take(args[0], args[1], axis=opts.axis) if np.all((args[1] >= 0) & (args[1] < n)) else None
    return None


def _slice_1d(o, x, begin, end, strides) -> np.ndarray | None:
    b, e, s = int(begin.ravel()[0]), int(end.ravel()[0]), int(strides.ravel()[0])
    if o is None or s == 0 or o.ellipsisMask or o.newAxisMask:
        return None
    if o.shrinkAxisMask & 1:  # one element, as a scalar (Keras' "take the batch")
        return np.asarray(x[b]) if -len(x) <= b < len(x) else None
    if getattr(o, "offset", False):
        e = b + e
    # numpy's slice clamps and counts from the end as TFLite does
    return x[slice(None if o.beginMask & 1 else b, None if o.endMask & 1 else e, s)]
