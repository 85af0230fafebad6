"""Checking every field of a parsed .tflite before anything uses it.

LiteRT, TFLite Micro and edgekit's own importer all trust the file: an index past the end of a
list, a buffer shorter than its tensor, a stride of 0 or options of the wrong kind make them raise
odd exceptions, compute garbage or crash. `validate` walks the whole model once and turns the
first problem into a one-line EdgekitError naming the subgraph, tensor, op or buffer at fault.
It checks structure and declared sizes only; whether the ops make sense together is left to the
runtimes, whose own errors verify.py and runtime/litert.py pass on.
"""
from __future__ import annotations

import math

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from . import budget
from .errors import EdgekitError

MAX_RANK = 8  # TFLite kernels take at most 6 dims (reshape 8); more is a corrupt shape
# bytes per element; 4-bit types pack two per byte. Strings, resources and variants have no size.
ITEM_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1, "int16": 2,
              "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1, "complex64": 8,
              "complex128": 16, "int4": 0.5, "uint4": 0.5, "int2": 0.25, "float8_e4m3fn": 1, "float8_e5m2": 1}
TYPE_NAMES = {v: k.lower() for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
OPTION_NAMES = {v: k for k, v in vars(fb.BuiltinOptions).items() if not k.startswith("_")}
ACTIVATIONS = {v for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")}
ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int4": (-8, 7)}

# The options kind an op may carry besides NONE: the one named after it (CONV_2D: Conv2DOptions),
# or for ops sharing a kind, this table. Any other kind is a corrupt or swapped op, which LiteRT
# would read as the wrong struct.
SHARED_OPTIONS = {"MAX_POOL_2D": "Pool2DOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
                  "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_PROD": "ReducerOptions",
                  "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
                  "REDUCE_ALL": "ReducerOptions", "MAXIMUM": "MaximumMinimumOptions",
                  "MINIMUM": "MaximumMinimumOptions", "L2_NORMALIZATION": "L2NormOptions",
                  "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions", "CONV_3D_TRANSPOSE": "Conv3DOptions"}
_BY_OP_NAME = {k.lower()[:-len("options")]: k for k in OPTION_NAMES.values() if k.endswith("Options")}


def options_kind(op_name: str) -> str | None:
    """The options kind `op_name` takes (None: it takes none)."""
    return SHARED_OPTIONS.get(op_name) or _BY_OP_NAME.get(op_name.replace("_", "").lower())


NEEDS_OPTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D", "TRANSPOSE_CONV")
# Ops LiteRT 2.3 was seen to crash on (SIGSEGV) when fed activations where it expects options or
# constants: every builtin op code was probed on x -> op -> y models, with and without options
# (the crashers found are cases in tests/test_hostile_tflite.py). Those that need options are run
# only with them; those that crash even then only with their constant inputs constant; the rest
# (StableHLO, CALL, ...) not at all.
LITERT_NEEDS_OPTIONS = ("LSTM", "STRIDED_SLICE", "SLICE", "BATCH_MATMUL", "ASSIGN_VARIABLE", "SPLIT",
                        "BROADCAST_TO")
LITERT_CONSTANT_INPUT = {"SPLIT": 0, "BROADCAST_TO": 1}  # axis, shape
LITERT_INPUT_SLOTS = {"DEPTHWISE_CONV_2D": 3}  # reads its bias slot unconditionally (-1 is fine, absent is not)
# where an input may be absent (-1): LiteRT reads any other slot, and an absent RESHAPE shape or
# CONCATENATION input is a SIGSEGV. Recurrent ops (LSTM, RNN, SVDF) and custom ops have many optional slots.
OPTIONAL_SLOTS = {"CONV_2D": {2}, "DEPTHWISE_CONV_2D": {2}, "FULLY_CONNECTED": {2}, "TRANSPOSE_CONV": {3}}
MANY_OPTIONAL = ("LSTM", "RNN", "SVDF", "CUSTOM")
LITERT_NEVER = ("CONCAT_EMBEDDINGS", "CALL", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES")

# fewest inputs an op reads, for ops whose inputs the importer or inspect index
MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3, "ADD": 2,
              "SUB": 2, "MUL": 2, "PAD": 2, "MEAN": 2, "SUM": 2, "REDUCE_MAX": 2, "CONCATENATION": 1}

# ranks an op's kernels assume (data input, output; conv weights): TFLite Micro trusts them and can loop on others
NHWC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D")


class _Checker:
    def __init__(self, model: fb.ModelT, data: bytes, name: str):
        self.m, self.data, self.name = model, data, name
        self.buffers = model.buffers or []

    def fail(self, where: str, what: str):
        raise EdgekitError(f"'{self.name}' is invalid: {where} {what}; export or convert the model again")

    # -- the model ----------------------------------------------------------------------------
    def run(self) -> None:
        if self.m.version != 3:
            raise EdgekitError(f"'{self.name}' uses TFLite schema version {self.m.version}; edgekit and LiteRT "
                               "read version 3: convert the model again with a current TFLite converter")
        if not self.m.subgraphs:
            raise EdgekitError(f"'{self.name}' has no subgraph (no ops); export the model again")
        for b, buf in enumerate(self.buffers):
            if buf.offset > 1 and buf.offset + buf.size > len(self.data):
                self.fail(f"buffer {b}", f"lies past the end of the file ({buf.offset}+{buf.size} > {len(self.data)} bytes)")
        for s, sg in enumerate(self.m.subgraphs):
            self.subgraph(s, sg)
        main = self.m.subgraphs[0]
        for kind in ("inputs", "outputs"):
            if not len(_ints(getattr(main, kind))):
                self.fail("the main subgraph", f"has no {kind}")

    def subgraph(self, s: int, sg: fb.SubGraphT) -> None:
        self.s, self.sg = s, sg
        tensors = sg.tensors or []
        for i, t in enumerate(tensors):
            self.tensor(i, t)
        for kind in ("inputs", "outputs"):
            for i in _ints(getattr(sg, kind)):
                if not 0 <= i < len(tensors):
                    self.fail(f"subgraph {s}", f"lists tensor {i} among its {kind} but has {len(tensors)} tensors")
        for k, op in enumerate(sg.operators or []):
            self.op(k, op)

    # -- tensors ------------------------------------------------------------------------------
    def tensor(self, i: int, t: fb.TensorT) -> None:
        where = f"tensor {i} ('{_text(t.name)}')" + (f" of subgraph {self.s}" if self.s else "")
        try:
            bytes(t.name or b"").decode("utf-8")
        except UnicodeDecodeError:  # LiteRT's tensor details would raise on it
            self.fail(f"tensor {i}", "has a name that is not UTF-8 text")
        kind = TYPE_NAMES.get(t.type)
        if kind is None:
            self.fail(where, f"has unknown type code {t.type}")
        shape = _ints(t.shape)
        if len(shape) > MAX_RANK or min(shape, default=0) < 0:
            self.fail(where, f"has shape {shape}; dimensions must be >= 0 and at most {MAX_RANK} of them")
        signature = _ints(t.shapeSignature)
        if len(signature) and (len(signature) != len(shape) or min(signature) < -1):
            self.fail(where, f"has shape signature {signature} that does not fit its shape {shape}")
        if not 0 <= t.buffer < max(len(self.buffers), 1):
            self.fail(where, f"uses buffer {t.buffer} but the model has {len(self.buffers)} buffers")
        stored = self.stored_bytes(t.buffer)
        needed = tensor_bytes(t)
        # sparse weights hold fewer bytes than their shape says (the importer refuses them anyway)
        if stored and needed is not None and t.sparsity is None and stored != math.ceil(needed):
            self.fail(where, f"of shape {shape} and type {kind} needs {math.ceil(needed)} bytes but its "
                             f"buffer {t.buffer} holds {stored}")
        self.quantization(where, t, kind, shape)

    def stored_bytes(self, b: int) -> int:
        if not self.buffers:
            return 0
        buf = self.buffers[b]
        if buf.data is not None and len(buf.data):
            return len(buf.data)
        return buf.size if buf.offset > 1 else 0

    def quantization(self, where: str, t: fb.TensorT, kind: str, shape: list[int]) -> None:
        q = t.quantization
        if q is None or q.scale is None or not len(q.scale):
            return
        scale = np.asarray(q.scale, np.float64)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            self.fail(where, f"has quantization scale {_few(scale)}; scales must be finite and > 0")
        zero = _ints(q.zeroPoint)
        if len(zero) and len(zero) != len(scale):
            self.fail(where, f"has {len(scale)} quantization scales but {len(zero)} zero points")
        lo, hi = ZERO_POINT_RANGE.get(kind, (-2**31, 2**31 - 1))
        if any(not lo <= z <= hi for z in zero):
            self.fail(where, f"has zero point {_few(zero)} outside the {kind} range [{lo}, {hi}]")
        if len(scale) > 1:
            axis = q.quantizedDimension
            # converters leave a 1-D bias with its filter's axis (person_detect: 3): LiteRT allows it
            channels = shape[axis] if 0 <= axis < len(shape) else shape[0] if len(shape) == 1 and axis >= 0 else None
            if channels != len(scale):
                self.fail(where, f"of shape {shape} has {len(scale)} per-channel scales along axis {axis}")

    # -- ops ----------------------------------------------------------------------------------
    def op(self, k: int, op: fb.OperatorT) -> None:
        codes, n = self.m.operatorCodes or [], len(self.sg.tensors or [])
        where = f"op {k}" + (f" of subgraph {self.s}" if self.s else "")
        if not 0 <= op.opcodeIndex < len(codes):
            self.fail(where, f"uses operator code {op.opcodeIndex} but the model has {len(codes)}")
        code = codes[op.opcodeIndex]
        kind = OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "an unknown op")
        where = f"{where} ({kind})"
        inputs, outputs = _ints(op.inputs), _ints(op.outputs)
        if any(not -1 <= i < n for i in inputs) or any(not 0 <= i < n for i in outputs):
            self.fail(where, f"reads tensors {inputs} and writes {outputs} but the subgraph has {n} tensors")
        if not outputs:
            self.fail(where, "has no output")
        if len(inputs) < MIN_INPUTS.get(kind, 1) or -1 in inputs[:MIN_INPUTS.get(kind, 1)]:
            self.fail(where, f"has inputs {inputs}; it needs at least {MIN_INPUTS.get(kind, 1)}")
        if kind in NHWC_OPS:
            tensors = self.sg.tensors or []
            roles = [("input", inputs[0]), ("output", outputs[0])] + ([("weights", inputs[1])] if kind in MIN_INPUTS else [])
            for role, i in roles:
                rank = len(_ints(tensors[i].shape))
                if rank != 4:
                    self.fail(where, f"gets a rank-{rank} tensor {i} as its {role}; it takes 4-D tensors")
        self.options(where, kind, op)

    def options(self, where: str, kind: str, op: fb.OperatorT) -> None:
        given = OPTION_NAMES.get(op.builtinOptionsType)
        if given is None:
            self.fail(where, f"has options of unknown kind {op.builtinOptionsType}")
        want = options_kind(kind)
        if given not in ("NONE", want):
            self.fail(where, f"carries {given}" + (f" instead of {want}" if want else ", but takes no options"))
        o = op.builtinOptions
        if o is None:
            if kind in NEEDS_OPTIONS:
                self.fail(where, f"has no {want} (strides, padding)")
            return
        for field in ("strideH", "strideW", "strideD", "filterHeight", "filterWidth"):
            if getattr(o, field, 1) < 1:
                self.fail(where, f"has {field} = {getattr(o, field)}; it must be >= 1")
        for field in ("dilationHFactor", "dilationWFactor", "depthMultiplier"):
            if getattr(o, field, 0) < 0:
                self.fail(where, f"has {field} = {getattr(o, field)}; it must be >= 0")
        if getattr(o, "padding", 0) not in (fb.Padding.SAME, fb.Padding.VALID):
            self.fail(where, f"has padding code {o.padding}; it must be SAME (0) or VALID (1)")
        if getattr(o, "fusedActivationFunction", 0) not in ACTIVATIONS:
            self.fail(where, f"has fused activation code {o.fusedActivationFunction}")
        if not math.isfinite(getattr(o, "beta", 1.0)):
            self.fail(where, f"has softmax beta {o.beta}")
        new_shape = _ints(getattr(o, "newShape", None))
        if len(new_shape) and (len(new_shape) > MAX_RANK or min(new_shape) < -1 or new_shape.count(-1) > 1):
            self.fail(where, f"has new shape {new_shape}")


def _ints(values) -> list[int]:
    """A flatbuffer int vector (None, list or numpy array) as Python ints, which cannot overflow."""
    return [] if values is None else [int(v) for v in values]


def _text(s) -> str:
    return s.decode("utf-8", errors="replace") if isinstance(s, (bytes, bytearray)) else str(s or "")


def _few(values) -> str:
    values = [v.item() if hasattr(v, "item") else v for v in values]  # numpy scalars print as np.float64(...)
    return str(values[:4])[:-1] + (", ...]" if len(values) > 4 else "]")


def tensor_bytes(t: fb.TensorT) -> float | None:
    """Bytes the tensor's shape and type declare (None for strings, resources and variants)."""
    size = ITEM_BYTES.get(TYPE_NAMES.get(t.type, ""))
    return None if size is None else math.prod(_ints(t.shape)) * size


def check_buffers_in_file(data: bytes, name: str) -> None:
    """Every inline buffer's bytes must lie inside the file: a truncated file fails here, before the
    flatbuffer reader or a runtime follows its offsets."""
    raw = fb.Model.GetRootAsModel(data, 0)
    for i in range(raw.BuffersLength()):
        buf = raw.Buffers(i)
        if buf.DataLength():
            end = buf._tab.Vector(buf._tab.Offset(4)) + buf.DataLength()
            if end > len(data):
                raise EdgekitError(f"'{name}' is truncated: buffer {i} ends at byte {end} but the file has "
                                   f"{len(data)} bytes; copy or download the model again")


def validate(model: fb.ModelT, data: bytes, name: str) -> None:
    """Raise a one-line EdgekitError for the first field of `model` that no runtime could use."""
    _Checker(model, data, name).run()


def declared_bytes(model: fb.ModelT) -> int:
    """Bytes of every tensor computed at run time, as if all were alive at once (as when a runtime
    keeps every intermediate): what running the model may need, known before anything allocates."""
    total = 0
    for sg in model.subgraphs:
        buffers = model.buffers or []
        for t in sg.tensors or []:
            constant = buffers and 0 <= t.buffer < len(buffers) and (
                (buffers[t.buffer].data is not None and len(buffers[t.buffer].data)) or buffers[t.buffer].offset > 1)
            if not constant:
                total += math.ceil(tensor_bytes(t) or 0)
    return total


def check_memory(model: fb.ModelT, name: str) -> None:
    """Refuse, before any runtime allocates, a model whose declared tensors exceed the memory budget
    (e.g. a 1x31623x31623 input: 1e9 elements from a 100-byte shape)."""
    budget.check_memory(declared_bytes(model), f"'{name}' (the tensors it declares)")


def check_runnable(model: fb.ModelT, name: str) -> None:
    """Refuse ops LiteRT crashes on instead of rejecting (see LITERT_NEEDS_OPTIONS), before loading."""
    codes = model.operatorCodes or []
    for s, sg in enumerate(model.subgraphs):
        for k, op in enumerate(sg.operators or []):
            code = codes[op.opcodeIndex]
            kind = OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode))
            where = f"'{name}': op {k}" + (f" of subgraph {s}" if s else "") + f" ({kind or 'unknown'})"
            if kind is None or kind in LITERT_NEVER or kind.startswith("STABLEHLO_") or (
                    kind == "CUSTOM" and not code.customCode):
                raise EdgekitError(f"{where} is not an op edgekit runs (LiteRT may crash on it); "
                                   "`edgekit inspect` still describes the model")
            if len(_ints(op.inputs)) < LITERT_INPUT_SLOTS.get(kind, 0):
                raise EdgekitError(f"{where} has {len(_ints(op.inputs))} inputs; LiteRT needs "
                                   f"{LITERT_INPUT_SLOTS[kind]} (-1 for an absent bias): export the model again")
            absent = [j for j, i in enumerate(_ints(op.inputs)) if i == -1]
            if not any(word in kind for word in MANY_OPTIONAL) and set(absent) - OPTIONAL_SLOTS.get(kind, set()):
                raise EdgekitError(f"{where} leaves input {absent[0]} absent (-1), which it needs; "
                                   "export the model again")
            if kind in LITERT_NEEDS_OPTIONS and op.builtinOptions is None:
                raise EdgekitError(f"{where} has no {options_kind(kind)}, which LiteRT needs; export the model again")
            if kind == "SPLIT" and op.builtinOptions.numSplits != len(_ints(op.outputs)):
                raise EdgekitError(f"{where} splits into {op.builtinOptions.numSplits} parts but has "
                                   f"{len(_ints(op.outputs))} outputs; export the model again")
            if kind in LITERT_CONSTANT_INPUT:
                i = _ints(op.inputs)[LITERT_CONSTANT_INPUT[kind]]
                buf = (model.buffers or [])[sg.tensors[i].buffer] if model.buffers else None
                if buf is None or buf.data is None or not len(buf.data) or TYPE_NAMES.get(sg.tensors[i].type) != "int32":
                    raise EdgekitError(f"{where} needs input {LITERT_CONSTANT_INPUT[kind]} to be a constant int32 "
                                       "tensor; export the model again")
