"""What each layer of a .tflite model asks of the hardware: operations, bytes, outputs.

These are the inputs of the Iron Law per layer: O (MACs, or element operations for ops without
MACs), D_vol (weight bytes read from flash, activation bytes read and written in RAM), and the
number of outputs (each int8 output costs a requantization: scale, shift, clamp).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tflite_file import TFLiteModel, builtin_name, is_constant, model_of, tensor_type_name, text

ITEM = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "float16": 2, "int64": 8}

# TFLite op -> the op kind whose efficiency the descriptors state
KIND = {
    "CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "fully_connected",
    "MAX_POOL_2D": "pooling", "AVERAGE_POOL_2D": "pooling", "MEAN": "pooling",
    "ADD": "elementwise", "SUB": "elementwise", "MUL": "elementwise", "RELU": "elementwise",
    "RELU6": "elementwise", "LOGISTIC": "elementwise", "TANH": "elementwise", "HARD_SWISH": "elementwise", "PAD": "elementwise",
    "CONCATENATION": "elementwise", "QUANTIZE": "elementwise", "DEQUANTIZE": "elementwise",
    "SOFTMAX": "softmax", "RESHAPE": "reshape", "SQUEEZE": "reshape",
}
KINDS = ("conv", "conv1x1", "depthwise", "fully_connected", "pooling", "elementwise", "softmax", "reshape")


@dataclass
class Layer:
    index: int
    name: str
    op: str             # TFLite op name, e.g. CONV_2D
    kind: str           # one of KINDS (or "other")
    macs: int           # multiply-accumulates (conv, depthwise, dense); 0 otherwise
    ops: int            # work in MAC-equivalents: MACs, or elements touched for other ops
    outputs: int        # output elements
    weight_bytes: int   # constants read (weights, biases): from flash on an MCU
    act_bytes: int      # activations read and written (inputs + outputs)
    weight_elems: int   # number of parameters (weights + biases)


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in (t.shape if t.shape is not None else []))


def layers(model: TFLiteModel | bytes) -> list[Layer]:
    """The model's layers, worked out once per model."""
    model = model_of(model)
    return model.memo("layers", lambda: _layers(model.parsed))


def _layers(model) -> list[Layer]:
    sub = model.subgraphs[0]
    out = []
    for i, op in enumerate(sub.operators or []):
        name = builtin_name(model, op.opcodeIndex)
        ins = [sub.tensors[j] for j in (op.inputs if op.inputs is not None else []) if j >= 0]
        outs = [sub.tensors[j] for j in (op.outputs if op.outputs is not None else [])]
        consts = [t for t in ins if is_constant(model, t)]
        acts = [t for t in ins if not is_constant(model, t)]
        nbytes = lambda ts: sum(int(np.prod(_shape(t))) * ITEM.get(tensor_type_name(t.type), 1) for t in ts)
        o_shape = _shape(outs[0]) if outs else ()
        n_out = int(np.prod(o_shape)) if o_shape else 0
        kind = KIND.get(name, "other")
        macs = 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(ins) > 1:
            w = _shape(ins[1])
            if name == "CONV_2D":
                macs = n_out * w[1] * w[2] * w[3]
                if w[1] == 1 and w[2] == 1:
                    kind = "conv1x1"
            elif name == "DEPTHWISE_CONV_2D":
                macs = n_out * w[1] * w[2]
            else:
                macs = n_out * w[-1]
        if macs:
            ops = macs
        elif kind == "pooling":
            ops = int(np.prod(_shape(acts[0]))) if acts else n_out  # every input element is read once or more
        elif kind == "reshape":
            ops = 0
        else:
            ops = n_out * max(len(acts), 1)
        label = text(outs[0].name).split(";")[0] if outs else f"op{i}"
        out.append(Layer(i, label, name, kind, macs, ops, n_out, nbytes(consts), nbytes(acts) + nbytes(outs),
                         sum(int(np.prod(_shape(t))) for t in consts)))
    return out
