"""Tiny int8 .tflite models for the Edge TPU rules, built with the flatbuffer object API.

For what edgekit's IR cannot express: an op outside the Edge TPU's list in the middle, a 4-D tensor
with a non-unit batch, a float interface (QUANTIZE/DEQUANTIZE), float ops between int8 ones, a
compiled-looking model with an edgetpu-custom-op. Every tensor is [batch, ...] NHWC as TFLite has it.
"""
import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from tflite_builders import OP, ModelBuilder, _options

A = fb.ActivationFunctionType


class Builder(ModelBuilder):
    """ModelBuilder with int8 activations by default, custom ops and a few layer helpers."""

    def __init__(self, seed=0):
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def tensor(self, name, shape, dtype=np.int8, data=None, scale=None, zero_point=0, axis=0, signature=None):
        if scale is None and dtype in (np.int8, np.uint8, np.int16) and data is None:
            scale = 0.05  # every 8-bit activation is quantized
        return super().tensor(name, shape, dtype, data, scale, zero_point, axis, signature)

    def custom_op(self, code, inputs, outputs, payload=b""):
        key = (OP.CUSTOM, code)
        index = self.codes.setdefault(key, len(self.codes))
        self.custom[index] = code
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = index, np.array(inputs, np.int32), np.array(outputs, np.int32)
        o.customOptions = np.frombuffer(payload, np.uint8).copy() if payload else None
        self.ops.append(o)

    # -- layers (int8, random weights; the rules look at shapes and types, not values) --

    def conv(self, x, name, cout, k=3, stride=1, act=A.RELU, dtype=np.int8, dilation=(1, 1)):
        n, h, w, cin = (int(d) for d in self.tensors[x].shape)
        wt = self.tensor(f"{name}/weights", [cout, k, k, cin], dtype,
                         self.rng.integers(-127 if dtype == np.int8 else 0, 128, (cout, k, k, cin)),
                         [0.01] * cout, 0 if dtype == np.int8 else 128, axis=0)
        bt = self.tensor(f"{name}/bias", [cout], np.int32, self.rng.integers(-500, 500, cout), [5e-4] * cout)
        y = self.tensor(name, [n, -(-h // stride), -(-w // stride), cout], dtype)
        self.op(OP.CONV_2D, [x, wt, bt], [y], _options(
            fb.Conv2DOptionsT, padding=fb.Padding.SAME, strideH=stride, strideW=stride,
            dilationHFactor=dilation[1], dilationWFactor=dilation[0], fusedActivationFunction=act), 3)
        return y

    def dense(self, x, name, out, keep_dims=False, dtype=np.int8):
        shape = [int(d) for d in self.tensors[x].shape]
        low, zp = (-127, 0) if dtype == np.int8 else (0, 128)
        wt = self.tensor(f"{name}/weights", [out, shape[-1]], dtype,
                         self.rng.integers(low, 128, (out, shape[-1]), dtype=dtype), [0.01] * out, zp, axis=0)
        bt = self.tensor(f"{name}/bias", [out], np.int32, self.rng.integers(-500, 500, out), [5e-4] * out)
        y = self.tensor(name, shape[:-1] + [out] if keep_dims else [1, out], dtype)
        self.op(OP.FULLY_CONNECTED, [x, wt, bt], [y], _options(fb.FullyConnectedOptionsT, keepNumDims=keep_dims), 4)
        return y

    def unary(self, builtin, x, name, shape=None, dtype=np.int8, options=None, version=1):
        y = self.tensor(name, shape or [int(d) for d in self.tensors[x].shape], dtype)
        self.op(builtin, [x], [y], options, version)
        return y

    def reshape(self, x, name, shape, dtype=np.int8):
        y = self.tensor(name, shape, dtype)
        self.op(OP.RESHAPE, [x, self.tensor(f"{name}/shape", [len(shape)], np.int32, shape)], [y],
                _options(fb.ReshapeOptionsT, newShape=list(shape)))
        return y


def unsupported_in_middle() -> bytes:
    """input [1,8,8,4] -> conv1 -> ELU (not an Edge TPU op) -> conv2 -> out1, and, later in the file,
    input -> conv3 -> out2, a branch independent of the ELU."""
    b = Builder()
    x = b.tensor("input", [1, 8, 8, 4])
    c1 = b.conv(x, "conv1", 8)
    e = b.unary(OP.ELU, c1, "elu")
    c2 = b.conv(e, "conv2", 8)
    c3 = b.conv(x, "conv3", 8)
    return b.finish([x], [c2, c3])


def argmax_tail() -> bytes:
    """conv -> FC -> ARG_MAX (int32 output): the compiler says 'unsupported data type' (I#409)."""
    b = Builder()
    x = b.tensor("input", [1, 4, 4, 2])
    c = b.conv(x, "conv", 4)
    f = b.dense(b.reshape(c, "flatten", [1, 64]), "fc", 10)
    y = b.tensor("class", [1], np.int32)
    b.op(OP.ARG_MAX, [f, b.tensor("axis", [1], np.int32, [1])], [y],
         _options(fb.ArgMaxOptionsT, outputType=fb.TensorType.INT32), 2)
    return b.finish([x], [y])


def reshape_to_batch() -> bytes:
    """conv [1,8,8,8] -> reshape to [2,4,4,16] (4 non-unit dims) -> reshape [1,512] -> FC 10."""
    b = Builder()
    x = b.tensor("input", [1, 8, 8, 4])
    c = b.conv(x, "conv", 8)
    r = b.reshape(c, "to_batch2", [2, 4, 4, 16])
    f = b.reshape(r, "flatten", [1, 512])
    return b.finish([x], [b.dense(f, "fc", 10)])


def batch2() -> bytes:
    """A CNN exported with batch 2: every tensor is [2, ...]."""
    b = Builder()
    x = b.tensor("input", [2, 8, 8, 3])
    c = b.conv(x, "conv1", 8)
    return b.finish([x], [b.conv(c, "conv2", 8)])


def elu_first() -> bytes:
    """ELU on the input, then convs: everything depends on the ELU, nothing maps."""
    b = Builder()
    x = b.tensor("input", [1, 8, 8, 3])
    e = b.unary(OP.ELU, x, "elu")
    return b.finish([x], [b.conv(b.conv(e, "conv1", 8), "conv2", 8)])


def float_interface(dtype=np.int8) -> bytes:
    """float input -> QUANTIZE -> conv -> reshape -> FC -> softmax -> DEQUANTIZE -> float output, as the
    TFLite converter makes it by default (inference_input_type float)."""
    b = Builder()
    xf = b.tensor("input", [1, 8, 8, 3], np.float32)
    x = b.unary(OP.QUANTIZE, xf, "input_int8", dtype=dtype)
    c = b.conv(x, "conv", 4, stride=2, dtype=dtype)
    f = b.dense(b.reshape(c, "flatten", [1, 64], dtype), "fc", 10, dtype=dtype)
    # softmax's output quantization is fixed (scale 1/256, the type's lowest value as zero point)
    s = b.tensor("probs", [1, 10], dtype, scale=1 / 256, zero_point=-128 if dtype == np.int8 else 0)
    b.op(OP.SOFTMAX, [f], [s], _options(fb.SoftmaxOptionsT, beta=1.0))
    y = b.unary(OP.DEQUANTIZE, s, "probs_float", dtype=np.float32)
    return b.finish([xf], [y])


def partly_quantized() -> bytes:
    """int8 conv -> DEQUANTIZE -> float TANH -> QUANTIZE -> int8 FC: the converter's float fallback."""
    b = Builder()
    x = b.tensor("input", [1, 4, 4, 2])
    c = b.reshape(b.conv(x, "conv", 4), "flatten", [1, 64])
    d = b.unary(OP.DEQUANTIZE, c, "conv_float", dtype=np.float32)
    t = b.unary(OP.TANH, d, "tanh", dtype=np.float32)
    q = b.unary(OP.QUANTIZE, t, "tanh_int8")
    return b.finish([x], [b.dense(q, "fc", 10)])


def int16_activations() -> bytes:
    """A 16x8 model: int16 activations, int8 weights."""
    b = Builder()
    x = b.tensor("input", [1, 4], np.int16, scale=0.01)
    wt = b.tensor("fc/weights", [3, 4], np.int8, np.ones((3, 4)), [0.01] * 3)
    y = b.tensor("fc", [1, 3], np.int16, scale=0.01)
    b.op(OP.FULLY_CONNECTED, [x, wt, -1], [y], _options(fb.FullyConnectedOptionsT), 11)
    return b.finish([x], [y])


def two_big_fc(n_in=3072, hidden=2048) -> bytes:
    """input [1,3072] -> FC 2048 -> FC 3072: two 6 MiB weight matrices, more than the 8 MB cache."""
    b = Builder()
    x = b.tensor("input", [1, n_in])
    return b.finish([x], [b.dense(b.dense(x, "fc1", hidden), "fc2", n_in)])


def after_conv(make) -> bytes:
    """input [1,8,8,8] -> conv (maps) -> make(builder, conv output) -> output: checks the op `make` adds."""
    b = Builder()
    x = b.tensor("input", [1, 8, 8, 8])
    c = b.conv(x, "conv", 8)
    return b.finish([x], [make(b, c)])


def dwn1_package(executables, header=b"\x00" * 8) -> bytes:
    """An Edge TPU package as libedgetpu's executable.fbs lays it out, holding only the fields edgekit
    reads: executables = [(name, type 0/1/2, estimated_cycles_64bit, parameter bytes)]. The compiler
    puts a few bytes before the package in the custom op's options; header stands for them."""
    blobs = []
    for name, kind, cycles, params in executables:
        b = flatbuffers.Builder(256)
        n, p = b.CreateString(name), b.CreateByteVector(bytes(params))
        b.StartObject(17)
        b.PrependUOffsetTRelativeSlot(1, n, 0)
        b.PrependUOffsetTRelativeSlot(6, p, 0)
        b.PrependInt16Slot(13, kind, -1)  # -1: never the default, so the field is always written
        b.PrependInt64Slot(16, cycles, -1)
        b.Finish(b.EndObject())
        blobs.append(bytes(b.Output()))
    b = flatbuffers.Builder(256)
    strings = [b.CreateByteVector(x) for x in blobs]  # a [string] is laid out as byte vectors
    b.StartVector(4, len(strings), 4)
    for x in reversed(strings):
        b.PrependUOffsetTRelative(x)
    vec = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)
    b.Finish(b.EndObject())
    multi = bytes(b.Output())
    b = flatbuffers.Builder(256)
    m = b.CreateByteVector(multi)
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(1, m, 0)
    b.Finish(b.EndObject(), file_identifier=b"DWN1")
    return header + bytes(b.Output())


def compiled_like(cpu_after=("SOFTMAX",), payload=4096) -> bytes:
    """What edgetpu_compiler writes when ops stay on the CPU: input -> edgetpu-custom-op -> CPU ops.
    payload: the custom op's options, bytes or a byte count (zeros)."""
    b = Builder()
    x = b.tensor("input", [1, 8, 8, 3], np.uint8, scale=1 / 255)
    y = b.tensor("logits", [1, 10], np.uint8)
    b.custom_op("edgetpu-custom-op", [x], [y], payload if isinstance(payload, bytes) else bytes(payload))
    for op in cpu_after:
        y = b.unary(getattr(OP, op), y, op.lower(), dtype=np.uint8)
    return b.finish([x], [y])
