"""Graph rewrites shared by the importers: BatchNorm folding, layout helpers, activation fusion."""
from __future__ import annotations

import numpy as np

from .graph import Graph, WEIGHTED

SUPPORTED_OPS = ("Conv2d (incl. depthwise), Linear/Gemm/MatMul+Add, BatchNorm (folded), ReLU, ReLU6, "
                 "Sigmoid, Tanh, HardSwish, MaxPool2d, AvgPool2d, GlobalAveragePool/Mean, Add, Mul, Concat, "
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
    with np.errstate(all="ignore"):  # a bad variance gives NaN weights, which Graph.validate names
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


def _scalar(graph: Graph, name: str, value: float) -> bool:
    t = graph.tensors[name]
    return t.is_const and t.data.size == 1 and abs(float(t.data.ravel()[0]) - value) < 1e-6


def fuse_hard_swish(graph: Graph) -> Graph:
    """x * (relu6(x + 3) * 1/6) -> one hard_swish(x), as TFLite's converter does. PyTorch exports
    Hardswish this way below opset 14 (Mul of x and HardSigmoid(x), alpha 1/6), and one int8 op
    is cheaper and more accurate than three."""
    producer, consumers = graph.producer(), graph.consumers()

    def only_reader(t):  # t feeds one op and is not a graph output, so it can go
        return len(consumers.get(t, [])) == 1 and t not in graph.outputs

    gone, dropped = set(), set()
    for op in graph.ops:
        if op.kind != "mul" or op.attrs.get("activation") or len(op.inputs) != 2:
            continue
        for x, gate in (op.inputs, op.inputs[::-1]):
            sixth = producer.get(gate)
            if sixth is None or sixth.kind != "mul" or sixth.attrs.get("activation") or not only_reader(gate):
                continue
            h, c = sixth.inputs if not graph.tensors[sixth.inputs[0]].is_const else sixth.inputs[::-1]
            shift = producer.get(h)
            if not (_scalar(graph, c, 1 / 6) and shift is not None and shift.kind == "add"
                    and shift.attrs.get("activation") == "relu6" and only_reader(h)):
                continue
            if x not in shift.inputs or not _scalar(graph, shift.inputs[1 - shift.inputs.index(x)], 3.0):
                continue
            op.kind, op.inputs, op.attrs = "hard_swish", [x], {}
            gone |= {id(sixth), id(shift)}
            dropped.update(sixth.inputs + shift.inputs + [gate, h])
            break
    graph.ops = [op for op in graph.ops if id(op) not in gone]
    used = {t for op in graph.ops for t in op.inputs + op.outputs} | set(graph.inputs) | set(graph.outputs)
    for t in dropped - used:  # the gate's tensors and its constants 3 and 1/6
        del graph.tensors[t]
    return graph


def optimize(graph: Graph) -> Graph:
    """The rewrites every imported graph gets before quantization."""
    fuse_activations(graph)
    fuse_hard_swish(graph)
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
