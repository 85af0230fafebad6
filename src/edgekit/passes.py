"""Graph rewrites shared by the importers: BatchNorm folding, layout helpers, activation fusion."""
from __future__ import annotations

import numpy as np

from .graph import Graph, WEIGHTED

SUPPORTED_OPS = ("Conv2d (incl. depthwise), Linear/Gemm/MatMul+Add, BatchNorm (folded), ReLU, ReLU6, "
                 "Sigmoid, Tanh, MaxPool2d, AvgPool2d, GlobalAveragePool/Mean, Add, Mul, Concat, "
                 "Pad, Flatten/Reshape, Softmax, Dropout (removed)")


def chw_to_hwc_index(c: int, h: int, w: int) -> np.ndarray:
    """perm such that flatten_hwc(x) == flatten_chw(x)[perm].

    A Linear after an NCHW flatten has rows in CHW order; in NHWC they must be `rows[perm]`,
    so the model needs no transpose at run time.
    """
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def batchnorm(graph: Graph, x: str, gamma, beta, mean, var, eps: float, name: str) -> str:
    """Apply inference-mode BatchNorm to tensor x (channels last).

    Folded into the op that produced x when that is a conv/depthwise/fully-connected op with no
    fused activation and nothing else reads x; otherwise emitted as mul + add by constants.
    """
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    prod = graph.producer().get(x)
    readers = [op for op in graph.ops if x in op.inputs]
    if prod is not None and prod.kind in WEIGHTED and not prod.attrs.get("activation") and not readers \
            and x not in graph.outputs:
        w, b = graph.tensors[prod.inputs[1]], graph.tensors[prod.inputs[2]]
        if prod.kind == "depthwise_conv2d":
            w.data = (w.data * scale.reshape(1, 1, 1, -1)).astype(np.float32)
        else:  # conv2d [O,kh,kw,I] and fully_connected [O,I]: output channel first
            w.data = (w.data * scale.reshape((-1,) + (1,) * (w.data.ndim - 1))).astype(np.float32)
        b.data = (b.data * scale + shift).astype(np.float32)
        return x
    s = graph.add_const(f"{name}/scale", scale)
    t = graph.add_const(f"{name}/shift", shift)
    y = graph.add_op("mul", [x, s], f"{name}/mul")
    return graph.add_op("add", [y, t], name)


def fuse_activations(graph: Graph) -> Graph:
    """Fold a standalone ReLU/ReLU6 into the conv, fully-connected or add before it, as TFLite does."""
    fusable = WEIGHTED + ("add",)
    consumers = graph.consumers()
    producer = graph.producer()
    keep = []
    for op in graph.ops:
        src = producer.get(op.inputs[0]) if op.kind in ("relu", "relu6") else None
        if (src is not None and src.kind in fusable and not src.attrs.get("activation")
                and len(consumers.get(op.inputs[0], [])) == 1 and op.inputs[0] not in graph.outputs):
            src.attrs["activation"] = op.kind
            old, new = src.outputs[0], op.outputs[0]
            src.outputs[0] = new
            del graph.tensors[old]
            producer[new] = src
            continue
        keep.append(op)
    graph.ops = keep
    return graph


def optimize(graph: Graph) -> Graph:
    """The rewrites every imported graph gets before quantization."""
    fuse_activations(graph)
    # A reshape to the shape it already has does nothing: route around it.
    keep = []
    rename = {}
    for op in graph.ops:
        op.inputs = [rename.get(t, t) for t in op.inputs]
        src = graph.tensors[op.inputs[0]] if op.inputs else None
        if op.kind == "reshape" and src is not None and tuple(src.shape[1:]) == tuple(op.attrs["shape"][1:]) \
                and op.outputs[0] not in graph.outputs:
            rename[op.outputs[0]] = op.inputs[0]
            del graph.tensors[op.outputs[0]]
            continue
        keep.append(op)
    graph.ops = keep
    return graph
