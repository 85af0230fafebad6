"""Checks on an ONNX file's fields before the importer uses them, so a malformed or hostile model is
one EdgekitError naming the node, attribute or tensor that is wrong, never a crash deep in numpy.

- check_graph: the graph as a whole (outputs exist, every input is produced before it is read,
  so missing tensors and cycles are caught, every op has the inputs it needs);
- tensor_array: a TensorProto (initializer or Constant) whose type, dims and data agree, within
  the memory budget;
- Attrs: a node's attributes, each read with its declared type and its range checked.
"""
from __future__ import annotations

import math

import numpy as np
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from .. import budget
from ..errors import EdgekitError

MAX_NODES = 20_000  # far above any model a microcontroller course deploys (MobileNetV3: ~300)
AGAIN = "the ONNX model is malformed: export it again (torch.onnx.export)"
# Element types edgekit reads (weights, shapes, indices); strings, complex and 8-bit floats are refused.
NUMERIC = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16,
           TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.INT16: np.int16,
           TensorProto.UINT16: np.uint16, TensorProto.INT32: np.int32, TensorProto.UINT32: np.uint32,
           TensorProto.INT64: np.int64, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_}
# Inputs each op cannot run without (leading, non-empty); later ones are optional.
REQUIRED_INPUTS = {"Conv": 2, "Gemm": 2, "MatMul": 2, "BatchNormalization": 5, "Add": 2, "Sub": 2, "Mul": 2,
                   "Div": 2, "Pad": 2, "Reshape": 2, "Gather": 2, "Constant": 0}


def dtype_name(code: int) -> str:
    return TensorProto.DataType.Name(code) if code in TensorProto.DataType.values() else f"unknown ({code})"


def check_graph(graph) -> None:
    """Whole-graph checks, in one place, before any node is converted."""
    if not graph.output:
        raise EdgekitError(f"the ONNX graph declares no output, so it computes nothing; {AGAIN}")
    if len(graph.node) > MAX_NODES:
        raise EdgekitError(f"the ONNX graph has {len(graph.node):,} nodes, more than the {MAX_NODES:,} edgekit "
                           "converts; models for microcontrollers have a few hundred")
    _check_text(graph)
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    for i, node in enumerate(graph.node):
        layer = node.name or f"{node.op_type}_{i}"
        need = REQUIRED_INPUTS.get(node.op_type, 1)
        if len(node.input) < need or not all(node.input[:need]):
            raise EdgekitError(f"layer '{layer}' ({node.op_type}) has {len([t for t in node.input if t])} "
                               f"of its {need} required inputs; {AGAIN}")
        for t in node.input:
            if t and t not in defined:
                raise EdgekitError(f"layer '{layer}' reads '{t}', which no earlier node, initializer or input "
                                   f"produces (a missing tensor or a cycle); {AGAIN}")
        if not node.output or not node.output[0]:
            raise EdgekitError(f"layer '{layer}' ({node.op_type}) has no output; {AGAIN}")
        for t in node.output:
            if t in defined:
                raise EdgekitError(f"layer '{layer}' writes '{t}', which is already defined (each tensor "
                                   f"has one producer); {AGAIN}")
            if t:
                defined.add(t)
    for v in graph.output:
        if v.name not in defined:
            raise EdgekitError(f"model output '{v.name}' is not produced by any node; {AGAIN}")


def _check_text(graph) -> None:
    """protobuf hands out a name that is not UTF-8 as bytes: refuse it before it becomes a layer name."""
    for what, names in (("graph input", [v.name for v in graph.input]),
                        ("graph output", [v.name for v in graph.output]),
                        ("initializer", [t.name for t in graph.initializer])):
        for i, name in enumerate(names):
            if not isinstance(name, str):
                raise EdgekitError(f"the name of {what} #{i} is not UTF-8 text ({name[:40]!r}); {AGAIN}")
    for i, node in enumerate(graph.node):
        texts = [node.name, node.op_type, node.domain, *node.input, *node.output, *(a.name for a in node.attribute)]
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise EdgekitError(f"node #{i} has a name, type or tensor name that is not UTF-8 text "
                               f"({bad[:40]!r}); {AGAIN}")


def tensor_array(t, what: str) -> np.ndarray:
    """The numpy array of TensorProto t, after checking its type, dims and data agree."""
    label = f"{what} '{t.name}'"
    if t.data_type not in NUMERIC:
        raise EdgekitError(f"{label} has element type {dtype_name(t.data_type)}; edgekit reads float and "
                           "integer tensors: export the model with float32 weights")
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise EdgekitError(f"{label} has a negative dimension in its shape {dims}; {AGAIN}")
    if t.HasField("segment"):
        raise EdgekitError(f"{label} is stored in segments, which edgekit does not read; {AGAIN}")
    count, itemsize = math.prod(dims), np.dtype(NUMERIC[t.data_type]).itemsize
    budget.check_memory(count * itemsize, label)
    if t.HasField("raw_data"):
        held = len(t.raw_data) / itemsize
    else:
        held = len(getattr(t, helper.tensor_dtype_to_field(t.data_type)))
    if held != count:
        raise EdgekitError(f"{label} declares shape {dims} ({count:,} values) but holds "
                           f"{held:,.4g} values of {dtype_name(t.data_type)}; {AGAIN}")
    return numpy_helper.to_array(t)


class Attrs:
    """A node's attributes, read by declared type with their range checked (e.g. a.int("group", 1, lo=1))."""

    REQUIRED = object()
    TYPES = {AttributeProto.INT: "an integer", AttributeProto.INTS: "a list of integers",
             AttributeProto.FLOAT: "a number", AttributeProto.FLOATS: "a list of numbers",
             AttributeProto.STRING: "a string", AttributeProto.TENSOR: "a tensor"}

    def __init__(self, node, layer: str):
        self.op, self.layer = node.op_type, layer
        self.found = {a.name: a for a in node.attribute}

    def __contains__(self, name: str) -> bool:
        return name in self.found

    def bad(self, name: str, value, want: str):
        raise EdgekitError(f"layer '{self.layer}': {self.op} attribute '{name}' is {value}; it must be {want}; {AGAIN}")

    def _get(self, name, kind, default):
        a = self.found.get(name)
        if a is None:
            if default is Attrs.REQUIRED:
                raise EdgekitError(f"layer '{self.layer}': {self.op} needs the attribute '{name}' ({self.TYPES[kind]}), "
                                   f"which it lacks; {AGAIN}")
            return None
        if a.type != kind:
            kind_name = AttributeProto.AttributeType.Name(a.type) if a.type in AttributeProto.AttributeType.values() \
                else f"of unknown type {a.type}"
            self.bad(name, f"{kind_name.lower()}", self.TYPES[kind])
        return a

    def int(self, name: str, default=REQUIRED, lo: int | None = None, hi: int | None = None) -> int:
        a = self._get(name, AttributeProto.INT, default)
        if a is None:
            return default
        if (lo is not None and a.i < lo) or (hi is not None and a.i > hi):
            self.bad(name, a.i, f"between {lo} and {hi}" if hi is not None else f">= {lo}")
        return int(a.i)

    def ints(self, name: str, default=REQUIRED, n: int | None = None, lo: int | None = None) -> tuple[int, ...]:
        a = self._get(name, AttributeProto.INTS, default)
        if a is None:
            return default
        values = tuple(int(v) for v in a.ints)
        if (n is not None and len(values) != n) or (lo is not None and any(v < lo for v in values)):
            self.bad(name, list(values), " ".join(x for x in (f"{n} integers" if n is not None else "integers",
                                                               f">= {lo}" if lo is not None else "") if x))
        return values

    def float(self, name: str, default=REQUIRED) -> float:
        a = self._get(name, AttributeProto.FLOAT, default)
        if a is None:
            return default
        if not math.isfinite(a.f):
            self.bad(name, a.f, "a finite number")
        return float(a.f)

    def str(self, name: str, default=REQUIRED, choices: tuple[str, ...] = ()) -> str:
        a = self._get(name, AttributeProto.STRING, default)
        if a is None:
            return default
        text = a.s.decode("utf-8", "replace")
        if choices and text not in choices:
            self.bad(name, repr(text[:40]), f"one of {', '.join(choices)}")
        return text

    def tensor(self, name: str, default=REQUIRED) -> np.ndarray:
        a = self._get(name, AttributeProto.TENSOR, default)
        return default if a is None else tensor_array(a.t, f"layer '{self.layer}' attribute '{name}' tensor")
