"""Float .tflite (e.g. from Keras' TFLite converter) -> edgekit Graph.

TFLite already uses edgekit's layouts (NHWC activations, OHWI conv filters, [1,kh,kw,C*M]
depthwise filters, [out,in] fully-connected weights), so most ops map one to one. Constant
weights stored as float16 or int8 behind a DEQUANTIZE op (weight-only quantization) are folded
back to float constants, and the shape arithmetic Keras writes for batch None to static
reshapes (see tflite_shapes). Already-int8 models are not imported: the caller passes them through
untouched (see `is_fully_int8`).
"""
from __future__ import annotations

import math

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from ..errors import EdgekitError, UnsupportedError
from ..graph import Graph
from ..tflite_file import (activation_types, builtin_name, is_constant, is_fully_int8, quantization_kind,
                           read_model, tensor_array, text)
from .tflite_shapes import evaluate, shape_only_ops

__all__ = ["import_tflite", "is_fully_int8", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, AVERAGE_POOL_2D, MEAN, ADD, "
                 "MUL, CONCATENATION, PAD, RESHAPE, SOFTMAX, RELU, RELU6, LOGISTIC, TANH, HARD_SWISH, "
                 "DEQUANTIZE (of constant weights), SHAPE/STRIDED_SLICE/PACK/GATHER computing a RESHAPE's "
                 "shape from static shapes (Keras' batch None)")
A = fb.ActivationFunctionType
FUSED = {A.NONE: None, A.RELU: "relu", A.RELU6: "relu6"}
FUSED_NAMES = {v: k for k, v in vars(A).items() if not k.startswith("_")}
PADDING = {fb.Padding.SAME: "SAME", fb.Padding.VALID: "VALID"}
NEED_OPTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "CONCATENATION", "SOFTMAX")
SIMPLE = {"RELU": "relu", "RELU6": "relu6", "LOGISTIC": "sigmoid", "TANH": "tanh", "HARD_SWISH": "hard_swish"}


def _short(name: str) -> str:
    """Converters join the names of fused TF ops with ';': the first one names the layer."""
    return name.split(";")[0]


class _Importer:
    def __init__(self, model: fb.ModelT, name: str):
        self.m, self.sg = model, model.subgraphs[0]
        self.g = Graph(name=name)
        self.names: dict[int, str] = {}  # tflite tensor index -> graph tensor name
        self.static: dict[int, np.ndarray] = {}  # shape arithmetic folded at import (tflite_shapes)

    # -- tensors -------------------------------------------------------------------------------
    def t(self, i: int) -> fb.TensorT:
        return self.sg.tensors[i]

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(int(d) for d in (self.t(i).shape if self.t(i).shape is not None else []))

    def values(self, i: int, layer: str) -> np.ndarray:
        """A constant's values as stored; quantized (int8/uint8/...) constants dequantized to float."""
        t = self.t(i)
        if t.sparsity is not None:
            raise UnsupportedError("sparse weights", layer, "dense weights")
        arr = tensor_array(self.m, t)
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) and arr.dtype.kind in "iu":
            # per-tensor or per-channel (along quantizedDimension) affine dequantization
            shape = [1] * arr.ndim
            if len(q.scale) > 1:
                shape[q.quantizedDimension] = -1
            scale = np.asarray(q.scale, np.float64).reshape(shape)
            zp = np.asarray(q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else 0, np.float64)
            zp = zp.reshape(shape) if zp.size > 1 else zp.reshape(())
            return ((arr.astype(np.float64) - zp) * scale).astype(np.float32)
        return arr.astype(np.float32) if arr.dtype.kind == "f" else arr

    def const(self, i: int, layer: str, name: str | None = None) -> str:
        """Graph name of constant tensor i (float32), adding it the first time."""
        if i not in self.names:
            if not is_constant(self.m, self.t(i)):
                raise EdgekitError(f"layer '{layer}' needs tensor {i} ('{text(self.t(i).name)}') to hold "
                                   "constant values, but the file stores none for it: export the model again")
            values = self.values(i, layer)
            if values.dtype.kind != "f":  # int weights with no scale: nothing says what they mean
                raise EdgekitError(f"layer '{layer}' uses tensor {i} ('{text(self.t(i).name)}') of type {values.dtype} "
                                   "as weights, without quantization parameters; a float model's weights are "
                                   "float (or quantized, behind DEQUANTIZE): export the model again")
            self.names[i] = self.g.add_const(name or _short(text(self.t(i).name)) or f"const_{i}",
                                             values.astype(np.float32))
        return self.names[i]

    def value(self, i: int, layer: str) -> str:
        """Graph name of input i of an op: an activation produced earlier, or a constant."""
        if i in self.names:
            return self.names[i]
        if is_constant(self.m, self.t(i)):
            return self.const(i, layer)
        raise EdgekitError(f"layer '{layer}' reads tensor '{text(self.t(i).name)}' before any op makes it; "
                           "the model's ops are not in execution order: convert it again")

    # -- ops -----------------------------------------------------------------------------------
    def activation(self, opts, layer: str):
        code = getattr(opts, "fusedActivationFunction", A.NONE) if opts is not None else A.NONE
        if code not in FUSED:
            raise UnsupportedError(f"fused activation {FUSED_NAMES.get(code, code)}", layer, "NONE, RELU, RELU6")
        return FUSED[code]

    def weighted(self, kind: str, op, layer: str, **attrs) -> str:
        """conv2d / depthwise_conv2d / fully_connected: x, const weights, const bias (zeros if absent)."""
        x, w, b = [int(i) for i in (list(op.inputs) + [-1])[:3]]
        w_name = self.const(w, layer, f"{layer}/weights") if is_constant(self.m, self.t(w)) else self.value(w, layer)
        if not self.g.tensors[w_name].is_const:  # a DEQUANTIZE of constant weights was folded already
            raise UnsupportedError(f"{kind} with weights computed at run time", layer, "constant weights")
        out_channels = self.g.tensors[w_name].shape[0 if kind != "depthwise_conv2d" else 3]
        if b >= 0:
            b_name = self.const(b, layer, f"{layer}/bias")
        else:
            b_name = self.g.add_const(f"{layer}/bias", np.zeros(out_channels, np.float32))
        return self.g.add_op(kind, [self.value(x, layer), w_name, b_name], layer, **attrs)

    def options(self, op, kind: str, layer: str):
        """The op's options; the ops below read their fields, so a file without them is refused."""
        if op.builtinOptions is None and kind in NEED_OPTIONS:
            raise EdgekitError(f"layer '{layer}' ({kind}) has no options (e.g. its axis or beta); "
                               "the file is incomplete: export the model again")
        return op.builtinOptions

    def dims(self, i: int, rank: int, layer: str, kind: str) -> tuple[int, ...]:
        """The shape of tensor i, which the op needs to have `rank` non-empty dimensions."""
        shape = self.shape(i)
        if len(shape) != rank or min(shape, default=1) < 1:
            raise EdgekitError(f"layer '{layer}' ({kind}) needs a {rank}-D tensor with no empty dimension "
                               f"but tensor {i} ('{text(self.t(i).name)}') is declared {list(shape)}")
        return shape

    def rank(self, i: int, layer: str, kind: str) -> int:
        """The rank of tensor i, which an op taking an axis needs to be at least 1."""
        rank = len(self.shape(i))
        if rank == 0:
            raise EdgekitError(f"layer '{layer}' ({kind}) takes an axis of tensor {i} "
                               f"('{text(self.t(i).name)}'), which the file declares without a shape")
        return rank

    def convert(self, op, kind: str, layer: str) -> str:
        o = self.options(op, kind, layer)
        ins = [int(i) for i in op.inputs]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if (o.dilationHFactor, o.dilationWFactor) not in ((1, 1), (0, 0)):
                raise UnsupportedError(f"dilation {o.dilationHFactor}x{o.dilationWFactor}", layer, "dilation 1")
            common = dict(stride=(o.strideH, o.strideW), padding=PADDING[o.padding],
                          activation=self.activation(o, layer))
            cin, w = self.dims(ins[0], 4, layer, kind)[-1], self.dims(ins[1], 4, layer, kind)
            if kind == "CONV_2D":
                if w[3] != cin:
                    raise UnsupportedError(f"grouped convolution ({cin} input channels, filter takes {w[3]})",
                                           layer, "groups=1, or depthwise")
                return self.weighted("conv2d", op, layer, **common)
            # the multiplier follows from the shapes (some converters leave depthMultiplier 0)
            return self.weighted("depthwise_conv2d", op, layer, multiplier=w[3] // cin, **common)
        if kind == "FULLY_CONNECTED":
            if o is not None and o.weightsFormat != fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
                raise UnsupportedError("shuffled fully-connected weights", layer, "the default weights format")
            x, n_in = self.shape(ins[0]), self.dims(ins[1], 2, layer, kind)[1]
            if o is not None and o.keepNumDims and len(x) > 2:
                raise UnsupportedError("FULLY_CONNECTED with keep_num_dims", layer, "keep_num_dims false")
            if int(np.prod(x[1:])) != n_in:  # TFLite would fold extra axes into rows; edgekit flattens
                raise UnsupportedError(f"FULLY_CONNECTED of a {list(x)} input with {n_in} weights per row",
                                       layer, "inputs that flatten to [batch, in]")
            return self.weighted("fully_connected", op, layer, activation=self.activation(o, layer))
        if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            y = self.g.add_op("max_pool2d" if kind == "MAX_POOL_2D" else "avg_pool2d",
                              [self.value(ins[0], layer)], layer, kernel=(o.filterHeight, o.filterWidth),
                              stride=(o.strideH, o.strideW), padding=PADDING[o.padding])
            return self.separate_activation(y, o, layer)
        if kind == "MEAN":
            rank = self.rank(ins[0], layer, kind)
            axes = tuple(sorted({int(a) % rank for a in np.ravel(self.values(ins[1], layer))}))
            if 0 in axes:
                raise UnsupportedError("MEAN over the batch axis", layer, "means over non-batch axes")
            return self.g.add_op("mean", [self.value(ins[0], layer)], layer, axes=axes,
                                 keepdims=bool(o.keepDims) if o is not None else False)
        if kind in ("ADD", "MUL"):
            return self.g.add_op(kind.lower(), [self.value(i, layer) for i in ins], layer,
                                 activation=self.activation(o, layer))
        if kind == "CONCATENATION":
            axis = o.axis % self.rank(int(op.outputs[0]), layer, kind)
            if axis == 0:
                raise UnsupportedError("CONCATENATION along the batch axis", layer, "other axes")
            y = self.g.add_op("concat", [self.value(i, layer) for i in ins], layer, axis=axis)
            return self.separate_activation(y, o, layer)
        if kind == "PAD":
            pads = self.values(ins[1], layer).astype(np.int64)
            if pads.ndim != 2 or pads.shape[1] != 2 or pads.min(initial=0) < 0:
                raise EdgekitError(f"layer '{layer}' (PAD) has paddings {pads.tolist()}; they must be "
                                   "non-negative [before, after] pairs, one per dimension")
            return self.g.add_op("pad", [self.value(ins[0], layer)], layer,
                                 pads=tuple((int(a), int(b)) for a, b in pads))
        if kind == "RESHAPE":
            return self.g.add_op("reshape", [self.value(ins[0], layer)], layer,
                                 shape=self.reshape_target(op, ins, layer))
        if kind == "SOFTMAX":
            return self.g.add_op("softmax", [self.value(ins[0], layer)], layer, beta=float(o.beta))
        if kind in SIMPLE:
            return self.g.add_op(SIMPLE[kind], [self.value(ins[0], layer)], layer)
        raise UnsupportedError(f"op {kind}", layer, SUPPORTED_OPS)

    def separate_activation(self, y: str, opts, layer: str) -> str:
        """Pooling and concatenation may carry a fused activation the IR keeps as its own op."""
        act = self.activation(opts, layer)
        return self.g.add_op(act, [y], f"{layer}/{act}") if act else y

    def reshape_target(self, op, ins, layer: str) -> tuple[int, ...]:
        """The new shape: a shape tensor folded at import (what the file computes; check_shapes
        compares it with the declared one), else the output tensor's static shape, else the option
        or the constant shape tensor."""
        target = list(self.shape(op.outputs[0]))
        folded = len(ins) > 1 and ins[1] in self.static
        if folded or not target or min(target) <= 0:
            o = op.builtinOptions
            if folded:
                target = [int(d) for d in np.ravel(self.static[ins[1]])]
            elif len(ins) > 1 and ins[1] >= 0 and is_constant(self.m, self.t(ins[1])):
                target = [int(d) for d in np.ravel(self.values(ins[1], layer))]
            elif o is not None and o.newShape is not None:
                target = [int(d) for d in o.newShape]
            if -1 in target:  # the one unknown size follows from the element count
                known = math.prod(d for d in target if d != -1)
                target[target.index(-1)] = math.prod(self.shape(ins[0])) // max(known, 1)
        if min(target, default=0) < 1 or math.prod(target) != math.prod(self.shape(ins[0])):
            raise EdgekitError(f"layer '{layer}' (RESHAPE) turns {list(self.shape(ins[0]))} into {target}, "
                               "which does not keep the number of elements; the file is inconsistent")
        batch = self.shape(ins[0])[0] if self.shape(ins[0]) else 1
        if not target or target[0] != batch:
            raise UnsupportedError(f"RESHAPE to {target}, which moves the batch axis", layer,
                                   "reshapes that keep the batch first")
        return tuple(target)

    # -- the whole graph -----------------------------------------------------------------------
    def run(self) -> Graph:
        for i in self.sg.inputs:
            self.names[int(i)] = self.g.add_input(_short(text(self.t(i).name)) or f"input_{i}", self.shape(i))
        ops = self.sg.operators or []
        kinds = [builtin_name(self.m, op.opcodeIndex) for op in ops]
        shape_only = shape_only_ops(kinds, self.sg)
        for k, (op, kind) in enumerate(zip(ops, kinds)):
            out = int(op.outputs[0])
            layer = _short(text(self.t(out).name)) or f"{kind.lower()}_{out}"
            if k in shape_only:
                if not self.fold(op, kind):  # a shape from run-time values: no static reshape fits
                    raise UnsupportedError(f"op {kind}", layer, SUPPORTED_OPS)
                continue
            if kind == "DEQUANTIZE" and is_constant(self.m, self.t(op.inputs[0])):
                # weight-only quantization (float16 or int8 weights): fold to a float constant
                self.names[out] = self.g.add_const(layer, self.values(int(op.inputs[0]), layer))
                continue
            self.names[out] = self.convert(op, kind, layer)
        missing = [int(i) for i in self.sg.outputs
                   if int(i) not in self.names or self.g.tensors[self.names[int(i)]].is_const]
        if missing:
            raise EdgekitError(f"the model's output tensor {missing[0]} ('{text(self.t(missing[0]).name)}') "
                               "is never computed by any op; the file is inconsistent: export it again")
        self.g.outputs = [self.names[int(i)] for i in self.sg.outputs]
        self.g.finalize()
        self.check_shapes()
        return self.g

    def fold(self, op, kind: str) -> bool:
        """Evaluate a shape op on static shapes and constants; False if it depends on activations."""
        ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        args = [self.static[i] if i in self.static else
                tensor_array(self.m, self.t(i)) if i >= 0 and is_constant(self.m, self.t(i)) else None for i in ins]
        value = evaluate(kind, op.builtinOptions, args, self.shape(ins[0]) if ins else ())
        if value is None or len(op.outputs) != 1:
            return False
        self.static[int(op.outputs[0])] = value
        return True

    def check_shapes(self) -> None:
        """Every imported op must give the shape the file says: catches mapping mistakes early."""
        for i, name in self.names.items():
            want = self.shape(i)
            got = self.g.tensors[name].shape if name in self.g.tensors else want
            if want and min(want) > 0 and tuple(got) != want:
                raise EdgekitError(f"tensor {i} ('{name}') is declared {list(want)} but its op makes "
                                   f"{list(got)}; the file is inconsistent: export the model again")


def import_tflite(data: bytes, name: str = "model") -> Graph:
    """A float .tflite as a finalized Graph (weights float32, shapes inferred)."""
    model = read_model(data, name)
    kind = quantization_kind(model)
    if kind in ("int8", "uint8"):
        raise EdgekitError(f"'{name}' is already quantized ({kind}); it needs no conversion: use it as it is")
    if kind == "mixed":
        types = ", ".join(sorted(activation_types(model)))
        raise EdgekitError(f"'{name}' is already quantized but mixes types ({types}); "
                           "edgekit converts float models: give the float .tflite (or the ONNX/Keras source)")
    return _Importer(model, name).run()

