"""Reading .tflite files safely, and small helpers to describe what is inside.

A .tflite file is a flatbuffer: offsets pointing into one byte string. Both runtimes trust those
offsets, so a truncated or corrupt file can crash them (TFLite Micro aborts the whole process).
`read_model` therefore checks the file in Python first and turns every problem into a one-line
EdgekitError that says what is wrong and what to do.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from .errors import EdgekitError
from .tflite_check import OP_NAMES as OPERATOR_NAMES, TYPE_NAMES, check_buffers_in_file, validate

NUMPY_TYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int8": np.int8,
               "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
               "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "bool": np.bool_}
# Tensors of these types hold shapes, axes, indices or biases, never activations worth classifying.
AUX_TYPES = ("int32", "int64", "bool", "string", "resource", "variant")


def _sniff(data: bytes, name: str) -> None:
    """Refuse the files people commonly give by mistake, before trying to parse them."""
    if not data:
        raise EdgekitError(f"'{name}' is empty (0 bytes); copy or export the model again")
    if data[4:8] == b"TFL3":
        return
    if data[:1] == b"\x80" or data[:2] == b"PK":  # pickle protocol byte, or torch.save's zip
        raise EdgekitError(f"'{name}' is a pickle/PyTorch checkpoint; edgekit never unpickles: export "
                           "the model to ONNX or use edgekit.convert on the model object")
    head = data[:256].lstrip()
    if head.startswith(b"version https://git-lfs"):
        raise EdgekitError(f"'{name}' is a Git LFS pointer, not the model; run 'git lfs pull' to fetch it")
    if head[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise EdgekitError(f"'{name}' is an HTML page, not a TFLite model; download the raw file instead")
    try:
        data[:4096].decode("utf-8")
        what = "a text file, not a TFLite model"
    except UnicodeDecodeError:
        what = "not a TFLite model (no 'TFL3' identifier at byte 4)"
    raise EdgekitError(f"'{name}' is {what}; give a .tflite file made by a TFLite converter")


def read_model(data: bytes, name: str = "model") -> fb.ModelT:
    """Parse .tflite bytes into the flatbuffer object API, refusing anything a runtime would choke on."""
    data = bytes(data)
    _sniff(data, name)
    try:
        check_buffers_in_file(data, name)
        model = fb.ModelT.InitFromPackedBuf(data, 0)
    except EdgekitError:
        raise
    except Exception:  # the flatbuffer reader fails in many ways (struct.error, IndexError, ...)
        raise EdgekitError(f"'{name}' is truncated or corrupt (its flatbuffer offsets point outside the "
                           f"file's {len(data)} bytes); copy or export the model again") from None
    validate(model, data, name)
    return model


class TFLiteModel:
    """One .tflite model as every layer sees it: its bytes, parsed and checked once, and whatever is
    derived from it (layers, arena plans, ...) computed once and kept beside it.

    Resolve it at the top (`model_of(path_or_bytes)`) and pass it down; functions that take a model
    also take plain bytes and wrap them, which parses them again."""

    def __init__(self, data: bytes, name: str = "model"):
        self.data = bytes(data)
        self.name = name
        self.parsed = read_model(self.data, name)
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self._memo: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self.data)

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """make() the first time `key` is asked for; the same value afterwards."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def quantization(self) -> str:
        return self.memo("quantization", lambda: quantization_kind(self.parsed))

    def tensor_spec(self, index: int) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, numpy dtype) of tensor `index` of the main subgraph."""
        t = self.parsed.subgraphs[0].tensors[index]
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        return shape, np.dtype(NUMPY_TYPES.get(tensor_type_name(t.type), np.float32))

    @property
    def inputs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return [self.tensor_spec(int(i)) for i in self.parsed.subgraphs[0].inputs]

    @property
    def outputs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return [self.tensor_spec(int(i)) for i in self.parsed.subgraphs[0].outputs]


def model_of(model: "TFLiteModel | bytes | bytearray", name: str = "model") -> TFLiteModel:
    """The TFLiteModel for `model`: itself, or its bytes parsed (once, here)."""
    return model if isinstance(model, TFLiteModel) else TFLiteModel(model, name)


# -- describing what is inside ------------------------------------------------------------------

def builtin_name(model: fb.ModelT, opcode_index: int) -> str:
    """'CONV_2D' etc.; custom ops as 'CUSTOM(name)'."""
    code = model.operatorCodes[opcode_index]
    # Codes above 127 live only in builtinCode; old files only fill deprecatedBuiltinCode.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == fb.BuiltinOperator.CUSTOM:
        custom = code.customCode.decode(errors="replace") if code.customCode else "?"
        return f"CUSTOM({custom})"
    return OPERATOR_NAMES.get(builtin, f"BUILTIN_{builtin}")


def tensor_type_name(type_code: int) -> str:
    """'float32', 'int8', ... for a TensorType code."""
    return TYPE_NAMES.get(type_code, f"type{type_code}")


def text(s) -> str:
    """Flatbuffer strings arrive as bytes (or None)."""
    if s is None:
        return ""
    return s.decode("utf-8", errors="replace") if isinstance(s, (bytes, bytearray)) else str(s)


def is_constant(model: fb.ModelT, tensor: fb.TensorT) -> bool:
    """True for tensors whose values are stored in the file (weights, biases, shapes)."""
    buf = model.buffers[tensor.buffer] if model.buffers else None
    return buf is not None and (buf.data is not None and len(buf.data) > 0 or buf.offset > 1)


def activation_types(model: fb.ModelT) -> set[str]:
    """Types of the tensors computed at run time (inputs and op outputs), minus shapes and indices."""
    types = set()
    for sg in model.subgraphs:
        for i in list(sg.inputs if sg.inputs is not None else []) + \
                [o for op in sg.operators or [] for o in (op.outputs if op.outputs is not None else [])]:
            t = sg.tensors[i]
            if not is_constant(model, t):
                types.add(tensor_type_name(t.type))
    return {t for t in types if t not in AUX_TYPES}


def quantization_kind(model: fb.ModelT) -> str:
    """'int8', 'uint8', 'float' or 'mixed', from the types of the activations.

    Weights do not count: a float model with int8 or float16 weights (weight-only or dynamic-range
    quantized) still computes in float, and is 'float'. int8 compute with float inputs/outputs
    (QUANTIZE/DEQUANTIZE at the edges) or int16 activations are 'mixed'.
    """
    types = activation_types(model)
    if types <= {"float32", "float16"}:
        return "float"
    if types == {"int8"}:
        return "int8"
    if types == {"uint8"}:
        return "uint8"
    return "mixed"


def per_channel_dense(model: fb.ModelT) -> list[str]:
    """Output names of the dense (FULLY_CONNECTED) layers whose weights have more than one scale."""
    names = []
    for sg in model.subgraphs:
        for op in sg.operators or []:
            if builtin_name(model, op.opcodeIndex) != "FULLY_CONNECTED" or op.inputs is None or len(op.inputs) < 2:
                continue
            q = sg.tensors[op.inputs[1]].quantization if op.inputs[1] >= 0 else None
            scales = q.scale if q is not None and q.scale is not None else []
            if len(set(float(x) for x in scales)) > 1:
                names.append(text(sg.tensors[op.outputs[0]].name))
    return names


def is_fully_int8(model: fb.ModelT) -> bool:
    """True when every activation is int8 (int32 only for biases, shapes, axes): ready for an MCU."""
    return activation_types(model) == {"int8"}


def tensor_array(model: fb.ModelT, tensor: fb.TensorT) -> np.ndarray:
    """A constant tensor's stored values, in its own type and shape (no dequantization)."""
    kind = tensor_type_name(tensor.type)
    if kind not in NUMPY_TYPES:
        raise EdgekitError(f"tensor '{text(tensor.name)}' has type {kind}, which edgekit cannot read")
    buf = model.buffers[tensor.buffer] if model.buffers else None
    data = buf.data if buf is not None else None
    if data is None or not len(data):
        where = ("keeps its data outside the flatbuffer; edgekit reads models under 2 GB" if buf is not None
                 and buf.offset > 1 else "has no stored values, but its op needs constant ones; export the model again")
        raise EdgekitError(f"tensor '{text(tensor.name)}' {where}")
    raw = np.asarray(data, np.uint8)
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else []))
    return raw.view(NUMPY_TYPES[kind]).reshape(shape)
