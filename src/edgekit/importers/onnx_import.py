"""Read an ONNX model (as PyTorch exports it, opset 11 and newer) into edgekit's Graph.

ONNX tensors are NCHW; the Graph is NHWC, like TFLite. Rather than inserting Transpose ops, the
importer converts everything *around* the activations: conv weights OIHW -> OHWI, axes and pads
NCHW -> NHWC, per-channel constants to channels-last. A flatten of a C x H x W feature map gives
its elements in HWC order in NHWC, so the dense layer reading it gets its weight columns permuted
(`chw_to_hwc_index`) and the model still needs no transpose at run time.

Exporters of channels-last models (tf2onnx for Keras) write Transposes between NHWC and NCHW: after
an NHWC input, and in pairs around some ops. A tensor such a Transpose makes channels-last is the
Graph's own NHWC tensor, so the Transposes cost nothing: a pair cancels, one after the input makes
the input NHWC (recorded as the Graph's `source_layout`), and one before a flatten gives the HWC
element order the Graph already has.

Shape arithmetic that PyTorch exports as ops (Shape -> Gather -> Unsqueeze -> Concat -> Reshape for
`x.view(x.size(0), -1)`) is evaluated here, with the batch fixed to 1. The op handlers, one per
ONNX op type, are in onnx_ops.py.

A file may be hostile: its fields are checked before use (onnx_checks.py), shapes are inferred
without allocating, and one sample's activations are held against the memory budget as they are.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from .. import budget
from ..errors import EdgekitError, UnsupportedError
from ..graph import Graph
from .onnx_checks import NUMERIC, Attrs, check_graph, tensor_array
from .onnx_ops import ALIASES, OnnxOps, axes_in, resolve_shape

SUPPORTED = ("Conv (2-D, incl. depthwise), Gemm, MatMul(+Add), BatchNormalization, Relu, Clip(0,6), "
             "Sigmoid, Tanh, HardSwish, HardSigmoid, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean over "
             "H and W, Add, Sub, Mul, Div, Concat, Pad, Flatten, Reshape, Squeeze, Unsqueeze, Softmax, "
             "Dropout, Identity, Transpose between NCHW and NHWC (perm [0, 2, 3, 1] / [0, 3, 1, 2])")
MIN_OPSET = 11
MAX_OPSET = onnx.defs.onnx_opset_version()  # the newest this onnx package knows
# Ops evaluated at import time when all their inputs are constants (shape arithmetic, mostly).
FOLDABLE = ("Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape",
            "Flatten", "Transpose", "Add", "Sub", "Mul", "Div")
# Ops that may read a flatten in HWC order: dense layers (they get permuted weights) and
# element-wise ops, for which element order does not matter.
HWC_FLAT_READERS = ("Gemm", "MatMul", "Relu", "Clip", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid") + ALIASES
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
CHANNELS_LAST_RULE = ("a channels-last tensor (from a Transpose between NCHW and NHWC) that a Transpose "
                      "turns back, or that is flattened to [N, features], or averaged over H and W")
FLAT_RULE = ("a flatten of a 4-D tensor with height and width > 1 only feeding Gemm/MatMul layers "
             "(NHWC orders its elements differently)")


def import_onnx(source, name: str | None = None) -> Graph:
    """Import an ONNX model from a path (str or Path) or the file's bytes.

    `name` names the Graph (default: the file's stem). The Graph's `source_layout` is the layout
    the model's 4-D input is given in: "NCHW", or "NHWC" when the model Transposes its input from
    NHWC (tf2onnx's Keras models). Raises EdgekitError for files that are not
    ONNX models and UnsupportedError for ops or attributes edgekit cannot convert.
    """
    model, label = _load(source, name)
    if name is None:
        name = Path(label).stem if label.endswith(".onnx") else "model"
    # Arithmetic on hostile constants (inf * 0, a float64 overflowing float32) would print numpy
    # warnings; Graph.validate refuses any non-finite constant instead, naming its layer.
    with np.errstate(all="ignore"):
        return _Importer(model, name).run()


def _load(source, name):
    """(ModelProto, file label for messages); any decoding problem becomes one EdgekitError."""
    path = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), f"{name}.onnx" if name else "the ONNX data"
    else:
        path = Path(source)
        label = path.name
        if not path.is_file():
            raise EdgekitError(f"'{path}' does not exist or is not a file; check the path")
        data = path.read_bytes()
    what = f"'{label}'" if label != "the ONNX data" else label
    try:
        model = onnx.load_from_string(data)
    except DecodeError:
        raise EdgekitError(f"{what} is not a valid ONNX model: its data is corrupt or cut short; "
                           "export it again (torch.onnx.export) and check the file was copied "
                           "completely") from None
    except Exception as e:  # anything else protobuf or onnx may raise on odd input
        raise EdgekitError(f"{what} is not a valid ONNX model: {_short(e)}; export it again "
                           "(torch.onnx.export) and check the file was copied completely") from None
    if not model.HasField("graph") or not model.graph.node:
        raise EdgekitError(f"{what} is not a valid ONNX model: it has no graph; export it again "
                           "(torch.onnx.export) and check the file was copied completely")
    if any(external_data_helper.uses_external_data(t) for t in model.graph.initializer):
        if path is None:
            raise EdgekitError(f"{what} keeps its weights in a separate file; pass the .onnx file's "
                               "path instead of its bytes, with the data file next to it")
        try:
            external_data_helper.load_external_data_for_model(model, str(path.parent))
        except OSError as e:
            raise EdgekitError(f"{what} keeps its weights in a separate file that could not be read "
                               f"({_short(e)}); keep that file next to the model") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not MIN_OPSET <= opset <= MAX_OPSET:
        raise EdgekitError(f"{what} uses ONNX opset {opset}; edgekit reads opsets {MIN_OPSET} to {MAX_OPSET}: "
                           "export again with torch.onnx.export(..., opset_version=13)")
    check_graph(model.graph)
    return model, label


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0][:120] if text else type(e).__name__)


class _Importer(OnnxOps):
    """Walks the ONNX graph: inputs, constants, shape arithmetic; the ops are in onnx_ops.OnnxOps."""

    def __init__(self, model: onnx.ModelProto, name: str):
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        self.onnx = model.graph
        self.g = Graph(name=name)
        self.consts = {t.name: tensor_array(t, "initializer") for t in self.onnx.initializer}
        self.activation_bytes = 0  # one sample's activations so far, held against the memory budget
        self.acts: dict[str, str] = {}  # ONNX activation name -> Graph tensor name
        self.hwc_flat: dict[str, tuple] = {}  # Graph tensor -> (c, h, w) of a flatten in HWC order
        self.readers: dict[str, list] = {}  # ONNX name -> nodes reading it
        self.fused_adds: set[str] = set()  # outputs of Adds folded into a MatMul as its bias
        # ONNX name of a channels-last [N, H, W, C] tensor -> (the Graph tensor equal to it element
        # for element, what made it channels-last: for messages)
        self.channels_last: dict[str, tuple[str, str]] = {}
        self.source_layout = None  # the layout of the first 4-D input as the user gives it
        self.output_names = {v.name for v in self.onnx.output}
        for node in self.onnx.node:
            for t in node.input:
                self.readers.setdefault(t, []).append(node)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.consts[node.output[0]] = self._constant(node)

    # -- driver ---------------------------------------------------------------------------
    def run(self) -> Graph:
        self._inputs()
        for i, node in enumerate(self.onnx.node):
            name = node.name or f"{node.op_type}_{i}"
            if node.output and node.output[0] in self.fused_adds:
                continue
            first_new = len(self.g.ops)
            self._node(node, name)
            for op in self.g.ops[first_new:]:  # later nodes need the shapes (pads, flattens)
                self._infer_shape(op)
        for v in self.onnx.output:
            if v.name in self.consts:
                raise EdgekitError(f"model output '{v.name}' is a constant; the model computes "
                                   "nothing from its input")
            if v.name in self.channels_last:
                raise EdgekitError(f"model output '{v.name}' is channels-last (made so by "
                                   f"{self.channels_last[v.name][1]}); edgekit's ONNX outputs are NCHW "
                                   "or [N, features]: export the model without that last Transpose")
            out = self._act(v.name, "the model's outputs")
            if out in self.hwc_flat:
                raise UnsupportedError(f"flatten of a {self._chw(out)} feature map as the model's "
                                       "output", self.g.producer()[out].name, FLAT_RULE)
            self.g.outputs.append(out)
        g = self.g.finalize()
        g.source_layout = self.source_layout or "NCHW"  # how calibration and inputs are given
        return g

    def _inputs(self):
        for v in self.onnx.input:
            if v.name in self.consts:  # old exporters list the weights as inputs too
                continue
            t = v.type.tensor_type
            if not v.type.HasField("tensor_type") or t.elem_type != onnx.TensorProto.FLOAT:
                raise EdgekitError(f"model input '{v.name}' is not float32; edgekit converts models "
                                   "with float32 inputs")
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                    for d in t.shape.dim]
            if len(dims) not in (2, 4):
                raise EdgekitError(f"model input '{v.name}' has {len(dims)} dimensions; edgekit takes "
                                   "[batch, features] or [batch, channels, height, width] inputs")
            if dims[0] not in (None, 1):
                raise EdgekitError(f"model input '{v.name}' has a fixed batch size of {dims[0]}; "
                                   "export the model with batch size 1 or a dynamic batch dimension")
            if None in dims[1:]:
                raise EdgekitError(f"model input '{v.name}' has an unknown size in shape "
                                   f"{['?' if d is None else d for d in dims]}; export the model "
                                   "with a fixed input size (only the batch may be dynamic)")
            shape = [1] + dims[1:]
            nhwc = len(shape) == 4 and self._only_to_nchw(v.name)
            if len(shape) == 4 and not nhwc:  # NCHW -> NHWC
                shape = [1, shape[2], shape[3], shape[1]]
            x = self.g.add_input(v.name, shape)
            if nhwc:  # already the Graph's layout: its Transposes to NCHW become the input itself
                self.channels_last[v.name] = (x, f"input '{v.name}'")
            else:
                self.acts[v.name] = x
            if len(shape) == 4 and self.source_layout is None:
                self.source_layout = "NHWC" if nhwc else "NCHW"
            self.activation_bytes += self.g.nbytes(x)
            budget.check_memory(self.activation_bytes, f"model input '{v.name}' of shape {shape}")

    def _node(self, node, name):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedError(f"op {node.domain}.{op}", name, SUPPORTED)
        if op == "Constant":
            return
        present = [t for t in node.input if t]
        if op == "Shape" and present[0] in self.acts:
            a = Attrs(node, name)
            shape = self._onnx_shape(self._act(present[0], name))
            self.consts[node.output[0]] = np.array(shape[a.int("start", 0):a.int("end", None)], np.int64)
            return
        if op in FOLDABLE and present and all(t in self.consts for t in present):
            self.consts[node.output[0]] = self._fold(node, name)
            return
        if any(t in self.channels_last for t in present):
            return self._read_channels_last(node, name)
        for t in present:
            if self.acts.get(t) in self.hwc_flat and op not in HWC_FLAT_READERS:
                raise UnsupportedError(f"{op} reading a flatten of a {self._chw(self.acts[t])} "
                                       "feature map", name, FLAT_RULE)
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise UnsupportedError(f"op {op}", name, SUPPORTED)
        handler(node, name)

    # -- channels-last tensors ---------------------------------------------------------------
    def _perm(self, node):
        return tuple(Attrs(node, node.name or node.op_type).ints("perm", None) or ())

    def _only_to_nchw(self, onnx_name) -> bool:
        """True if every reader of onnx_name is a Transpose NHWC -> NCHW (tf2onnx's input)."""
        readers = self.readers.get(onnx_name, [])
        return bool(readers) and onnx_name not in self.output_names and all(
            r.op_type == "Transpose" and r.domain in ("", "ai.onnx") and self._perm(r) == TO_NCHW
            for r in readers)

    def op_Transpose(self, node, layer):
        x = self._act(node.input[0], layer)
        perm = self._perm(node)
        if len(self._shape(x)) == 4 and perm == TO_NHWC:  # its output is x itself, read channels-last
            self.channels_last[node.output[0]] = (x, f"Transpose '{layer}'")
        elif perm == tuple(range(len(self._shape(x)))):
            self.acts[node.output[0]] = x
        else:
            raise UnsupportedError(f"Transpose with perm {list(perm) or 'reversed'} of a "
                                   f"{len(self._shape(x))}-D tensor", layer,
                                   "Transposes between NCHW and NHWC (perm [0, 2, 3, 1] / [0, 3, 1, 2]) "
                                   "that cancel, follow the input or feed a flatten")

    def _read_channels_last(self, node, layer):
        """A node reading a channels-last [N, H, W, C] tensor: the ones the Graph has for free."""
        op, t, out = node.op_type, node.input[0], node.output[0]
        x, made_by = self.channels_last.get(t, (None, None))
        if x is None or any(i in self.channels_last for i in node.input[1:]):
            other = next(i for i in node.input if i in self.channels_last)
            raise UnsupportedError(f"{op} reading the channels-last output of "
                                   f"{self.channels_last[other][1]}", layer, CHANNELS_LAST_RULE)
        shape = self._shape(x)  # as ONNX sees the channels-last tensor
        target = None
        if op == "Transpose" and self._perm(node) == TO_NCHW:
            self.acts[out] = x
            return
        if op in ALIASES:
            self.channels_last[out] = self.channels_last[t]
            return
        if op == "Flatten" and Attrs(node, layer).int("axis", 1, lo=-4, hi=4) % 4 == 1:
            target = (1, math.prod(shape[1:]))
        elif op == "Reshape":
            allowzero = Attrs(node, layer).int("allowzero", 0, lo=0, hi=1)
            target = resolve_shape(shape, self._const(node, 1, layer, "shape"), allowzero, layer)
        elif op == "Squeeze" and shape[1:3] == (1, 1):
            axes = Attrs(node, layer).ints("axes", None)
            axes = self._const(node, 1, layer, "axes") if axes is None else axes
            if axes is not None and sorted(axes_in(axes, 4, layer, "Squeeze")) == [1, 2]:
                target = (1, shape[3])
        elif op == "ReduceMean" and len(node.input) == 1:
            a = Attrs(node, layer)
            if sorted(axes_in(a.ints("axes", ()), 4, layer, "ReduceMean")) == [1, 2]:
                keep = bool(a.int("keepdims", 1, lo=0, hi=1))
                y = self._emit("mean", [x], layer, None if keep else out, axes=(1, 2), keepdims=keep)
                if keep:
                    self.channels_last[out] = (y, made_by)
                return
        if target == (1, math.prod(shape[1:])):  # NHWC's element order is the channels-last one
            self._emit("reshape", [x], layer, out, shape=target)
            return
        raise UnsupportedError(f"{op} reading the channels-last output of {made_by}", layer, CHANNELS_LAST_RULE)

    # -- helpers ----------------------------------------------------------------------------
    def _act(self, onnx_name: str, layer: str) -> str:
        if onnx_name in self.acts:
            return self.acts[onnx_name]
        if onnx_name in self.consts:
            raise UnsupportedError(f"constant input '{onnx_name}' where an activation is expected",
                                   layer, "constants as weights, biases and Add/Mul operands")
        raise EdgekitError(f"layer '{layer}' reads '{onnx_name}', which nothing produces; the ONNX "
                           "file is incomplete or its nodes are out of order: export it again")

    def _const(self, node, i: int, layer: str, what: str):
        """Input i of node as a numpy array, or None if the optional input is absent."""
        if i >= len(node.input) or not node.input[i]:
            return None
        if node.input[i] not in self.consts:
            raise UnsupportedError(f"{node.op_type} with a non-constant {what}", layer,
                                   f"a constant {what} (an initializer or Constant node)")
        return self.consts[node.input[i]]

    def _emit(self, kind, inputs, name, onnx_out=None, **attrs) -> str:
        out = self.g.add_op(kind, inputs, name, out=onnx_out, **attrs)
        if onnx_out:
            self.acts[onnx_out] = out
        return out

    def _infer_shape(self, op):
        """Shape of op's output from its inputs' (nothing allocated), within the memory budget."""
        self.activation_bytes += self.g.infer_shape(op)
        budget.check_memory(self.activation_bytes, f"one sample's activations up to layer '{op.name}' "
                                                   f"(its output is {list(self._shape(op.outputs[0]))})")

    def _shape(self, t: str) -> tuple:
        return self.g.tensors[t].shape

    def _onnx_shape(self, t: str) -> tuple:
        """The shape ONNX sees for Graph tensor t (NCHW for 4-D)."""
        s = self._shape(t)
        return (s[0], s[3], s[1], s[2]) if len(s) == 4 else s

    def _chw(self, t: str) -> str:
        return "x".join(str(d) for d in self.hwc_flat[t])

    def _rank4(self, x, node, layer):
        if len(self._shape(x)) != 4:
            raise UnsupportedError(f"{node.op_type} on a {len(self._shape(x))}-D tensor", layer,
                                   f"{node.op_type} on 4-D [N, C, H, W] tensors")

    def _constant(self, node):
        a = Attrs(node, node.name or node.output[0])
        if "value" in a:
            return a.tensor("value")
        if "value_float" in a:
            return np.array(a.float("value_float"), np.float32)
        if "value_int" in a:
            return np.array(a.int("value_int"), np.int64)
        if "value_ints" in a:
            return np.array(a.ints("value_ints"), np.int64)
        if "value_floats" in a and a.found["value_floats"].type == onnx.AttributeProto.FLOATS:
            return np.array(a.found["value_floats"].floats, np.float32)
        raise UnsupportedError(f"Constant with attribute {list(a.found)}", a.layer,
                               "tensor, float and int constants")

    def _fold(self, node, layer):
        """Evaluate a node whose inputs are all constants (numpy semantics equal ONNX's here)."""
        a, op = Attrs(node, layer), node.op_type
        args = [self.consts[t] if t else None for t in node.input]
        x = args[0]
        budget.check_memory(self._fold_size(op, args, a) * 8, f"layer '{layer}' ({op} of constants)")
        try:
            return self._evaluate(op, a, args, x, layer)
        except (ValueError, IndexError, TypeError) as e:  # numpy's own check of what is left unchecked
            raise EdgekitError(f"layer '{layer}': its {op} cannot be evaluated on constants of shapes "
                               f"{[None if v is None else list(v.shape) for v in args]} ({_short(e)}); "
                               "the ONNX model is inconsistent: export it again") from None

    @staticmethod
    def _fold_size(op, args, a) -> int:
        """Elements a folded op's result will have, known before computing it."""
        shapes = [v.shape for v in args if v is not None]
        if op in ("Add", "Sub", "Mul", "Div") and len(shapes) == 2:
            try:
                return math.prod(np.broadcast_shapes(*shapes))
            except ValueError:
                return 0  # _evaluate reports the mismatch
        if op == "Gather" and len(shapes) == 2 and shapes[0]:
            return args[1].size * args[0].size // max(min(args[0].shape), 1)  # an upper bound, for any axis
        return sum(math.prod(s) for s in shapes)

    def _evaluate(self, op, a, args, x, layer):
        def axes():  # an attribute before opset 13, an input after
            if "axes" in a:
                return a.ints("axes")
            if len(args) > 1 and args[1] is not None:
                return tuple(int(i) for i in np.ravel(args[1]))
            return None

        if op == "Identity":
            return x
        if op == "Cast":
            to = a.int("to")
            if to not in NUMERIC:
                a.bad("to", to, "a numeric ONNX element type")
            return x.astype(NUMERIC[to])
        if op == "Shape":
            return np.array(x.shape[a.int("start", 0):a.int("end", None)], np.int64)
        if op == "Gather":
            return np.take(x, args[1].astype(np.int64), axis=a.int("axis", 0))
        if op == "Unsqueeze":
            return np.expand_dims(x, axes())
        if op == "Squeeze":
            return np.squeeze(x, axes())
        if op == "Concat":
            return np.concatenate(args, axis=a.int("axis"))
        if op == "Reshape":
            return x.reshape(resolve_shape(x.shape, args[1], a.int("allowzero", 0), layer))
        if op == "Flatten":
            axis = a.int("axis", 1, lo=-max(x.ndim, 1), hi=max(x.ndim, 1))
            return x.reshape(math.prod(x.shape[:axis]), -1)
        if op == "Transpose":
            return x.transpose(a.ints("perm", None))
        y = args[1]
        if op == "Div" and np.issubdtype(x.dtype, np.integer):
            if np.any(y == 0):
                raise EdgekitError(f"layer '{layer}' divides integers by zero; the ONNX model is inconsistent")
            return np.trunc(x / y).astype(x.dtype)  # ONNX integer division truncates
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](x, y)
