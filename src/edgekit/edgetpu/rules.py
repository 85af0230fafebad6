"""What the Edge TPU compiler will do with a model, predicted from its documented rules.

    from edgekit.edgetpu import predict
    p = predict(open("model_int8.tflite", "rb").read())
    p.mapped_ops, p.cpu_ops, p.cpu_reasons, p.subgraphs, p.on_chip_bytes, p.off_chip_bytes
    print(p.table_text())        # the "Operator  Count  Status" table, as the compiler's log prints it

Each rule in RULES below names its sources with these tags: D: coral.ai's text
(coral.ai/docs/edgetpu/models-intro, .../compiler, .../multiple-edgetpu); A: coral's op table as
mirrored by Axis, without the runtime column
(developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/); O: coral's
<=v12 op table (copy in dgist-datalab/Datalab_Intern, Edge_TPU/convert_model_for_Edge_TPU.md);
M: the github.com/google-coral/edgetpu repository (CHANGES.md, benchmarks/reference); C: libedgetpu's
source; R: recalled from coral.ai/docs/edgetpu/models-intro, unverified; E: measured on a compiled
model; I#n: github.com/google-coral/edgetpu/issues/n. In short:

1. The model must be fully 8-bit (int8 or uint8). A float model, or one that still computes some ops
   in float or int16, is refused with an EdgekitError (run `edgekit convert`). The one exception is
   the float interface the TFLite converter leaves by default: a QUANTIZE right after a float model
   input and a DEQUANTIZE right before a float model output run on the CPU, and the ops between map.
2. Each op must be in the supported list for the runtime (compiler 16 targets runtime 14 by default),
   work on 8-bit tensors, have static shapes and constant parameters, have at most 3 non-unit
   innermost dimensions in every tensor (so batch 1), and meet its op's limits (no fused activation
   on pooling/concatenation, 1-D fully-connected output, 1-D softmax of at most 16,000 elements, ...).
3. One Edge TPU subgraph: an op that cannot map runs on the CPU, and so does every op downstream of
   it in the data flow, supported or not ("More than one subgraph is not supported"). Ops that do not
   depend on it, even later in the file, still map.
4. About 8 MB of on-chip memory caches parameters: the mapped ops' parameters fill it in op order;
   from the first op whose parameters no longer fit, the rest are streamed from the host on every
   inference (off-chip).

A prediction, not the compiler: the compiler also refuses some ops for undisclosed size limits
(large tensors, resize precision; Partition.notes flags the likely ones) and packs parameters with
some overhead (+16% measured once, E), so its byte counts differ somewhat.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import EdgekitError
from ..targets import load_board
from ..tflite_file import (TFLiteModel, builtin_name, is_constant, model_of, tensor_array, tensor_type_name,
                           text)

# -- the compiler's status texts (coral.ai/docs/edgetpu/models-intro, and the logs in google-coral/edgetpu issues)
MAPPED = "Mapped to Edge TPU"
MORE_THAN_ONE_SUBGRAPH = "More than one subgraph is not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
DATA_TYPE = "Operation is working on an unsupported data type"   # e.g. ARG_MAX (I#409), DEQUANTIZE
NOT_SUPPORTED = "Operation not supported"                          # e.g. TRANSPOSE before runtime 14 (I#342)
VERSION = "Operation version not supported"                        # I#396, I#420 (not predicted here)
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"  # I#708, I#75

# rule id -> (what it says, where it comes from: the tags in the module docstring)
RULES = {
    "8bit": ("the model is fully 8-bit quantized (int8, or the older uint8)",
             "M CHANGES.md (full-integer PTQ since compiler 2.0), O"),
    "float-io": ("a QUANTIZE after a float input and a DEQUANTIZE before a float output stay on the CPU; "
                 "the ops between still map",
                 "compiler log in system-software-lab/nrf20 convert/quantize/README.md"),
    "data-type": ("every tensor an op computes on is 8-bit", "M CHANGES.md, O; status text from I#409, I#490"),
    "op-list": ("the op is in the supported list for the target runtime", "A, O, M CHANGES.md"),
    "static": ("static shapes; parameters compile-time constant", "O, A"),
    "rank": ("at most 3 non-unit innermost dimensions in every tensor, so batch 1", "O, I#121"),
    "fused-activation": ("no fused activation on AveragePool2d, MaxPool2d, Concatenation", "A"),
    "concat-constant": ("a constant Concatenation input only as 1 of 2 inputs, and all zeros", "A"),
    "dilation": ("Conv2d and DepthwiseConv2d (13+) need the same x/y dilation; DepthwiseConv2d <=12 none",
                 "A; R for <=12"),
    "fc-output": ("FullyConnected: default weight format, 1-D output", "A"),
    "mean-axes": ("Mean: <=12 x/y only; 13+ not over batch, z only if z % 4 == 0", "O (<=12), A (13+)"),
    "pad-axes": ("Pad: <=12 x/y only; 13+ not along batch", "O (<=12), A (13+)"),
    "softmax": ("Softmax: 1-D input of at most 16,000 elements", "O"),
    "split-axis": ("Split: not along batch", "R"),
    "squeeze": ("Squeeze <=12: leading 1s only, no relayout", "O"),
    "strided-slice": ("StridedSlice: all strides 1, ellipsis and new-axis masks 0", "O"),
    "pack-axis": ("Pack: not along batch", "A, M CHANGES.md"),
    "reduce-axes": ("Sum, ReduceMax, ReduceMin: not over batch", "R (Sum), A (ReduceMax/Min)"),
    "prelu-alpha": ("PReLU: 1-D alpha", "A"),
    "one-subgraph": ("one Edge TPU subgraph: every op downstream (in data flow) of the first op that "
                     "cannot map runs on the CPU", "D models-intro, I#60, I#461"),
    "param-cache": ("about 8 MB of on-chip memory caches parameters, filled in op order; the rest is "
                    "streamed from the host every inference",
                    "D compiler and multiple-edgetpu pages; targets/coral.toml"),
}

# Supported ops by the first runtime version that maps them (A, O, M CHANGES.md). Runtime 10-12 share a list.
_ALL = ["ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1",
        "L2_NORMALIZATION", "SLICE", "SPACE_TO_DEPTH", "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION",
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "PAD", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "SPLIT", "SQUEEZE", "STRIDED_SLICE"]
_13 = ["EXPAND_DIMS", "QUANTIZE", "TRANSPOSE_CONV", "PACK", "SUM", "PRELU"]
_14 = ["LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "REDUCE_MAX", "REDUCE_MIN", "TRANSPOSE", "RSQRT",
       "SQUARED_DIFFERENCE"]
SINCE = {**{op: 10 for op in _ALL}, **{op: 13 for op in _13}, **{op: 14 for op in _14}}
DEFAULT_RUNTIME = 14  # compiler 16 defaults to -m 14 (C libedgetpu api/runtime_version.h, I#439)
RUNTIMES = range(10, 15)  # libedgetpu accepts 10-14

EIGHT_BIT = ("int8", "uint8")
FLOAT = ("float32", "float16", "float64")
META_TYPES = ("int32", "int64", "bool", "string")  # shapes, axes, paddings (and int32 biases, see _is_param)
ITEM = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float16": 2, "float32": 4, "float64": 8}
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "LSTM",
            "UNIDIRECTIONAL_SEQUENCE_LSTM")
LARGE_TENSOR = 800_000  # elements; concat 60x152x90 (~821 K) was refused (I#309)

# What to tell the user when nothing maps, by the rule of the first op that cannot
FIX = {
    "op-list": "replace it with an op from the Edge TPU's list (coral.ai/docs/edgetpu/models-intro) or run "
               "the model on the Pi's CPU (target rpi4)",
    "data-type": "keep every op 8-bit (int8 or uint8) or run the model on the Pi's CPU (target rpi4)",
    "rank": "export the model with batch size 1 and at most 3 non-unit dimensions per tensor",
    "static": "export the model with fixed input and tensor shapes (batch 1)",
}
FIX_DEFAULT = "change that op to meet the Edge TPU's limits (coral.ai/docs/edgetpu/models-intro, supported " \
              "operations) or run the model on the Pi's CPU (target rpi4)"


@dataclass
class OpPlacement:
    """Where one op runs, and why."""
    index: int
    op: str                 # TFLite op name, e.g. CONV_2D (custom ops: CUSTOM(name))
    mapped: bool
    status: str             # the compiler's status text
    reason: str = ""        # why it is on the CPU ("" when mapped)
    rule: str = ""          # key into RULES ("" when mapped)
    param_bytes: int = 0    # constant parameters it brings (weights, biases), counted once per tensor
    on_chip: bool | None = None  # mapped ops: parameters cached (True) or streamed (False); CPU ops: None


@dataclass
class Partition:
    """How a model splits between the Edge TPU and the CPU.

    `source` is "predicted" (rules.predict) or "compiled" (compiler.parse_log). `cpu_ops` lists the
    ops left on the CPU (predicted: in model order; compiled: in the log table's order) with
    `cpu_reasons` alongside. `op_table` holds the compiler's rows (op, count, status). `mapping` is
    one bool per op index (predicted only: a log does not say which op is which).
    `estimated_cycles` is the compiler's own estimate of the Edge TPU cycles per call, read from a
    compiled model (None when predicted, or when the model carries none).
    """
    source: str
    total_ops: int
    mapped_ops: int
    cpu_ops: list[str]
    cpu_reasons: list[str]
    op_table: list[tuple[str, int, str]]
    subgraphs: int
    on_chip_bytes: int
    off_chip_bytes: int
    mapping: list[bool] = field(default_factory=list)
    ops: list[OpPlacement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    estimated_cycles: int | None = None

    @property
    def cpu_count(self) -> int:
        return len(self.cpu_ops)

    def table_text(self) -> str:
        """The op table laid out as edgetpu_compiler -s prints it."""
        rows = [f"{'Operator':<31}{'Count':<11}Status", ""]
        rows += [f"{op:<31}{count:<11}{status}" for op, count, status in self.op_table]
        return "\n".join(rows)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["op_table"] = [list(r) for r in self.op_table]
        return d


def op_table(rows: list[tuple[str, str]]) -> list[tuple[str, int, str]]:
    """(op, status) per op -> the compiler's table: one row per (op, status), in order of first appearance."""
    counts: dict[tuple[str, str], int] = {}
    for key in rows:
        counts[key] = counts.get(key, 0) + 1
    return [(op, n, status) for (op, status), n in counts.items()]


def _log_name(op: str) -> str:
    return "CUSTOM" if op.startswith("CUSTOM(") else op  # the compiler's table prints custom ops as CUSTOM


# -- reading the model ---------------------------------------------------------------------------

def _shape(t) -> list[int]:
    return [int(d) for d in (t.shape if t.shape is not None else [])]


def _outer_nonunit(shape: list[int]) -> bool:
    """True when a dimension outside the 3 innermost is larger than 1."""
    return any(d != 1 for d in shape[:-3])


def _nonunit(shape: list[int]) -> int:
    return sum(1 for d in shape if d != 1)


def _is_param(model, t) -> bool:
    """Constant tensors that count as parameters: 8/16-bit weights and quantized (int32) biases, not the
    int32 shapes, axes and paddings some ops take as constant inputs."""
    kind = tensor_type_name(t.type)
    if kind in ("int32", "int64"):
        q = t.quantization
        return q is not None and q.scale is not None and len(q.scale) > 0
    return kind not in META_TYPES


def _nbytes(t) -> int:
    return int(np.prod(_shape(t), dtype=np.int64)) * ITEM.get(tensor_type_name(t.type), 1)


def _fmt_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Model:
    """Subgraph 0 with the lookups the rules need."""

    def __init__(self, model):
        self.m = model
        self.sg = model.subgraphs[0]
        self.ops = list(self.sg.operators or [])
        self.inputs = set(int(i) for i in (self.sg.inputs if self.sg.inputs is not None else []))
        self.outputs = set(int(i) for i in (self.sg.outputs if self.sg.outputs is not None else []))
        self.consumers: dict[int, list[int]] = {}
        for k, op in enumerate(self.ops):
            for i in self.op_inputs(op):
                self.consumers.setdefault(i, []).append(k)

    def name(self, op) -> str:
        return builtin_name(self.m, op.opcodeIndex)

    def t(self, i: int):
        return self.sg.tensors[i]

    def const(self, i: int) -> bool:
        return is_constant(self.m, self.sg.tensors[i])

    def kind(self, i: int) -> str:
        return tensor_type_name(self.sg.tensors[i].type)

    @staticmethod
    def op_inputs(op) -> list[int]:
        return [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]

    @staticmethod
    def op_outputs(op) -> list[int]:
        return [int(i) for i in (op.outputs if op.outputs is not None else [])]

    def tname(self, i: int) -> str:
        return text(self.sg.tensors[i].name).split(";")[0] or f"tensor {i}"

    def values(self, i: int) -> np.ndarray | None:
        if not self.const(i):
            return None
        try:
            return np.asarray(tensor_array(self.m, self.sg.tensors[i]))
        except EdgekitError:
            return None

    def input_edge(self, op) -> bool:
        """A QUANTIZE reading a float model input: the converter's float interface."""
        ins = self.op_inputs(op)
        return (self.name(op) == "QUANTIZE" and len(ins) == 1 and ins[0] in self.inputs
                and self.kind(ins[0]) in FLOAT)

    def output_edge(self, op) -> bool:
        """A DEQUANTIZE writing a float model output."""
        outs = self.op_outputs(op)
        return (self.name(op) == "DEQUANTIZE" and len(outs) == 1 and outs[0] in self.outputs
                and self.kind(outs[0]) in FLOAT)


# -- rule 1: fully 8-bit --------------------------------------------------------------------------

def _check_8bit(mm: _Model, name: str) -> None:
    edges = {k for k, op in enumerate(mm.ops) if mm.input_edge(op) or mm.output_edge(op)}
    eight = False
    others = []  # (op index or None, tensor, type) of each activation that is not 8-bit
    for i in sorted(mm.inputs):
        kind = mm.kind(i)
        users = mm.consumers.get(i, [])
        if kind in EIGHT_BIT:
            eight = True
        elif kind not in META_TYPES and not (users and set(users) <= edges):
            others.append((None, i, kind))
    for k, op in enumerate(mm.ops):
        for i in mm.op_inputs(op) + mm.op_outputs(op):
            if mm.const(i):
                continue
            kind = mm.kind(i)
            if kind in EIGHT_BIT:
                eight = True
            elif kind not in META_TYPES and k not in edges:
                others.append((k, i, kind))
    if not others:
        return
    kinds = sorted({kind for _, _, kind in others})
    if not eight and set(kinds) <= set(FLOAT):
        weights8 = any(mm.const(i) and mm.kind(i) in EIGHT_BIT for op in mm.ops for i in mm.op_inputs(op))
        how = ("it has 8-bit weights but computes in float (dynamic-range quantization)" if weights8
               else "it computes in float")
        first = next(((k, i) for k, op in enumerate(mm.ops) for i in mm.op_inputs(op) + mm.op_outputs(op)
                      if not mm.const(i) and mm.kind(i) in FLOAT), None)
        if first:
            k, i = first
            how += f" (op {k} {mm.name(mm.ops[k])}, the first, computes on {mm.kind(i)} '{mm.tname(i)}')"
        raise EdgekitError(f"'{name}' is not quantized: {how}, and the Edge TPU runs only fully 8-bit "
                           "(int8 or uint8) models; run `edgekit convert` first to make a full int8 model")
    # name an op that computes in the wrong type, rather than the QUANTIZE/DEQUANTIZE around it
    k, i, kind = next((o for o in others if o[0] is not None
                       and mm.name(mm.ops[o[0]]) not in ("QUANTIZE", "DEQUANTIZE")), others[0])
    where = (f"op {k} {mm.name(mm.ops[k])} computes on {kind} ('{mm.tname(i)}')" if k is not None
             else f"input '{mm.tname(i)}' is {kind} and is not quantized right away")
    what = "is not fully 8-bit (16x8 quantization)" if "int16" in kinds and eight is False else \
        "is only partly quantized"
    raise EdgekitError(f"'{name}' {what}: {where}, and the Edge TPU runs only fully 8-bit (int8 or uint8) "
                       "models; run `edgekit convert` first to make a full int8 model")


# -- rule 2: per op -------------------------------------------------------------------------------

def _axes(mm: _Model, i: int, rank: int) -> list[int] | None:
    v = mm.values(i)
    if v is None:
        return None
    return sorted({int(a) % rank for a in np.atleast_1d(v).ravel()}) if rank else []


def _op_check(mm: _Model, k: int, runtime: int) -> tuple[str, str, str] | None:
    """(status, reason, rule) when op k cannot map on its own; None when it can."""
    op = mm.ops[k]
    name = mm.name(op)
    ins, outs = mm.op_inputs(op), mm.op_outputs(op)
    opts = op.builtinOptions

    if mm.input_edge(op):
        return (UNSPECIFIED, "quantizes the model's float input: the float interface stays on the CPU",
                "float-io")
    if mm.output_edge(op):
        return (DATA_TYPE, "dequantizes to the model's float output: the float interface stays on the CPU",
                "float-io")

    # data types: what the op computes on must be 8-bit
    for i in ins + outs:
        kind = mm.kind(i)
        if mm.const(i):
            if kind in FLOAT:
                return DATA_TYPE, f"constant '{mm.tname(i)}' is {kind}", "data-type"
            continue
        if kind not in EIGHT_BIT:
            role = "output" if i in outs else "input"
            return DATA_TYPE, f"{role} '{mm.tname(i)}' is {kind}, not 8-bit", "data-type"

    # the op list
    if name.startswith("CUSTOM("):
        return NOT_SUPPORTED, f"custom op {name[7:-1]} is not an Edge TPU op", "op-list"
    since = SINCE.get(name)
    if since is None:
        return NOT_SUPPORTED, f"{name} is not in the Edge TPU's op list", "op-list"
    if runtime < since:
        return NOT_SUPPORTED, f"{name} maps from runtime {since} on (compiling for runtime {runtime})", "op-list"

    # static shapes, constant parameters
    for i in ins + outs:
        t = mm.t(i)
        shape = _shape(t)
        sig = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else []
        if any(d <= 0 for d in shape) or any(d < 0 for d in sig[1:]):
            return UNSPECIFIED, f"tensor '{mm.tname(i)}' has a dynamic shape {_fmt_shape(sig or shape)}", "static"
    if name in WEIGHTED and len(ins) > 1:
        w = ins[1]
        if not mm.const(w):
            return UNSPECIFIED, f"its weights '{mm.tname(w)}' are computed at run time, not constant", "static"

    # rank: at most 3 non-unit innermost dimensions (weights excepted)
    for i in ins + outs:
        if mm.kind(i) in META_TYPES or (name in WEIGHTED and mm.const(i)):
            continue
        shape = _shape(mm.t(i))
        if _outer_nonunit(shape):
            return (RANK, f"tensor '{mm.tname(i)}' is {_fmt_shape(shape)}: only the 3 innermost dimensions may "
                    "be larger than 1 (batch 1)", "rank")

    x = _shape(mm.t(ins[0])) if ins else []
    y = _shape(mm.t(outs[0])) if outs else []
    act = getattr(opts, "fusedActivationFunction", 0) or 0

    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION") and act:
        return UNSPECIFIED, f"{name} has a fused activation", "fused-activation"
    if name == "CONCATENATION":
        consts = [i for i in ins if mm.const(i)]
        if consts:
            if len(ins) != 2:
                return UNSPECIFIED, "a constant input among more than 2 inputs", "concat-constant"
            v = mm.values(consts[0])
            q = mm.t(consts[0]).quantization
            zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
            if v is None or np.any(v.astype(np.int64) != zp):
                return UNSPECIFIED, "its constant input is not all zeros", "concat-constant"
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        dh, dw = getattr(opts, "dilationHFactor", 1) or 1, getattr(opts, "dilationWFactor", 1) or 1
        if dh != dw:
            return UNSPECIFIED, f"x/y dilation differ ({dw} vs {dh})", "dilation"
        if name == "DEPTHWISE_CONV_2D" and runtime <= 12 and dh != 1:
            return UNSPECIFIED, f"dilation {dh} (runtime 12 and older: none)", "dilation"
    if name == "FULLY_CONNECTED":
        if getattr(opts, "weightsFormat", 0):
            return UNSPECIFIED, "weights not in the default format", "fc-output"
        if _nonunit(y) > 1:
            return UNSPECIFIED, f"output {_fmt_shape(y)} is not 1-D", "fc-output"
    if name == "SOFTMAX":
        n = int(np.prod(x)) if x else 0
        if _nonunit(x) > 1:
            return UNSPECIFIED, f"input {_fmt_shape(x)} is not 1-D", "softmax"
        if n > 16_000:
            return UNSPECIFIED, f"input has {n:,} elements (at most 16,000)", "softmax"
    rank = len(x)
    outer = set(range(max(rank - 3, 0)))             # batch (and anything outside the 3 innermost)
    spatial = {a for a in (rank - 3, rank - 2) if a >= 0}  # y, x
    if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
        rule = "mean-axes" if name == "MEAN" else "reduce-axes"
        axes = _axes(mm, ins[1], rank) if len(ins) > 1 else None
        if axes is None:
            return UNSPECIFIED, "its axes are not constant", "static"
        if set(axes) & outer:
            return UNSPECIFIED, f"reduces over the batch (axes {axes})", rule
        if name == "MEAN" and runtime <= 12 and not set(axes) <= spatial:
            return UNSPECIFIED, f"reduces over axes {axes}; runtime 12 and older: x/y only", rule
        if name == "MEAN" and rank - 1 in axes and x[-1] % 4:
            return UNSPECIFIED, f"reduces over z ({x[-1]} channels, not a multiple of 4)", rule
    if name == "PAD":
        v = mm.values(ins[1]) if len(ins) > 1 else None
        if v is None:
            return UNSPECIFIED, "its paddings are not constant", "static"
        padded = {a for a, row in enumerate(np.asarray(v).reshape(-1, 2)) if np.any(row != 0)}
        if padded & outer:
            return UNSPECIFIED, "pads along the batch", "pad-axes"
        if runtime <= 12 and not padded <= spatial:
            return UNSPECIFIED, "pads along z; runtime 12 and older: x/y only", "pad-axes"
    if name == "SPLIT" and len(ins) > 1:
        data_rank = len(_shape(mm.t(ins[1])))
        axes = _axes(mm, ins[0], data_rank)
        if axes is None:
            return UNSPECIFIED, "its axis is not constant", "static"
        if set(axes) & set(range(max(data_rank - 3, 0))):
            return UNSPECIFIED, "splits along the batch", "split-axis"
    if name == "SQUEEZE" and runtime <= 12:
        dims = [int(d) % max(rank, 1) for d in (getattr(opts, "squeezeDims", None) or [])] \
            or [a for a, d in enumerate(x) if d == 1]
        first = next((a for a, d in enumerate(x) if d != 1), rank)
        if any(a > first for a in dims):
            return UNSPECIFIED, "squeezes a dimension after a non-unit one (runtime 12 and older: leading 1s only)", \
                "squeeze"
    if name == "STRIDED_SLICE":
        v = mm.values(ins[3]) if len(ins) > 3 else None
        if v is None or np.any(v != 1):
            return UNSPECIFIED, "strides other than 1", "strided-slice"
        if getattr(opts, "ellipsisMask", 0) or getattr(opts, "newAxisMask", 0):
            return UNSPECIFIED, "ellipsis or new-axis mask set", "strided-slice"
    if name == "PACK":
        axis = int(getattr(opts, "axis", 0) or 0) % max(len(y), 1)
        if axis < len(y) - 3:
            return UNSPECIFIED, "packs along the batch", "pack-axis"
    if name == "PRELU" and len(ins) > 1 and _nonunit(_shape(mm.t(ins[1]))) > 1:
        return UNSPECIFIED, f"alpha {_fmt_shape(_shape(mm.t(ins[1])))} is not 1-D", "prelu-alpha"
    return None


def _notes(mm: _Model, k: int) -> list[str]:
    """Ops the rules map but the compiler may still refuse for its undisclosed limits (I#663, I#668)."""
    op = mm.ops[k]
    name = mm.name(op)
    outs = mm.op_outputs(op)
    y = _shape(mm.t(outs[0])) if outs else []
    n = int(np.prod(y)) if y else 0
    notes = []
    if name.startswith("RESIZE_"):
        notes.append(f"op {k} {name} to {_fmt_shape(y)} may be left on the CPU to avoid precision loss "
                     "(A, O; I#31: 512x512 refused, 128x128 mapped)")
    if name in ("RESHAPE", "CONCATENATION", "TRANSPOSE") and n >= LARGE_TENSOR:
        notes.append(f"op {k} {name} writes {n:,} elements: large tensors are sometimes refused "
                     "(A; I#309, I#512, I#176)")
    if name in ("LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM"):
        ins = mm.op_inputs(op)
        width = _shape(mm.t(ins[0]))[-1] if ins else 0
        if width > 900:
            notes.append(f"op {k} {name} has input width {width}: above ~900-1,000 it failed to map (I#598)")
    return notes


# -- rules 3 and 4: one subgraph, the parameter cache --------------------------------------------

def _cache_bytes(cache_bytes: int | None) -> int:
    if cache_bytes is not None:
        return int(cache_bytes)
    return int(load_board("coral").num("memory.param_cache_bytes"))


def predict(model: TFLiteModel | bytes | str | os.PathLike, *, min_runtime: int = DEFAULT_RUNTIME,
            cache_bytes: int | None = None, name: str = "model") -> Partition:
    """Predict how edgetpu_compiler partitions a model and where its parameters go.

    min_runtime: the runtime version compiled for (edgetpu_compiler -m; 14 by default, as compiler 16).
    cache_bytes: on-chip parameter cache (default: the coral board's memory.param_cache_bytes).
    Raises EdgekitError for a model that is not fully 8-bit, is already compiled, or of which nothing maps.
    """
    if isinstance(model, (str, os.PathLike)):
        name = str(model) if name == "model" else name
        try:
            with open(model, "rb") as f:
                model = f.read()
        except OSError as e:
            raise EdgekitError(f"cannot read '{model}': {e.strerror}; check the path") from None
    if min_runtime not in RUNTIMES:
        raise EdgekitError(f"min_runtime {min_runtime} is not a runtime libedgetpu accepts; use 10 to 14 "
                           "(14 is edgetpu_compiler 16's default)")
    mm = _Model(model_of(model, name).parsed)
    if any(mm.name(op) == "CUSTOM(edgetpu-custom-op)" for op in mm.ops):
        raise EdgekitError(f"'{name}' is already compiled for the Edge TPU (it has an edgetpu-custom-op); "
                           "give predict() the model from before edgetpu_compiler, or read this one with "
                           "edgekit.edgetpu.from_compiled_model")
    _check_8bit(mm, name)
    cache = _cache_bytes(cache_bytes)

    placements: list[OpPlacement] = []
    root: dict[int, int] = {}      # tensor -> index of the op whose move to the CPU put it there
    seen_params: set[int] = set()
    notes: list[str] = []
    for k, op in enumerate(mm.ops):
        op_name = mm.name(op)
        own = _op_check(mm, k, min_runtime)
        upstream = sorted({root[i] for i in mm.op_inputs(op) if i in root})
        if own is None and upstream:
            first = upstream[0]
            own = (MORE_THAN_ONE_SUBGRAPH, f"downstream of op {first} {mm.name(mm.ops[first])}, which runs on "
                   "the CPU (the compiler makes one Edge TPU subgraph)", "one-subgraph")
        if own is None:
            params = [i for i in mm.op_inputs(op) if mm.const(i) and _is_param(mm.m, mm.t(i))
                      and i not in seen_params]
            seen_params.update(params)
            placements.append(OpPlacement(k, op_name, True, MAPPED,
                                          param_bytes=sum(_nbytes(mm.t(i)) for i in params)))
            notes += _notes(mm, k)
        else:
            status, reason, rule = own
            placements.append(OpPlacement(k, op_name, False, status, reason, rule,
                                          param_bytes=sum(_nbytes(mm.t(i)) for i in mm.op_inputs(op)
                                                          if mm.const(i) and _is_param(mm.m, mm.t(i)))))
            if rule != "float-io":  # the float interface does not split the graph
                for i in mm.op_outputs(op):
                    root[i] = upstream[0] if upstream else k

    mapped = [p for p in placements if p.mapped]
    if not mapped:
        first = next((p for p in placements if p.rule not in ("float-io", "one-subgraph")), placements[0]) \
            if placements else None
        if first is None:
            raise EdgekitError(f"'{name}' has no ops; export the model again")
        raise EdgekitError(f"nothing in this model maps to the Edge TPU: op {first.index} {first.op} cannot "
                           f"({first.status}: {first.reason}) and every other op depends on it or cannot map "
                           f"either; {FIX.get(first.rule, FIX_DEFAULT)}")

    used, streamed, spilled = 0, 0, False
    for p in mapped:  # the parameter cache, filled in op order (D compiler page)
        if not spilled and used + p.param_bytes <= cache:
            used += p.param_bytes
            p.on_chip = True
        else:
            spilled = True
            streamed += p.param_bytes
            p.on_chip = False
    if spilled:
        notes.append(f"parameters beyond the {cache:,} B on-chip cache ({streamed:,} B) are streamed from the "
                     "host on every inference (coral.ai/docs/edgetpu/compiler, parameter data caching)")

    cpu = [p for p in placements if not p.mapped]
    return Partition(
        source="predicted", total_ops=len(placements), mapped_ops=len(mapped),
        cpu_ops=[p.op for p in cpu], cpu_reasons=[f"{p.status}: {p.reason}" for p in cpu],
        op_table=op_table([(_log_name(p.op), p.status) for p in placements]),
        subgraphs=1, on_chip_bytes=used, off_chip_bytes=streamed,
        mapping=[p.mapped for p in placements], ops=placements, notes=notes)
