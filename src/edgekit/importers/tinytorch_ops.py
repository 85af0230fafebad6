"""What each TinyTorch layer and Tensor op becomes in edgekit's Graph, for tinytorch._Tracer.

A recognised layer (Linear, Embedding, Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d, activations) is
converted as a whole when it is called; the Tensor ops a model's own forward calls (reshape, +, -, *, /,
matmul, mean) are converted one by one. Unsupported layers and ops raise UnsupportedError naming
the layer and what is supported instead.
"""
from __future__ import annotations

import numpy as np

from .. import passes
from ..errors import EdgekitError, UnsupportedError
from ..reference import explicit_padding

SUPPORTED = ("layers Linear, QuantizedLinear (module 15), Embedding (on the model's input), Conv2d, "
             "BatchNorm2d (folded), MaxPool2d, AvgPool2d, ReLU, Sigmoid, Tanh, Softmax, Dropout (removed), in a model class, a list of layers or a container "
             "with .layers; in forward: x.reshape(batch, -1), +, -, *, / by a constant (also written with numpy, "
             "Tensor(x.data * 0.5)), matmul with a weight, mean over H and W")
# Layers that need what TFLite Micro's int8 kernels do not offer, and what to do instead.
ATTENTION = ("MultiHeadAttention", "SelfAttention", "Attention", "TransformerBlock")
NO_ATTENTION = ("attention's Q @ K^T and weights @ V multiply two activations (TFLite BATCH_MATMUL), which edgekit "
                "does not write: TFLite Micro's Arduino library (the Nano's) has no such kernel; for a board, "
                "replace the attention block "
                "by layers on the flattened sequence (x.reshape(batch, -1) then Linear) or a Conv2d over the "
                "sequence laid out as an image")
NO_EMBEDDING = ("Embedding applied to something other than the model's input (edgekit deploys an Embedding as "
                "TFLite GATHER whose int32 token ids are the model's own input, read by nothing else); look the "
                "vectors up before the model (x = emb.weight.data[ids]) and convert the layers after it, with "
                "[batch, seq * dim] float inputs")

# TinyTorch layer class name -> the attributes the converter needs (bias, stride, ... have defaults).
LAYERS = {"Linear": ("weight",), "Conv2d": ("weight",), "MaxPool2d": ("kernel_size",),
          "AvgPool2d": ("kernel_size",), "BatchNorm2d": ("gamma", "beta", "running_mean", "running_var"),
          "ReLU": (), "Sigmoid": (), "Tanh": (), "Softmax": (), "GELU": (), "Dropout": (),
          "QuantizedLinear": (), "Embedding": ("weight",)} | {k: () for k in ATTENTION}


def _is_tensor(obj) -> bool:
    """A TinyTorch Tensor (any class with a numpy `.data` and a `.shape`), not a numpy array."""
    return not isinstance(obj, np.ndarray) and isinstance(getattr(obj, "data", None), np.ndarray) \
        and hasattr(obj, "shape")


def _array(obj) -> np.ndarray:
    return np.asarray(obj.data if _is_tensor(obj) else obj, dtype=np.float32)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(d) for d in v)


class TinyTorchOps:
    """Mixed into tinytorch._Tracer, whose state and helpers (_emit, _bind, _resolve, _const, ...)
    these methods use."""

    # -- layers ------------------------------------------------------------------------------------
    def _convert(self, kind, obj, name, args, kwargs, out):
        if kind == "GELU":
            raise UnsupportedError("GELU activation (no int8 TFLite kernel in edgekit's op set; use ReLU "
                                   "and retrain)", name, SUPPORTED)
        if kind in ATTENTION:
            raise UnsupportedError(f"{kind} block: {NO_ATTENTION}", name, SUPPORTED)
        missing = [a for a in LAYERS[kind] if getattr(obj, a, None) is None]
        if missing:
            raise EdgekitError(f"layer '{name}' is a {kind} without {', '.join(missing)}; edgekit reads the "
                               "attributes of TinyTorch's reference layers")
        if kind == "Embedding":
            return self._embedding(obj, name, args[0], out)
        x = self._resolve(args[0])
        if x is None:
            raise UnsupportedError("input computed by numpy code edgekit cannot follow (it recognises "
                                   "x.data.reshape(...) and np.maximum(0, x.data))", name, SUPPORTED)
        if kind == "Linear":
            return self._linear(obj, name, x, out)
        if kind == "QuantizedLinear":
            return self._quantized_linear(obj, name, x, out)
        if kind == "Conv2d":
            return self._conv(obj, name, x, out)
        if kind in ("MaxPool2d", "AvgPool2d"):
            return self._pool(kind, obj, name, x, out)
        if kind == "BatchNorm2d":
            return self._batchnorm(obj, name, x, out)
        if kind == "Softmax":
            dim = args[1] if len(args) > 1 else kwargs.get("dim", getattr(obj, "dim", -1))
            rank = self.snap[x].ndim
            if int(dim) % rank != (1 if self.layout[x] == "nhwc" else rank - 1):
                raise UnsupportedError(f"Softmax over axis {dim} of a {rank}-D tensor", name,
                                       "Softmax over the last axis (or the channels of an NCHW image)")
            return self._emit("softmax", [x], name, out, beta=1.0)
        return self._emit(kind.lower(), [x], name, out)  # ReLU, Sigmoid, Tanh

    def _linear(self, obj, name, x, out, w=None, b=None):
        if w is None:
            w = _array(obj.weight)  # (in, out); the IR wants [out, in]
            bias = getattr(obj, "bias", None)
            b = _array(bias) if bias is not None else None
        if b is None:
            b = np.zeros(w.shape[-1], np.float32)
        if self.snap[x].ndim != 2 or w.ndim != 2:
            if self.snap[x].ndim == 3 and self._in_attention():
                raise UnsupportedError(f"Linear on a 3-D [batch, seq, dim] input inside an attention block: "
                                       f"{NO_ATTENTION}", name, SUPPORTED)
            raise UnsupportedError(f"Linear on a {self.snap[x].ndim}-D input (edgekit's fully-connected layers take "
                                   "[batch, features]: flatten it first with x.reshape(batch, -1))",
                                   name, SUPPORTED)
        if self.layout[x] == "perm":  # input flattened from NCHW: rows in HWC order
            w = w[self.perm[x]]
        inputs = [x, self._const(f"{name}/weights", w.T), self._const(f"{name}/bias", b.reshape(-1))]
        return self._emit("fully_connected", inputs, name, out, "same", activation=None)

    def _embedding(self, obj, name, ids, out):
        """Module 11's Embedding on the model's input: GATHER of the table's rows, the input becoming
        int32 token ids. Anywhere else the ids would be computed in int8, which GATHER cannot read."""
        x = self._resolve(ids)
        if x is None or x not in self.graph.inputs or any(x in op.inputs for op in self.graph.ops):
            raise UnsupportedError(NO_EMBEDDING, name, SUPPORTED)
        table = _array(obj.weight)
        given = self.values[x]
        if table.ndim != 2 or not np.array_equal(given, np.rint(given)) or given.min() < 0 \
                or given.max() >= table.shape[0]:
            raise EdgekitError(f"layer '{name}' (Embedding) looks up ids from {given.min():g} to {given.max():g} "
                               f"in a table of shape {list(table.shape)}; give example_input as integer token "
                               f"ids from 0 to {table.shape[0] - 1}")
        self.graph.tensors[x].dtype = "int32"
        return self._emit("gather", [self._const(f"{name}/table", table), x], name, out, "same")

    def _quantized_linear(self, obj, name, x, out):
        """Module 15's QuantizedLinear: its own int8 parameters dequantized (what its forward computes),
        or, when the trace ran its float original_layer instead (weights="float"), that layer's."""
        if self.weights == "float":
            return self._linear(obj.original_layer, name, x, out)
        need = [a for a in ("q_weight", "weight_scale", "weight_zero_point") if getattr(obj, a, None) is None]
        if need:
            raise EdgekitError(f"layer '{name}' is a QuantizedLinear without {', '.join(need)}; edgekit reads "
                               "module 15's attributes (q_weight, weight_scale, weight_zero_point, q_bias, "
                               "bias_scale, bias_zero_point)")
        q = np.asarray(_array(obj.q_weight), np.float64)
        scale, zp = float(obj.weight_scale), float(obj.weight_zero_point)
        w = ((q - zp) * scale).astype(np.float32)
        b = None
        if getattr(obj, "q_bias", None) is not None:
            b = ((np.asarray(_array(obj.q_bias), np.float64) - float(getattr(obj, "bias_zero_point", 0) or 0))
                 * float(obj.bias_scale)).astype(np.float32)
        self._note_quantized(name, w, scale, zp)
        return self._linear(obj, name, x, out, w, b)

    def _note_quantized(self, name, w, scale, zp):
        """How TinyTorch's int8 weights compare with the ones TFLite will hold."""
        bound = np.abs(w).max(axis=0)  # per output (TinyTorch's weight is (in, out))
        steps = bound[bound > 0] / 127
        span = f"{steps.min():.3g}-{steps.max():.3g}" if steps.size else "-"
        self.graph.notes.append(
            f"layer '{name}' (QuantizedLinear) imported from its own int8 weights (TinyTorch: one scale "
            f"{scale:.3g} and zero point {zp:.0f} for the whole tensor, asymmetric); TFLite re-quantizes them "
            f"symmetric (zero point 0) with one scale per output channel ({span} here; one per tensor for the "
            "Nano) and an int32 bias, so each weight is rounded a second time, by at most half a TFLite step")

    def _in_attention(self) -> bool:
        return any("attention" in c.lower() or "attn" in c.lower() for c in self.running)

    def _conv(self, obj, name, x, out):
        self._need_image(x, name, "Conv2d")
        w = _array(obj.weight)  # (C_out, C_in, kH, kW) -> [O, kH, kW, I]
        if w.ndim != 4:
            raise EdgekitError(f"layer '{name}': Conv2d weight has shape {w.shape}; edgekit expects "
                               "TinyTorch's (C_out, C_in, kH, kW)")
        bias = getattr(obj, "bias", None)
        b = _array(bias) if bias is not None else np.zeros(w.shape[0], np.float32)
        stride, pad = _pair(getattr(obj, "stride", 1)), _pair(getattr(obj, "padding", 0))
        x, padding = self._padding(x, name, w.shape[2:], stride, pad, same_ok=True)
        inputs = [x, self._const(f"{name}/weights", w.transpose(0, 2, 3, 1)),
                  self._const(f"{name}/bias", b.reshape(-1))]
        return self._emit("conv2d", inputs, name, out, stride=stride, padding=padding, activation=None)

    def _pool(self, kind, obj, name, x, out):
        self._need_image(x, name, kind)
        kernel = _pair(obj.kernel_size)
        stride = _pair(getattr(obj, "stride", None) or kernel)
        pad = _pair(getattr(obj, "padding", 0) or 0)
        if kind == "AvgPool2d":  # TinyTorch divides by the whole window, padding included: pad explicitly
            x, padding = self._padding(x, name, kernel, stride, pad, same_ok=False)
            return self._emit("avg_pool2d", [x], name, out, kernel=kernel, stride=stride, padding=padding)
        # TinyTorch pads max pooling with -inf; zeros do the same after a ReLU (values >= 0).
        x2, padding = self._padding(x, name, kernel, stride, pad, same_ok=True,
                                    zeros_ok=self._non_negative(x))
        if x2 is None:
            raise UnsupportedError(f"MaxPool2d padding={pad} on a {self.snap[x].shape[2:]} input that can "
                                   "be negative", name, "max pooling padding that equals TFLite's SAME, "
                                   "or max pooling after a ReLU")
        return self._emit("max_pool2d", [x2], name, out, kernel=kernel, stride=stride, padding=padding)

    def _padding(self, x, name, kernel, stride, pad, same_ok, zeros_ok=True):
        """(input, 'SAME'|'VALID') for TinyTorch's padding: `pad` zeros on each side, output size
        rounded down. TFLite's SAME pads differently, so use it only when it picks the same windows;
        otherwise add an explicit pad op (or return (None, None) if zero padding is not allowed)."""
        if pad == (0, 0):
            return x, "VALID"
        size = self.values[x].shape[1:3]
        # the padding the last window really reads: it can stop short of the far side's padding
        pads = [(p, (n + 2 * p - k) // s * s + k - n - p) for n, k, s, p in zip(size, kernel, stride, pad)]
        if same_ok and min(after for _, after in pads) >= 0 \
                and explicit_padding(size, kernel, stride, pads) == "SAME":
            return x, "SAME"
        if not zeros_ok:
            return None, None
        pads = ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0))
        return self._emit("pad", [x], self.graph.unique(f"{name}/pad"), pads=pads), "VALID"

    def _non_negative(self, x) -> bool:
        op = self.graph.producer().get(x)
        if op is None:
            return False
        if op.kind in ("relu", "relu6", "sigmoid", "softmax") or op.attrs.get("activation"):
            return True
        return op.kind in ("max_pool2d", "avg_pool2d", "pad", "reshape") and self._non_negative(op.inputs[0])

    def _batchnorm(self, obj, name, x, out):
        self._need_image(x, name, "BatchNorm2d")
        start = len(self.graph.ops)
        stats = np.asarray(obj.running_mean), np.asarray(obj.running_var)
        y = passes.batchnorm(self.graph, x, _array(obj.gamma), _array(obj.beta), *stats,
                             float(getattr(obj, "eps", 1e-5)), name)
        if y == x:  # folded into the conv before it: the conv's output is now the normalised value
            self._run(self.graph.producer()[x])
            self._forget(x)
        for op in self.graph.ops[start:]:  # or a mul + add by constants
            self._run(op)
            self.layout[op.outputs[0]] = "nhwc"
        return self._bind(y, out, who=name)

    # -- Tensor ops in the model's own forward -------------------------------------------------------
    def _tensor_op(self, op, this, args, kwargs, out):
        if out is NotImplemented:  # Python will try the other operand's method, which is recorded
            return
        other = args[0] if args and op in ("matmul", "add", "sub", "rsub", "mul", "div") else None
        operands = [this] if other is None else [this, other]
        names = [self._resolve(o) for o in operands]
        if all(n is None for n in names):  # arithmetic on weights: its result is a weight too
            if all(self._is_const(o) for o in operands):
                self.consts.update({id(out), id(getattr(out, "data", out))})
                self.keep.append(out)
            return
        label = self._unique({"rsub": "sub", "div": "mul", "neg": "mul"}.get(op, op))
        if op == "reshape":
            return self._reshape(names[0], _array(out).shape, out)
        if op == "mean":
            return self._mean(names[0], label, args, kwargs, out)
        if op == "neg":
            return self._emit("mul", [names[0], self._const(f"{label}/scale", [-1.0])], label, out)
        if op == "matmul":
            if names[0] is not None and names[1] is not None:
                raise UnsupportedError(f"matmul of two activations: {NO_ATTENTION}", label, SUPPORTED)
            if names[0] is None or names[1] is not None or _array(other).ndim != 2 \
                    or self.snap[names[0]].ndim != 2:
                raise UnsupportedError("matmul other than (batch, in) @ weight (in, out)", label, SUPPORTED)
            w = _array(other)
            if self.layout[names[0]] == "perm":
                w = w[self.perm[names[0]]]
            inputs = [names[0], self._const(f"{label}/weights", w.T),
                      self._const(f"{label}/bias", np.zeros(w.shape[1]))]
            return self._emit("fully_connected", inputs, label, out, "same", activation=None)
        return self._arith(op, operands, names, label, out)

    def _arith(self, op, operands, names, label, out):
        """+, -, * and / between two activations, or an activation and a constant."""
        a, b = names
        if op == "rsub":  # other - this
            a, b, operands = b, a, operands[::-1]
        if a is not None and b is not None:
            if self.layout[a] != self.layout[b] or not np.array_equal(self.perm.get(a, 0), self.perm.get(b, 0)):
                # e.g. a flattened NCHW tensor plus a plain one: their elements are in different orders
                raise UnsupportedError(f"'{op}' between tensors of different layouts", label, SUPPORTED)
            if op in ("sub", "rsub"):
                b = self._negate(b, label)
            if op == "div":
                raise UnsupportedError("division by a tensor", label, SUPPORTED)
            return self._emit("mul" if op == "mul" else "add", [a, b], label, out)
        x, c_obj = (a, operands[1]) if a is not None else (b, operands[0])
        if not self._is_const(c_obj) and np.size(_array(c_obj)) > 1:
            raise UnsupportedError(f"'{op}' with a value computed by numpy code edgekit cannot follow (keep "
                                   "constants as model attributes, e.g. self.mean = Tensor(...))",
                                   label, SUPPORTED)
        c = self._const_for(x, _array(c_obj), label)
        if op == "div" and a is None:
            raise UnsupportedError("division by a tensor", label, SUPPORTED)
        if op in ("sub", "rsub") and a is None:  # c - x = (-1 * x) + c
            x = self._negate(x, label)
        elif op in ("sub", "rsub"):
            c = -c
        if op == "div":
            c = 1.0 / c
        kind = "mul" if op in ("mul", "div") else "add"
        if kind == "add" and self._fold_bias(x, c, out):
            return
        return self._emit(kind, [x, self._const(f"{label}/const", c)], label, out)

    def _negate(self, x, label) -> str:
        return self._emit("mul", [x, self._const(f"{label}/neg", [-1.0])], self.graph.unique(f"{label}/neg"))

    def _const_for(self, x, c, label) -> np.ndarray:
        """A constant in the model's layout, laid out to broadcast against IR tensor x."""
        shape, layout = self.snap[x].shape, self.layout[x]
        fits = c.ndim < len(shape) or (c.ndim == len(shape) and c.shape[0] == 1)
        if not fits or np.broadcast_shapes(shape, c.shape) != shape:
            raise UnsupportedError(f"constant of shape {c.shape} combined with a {shape} tensor", label,
                                   "constants that broadcast over the batch, e.g. (C,), (1, C, 1, 1) or scalars")
        if layout == "nhwc":
            return c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 2, 3, 1)
        if layout == "perm" and c.ndim and c.shape[-1] > 1:
            return c[..., self.perm[x]]
        return c.reshape(1) if c.ndim == 0 else c

    def _fold_bias(self, x, c, out) -> bool:
        """x.matmul(W) + b written out in forward: put b into the fully-connected op's bias."""
        op = self.graph.producer().get(x)
        if op is None or op.kind != "fully_connected" or op.attrs.get("activation") \
                or c.size != self.snap[x].shape[1] or any(x in o.inputs for o in self.graph.ops):
            return False
        bias = self.graph.tensors[op.inputs[2]]
        bias.data = (bias.data + c.reshape(-1)).astype(np.float32)
        self._run(op)
        self._forget(x)
        self._bind(x, out, who=op.name)
        return True

    def _mean(self, x, label, args, kwargs, out):
        axis = args[0] if args else kwargs.get("axis")
        keepdims = bool(args[1] if len(args) > 1 else kwargs.get("keepdims", False))
        axes = {a % 4 for a in np.atleast_1d(axis)} if axis is not None else None
        if self.layout[x] != "nhwc" or axes != {2, 3}:
            raise UnsupportedError(f"mean over axis {axis}", label,
                                   "mean over H and W of an NCHW image: x.mean(axis=(2, 3))")
        layout = "nhwc" if keepdims else "same"
        return self._emit("mean", [x], label, out, layout, axes=(1, 2), keepdims=keepdims)

    def _reshape(self, x, shape, result) -> str:
        """IR op for the model's reshape of x to `shape`, keeping 4-D tensors NHWC."""
        src, layout = self.snap[x].shape, self.layout[x]
        shape = tuple(int(d) for d in shape)
        label = self._unique("flatten" if len(shape) == 2 else "reshape")
        if shape == src:
            return self._bind(x, result)
        if shape[0] != src[0]:
            raise UnsupportedError(f"reshape from {src} to {shape}, which changes the batch dimension",
                                   label, SUPPORTED)
        # does the IR hold x's elements in the model's (row-major) order?
        in_order = layout == "same" or (layout == "nhwc" and (src[1] == 1 or src[2] * src[3] == 1))
        if len(shape) == 4:  # back to an image: only when the NHWC elements line up without a transpose
            _, c, h, w = shape
            ok = (layout == "nhwc" and src[1] == c) or (in_order and (c == 1 or h * w == 1)) \
                or (layout == "perm" and np.array_equal(self.perm[x], passes.chw_to_hwc_index(c, h, w)))
            if not ok:
                raise UnsupportedError(f"reshape from {src} to {shape} (in NHWC it needs a transpose)",
                                       label, SUPPORTED)
            return self._emit("reshape", [x], label, result, "nhwc", shape=(1, h, w, c))
        if layout == "nhwc":  # flattening NCHW: in the IR the elements come in HWC order
            if len(shape) != 2:
                raise UnsupportedError(f"reshape from {src} to {shape}", label,
                                       "x.reshape(batch, -1) of an image")
            perm = "same" if in_order else passes.chw_to_hwc_index(*src[1:])
            return self._emit("reshape", [x], label, result, perm, shape=(1, shape[1]))
        if layout == "perm":
            raise UnsupportedError(f"reshape of a flattened NCHW tensor to {shape}", label, SUPPORTED)
        return self._emit("reshape", [x], label, result, "same", shape=(1,) + shape[1:])
