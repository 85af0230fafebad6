"""The op handlers of edgekit's ONNX importer: one method per ONNX op type, and their helpers.

onnx_import._Importer walks the graph and calls op_<OpType>(node, layer) for each node; the
handlers emit Graph ops in NHWC (conv weights OIHW -> OHWI, axes and pads NCHW -> NHWC,
per-channel constants channels-last) and raise UnsupportedError naming the op, the layer and
what is supported instead. Attributes are read through onnx_checks.Attrs (type and range checked).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import EdgekitError, UnsupportedError
from ..passes import batchnorm, chw_to_hwc_index
from ..reference import explicit_padding, same_pads
from .onnx_checks import AGAIN, Attrs

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}
ALIASES = ("Identity", "Dropout")  # no-ops at inference: their output is their input


def resolve_shape(src, shape, allowzero: int, layer: str) -> tuple[int, ...]:
    """ONNX Reshape's target: 0 copies the input's dimension, -1 takes what is left."""
    shape = np.asarray(shape)
    if shape.ndim != 1 or not np.issubdtype(shape.dtype, np.integer):
        raise EdgekitError(f"layer '{layer}': its Reshape target must be a 1-D list of integers, not "
                           f"{shape.dtype} of shape {list(shape.shape)}; {AGAIN}")
    out = [int(src[i]) if d == 0 and not allowzero and i < len(src) else int(d) for i, d in enumerate(shape)]
    total, known = math.prod(src), math.prod(d for d in out if d != -1)
    if out.count(-1) == 1 and known > 0 and total % known == 0:
        out[out.index(-1)] = total // known
    if min(out, default=1) < 1 or math.prod(out) != total:
        raise EdgekitError(f"layer '{layer}' cannot reshape {list(src)} ({total:,} values) to "
                           f"{[int(d) for d in shape]}; {AGAIN}")
    return tuple(out)


def axis_in(a: Attrs, name: str, rank: int, default=Attrs.REQUIRED) -> int:
    """An axis attribute of a rank-`rank` tensor, checked to be in ONNX's [-rank, rank) and made positive."""
    return a.int(name, default, lo=-rank, hi=rank - 1) % rank


def axes_in(axes, rank: int, layer: str, op: str) -> list[int]:
    """Axes (from an attribute or an input) checked to be distinct and in [-rank, rank), made positive."""
    axes = [int(i) for i in np.ravel(axes)]
    if any(not -rank <= i < rank for i in axes) or len({i % rank for i in axes}) != len(axes):
        raise EdgekitError(f"layer '{layer}': {op} axes {axes} are not distinct axes of a {rank}-D tensor; {AGAIN}")
    return [i % rank for i in axes]


class OnnxOps:
    """Mixed into onnx_import._Importer, whose state (g, acts, consts, hwc_flat, readers, opset)
    and helpers (_act, _const, _emit, _shape, _rank4, ...) these methods use."""

    def _window(self, node, layer, x, kernel, a: Attrs):
        """stride and explicit ((top, bottom), (left, right)) pads of a conv or pool node."""
        dilations = a.ints("dilations", (1, 1), n=2, lo=1)
        if dilations != (1, 1):
            raise UnsupportedError(f"{node.op_type} dilation {dilations}", layer, "dilation 1")
        stride = a.ints("strides", (1, 1), n=2, lo=1)
        size = self._shape(x)[1:3]
        auto = a.str("auto_pad", "NOTSET", choices=("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = tuple(same_pads(s, k, st) for s, k, st in zip(size, kernel, stride))
            if auto == "SAME_LOWER":  # the odd pixel goes before, not after
                pads = tuple((after, before) for before, after in pads)
        elif auto == "VALID":
            pads = ((0, 0), (0, 0))
        else:
            p = a.ints("pads", (0, 0, 0, 0), n=4, lo=0)
            pads = ((p[0], p[2]), (p[1], p[3]))
        if a.int("ceil_mode", 0, lo=0, hi=1):
            for s, k, st, (b, e) in zip(size, kernel, stride, pads):
                if (s + b + e - k) % st:  # ceil and floor give different output sizes
                    raise UnsupportedError(f"{node.op_type} ceil_mode=1", layer,
                                           "ceil_mode=0 (PyTorch's default)")
        return stride, pads

    def _pad(self, x, layer, pads):
        """An explicit zero-padding op before a VALID conv/pool (pads from _window)."""
        pads = ((0, 0),) + tuple((int(b), int(e)) for b, e in pads) + ((0, 0),)
        return self._emit("pad", [x], f"{layer}/pad", None, pads=pads)

    def _layout(self, c: np.ndarray, rank: int, layer: str) -> np.ndarray:
        """A constant broadcast against an activation of `rank`, in the Graph's layout."""
        c = np.asarray(c, np.float32)
        if c.ndim > rank:
            raise UnsupportedError(f"constant of shape {c.shape} for a {rank}-D tensor", layer,
                                   "constants that broadcast to the tensor")
        if rank == 4:  # ONNX broadcasting aligns the right: pad to 4-D, then NCHW -> NHWC
            c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 2, 3, 1)
            while c.ndim > 1 and c.shape[0] == 1:  # e.g. a per-channel [C, 1, 1] becomes [C]
                c = c[0]
        return c

    def _dense(self, node, layer, x, w, bias, bias_name, out):
        """fully_connected with w [out, in] in ONNX's (CHW) order of x's features."""
        if len(self._shape(x)) != 2:
            raise UnsupportedError(f"{node.op_type} on a {len(self._shape(x))}-D tensor", layer,
                                   f"{node.op_type} on 2-D [N, features] tensors (flatten first)")
        if w.shape[1] != self._shape(x)[1]:
            raise EdgekitError(f"layer '{layer}' has {w.shape[1]} inputs but receives "
                               f"{self._shape(x)[1]} features; the ONNX model is inconsistent")
        if x in self.hwc_flat:  # x holds the features in HWC order: reorder the weights to match
            w = w[:, chw_to_hwc_index(*self.hwc_flat[x])]
        wn = self.g.add_const(node.input[1], w)
        bn = self.g.add_const(bias_name or f"{layer}/bias", np.zeros(w.shape[0]) if bias is None else bias)
        self._emit("fully_connected", [x, wn, bn], layer, out)

    def _reshape(self, node, layer, x, target):
        """Reshapes the NHWC graph can express without a transpose."""
        src, target = self._onnx_shape(x), tuple(int(d) for d in target)
        out = node.output[0]
        if target == src:
            self.acts[out] = x
        elif len(src) in (2, 4) and target == (1, math.prod(src)):  # a flatten
            y = self._emit("reshape", [x], layer, out, shape=target)
            if len(src) == 4 and src[1] > 1 and src[2] * src[3] > 1:
                self.hwc_flat[y] = src[1:]  # element order is HWC, not ONNX's CHW
        elif len(src) == 2 and len(target) == 4 and target[0] == 1 and target[2] * target[3] == 1:
            self._emit("reshape", [x], layer, out, shape=(1, target[2], target[3], target[1]))
        elif len(src) == 2 and len(target) == 4 and target[0] == 1 and target[1] == 1 and x not in self.hwc_flat:
            # a flat vector to a one-channel image (e.g. 64 pixels to [1, 1, 8, 8]): with one channel,
            # CHW and HWC order the elements alike, so a plain reshape to [1, H, W, 1] is exact
            self._emit("reshape", [x], layer, out, shape=(1, target[2], target[3], 1))
        else:
            raise UnsupportedError(f"{node.op_type} from {list(src)} to {list(target)}", layer,
                                   "flattening [N, C, H, W] to [N, C*H*W], [N, C] <-> [N, C, 1, 1], and "
                                   "[N, H*W] to a one-channel [N, 1, H, W]")

    # -- ops --------------------------------------------------------------------------------
    def op_Conv(self, node, layer):
        a = Attrs(node, layer)
        x = self._act(node.input[0], layer)
        w = self._const(node, 1, layer, "weight")
        if w.ndim != 4:
            raise UnsupportedError(f"{w.ndim - 2}-D Conv", layer, "2-D Conv (Conv2d)")
        self._rank4(x, node, layer)
        n_out, per_group, kh, kw = w.shape
        if a.ints("kernel_shape", (kh, kw), n=2) != (kh, kw):
            a.bad("kernel_shape", list(a.ints("kernel_shape")), f"its weight's kernel size {[kh, kw]}")
        c_in, group = self._shape(x)[3], a.int("group", 1, lo=1)
        stride, pads = self._window(node, layer, x, (kh, kw), a)
        if group == 1 and per_group == c_in:
            kind, weight, extra = "conv2d", w.transpose(0, 2, 3, 1), {}  # OIHW -> OHWI
        elif group == c_in and per_group == 1:  # depthwise: output o reads input channel o // M
            kind, weight, extra = "depthwise_conv2d", w.transpose(1, 2, 3, 0), {"multiplier": n_out // c_in}
        elif group == 1:
            raise EdgekitError(f"layer '{layer}' expects {per_group} input channels but receives "
                               f"{c_in}; the ONNX model is inconsistent")
        else:
            raise UnsupportedError(f"grouped Conv (group={group})", layer,
                                   "group=1, or depthwise (group = input channels)")
        bias = self._const(node, 2, layer, "bias")
        padding = explicit_padding(self._shape(x)[1:3], (kh, kw), stride, pads)
        if padding is None:  # e.g. PyTorch's padding=1 with stride 2: pad, then a VALID conv
            x, padding = self._pad(x, layer, pads), "VALID"
        wn = self.g.add_const(node.input[1], weight)
        bn = self.g.add_const(node.input[2] if bias is not None else f"{layer}/bias",
                              np.zeros(n_out) if bias is None else bias)
        self._emit(kind, [x, wn, bn], layer, node.output[0], stride=stride, padding=padding, **extra)

    def op_Gemm(self, node, layer):
        a = Attrs(node, layer)
        if a.int("transA", 0, lo=0, hi=1):
            raise UnsupportedError("Gemm transA=1", layer, "transA=0")
        b = self._const(node, 1, layer, "weight").astype(np.float32)
        if b.ndim != 2:
            raise EdgekitError(f"layer '{layer}': Gemm weight of shape {list(b.shape)}; it must be 2-D; {AGAIN}")
        w = (b if a.int("transB", 0, lo=0, hi=1) else b.T) * a.float("alpha", 1.0)  # -> [out, in]
        c = self._const(node, 2, layer, "bias")
        if c is not None and (c.ndim > 2 or c.size not in (1, w.shape[0])):
            raise EdgekitError(f"layer '{layer}': Gemm bias of shape {list(c.shape)} for {w.shape[0]} outputs; {AGAIN}")
        bias = None if c is None else a.float("beta", 1.0) * np.broadcast_to(c.ravel(), (w.shape[0],))
        x = self._act(node.input[0], layer)
        self._dense(node, layer, x, w, bias, node.input[2] if c is not None else None, node.output[0])

    def op_MatMul(self, node, layer):
        x = self._act(node.input[0], layer)
        b = self._const(node, 1, layer, "weight")
        if b.ndim != 2:
            raise UnsupportedError(f"MatMul with a {b.ndim}-D weight", layer, "a 2-D weight")
        w, bias, bias_name, out = b.T.astype(np.float32), None, None, node.output[0]
        # PyTorch's Linear without Gemm is MatMul then Add(bias): one fully_connected layer.
        readers = self.readers.get(out, [])
        if len(readers) == 1 and readers[0].op_type == "Add" and out not in self.output_names:
            add = readers[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            c = self.consts.get(other)
            if c is not None and c.size in (1, w.shape[0]) and c.ndim <= 2:
                bias, bias_name, out = np.broadcast_to(c, (1, w.shape[0]))[0], other, add.output[0]
                self.fused_adds.add(out)
        self._dense(node, layer, x, w, bias, bias_name, out)

    def op_BatchNormalization(self, node, layer):
        a = Attrs(node, layer)
        if a.int("training_mode", 0, lo=0, hi=1):
            raise UnsupportedError("BatchNormalization training_mode=1", layer,
                                   "inference mode: call model.eval() before exporting")
        x = self._act(node.input[0], layer)
        params = [self._const(node, i, layer, "parameter").astype(np.float64) for i in range(1, 5)]
        channels = self._shape(x)[-1]
        if len(self._shape(x)) not in (2, 4) or any(p.shape != (channels,) for p in params):
            raise EdgekitError(f"layer '{layer}': BatchNormalization parameters of shapes "
                               f"{[list(p.shape) for p in params]} for {channels} channels; {AGAIN}")
        gamma, beta, mean, var = params
        eps = a.float("epsilon", 1e-5)
        if not np.all(var + eps > 0):  # its square root divides
            raise EdgekitError(f"layer '{layer}': BatchNormalization variance + epsilon is not positive "
                               f"for every channel; {AGAIN}")
        if self._only_reader(x):
            y = batchnorm(self.g, x, gamma, beta, mean, var, eps, layer)
        else:  # folding into the conv would also change what the other readers of x see
            scale = gamma / np.sqrt(var.astype(np.float64) + eps)
            s = self.g.add_const(f"{layer}/scale", scale)
            t = self.g.add_const(f"{layer}/shift", beta - mean * scale)
            y = self._emit("add", [self._emit("mul", [x, s], f"{layer}/mul"), t], layer, node.output[0])
        self.acts[node.output[0]] = y

    def _only_reader(self, x) -> bool:
        """True if exactly one ONNX node (the one being converted) will ever read Graph tensor x."""
        names = [n for n, t in self.acts.items() if t == x]
        if any(n in self.output_names for n in names):
            return False
        readers = [r for n in names for r in self.readers.get(n, [])
                   if not (r.op_type in ALIASES and r.output[0] in self.acts)]  # seen through
        return len(readers) == 1

    def _unary(self, kind, node, layer):
        x = self._act(node.input[0], layer)
        self._same_order(x, self._emit(kind, [x], layer, node.output[0]))

    def _same_order(self, x, y):
        """y is x element-wise: a flatten's HWC element order carries over."""
        if x in self.hwc_flat:
            self.hwc_flat[y] = self.hwc_flat[x]

    def op_Relu(self, node, layer):
        self._unary("relu", node, layer)

    def op_Sigmoid(self, node, layer):
        self._unary("sigmoid", node, layer)

    def op_Tanh(self, node, layer):
        self._unary("tanh", node, layer)

    def op_HardSwish(self, node, layer):
        self._unary("hard_swish", node, layer)

    def op_HardSigmoid(self, node, layer):
        """clip(alpha x + beta, 0, 1) = relu6(6 alpha x + 6 beta) / 6: TFLite has no HARD_SIGMOID, and
        its converter lowers it the same way (PyTorch's Hardsigmoid: alpha 1/6, beta 1/2, so x + 3)."""
        a = Attrs(node, layer)
        alpha, beta = a.float("alpha", 0.2), a.float("beta", 0.5)
        x = first = self._act(node.input[0], layer)
        if abs(6 * alpha - 1) > 1e-6:
            x = self._emit("mul", [x, self.g.add_const(f"{layer}/scale", np.float32(6 * alpha))], f"{layer}/scale")
        x = self._emit("add", [x, self.g.add_const(f"{layer}/shift", np.float32(6 * beta))], f"{layer}/shift",
                       activation="relu6")
        self._same_order(first, self._emit("mul", [x, self.g.add_const(f"{layer}/sixth", np.float32(1 / 6))],
                                           layer, node.output[0]))

    def op_Clip(self, node, layer):
        lo, hi = (self._const(node, i, layer, "bound") for i in (1, 2))  # optional inputs from opset 11
        if any(b is not None and b.size != 1 for b in (lo, hi)):
            raise EdgekitError(f"layer '{layer}': Clip bounds must be single numbers; {AGAIN}")
        lo = -np.inf if lo is None else float(np.ravel(lo)[0])
        hi = np.inf if hi is None else float(np.ravel(hi)[0])
        if lo == 0 and hi == 6:
            self._unary("relu6", node, layer)
        elif lo == 0 and hi == np.inf:
            self._unary("relu", node, layer)
        else:
            raise UnsupportedError(f"Clip(min={lo:g}, max={hi:g})", layer,
                                   "Clip(0, 6) (ReLU6) and Clip(min=0) (ReLU)")

    def op_Identity(self, node, layer):
        self.acts[node.output[0]] = self._act(node.input[0], layer)

    op_Dropout = op_Identity

    def _pool(self, node, layer):
        a = Attrs(node, layer)
        x = self._act(node.input[0], layer)
        self._rank4(x, node, layer)
        kernel = a.ints("kernel_shape", n=2, lo=1)
        stride, pads = self._window(node, layer, x, kernel, a)
        return a, x, kernel, stride, pads, explicit_padding(self._shape(x)[1:3], kernel, stride, pads)

    def op_MaxPool(self, node, layer):
        if len(node.output) > 1 and node.output[1] in self.readers:
            raise UnsupportedError("MaxPool indices output", layer, "MaxPool's first output only")
        a, x, kernel, stride, pads, padding = self._pool(node, layer)
        if padding is None:
            # ONNX pads max pooling with -inf. After a ReLU every value is >= 0, so padding with
            # zeros then pooling VALID gives the same result (each window holds a real pixel).
            prod = self.g.producer().get(x)
            if prod is None or (prod.kind not in ("relu", "relu6", "sigmoid")
                                and not prod.attrs.get("activation")):
                raise UnsupportedError(f"MaxPool padding {pads}", layer,
                                       "no padding, TFLite 'SAME' padding, or any padding right after a ReLU")
            x, padding = self._pad(x, layer, pads), "VALID"
        self._emit("max_pool2d", [x], layer, node.output[0], kernel=kernel, stride=stride, padding=padding)

    def op_AveragePool(self, node, layer):
        a, x, kernel, stride, pads, padding = self._pool(node, layer)
        if padding != "VALID":
            if a.int("count_include_pad", 0, lo=0, hi=1):  # ONNX averages the zeros in: an explicit pad op does too
                x, padding = self._pad(x, layer, pads), "VALID"
            elif padding is None:  # TFLite's SAME is the only padding it leaves out of the average
                raise UnsupportedError(f"AveragePool padding {pads} with count_include_pad=0", layer,
                                       "no padding, TFLite 'SAME' padding, or count_include_pad=1")
        self._emit("avg_pool2d", [x], layer, node.output[0], kernel=kernel, stride=stride, padding=padding)

    def op_GlobalAveragePool(self, node, layer):
        x = self._act(node.input[0], layer)
        self._rank4(x, node, layer)
        self._emit("mean", [x], layer, node.output[0], axes=(1, 2), keepdims=True)

    def op_GlobalMaxPool(self, node, layer):
        x = self._act(node.input[0], layer)
        self._rank4(x, node, layer)
        self._emit("max_pool2d", [x], layer, node.output[0], kernel=self._shape(x)[1:3],
                   stride=(1, 1), padding="VALID")

    def op_ReduceMean(self, node, layer):
        a = Attrs(node, layer)
        x = self._act(node.input[0], layer)
        axes = a.ints("axes", None)
        if axes is None:  # an input from opset 18 on
            axes = self._const(node, 1, layer, "axes")
        rank = len(self._shape(x))
        if axes is not None:
            axes = axes_in(axes, rank, layer, "ReduceMean")
        if rank != 4 or axes is None or sorted(axes) != [2, 3]:
            raise UnsupportedError(f"ReduceMean over axes {axes}",
                                   layer, "the mean over H and W (axes [2, 3]) of an NCHW tensor")
        self._emit("mean", [x], layer, node.output[0], axes=(1, 2), keepdims=bool(a.int("keepdims", 1, lo=0, hi=1)))

    def _binary(self, node, layer, kind):
        op = node.op_type
        left, right = node.input[0], node.input[1]
        if left in self.acts and right in self.acts:
            x, y = self.acts[left], self.acts[right]
            if op in ("Sub", "Div") or len(self._shape(x)) != len(self._shape(y)):
                raise UnsupportedError(f"{op} of two tensors of shapes {self._onnx_shape(x)} and "
                                       f"{self._onnx_shape(y)}", layer,
                                       "Add and Mul of two same-rank tensors; Sub and Div by a constant")
            self._emit(kind, [x, y], layer, node.output[0])
            return
        if left in self.consts and op in ("Sub", "Div"):
            raise UnsupportedError(f"{op} with a constant first operand", layer, f"{op} by a constant")
        act, const = (left, right) if left in self.acts else (right, left)
        x = self._act(act, layer)
        c = self._const(node, list(node.input).index(const), layer, "operand").astype(np.float32)
        if op == "Sub":
            c = -c  # x - c == x + (-c)
        elif op == "Div":
            if not np.all(c):
                raise EdgekitError(f"layer '{layer}' divides by a constant '{const}' holding zeros; {AGAIN}")
            c = 1 / c  # x / c == x * (1/c)
        cn = self.g.add_const(const, self._layout(c, len(self._shape(x)), layer))
        self._emit(kind, [x, cn], layer, node.output[0])

    def op_Add(self, node, layer):
        self._binary(node, layer, "add")

    def op_Sub(self, node, layer):
        self._binary(node, layer, "add")

    def op_Mul(self, node, layer):
        self._binary(node, layer, "mul")

    def op_Div(self, node, layer):
        self._binary(node, layer, "mul")

    def op_Concat(self, node, layer):
        xs = [self._act(t, layer) for t in node.input]
        ranks = {len(self._shape(x)) for x in xs}
        if len(ranks) != 1:
            raise UnsupportedError("Concat of tensors of different ranks", layer, "same-rank tensors")
        rank = ranks.pop()
        axis = axis_in(Attrs(node, layer), "axis", rank)
        if rank == 4:
            axis = NCHW_TO_NHWC_AXIS[axis]
        self._emit("concat", xs, layer, node.output[0], axis=axis)

    def op_Pad(self, node, layer):
        mode = Attrs(node, layer).str("mode", "constant")
        if mode != "constant":
            raise UnsupportedError(f"Pad mode '{mode[:20]}'", layer, "mode 'constant' (zeros)")
        x = self._act(node.input[0], layer)
        self._rank4(x, node, layer)
        pads = self._const(node, 1, layer, "pads")
        value = self._const(node, 2, layer, "value")
        if value is not None and (value.size != 1 or float(np.ravel(value)[0]) != 0):
            raise UnsupportedError(f"Pad value {np.ravel(value)[:4].tolist()}", layer, "padding with zeros")
        axes = self._const(node, 3, layer, "axes")  # opset 18: pads cover only these axes
        axes = list(range(4)) if axes is None else axes_in(axes, 4, layer, "Pad")
        if pads.ndim != 1 or not np.issubdtype(pads.dtype, np.integer) or len(pads) != 2 * len(axes):
            raise EdgekitError(f"layer '{layer}': Pad pads of shape {list(pads.shape)} ({pads.dtype}) for "
                               f"{len(axes)} axes; it must be {2 * len(axes)} integers; {AGAIN}")
        full = [0] * 8
        for j, ax in enumerate(axes):
            full[ax], full[4 + ax] = int(pads[j]), int(pads[len(axes) + j])
        pads = full
        begin, end = pads[:4], pads[4:]
        if begin[:2] != [0, 0] or end[:2] != [0, 0] or min(pads) < 0:
            raise UnsupportedError(f"Pad {pads}", layer, "zero padding of height and width only")
        self._emit("pad", [x], layer, node.output[0],
                   pads=((0, 0), (begin[2], end[2]), (begin[3], end[3]), (0, 0)))

    def op_Softmax(self, node, layer):
        x = self._act(node.input[0], layer)
        rank = len(self._shape(x))
        axis = axis_in(Attrs(node, layer), "axis", rank, -1 if self.opset >= 13 else 1)
        # The Graph's softmax runs over the last axis: the features of a 2-D tensor, or the
        # channels of a 4-D one (ONNX axis 1, last in NHWC; before opset 13 axis meant "flatten from").
        if not (axis == 1 and (rank == 2 or (rank == 4 and self.opset >= 13))):
            raise UnsupportedError(f"Softmax over axis {axis} of a {rank}-D tensor", layer,
                                   "Softmax over the features of [N, features] or the channels "
                                   "of [N, C, H, W]")
        self._emit("softmax", [x], layer, node.output[0], beta=1.0)

    def op_Flatten(self, node, layer):
        x = self._act(node.input[0], layer)
        src = self._onnx_shape(x)
        axis = Attrs(node, layer).int("axis", 1, lo=-len(src), hi=len(src)) % (len(src) + 1)
        self._reshape(node, layer, x, (math.prod(src[:axis]), math.prod(src[axis:])))

    def op_Reshape(self, node, layer):
        x = self._act(node.input[0], layer)
        shape = self._const(node, 1, layer, "shape")
        allowzero = Attrs(node, layer).int("allowzero", 0, lo=0, hi=1)
        self._reshape(node, layer, x, resolve_shape(self._onnx_shape(x), shape, allowzero, layer))

    def op_Squeeze(self, node, layer):
        x = self._act(node.input[0], layer)
        src = self._onnx_shape(x)
        axes = Attrs(node, layer).ints("axes", None)
        if axes is None:
            axes = self._const(node, 1, layer, "axes")
        if axes is None:  # all size-1 dimensions, but never the batch (dynamic in the original)
            axes = [i for i, d in enumerate(src) if d == 1 and i > 0]
        axes = axes_in(axes, len(src), layer, "Squeeze")
        if any(src[i] != 1 for i in axes):
            raise EdgekitError(f"layer '{layer}' squeezes axes {axes} of a {list(src)} tensor, but only "
                               f"axes of size 1 can be squeezed; {AGAIN}")
        self._reshape(node, layer, x, [d for i, d in enumerate(src) if i not in axes])

    def op_Unsqueeze(self, node, layer):
        x = self._act(node.input[0], layer)
        axes = Attrs(node, layer).ints("axes", None)
        if axes is None:
            axes = self._const(node, 1, layer, "axes")
        if axes is None:
            raise EdgekitError(f"layer '{layer}': Unsqueeze has no axes; {AGAIN}")
        shape = list(self._onnx_shape(x))
        for i in sorted(axes_in(axes, len(shape) + len(np.ravel(axes)), layer, "Unsqueeze")):
            shape.insert(i, 1)  # in increasing order, each axis counts in the output's rank
        self._reshape(node, layer, x, shape)
