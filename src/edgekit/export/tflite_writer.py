"""Write a Graph as a .tflite flatbuffer (float, or int8 given quantization parameters).

Built with the flatbuffer object API that ships with LiteRT (`schema_py_generated`), following
rules measured against ai-edge-litert 2.3.0 and the tflite-micro Python interpreter: buffer 0 empty
(TFLM aborts on data there), model version 3 and the TFL3 identifier (LiteRT rejects a file
without), both builtin code fields (deprecatedBuiltinCode = min(code, 127); both runtimes take the
max), the op versions the TFLite converter writes (LiteRT rejects unknown ones), a serving_default
signature, and every buffer's data aligned to 16 bytes (Pack() aligns to 4) so TFLite Micro can use
it in place.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from ..graph import Graph
from ..quantize.scheme import QParams

OPS = {  # op kind -> (builtin operator, version for float, version for int8)
    "conv2d": (fb.BuiltinOperator.CONV_2D, 1, 3),
    "depthwise_conv2d": (fb.BuiltinOperator.DEPTHWISE_CONV_2D, 1, 3),
    "fully_connected": (fb.BuiltinOperator.FULLY_CONNECTED, 1, 4),
    "max_pool2d": (fb.BuiltinOperator.MAX_POOL_2D, 1, 2),
    "avg_pool2d": (fb.BuiltinOperator.AVERAGE_POOL_2D, 1, 2),
    "mean": (fb.BuiltinOperator.MEAN, 1, 2),
    "add": (fb.BuiltinOperator.ADD, 1, 2),
    "mul": (fb.BuiltinOperator.MUL, 1, 2),
    "concat": (fb.BuiltinOperator.CONCATENATION, 1, 2),
    "pad": (fb.BuiltinOperator.PAD, 1, 2),
    "reshape": (fb.BuiltinOperator.RESHAPE, 1, 1),
    "softmax": (fb.BuiltinOperator.SOFTMAX, 1, 2),
    "relu": (fb.BuiltinOperator.RELU, 1, 2),
    "relu6": (fb.BuiltinOperator.RELU6, 1, 2),
    "sigmoid": (fb.BuiltinOperator.LOGISTIC, 1, 2),
    "tanh": (fb.BuiltinOperator.TANH, 1, 2),
    "hard_swish": (fb.BuiltinOperator.HARD_SWISH, 1, 1),  # one version for float and int8 (TFLite 1.15)
    "gather": (fb.BuiltinOperator.GATHER, 1, 2),  # inputs (params, int32 indices), axis 0
}
ACTIVATION = {None: fb.ActivationFunctionType.NONE, "relu": fb.ActivationFunctionType.RELU,
              "relu6": fb.ActivationFunctionType.RELU6}
PADDING = {"SAME": fb.Padding.SAME, "VALID": fb.Padding.VALID}
TYPES = {"float32": fb.TensorType.FLOAT32, "int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32}
ALIGN = 16


class _AlignedBuffer(fb.BufferT):
    """A buffer whose data vector starts on a 16-byte boundary of the file (Pack() gives 4)."""

    def Pack(self, builder):
        data = None
        if self.data is not None and len(self.data):
            raw = bytes(self.data)
            builder.StartVector(1, len(raw), ALIGN)
            builder.head -= len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data = builder.EndVector()
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        return fb.BufferEnd(builder)


def _options(op, out_shape):
    """(BuiltinOptions type, options object) for one op."""
    a, k = op.attrs, op.kind
    act = ACTIVATION[a.get("activation")]
    if k == "conv2d":
        o = fb.Conv2DOptionsT()
        o.padding, (o.strideH, o.strideW) = PADDING[a["padding"]], a["stride"]
        o.dilationHFactor = o.dilationWFactor = 1
        o.fusedActivationFunction = act
        return fb.BuiltinOptions.Conv2DOptions, o
    if k == "depthwise_conv2d":
        o = fb.DepthwiseConv2DOptionsT()
        o.padding, (o.strideH, o.strideW) = PADDING[a["padding"]], a["stride"]
        o.depthMultiplier = a.get("multiplier", 1)
        o.dilationHFactor = o.dilationWFactor = 1
        o.fusedActivationFunction = act
        return fb.BuiltinOptions.DepthwiseConv2DOptions, o
    if k == "fully_connected":
        o = fb.FullyConnectedOptionsT()
        o.fusedActivationFunction = act
        return fb.BuiltinOptions.FullyConnectedOptions, o
    if k in ("max_pool2d", "avg_pool2d"):
        o = fb.Pool2DOptionsT()
        o.padding, (o.strideH, o.strideW) = PADDING[a["padding"]], a["stride"]
        o.filterHeight, o.filterWidth = a["kernel"]
        return fb.BuiltinOptions.Pool2DOptions, o
    if k == "mean":
        o = fb.ReducerOptionsT()
        o.keepDims = bool(a.get("keepdims", True))
        return fb.BuiltinOptions.ReducerOptions, o
    if k in ("add", "mul"):
        o = fb.AddOptionsT() if k == "add" else fb.MulOptionsT()
        o.fusedActivationFunction = act
        return (fb.BuiltinOptions.AddOptions if k == "add" else fb.BuiltinOptions.MulOptions), o
    if k == "concat":
        o = fb.ConcatenationOptionsT()
        o.axis = a["axis"]
        return fb.BuiltinOptions.ConcatenationOptions, o
    if k == "pad":
        return fb.BuiltinOptions.PadOptions, fb.PadOptionsT()
    if k == "reshape":
        o = fb.ReshapeOptionsT()
        o.newShape = [int(d) for d in out_shape]
        return fb.BuiltinOptions.ReshapeOptions, o
    if k == "gather":
        o = fb.GatherOptionsT()
        o.axis, o.batchDims = 0, 0
        return fb.BuiltinOptions.GatherOptions, o
    if k == "softmax":
        o = fb.SoftmaxOptionsT()
        o.beta = float(a.get("beta", 1.0))
        return fb.BuiltinOptions.SoftmaxOptions, o
    return fb.BuiltinOptions.NONE, None


class _Writer:
    def __init__(self, graph: Graph, quant: dict[str, QParams] | None, outputs: list[str]):
        self.g, self.q, self.outputs = graph, quant, outputs
        self.sub = fb.SubGraphT()
        self.sub.name = "main"
        self.sub.tensors, self.sub.operators = [], []
        self.buffers = [_AlignedBuffer()]  # buffer 0: the empty sentinel
        self.index: dict[str, int] = {}

    def tensor(self, name: str, shape=None, dtype=None, data: np.ndarray | None = None) -> int:
        """Index of the named tensor, adding it (and its buffer) the first time."""
        if name in self.index:
            return self.index[name]
        t = fb.TensorT()
        t.name = name
        src = self.g.tensors.get(name)
        shape = src.shape if shape is None else shape
        t.shape = np.array(shape, np.int32)
        qp = self.q.get(name) if self.q else None
        if data is None and src is not None and src.is_const:
            data = qp.values if qp is not None else src.data.astype(np.float32)
        dtype = dtype or (qp.dtype if qp is not None else src.dtype if src is not None else "float32")
        t.type = TYPES[dtype]
        if qp is not None:
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale = qp.scale.astype(np.float32)
            t.quantization.zeroPoint = qp.zero_point.astype(np.int64)
            t.quantization.quantizedDimension = qp.axis if qp.scale.size > 1 else 0
        t.buffer = 0
        if data is not None:
            b = _AlignedBuffer()
            b.data = np.ascontiguousarray(data).view(np.uint8).ravel()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.sub.tensors.append(t)
        self.index[name] = len(self.sub.tensors) - 1
        return self.index[name]

    def build(self, description: str) -> bytes:
        g = self.g
        codes: dict[tuple[int, int], int] = {}
        for name in g.inputs:
            self.tensor(name)
        for op in g.ops:
            out = g.tensors[op.outputs[0]]
            inputs = [self.tensor(t) for t in op.inputs]
            if op.kind == "pad":  # paddings travel as an int32 [rank, 2] constant input
                pads = np.array(op.attrs["pads"], np.int32)
                inputs.append(self.tensor(f"{op.name}/paddings", pads.shape, "int32", pads))
            if op.kind == "mean":
                axes = np.array(op.attrs["axes"], np.int32)
                inputs.append(self.tensor(f"{op.name}/axes", axes.shape, "int32", axes))
            builtin, v_float, v_int8 = OPS[op.kind]
            version = v_int8 if self.q else v_float
            code = codes.setdefault((builtin, version), len(codes))
            o = fb.OperatorT()
            o.opcodeIndex = code
            o.inputs = np.array(inputs, np.int32)
            o.outputs = np.array([self.tensor(t) for t in op.outputs], np.int32)
            o.builtinOptionsType, o.builtinOptions = _options(op, out.shape)
            self.sub.operators.append(o)
        self.sub.inputs = np.array([self.index[t] for t in g.inputs], np.int32)
        self.sub.outputs = np.array([self.index[t] for t in self.outputs], np.int32)

        model = fb.ModelT()
        model.version = 3
        model.description = description
        model.subgraphs = [self.sub]
        model.buffers = self.buffers
        model.operatorCodes = []
        for (builtin, version) in codes:
            c = fb.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = builtin, min(builtin, 127), version
            model.operatorCodes.append(c)
        sig = fb.SignatureDefT()
        sig.signatureKey = "serving_default"
        sig.subgraphIndex = 0
        sig.inputs = [self._tensor_map(t) for t in g.inputs]
        sig.outputs = [self._tensor_map(t) for t in self.outputs]
        model.signatureDefs = [sig]

        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def _tensor_map(self, name):
        m = fb.TensorMapT()
        m.name, m.tensorIndex = name, self.index[name]
        return m


def write_tflite(graph: Graph, quant: dict[str, QParams] | None = None,
                 description: str = "edgekit", observe: bool = False) -> bytes:
    """The graph as .tflite bytes: float32 when quant is None, else fully int8.

    observe=True also makes every op's output a model output (after the graph's own), so a runtime
    with fused, buffer-sharing kernels (LiteRT's XNNPACK) still hands each activation back.
    """
    outputs = list(graph.outputs)
    if observe:
        outputs += [t for op in graph.ops for t in op.outputs if t not in outputs]
    return _Writer(graph, quant, outputs).build(description)


def misaligned_buffers(data: bytes) -> list[int]:
    """Indices of buffers whose data does not start on a 16-byte boundary (should be none)."""
    model = fb.Model.GetRootAsModel(data, 0)
    bad = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.DataLength():
            start = buf._tab.Vector(buf._tab.Offset(4))
            if start % ALIGN:
                bad.append(i)
    return bad
