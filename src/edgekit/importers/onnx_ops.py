"""The op handlers of edgekit's ONNX importer: one method per ONNX op type, and their helpers.

onnx_import._Importer walks the graph and calls op_<OpType>(node, layer) for each node; the
handlers emit Graph ops in NHWC (conv weights OIHW -> OHWI, axes and pads NCHW -> NHWC,
per-channel constants channels-last) and raise UnsupportedError naming the op, the layer and
what is supported instead.
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from ..errors import EdgekitError, UnsupportedError
from ..passes import batchnorm, chw_to_hwc_index
from ..reference import explicit_padding, same_pads

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}
ALIASES = ("Identity", "Dropout")  # no-ops at inference: their output is their input


def _attrs(node) -> dict:
    out = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


def _resolve_shape(src, shape, allowzero=0) -> tuple[int, ...]:
    """ONNX Reshape's target: 0 copies the input's dimension, -1 takes what is left."""
    out = [int(src[i]) if d == 0 and not allowzero else int(d) for i, d in enumerate(shape)]
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        out[out.index(-1)] = int(np.prod(src)) // max(known, 1)
    return tuple(out)


class OnnxOps:
    """Mixed into onnx_import._Importer, whose state (g, acts, consts, hwc_flat, readers, opset)
    and helpers (_act, _const, _emit, _shape, _rank4, ...) these methods use."""

    def _window(self, node, layer, x, kernel, a):
        """stride and explicit ((top, bottom), (left, right)) pads of a conv or pool node."""
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            raise UnsupportedError(f"{node.op_type} dilation {tuple(a['dilations'])}", layer, "dilation 1")
        stride = tuple(int(s) for s in a.get("strides", (1, 1)))
        size = self._shape(x)[1:3]
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = tuple(same_pads(s, k, st) for s, k, st in zip(size, kernel, stride))
            if auto == "SAME_LOWER":  # the odd pixel goes before, not after
                pads = tuple((after, before) for before, after in pads)
        elif auto == "VALID":
            pads = ((0, 0), (0, 0))
        else:
            p = [int(v) for v in a.get("pads", (0, 0, 0, 0))]
            pads = ((p[0], p[2]), (p[1], p[3]))
        if a.get("ceil_mode", 0):
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
        if x in self.hwc_flat:  # x holds the features in HWC order: reorder the weights to match
            w = w[:, chw_to_hwc_index(*self.hwc_flat[x])]
        if w.shape[1] != self._shape(x)[1]:
            raise EdgekitError(f"layer '{layer}' has {w.shape[1]} inputs but receives "
                               f"{self._shape(x)[1]} features; the ONNX model is inconsistent")
        wn = self.g.add_const(node.input[1], w)
        bn = self.g.add_const(bias_name or f"{layer}/bias", np.zeros(w.shape[0]) if bias is None else bias)
        self._emit("fully_connected", [x, wn, bn], layer, out)

    def _reshape(self, node, layer, x, target):
        """Reshapes the NHWC graph can express without a transpose."""
        src, target = self._onnx_shape(x), tuple(int(d) for d in target)
        out = node.output[0]
        if target == src:
            self.acts[out] = x
        elif len(src) in (2, 4) and target == (1, int(np.prod(src))):  # a flatten
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
        a = _attrs(node)
        x = self._act(node.input[0], layer)
        w = self._const(node, 1, layer, "weight")
        if w.ndim != 4:
            raise UnsupportedError(f"{w.ndim - 2}-D Conv", layer, "2-D Conv (Conv2d)")
        self._rank4(x, node, layer)
        n_out, per_group, kh, kw = w.shape
        c_in, group = self._shape(x)[3], a.get("group", 1)
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
        a = _attrs(node)
        if a.get("transA", 0):
            raise UnsupportedError("Gemm transA=1", layer, "transA=0")
        b = self._const(node, 1, layer, "weight").astype(np.float32)
        w = (b if a.get("transB", 0) else b.T) * a.get("alpha", 1.0)  # -> [out, in]
        c = self._const(node, 2, layer, "bias")
        bias = None if c is None else a.get("beta", 1.0) * np.broadcast_to(c, (1, w.shape[0]))[0]
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
        a = _attrs(node)
        if a.get("training_mode", 0):
            raise UnsupportedError("BatchNormalization training_mode=1", layer,
                                   "inference mode: call model.eval() before exporting")
        x = self._act(node.input[0], layer)
        gamma, beta, mean, var = (self._const(node, i, layer, "parameter") for i in range(1, 5))
        eps = a.get("epsilon", 1e-5)
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
        a = _attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        x = first = self._act(node.input[0], layer)
        if abs(6 * alpha - 1) > 1e-6:
            x = self._emit("mul", [x, self.g.add_const(f"{layer}/scale", np.float32(6 * alpha))], f"{layer}/scale")
        x = self._emit("add", [x, self.g.add_const(f"{layer}/shift", np.float32(6 * beta))], f"{layer}/shift",
                       activation="relu6")
        self._same_order(first, self._emit("mul", [x, self.g.add_const(f"{layer}/sixth", np.float32(1 / 6))],
                                           layer, node.output[0]))

    def op_Clip(self, node, layer):
        if self.opset >= 11:  # min and max are optional inputs
            lo, hi = (self._const(node, i, layer, "bound") for i in (1, 2))
        else:
            a = _attrs(node)
            lo, hi = a.get("min"), a.get("max")
        lo = -np.inf if lo is None else float(lo)
        hi = np.inf if hi is None else float(hi)
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
        a = _attrs(node)
        x = self._act(node.input[0], layer)
        self._rank4(x, node, layer)
        kernel = tuple(int(k) for k in a["kernel_shape"])
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
            if a.get("count_include_pad", 0):  # ONNX averages the zeros in: an explicit pad op does too
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
        a = _attrs(node)
        x = self._act(node.input[0], layer)
        axes = a.get("axes")
        if axes is None:  # an input from opset 18 on
            axes = self._const(node, 1, layer, "axes")
        rank = len(self._shape(x))
        if rank != 4 or axes is None or sorted(int(i) % 4 for i in axes) != [2, 3]:
            raise UnsupportedError(f"ReduceMean over axes {None if axes is None else list(axes)}",
                                   layer, "the mean over H and W (axes [2, 3]) of an NCHW tensor")
        self._emit("mean", [x], layer, node.output[0], axes=(1, 2), keepdims=bool(a.get("keepdims", 1)))

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
        axis = _attrs(node)["axis"] % rank
        if rank == 4:
            axis = NCHW_TO_NHWC_AXIS[axis]
        self._emit("concat", xs, layer, node.output[0], axis=axis)

    def op_Pad(self, node, layer):
        a = _attrs(node)
        if a.get("mode", "constant") != "constant":
            raise UnsupportedError(f"Pad mode '{a['mode']}'", layer, "mode 'constant' (zeros)")
        x = self._act(node.input[0], layer)
        self._rank4(x, node, layer)
        pads = a.get("pads") if self.opset < 11 else self._const(node, 1, layer, "pads")
        value = a.get("value", 0.0) if self.opset < 11 else self._const(node, 2, layer, "value")
        if value is not None and float(value) != 0:
            raise UnsupportedError(f"Pad value {float(value):g}", layer, "padding with zeros")
        pads = [int(p) for p in pads]
        axes = self._const(node, 3, layer, "axes")  # opset 18: pads cover only these axes
        if axes is not None:
            full = [0] * 8
            for j, ax in enumerate(int(i) % 4 for i in axes):
                full[ax], full[4 + ax] = pads[j], pads[len(axes) + j]
            pads = full
        begin, end = pads[:4], pads[4:]
        if begin[:2] != [0, 0] or end[:2] != [0, 0] or min(pads) < 0:
            raise UnsupportedError(f"Pad {pads}", layer, "zero padding of height and width only")
        self._emit("pad", [x], layer, node.output[0],
                   pads=((0, 0), (begin[2], end[2]), (begin[3], end[3]), (0, 0)))

    def op_Softmax(self, node, layer):
        x = self._act(node.input[0], layer)
        rank = len(self._shape(x))
        axis = _attrs(node).get("axis", -1 if self.opset >= 13 else 1) % rank
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
        axis = _attrs(node).get("axis", 1) % (len(src) + 1)
        self._reshape(node, layer, x, (int(np.prod(src[:axis])), int(np.prod(src[axis:]))))

    def op_Reshape(self, node, layer):
        x = self._act(node.input[0], layer)
        shape = self._const(node, 1, layer, "shape")
        self._reshape(node, layer, x, _resolve_shape(self._onnx_shape(x), shape,
                                                     _attrs(node).get("allowzero", 0)))

    def op_Squeeze(self, node, layer):
        x = self._act(node.input[0], layer)
        src = self._onnx_shape(x)
        axes = _attrs(node).get("axes")
        if axes is None:
            axes = self._const(node, 1, layer, "axes")
        if axes is None:  # all size-1 dimensions, but never the batch (dynamic in the original)
            axes = [i for i, d in enumerate(src) if d == 1 and i > 0]
        axes = {int(i) % len(src) for i in axes}
        self._reshape(node, layer, x, [d for i, d in enumerate(src) if i not in axes])

    def op_Unsqueeze(self, node, layer):
        x = self._act(node.input[0], layer)
        axes = _attrs(node).get("axes")
        if axes is None:
            axes = self._const(node, 1, layer, "axes")
        shape = np.expand_dims(np.zeros(self._onnx_shape(x)), tuple(int(i) for i in axes)).shape
        self._reshape(node, layer, x, shape)
