"""Float reference execution of a Graph in numpy, batched (any batch size, NHWC).

This is the "ground truth" the int8 model is compared against, and what calibration runs on.
It follows TFLite's float kernels: SAME padding puts the odd pixel after, average pooling does
not count padding.
"""
from __future__ import annotations

import math

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
    if k == "gather":  # ids arrive as float32 (exact up to 2^24), rows taken along axis 0
        table, ids = args
        return table[np.asarray(ids).astype(np.int64)]
    raise ValueError(f"no reference kernel for {k}")


WINDOWED = ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d")
INT32_MAX = 2**31 - 1  # TFLite stores strides and window sizes as 32-bit integers


def _kernel(op: Op, shapes) -> tuple[int, int]:
    return tuple(shapes[1][1:3]) if op.kind in ("conv2d", "depthwise_conv2d") else tuple(op.attrs["kernel"])


def scratch_bytes(op: Op, shapes: list[tuple], out: tuple) -> int:
    """Bytes per sample run_op allocates besides its output `out` (once output_shape accepted the op):
    a SAME-padded copy of a window op's input (repeated by a depthwise multiplier) and a conv's
    matrix of windows."""
    if op.kind not in WINDOWED:
        return 0
    _, h, w, c = shapes[0]
    (kh, kw), padded = _kernel(op, shapes), 0
    if op.attrs["padding"] == "SAME":
        (t, b), (l, r) = (same_pads(s, k, st) for s, k, st in zip((h, w), (kh, kw), op.attrs["stride"]))
        padded = 4 * (h + t + b) * (w + l + r) * c * op.attrs.get("multiplier", 1)
    windows = 4 * out[1] * out[2] * kh * kw * c if op.kind == "conv2d" else 0
    return padded + windows


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _window_size(size: int, k: int, stride: int, padding: str) -> int:
    return -(-size // stride) if padding == "SAME" else (size - k) // stride + 1


def output_shape(op: Op, shapes: list[tuple]) -> tuple[int, ...]:
    """The shape run_op returns for inputs of these shapes, computed without allocating anything.

    Checks what run_op would otherwise trip over (or silently broadcast): raises ValueError saying
    what does not fit; Graph.infer_shape names the layer.
    """
    a, k = op.attrs, op.kind
    arity = {"conv2d": 3, "depthwise_conv2d": 3, "fully_connected": 3, "add": 2, "mul": 2, "gather": 2}.get(k, 1)
    _require(len(shapes) == arity or (k == "concat" and shapes), f"{len(shapes)} inputs")
    _require(all(d >= 1 for s in shapes for d in s), f"an empty input among {[list(s) for s in shapes]}")
    x = tuple(shapes[0])
    if k in WINDOWED:
        _require(len(x) == 4, f"a {len(x)}-D input where [N, H, W, C] is needed")
        c = x[3]
        if k in ("conv2d", "depthwise_conv2d"):
            w, b = tuple(shapes[1]), tuple(shapes[2])
            m = a.get("multiplier", 1) if k == "depthwise_conv2d" else 1
            fits = len(w) == 4 and (w[3] == c if k == "conv2d" else w[0] == 1 and m >= 1 and w[3] == c * m)
            _require(fits, f"weights of shape {list(w)} for {c} input channels")
            c = w[0] if k == "conv2d" else w[3]
            _require(b == (c,), f"a bias of shape {list(b)} for {c} output channels")
        kh, kw = _kernel(op, shapes)
        stride = tuple(a["stride"])
        _require(len(stride) == 2 and 1 <= min(stride) and max(stride, default=0) <= INT32_MAX,
                 f"stride {stride}: it must be two numbers from 1 to {INT32_MAX:,}")
        _require(1 <= min(kh, kw) and max(kh, kw) <= INT32_MAX, f"a {kh}x{kw} window")
        _require(a["padding"] in ("SAME", "VALID"), f"padding {a['padding']!r}")
        ho, wo = (_window_size(s, kk, st, a["padding"]) for s, kk, st in zip(x[1:3], (kh, kw), stride))
        _require(ho >= 1 and wo >= 1, f"a {kh}x{kw} window larger than its {x[1]}x{x[2]} input")
        return (x[0], ho, wo, c)
    if k == "fully_connected":
        w, b = tuple(shapes[1]), tuple(shapes[2])
        features = math.prod(x[1:])
        _require(len(w) == 2 and w[1] == features, f"weights of shape {list(w)} for {features} input features")
        _require(b == (w[0],), f"a bias of shape {list(b)} for {w[0]} outputs")
        return (x[0], w[0])
    if k in ("add", "mul"):
        return tuple(np.broadcast_shapes(tuple(shapes[0]), tuple(shapes[1])))  # ValueError if they do not
    if k == "mean":
        axes = tuple(a["axes"])
        _require(all(0 < i < len(x) for i in axes), f"axes {list(axes)} of a {len(x)}-D input")
        return tuple(1 if i in axes else d for i, d in enumerate(x) if a.get("keepdims", True) or i not in axes)
    if k == "concat":
        axis = a["axis"]
        _require(0 < axis < len(x) and all(len(s) == len(x) for s in shapes),
                 f"axis {axis} of inputs of shapes {[list(s) for s in shapes]}")
        _require(all(tuple(s[:axis]) + tuple(s[axis + 1:]) == x[:axis] + x[axis + 1:] for s in shapes),
                 f"inputs of shapes {[list(s) for s in shapes]} differing outside axis {axis}")
        return x[:axis] + (sum(s[axis] for s in shapes),) + x[axis + 1:]
    if k == "pad":
        pads = tuple(tuple(p) for p in a["pads"])
        _require(len(pads) == len(x) and all(len(p) == 2 and min(p) >= 0 for p in pads),
                 f"pads {[list(p) for p in pads]} for a {len(x)}-D input")
        return tuple(d + b + e for d, (b, e) in zip(x, pads))
    if k == "reshape":
        shape = tuple(a["shape"][1:])
        _require(all(d >= 1 for d in shape) and math.prod(shape) == math.prod(x[1:]),
                 f"reshaping {list(x)} to {[1] + list(shape)}")
        return (x[0],) + shape
    if k in ("softmax", "relu", "relu6", "sigmoid", "tanh", "hard_swish"):
        return x
    if k == "gather":  # [batch, ...ids] + the table's row shape
        return tuple(shapes[1]) + x[1:]
    raise ValueError(f"no shape rule for {k}")


def run(graph: Graph, feeds: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on a batch. Returns the outputs, or every activation if keep=True."""
    values = {name: np.asarray(v, np.float32) for name, v in feeds.items()}
    uses = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            uses[t] = i
    for i, op in enumerate(graph.ops):
        args = [values[t] if t in values else graph.tensors[t].data for t in op.inputs]
        with np.errstate(over="ignore", invalid="ignore"):  # float32 overflow gives inf; calibration refuses it
            values[op.outputs[0]] = run_op(op, args).astype(np.float32, copy=False)
        if not keep:  # free activations after their last use to keep big batches cheap
            for t in op.inputs:
                if uses.get(t) == i and t not in graph.outputs and t in values:
                    del values[t]
    return values if keep else {t: values[t] for t in graph.outputs}
