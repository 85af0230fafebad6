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


# Ops a channel passes through in place, a constant channel staying constant (pads add zeros).
_CHANNELWISE = ("relu", "relu6", "max_pool2d", "avg_pool2d", "pad", "mean", "reshape")


def _through(graph: Graph, t: str, k: np.ndarray):
    """Follow tensor t, whose dropped channels hold the constants k, to the one conv or dense layer
    that reads it. Returns (that op, the ops in between, k there, the channel count the reader's
    input features cycle through), or None when the channels cannot be removed on the way."""
    consumers, chain, channels = graph.consumers(), [], len(k)
    while True:
        readers = consumers.get(t, [])
        if len(readers) != 1 or t in graph.outputs or readers[0].inputs[0] != t:
            return None
        op = readers[0]
        if op.kind in ("conv2d", "fully_connected"):
            if op.kind == "conv2d" and (len(graph.tensors[t].shape) != 4 or op.attrs["padding"] == "SAME"
                                        and k.any()):
                return None  # SAME pads with zeros, not with the channel's constant
            return op, chain, k, channels
        if op.kind not in _CHANNELWISE or (op.kind == "pad" and k.any()):
            return None
        if op.kind == "reshape":  # a flatten keeps the channel last: feature i is channel i % C
            if len(op.attrs["shape"]) != 2:
                return None
        elif op.kind == "relu":
            k = np.maximum(k, 0)
        elif op.kind == "relu6":
            k = np.clip(k, 0, 6)
        chain.append(op)
        t = op.outputs[0]


def remove_zero_channels(graph: Graph) -> Graph:
    """Structured pruning made real: output channels of a conv or dense layer whose weights are all
    zero are removed, with the matching inputs of the next conv or dense layer (across ReLU, pooling,
    padding and flatten), so the int8 model is smaller and faster. Such a channel outputs the constant
    act(bias); a non-zero constant moves into the next layer's bias. Zeros scattered inside weights
    (magnitude pruning) save nothing in TFLite, which stores and multiplies every weight: noted."""
    for op in list(graph.ops):
        if op.kind not in ("conv2d", "fully_connected"):
            continue
        w, b = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
        dead = ~w.data.reshape(len(w.data), -1).any(axis=1)
        if not dead.any() or dead.all():  # nothing to remove, or a layer that computes nothing: leave it
            continue
        found = _through(graph, op.outputs[0], _activation_value(b.data, op.attrs.get("activation")))
        if found is None:
            graph.notes.append(f"layer '{op.name}': {int(dead.sum())} of {len(dead)} output channels are all zero "
                               "but stay: what reads them is not one conv or dense layer (through ReLU, pooling, "
                               "flatten), e.g. an add, a concat or the model's output")
            continue
        reader, chain, k, channels = found
        rw, rb = graph.tensors[reader.inputs[1]], graph.tensors[reader.inputs[2]]
        if reader.kind == "conv2d":  # [O, kh, kw, I]
            gone = rw.data[..., dead]
            rb.data = (rb.data + np.einsum("ohwi,i->o", gone, k[dead])).astype(np.float32)
            rw.data = np.ascontiguousarray(rw.data[..., ~dead])
        else:  # [O, features], feature i reads channel i % channels
            feature_dead = np.tile(dead, rw.data.shape[1] // channels)
            feature_k = np.tile(k, rw.data.shape[1] // channels)
            rb.data = (rb.data + rw.data[:, feature_dead] @ feature_k[feature_dead]).astype(np.float32)
            rw.data = np.ascontiguousarray(rw.data[:, ~feature_dead])
        w.data, b.data = np.ascontiguousarray(w.data[~dead]), np.ascontiguousarray(b.data[~dead])
        for t in (w, b, rw, rb):
            t.shape = t.data.shape
        for c in chain:
            if c.kind == "reshape":
                c.attrs["shape"] = (1, c.attrs["shape"][1] // channels * int((~dead).sum()))
        graph.notes.append(f"layer '{op.name}': {int(dead.sum())} of {len(dead)} output channels are all zero "
                           f"(structured pruning): removed, with the matching inputs of '{reader.name}'")
    for op in graph.ops:
        if op.kind in WEIGHTED:
            data = graph.tensors[op.inputs[1]].data
            rows = data.reshape(len(data), -1)
            rows = rows[rows.any(axis=1)]  # zero channels are counted above
            zeros = float((rows == 0).mean()) if rows.size else 0.0
            if zeros >= 0.1 and not _on_int8_grid(rows):  # a grid's zeros are rounding, not pruning
                graph.notes.append(
                    f"layer '{op.name}': {zeros:.0%} of its weights are zero but scattered (magnitude pruning); "
                    "TFLite stores and multiplies every weight, so they save neither flash nor time: prune whole "
                    "channels (structured pruning) to make the int8 model smaller and faster")
    return graph


def _on_int8_grid(values: np.ndarray) -> bool:
    """Whether the values are at most 256 multiples of one step (dequantized int8, e.g. TinyTorch's
    QuantizedLinear), whose exact zeros come from rounding."""
    levels = np.unique(values)
    if len(levels) > 256 or len(levels) < 2:
        return len(levels) < 2
    gaps = np.diff(levels.astype(np.float64)) / np.diff(levels.astype(np.float64)).min()
    return bool(np.allclose(gaps, np.rint(gaps), atol=1e-3))


def _activation_value(b: np.ndarray, activation) -> np.ndarray:
    return np.clip(b, 0, 6) if activation == "relu6" else np.maximum(b, 0) if activation == "relu" else b.copy()


def optimize(graph: Graph) -> Graph:
    """The rewrites every imported graph gets before quantization."""
    fuse_activations(graph)
    fuse_hard_swish(graph)
    remove_zero_channels(graph)
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
