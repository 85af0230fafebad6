"""Float reference execution of a Graph in numpy, batched (any batch size, NHWC).

This is the "ground truth" the int8 model is compared against, and what calibration runs on.
It follows TFLite's float kernels: SAME padding puts the odd pixel after, average pooling does
not count padding.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Op


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TFLite SAME padding (before, after) for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def explicit_padding(size_hw, kernel, stride, pads) -> str | None:
    """'VALID' or 'SAME' if explicit ((top, bottom), (left, right)) pads equal one, else None."""
    if all(p == (0, 0) for p in pads):
        return "VALID"
    same = tuple(same_pads(s, k, st) for s, k, st in zip(size_hw, kernel, stride))
    return "SAME" if tuple(tuple(p) for p in pads) == same else None


def _windows(x: np.ndarray, kh: int, kw: int, stride, padding: str, fill: float = 0.0):
    """(N, Ho, Wo, kh, kw, C) view of x's sliding windows, after TFLite padding."""
    sh, sw = stride
    if padding == "SAME":
        (t, b), (l, r) = same_pads(x.shape[1], kh, sh), same_pads(x.shape[2], kw, sw)
        if t or b or l or r:
            x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    n, h, w, c = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, ho, wo, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1], s[2], s[3]), writeable=False)


def _activate(y: np.ndarray, activation) -> np.ndarray:
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "relu6":
        return np.clip(y, 0, 6)
    return y


def _conv2d(x, w, b, a):
    o, kh, kw, _ = w.shape
    win = _windows(x, kh, kw, a["stride"], a["padding"])
    n, ho, wo = win.shape[:3]
    y = win.reshape(n * ho * wo, -1) @ w.reshape(o, -1).T
    return y.reshape(n, ho, wo, o) + b


def _depthwise(x, w, b, a):
    _, kh, kw, cm = w.shape
    m = a.get("multiplier", 1)
    if m > 1:
        x = np.repeat(x, m, axis=3)  # output channel c*m + j reads input channel c
    sh, sw = a["stride"]
    if a["padding"] == "SAME":
        (t, bt), (l, r) = same_pads(x.shape[1], kh, sh), same_pads(x.shape[2], kw, sw)
        x = np.pad(x, ((0, 0), (t, bt), (l, r), (0, 0)))
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    # One multiply-add per filter tap over the whole batch, channels first so numpy's inner
    # loop runs along a row rather than across a handful of channels (~5x faster).
    xc = np.ascontiguousarray(x.transpose(3, 0, 1, 2))
    out = np.zeros((cm, x.shape[0], ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            out += xc[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] * w[0, i, j][:, None, None, None]
    return out.transpose(1, 2, 3, 0) + b


def _pool(x, a, reduce):
    kh, kw = a["kernel"]
    if reduce == "max":
        return _windows(x, kh, kw, a["stride"], a["padding"], fill=-np.inf).max(axis=(3, 4))
    total = _windows(x, kh, kw, a["stride"], a["padding"]).sum(axis=(3, 4))
    count = _windows(np.ones_like(x[:1, :, :, :1]), kh, kw, a["stride"], a["padding"]).sum(axis=(3, 4))
    return total / count


def run_op(op: Op, args: list[np.ndarray]) -> np.ndarray:
    a, k = op.attrs, op.kind
    if k == "conv2d":
        return _activate(_conv2d(*args, a), a.get("activation"))
    if k == "depthwise_conv2d":
        return _activate(_depthwise(*args, a), a.get("activation"))
    if k == "fully_connected":
        x, w, b = args
        return _activate(x.reshape(x.shape[0], -1) @ w.T + b, a.get("activation"))
    if k == "max_pool2d":
        return _pool(args[0], a, "max")
    if k == "avg_pool2d":
        return _pool(args[0], a, "avg")
    if k == "mean":
        return args[0].mean(axis=tuple(a["axes"]), keepdims=a.get("keepdims", True))
    if k == "add":
        return _activate(args[0] + args[1], a.get("activation"))
    if k == "mul":
        return _activate(args[0] * args[1], a.get("activation"))
    if k == "concat":
        return np.concatenate(args, axis=a["axis"])
    if k == "pad":
        return np.pad(args[0], a["pads"])
    if k == "reshape":
        return args[0].reshape((args[0].shape[0],) + tuple(a["shape"][1:]))
    if k == "softmax":
        z = args[0] * a.get("beta", 1.0)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if k == "relu":
        return np.maximum(args[0], 0)
    if k == "relu6":
        return np.clip(args[0], 0, 6)
    if k == "sigmoid":
        return 1 / (1 + np.exp(-args[0]))
    if k == "tanh":
        return np.tanh(args[0])
    if k == "hard_swish":
        return args[0] * np.clip(args[0] + 3, 0, 6) / 6
    raise ValueError(f"no reference kernel for {k}")


def run(graph: Graph, feeds: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on a batch. Returns the outputs, or every activation if keep=True."""
    values = {name: np.asarray(v, np.float32) for name, v in feeds.items()}
    uses = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            uses[t] = i
    for i, op in enumerate(graph.ops):
        args = [values[t] if t in values else graph.tensors[t].data for t in op.inputs]
        values[op.outputs[0]] = run_op(op, args).astype(np.float32, copy=False)
        if not keep:  # free activations after their last use to keep big batches cheap
            for t in op.inputs:
                if uses.get(t) == i and t not in graph.outputs and t in values:
                    del values[t]
    return values if keep else {t: values[t] for t in graph.outputs}
