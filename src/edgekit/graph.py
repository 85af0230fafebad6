"""edgekit's one model representation: named NHWC tensors, ops in execution order, float weights.

Every importer (TinyTorch, ONNX, TFLite) produces a `Graph`; the quantizer and the exporters
consume it. Layout and op conventions follow TFLite, so exporting is a direct mapping:

  op kind            inputs                      attrs
  conv2d             x, weight[O,kh,kw,I], bias  stride=(sh,sw), padding='SAME'|'VALID', activation
  depthwise_conv2d   x, weight[1,kh,kw,C*M], b   stride, padding, multiplier=M, activation
  fully_connected    x, weight[out,in], bias     activation   (x is flattened to [N, in])
  max_pool2d         x                           kernel=(kh,kw), stride, padding
  avg_pool2d         x                           kernel, stride, padding (padding not counted)
  mean               x                           axes=(1,2), keepdims=bool
  add, mul           a, b (either may be const)  activation
  concat             x0, x1, ...                 axis
  pad                x                           pads=((before, after), ...) per dim, zeros
  reshape            x                           shape=(1, ...)   (batch stays first)
  softmax            x                           beta=1.0 (over the last axis)
  relu, relu6, sigmoid, tanh   x                 -
  hard_swish         x                           -   (x * relu6(x + 3) / 6, MobileNetV3's activation)
  gather             table[vocab, ...], ids      -   (table rows by int32 ids along axis 0: an embedding)

`activation` is None, 'relu' or 'relu6' (fused into the op, as TFLite does).
Tensors always carry the batch first; exported models use batch 1. An input read only as gather's
ids has dtype "int32" (token ids, fed as integers, never quantized); all others are float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import budget
from .errors import EdgekitError

ACTIVATIONS = (None, "relu", "relu6")
OP_KINDS = (
    "conv2d", "depthwise_conv2d", "fully_connected", "max_pool2d", "avg_pool2d", "mean",
    "add", "mul", "concat", "pad", "reshape", "softmax", "relu", "relu6", "sigmoid", "tanh",
    "hard_swish", "gather",
)
# Ops whose first input's weights/bias are constants laid out as documented above.
WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None  # float32 constant (weights, bias) or None for activations
    dtype: str = "float32"          # "int32" for an input of token ids (gather's indices)

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass
class Op:
    kind: str
    inputs: list[str]
    outputs: list[str]
    name: str  # the layer's name, used in reports and error messages
    attrs: dict = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    name: str = "model"
    notes: list[str] = field(default_factory=list)  # what the import and passes did that a user should know

    # -- building ----------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        """A tensor name not yet used, derived from `base`."""
        name, i = base, 1
        while name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        return name

    def add_input(self, name: str, shape, dtype: str = "float32") -> str:
        name = self.unique(name)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype=dtype)
        self.inputs.append(name)
        return name

    def add_const(self, name: str, data) -> str:
        arr = np.asarray(data, dtype=np.float32)
        name = self.unique(name)
        self.tensors[name] = Tensor(name, arr.shape, np.ascontiguousarray(arr))
        return name

    def add_op(self, kind: str, inputs: list[str], name: str, out: str | None = None, **attrs) -> str:
        """Append an op with one output and return the output tensor's name (shape set later)."""
        assert kind in OP_KINDS, kind
        out = self.unique(out or name)
        self.tensors[out] = Tensor(out, ())
        self.ops.append(Op(kind, list(inputs), [out], name, attrs))
        return out

    # -- queries -----------------------------------------------------------------------------
    def producer(self) -> dict[str, Op]:
        return {t: op for op in self.ops for t in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        uses: dict[str, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                uses.setdefault(t, []).append(op)
        return uses

    def activations(self) -> list[str]:
        """Non-constant tensors in execution order: inputs first, then each op's outputs."""
        return list(self.inputs) + [t for op in self.ops for t in op.outputs]

    # -- checking ----------------------------------------------------------------------------
    def finalize(self) -> "Graph":
        """Drop unused tensors, check the graph, and infer every activation's shape.

        Shapes come from the ops' shape rules, not a run on zeros, so a model declaring huge
        tensors is refused by the memory budget before anything that size is allocated.
        """
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(op.inputs)
            used.update(op.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}
        self.validate()
        held = sum(self.nbytes(t) for t in self.inputs)
        for op in self.ops:
            held += self.infer_shape(op)
            budget.check_memory(held, f"one sample's activations up to layer '{op.name}'")
        return self

    def infer_shape(self, op: Op) -> int:
        """Set op's output shape from its inputs' shapes (an EdgekitError naming the layer if they do
        not fit) and return the bytes per sample the float reference needs for it: its output and
        its working copies (e.g. a SAME-padded input)."""
        from .reference import output_shape, scratch_bytes  # lazy: reference imports graph (the one allowed circle)

        shapes = [self.tensors[t].shape for t in op.inputs]
        try:
            shape = output_shape(op, shapes)
        except (ValueError, KeyError, TypeError) as e:  # KeyError/TypeError: an attribute missing or malformed
            detail = f"it has no '{e.args[0]}' attribute" if isinstance(e, KeyError) else str(e)
            raise EdgekitError(f"layer '{op.name}' ({op.kind}) cannot take inputs of shapes "
                               f"{[list(s) for s in shapes]}: {detail}; the model is inconsistent") from None
        batch = next((self.tensors[t].shape[0] for t in op.inputs if not self.tensors[t].is_const), shape[0])
        if shape[0] != batch:  # a constant broadcast over the batch: the model breaks at any other batch size
            raise EdgekitError(f"layer '{op.name}' ({op.kind}) turns a batch of {batch} into {shape[0]} (inputs of "
                               f"shapes {[list(s) for s in shapes]}): a constant must not span the batch "
                               "dimension; the model is inconsistent")
        self.tensors[op.outputs[0]].shape = tuple(int(d) for d in shape)
        return self.nbytes(op.outputs[0]) + scratch_bytes(op, shapes, shape)

    def nbytes(self, name: str) -> int:
        """Bytes of tensor `name` for one sample, as float32 (Python ints: no overflow)."""
        return 4 * math.prod(self.tensors[name].shape)

    def validate(self) -> None:
        known = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_const}
        for op in self.ops:
            if op.kind not in OP_KINDS:
                raise EdgekitError(f"internal: unknown op kind '{op.kind}' in layer '{op.name}'")
            for t in op.inputs:
                if t not in known:
                    raise EdgekitError(f"layer '{op.name}' reads '{t}' before anything produces it; "
                                       "the model's ops are not in execution order")
            if op.attrs.get("activation") not in ACTIVATIONS:
                raise EdgekitError(f"layer '{op.name}': unsupported fused activation "
                                   f"'{op.attrs.get('activation')}'; supported: relu, relu6")
            known.update(op.outputs)
        for t in self.outputs:
            if t not in known:
                raise EdgekitError(f"model output '{t}' is never computed")
            if t in self.inputs or self.tensors[t].is_const:  # LiteRT aborts on such a model
                raise EdgekitError(f"model output '{t}' is the model's input or a constant, so the "
                                   "model computes nothing; export it with its real output")
        for t in self.tensors.values():
            if t.is_const and not np.all(np.isfinite(t.data)):
                bad = "NaN" if np.isnan(t.data).any() else "infinite"
                owner = next((op.name for op in self.ops if t.name in op.inputs), t.name)
                raise EdgekitError(f"layer '{owner}' has {bad} values in '{t.name}'; "
                                   "retrain or fix the model before converting it")

    def summary(self) -> str:
        lines = [f"Graph '{self.name}': inputs {[(i, self.tensors[i].shape) for i in self.inputs]}"]
        for op in self.ops:
            shapes = [self.tensors[t].shape for t in op.inputs]
            lines.append(f"  {op.kind:18s} {op.name:24s} {shapes} -> {self.tensors[op.outputs[0]].shape} {op.attrs}")
        return "\n".join(lines)
