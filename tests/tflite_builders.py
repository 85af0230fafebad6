"""Tiny .tflite models built directly with the flatbuffer object API, for tests.

Independent of edgekit's own writer, so the reader, inspector and runtimes are checked against
models whose every number is known here.
"""
import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

TYPES = {np.float32: fb.TensorType.FLOAT32, np.float16: fb.TensorType.FLOAT16, np.int8: fb.TensorType.INT8,
         np.uint8: fb.TensorType.UINT8, np.int16: fb.TensorType.INT16, np.int32: fb.TensorType.INT32,
         np.int64: fb.TensorType.INT64}
OP = fb.BuiltinOperator


class _Aligned(fb.BufferT):
    """Buffer data on a 16-byte boundary, as TFLite Micro wants (Pack() alone gives 4)."""

    def Pack(self, builder):
        vec = None
        if self.data is not None and len(self.data):
            raw = bytes(self.data)
            builder.StartVector(1, len(raw), 16)
            builder.head -= len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            vec = builder.EndVector()
        fb.BufferStart(builder)
        if vec is not None:
            fb.BufferAddData(builder, vec)
        return fb.BufferEnd(builder)


class ModelBuilder:
    def __init__(self):
        self.tensors, self.ops, self.codes = [], [], {}
        self.custom = {}  # opcode index -> custom code (edgetpu_builders' custom ops)
        self.buffers = [_Aligned()]  # buffer 0: the empty sentinel

    def tensor(self, name, shape, dtype=np.float32, data=None, scale=None, zero_point=0, axis=0,
               signature=None) -> int:
        t = fb.TensorT()
        t.name, t.shape, t.type = name, np.array(shape, np.int32), TYPES[dtype]
        if signature is not None:
            t.shapeSignature = np.array(signature, np.int32)
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, np.float32))
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale = scale
            t.quantization.zeroPoint = np.broadcast_to(np.int64(zero_point), scale.shape).copy()
            t.quantization.quantizedDimension = axis
        if data is not None:
            b = _Aligned()
            b.data = np.ascontiguousarray(np.asarray(data, dtype).reshape(shape)).view(np.uint8).ravel()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, builtin, inputs, outputs, options=None, version=1):
        code = self.codes.setdefault((builtin, version), len(self.codes))
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, np.array(inputs, np.int32), np.array(outputs, np.int32)
        if options is not None:  # the options class name gives its union tag: Conv2DOptionsT -> Conv2DOptions
            o.builtinOptionsType = getattr(fb.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        self.ops.append(o)

    def finish(self, inputs, outputs) -> bytes:
        sg = fb.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs = np.array(inputs, np.int32), np.array(outputs, np.int32)
        m = fb.ModelT()
        m.version, m.description, m.subgraphs, m.buffers = 3, "test", [sg], self.buffers
        m.operatorCodes = []
        for index, (builtin, version) in enumerate(self.codes):
            c = fb.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode = builtin, min(builtin, 127)
            c.version = version if isinstance(version, int) else 1  # a custom op's key holds its code
            if index in self.custom:
                c.customCode = self.custom[index].encode()
            m.operatorCodes.append(c)
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _options(cls, **fields):
    o = cls()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def _int8_weights(rng, shape, axis):
    """Per-channel symmetric int8 weights and their scales (any values in [-127, 127] are valid)."""
    q = rng.integers(-127, 128, shape).astype(np.int8)
    return q, rng.uniform(0.002, 0.006, shape[axis]).astype(np.float32)


def int8_cnn(seed=0) -> bytes:
    """int8 1x8x8x2 -> conv 3x3/2 (4) -> depthwise 3x3 x2 (8) -> avgpool 2 -> reshape -> FC 5 -> softmax.

    By hand: conv  MACs 4*4*4*3*3*2 = 1152, params 4*3*3*2 + 4 = 76
             dw    MACs 4*4*8*3*3   = 1152, params 3*3*8 + 8   = 80
             fc    MACs 5*32        = 160,  params 5*32 + 5    = 165
             total MACs 2464, params 321 (reshape's shape is an option, not a tensor).
    """
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    s_in = 1 / 128
    x = b.tensor("input", [1, 8, 8, 2], np.int8, scale=s_in, zero_point=-1)

    w, sw = _int8_weights(rng, (4, 3, 3, 2), 0)
    wt = b.tensor("conv/weights", w.shape, np.int8, w, sw, 0, axis=0)
    bt = b.tensor("conv/bias", [4], np.int32, rng.integers(-500, 500, 4), s_in * sw, 0)
    c1 = b.tensor("conv", [1, 4, 4, 4], np.int8, scale=0.02, zero_point=-128)
    b.op(OP.CONV_2D, [x, wt, bt], [c1], _options(fb.Conv2DOptionsT, padding=fb.Padding.SAME, strideH=2, strideW=2,
         dilationHFactor=1, dilationWFactor=1, fusedActivationFunction=fb.ActivationFunctionType.RELU), 3)

    w, sw = _int8_weights(rng, (1, 3, 3, 8), 3)
    wt = b.tensor("dw/weights", w.shape, np.int8, w, sw, 0, axis=3)
    bt = b.tensor("dw/bias", [8], np.int32, rng.integers(-500, 500, 8), 0.02 * sw, 0)
    c2 = b.tensor("dw", [1, 4, 4, 8], np.int8, scale=0.01, zero_point=5)
    b.op(OP.DEPTHWISE_CONV_2D, [c1, wt, bt], [c2], _options(
        fb.DepthwiseConv2DOptionsT, padding=fb.Padding.SAME, strideH=1, strideW=1, depthMultiplier=2,
        dilationHFactor=1, dilationWFactor=1), 3)

    p = b.tensor("pool", [1, 2, 2, 8], np.int8, scale=0.01, zero_point=5)
    b.op(OP.AVERAGE_POOL_2D, [c2], [p], _options(fb.Pool2DOptionsT, padding=fb.Padding.VALID, strideH=2,
         strideW=2, filterHeight=2, filterWidth=2), 2)
    r = b.tensor("flatten", [1, 32], np.int8, scale=0.01, zero_point=5)
    b.op(OP.RESHAPE, [p], [r], _options(fb.ReshapeOptionsT, newShape=[1, 32]))

    w, sw = _int8_weights(rng, (5, 32), 0)
    wt = b.tensor("fc/weights", w.shape, np.int8, w, sw, 0, axis=0)
    bt = b.tensor("fc/bias", [5], np.int32, rng.integers(-500, 500, 5), 0.01 * sw, 0)
    f = b.tensor("fc", [1, 5], np.int8, scale=0.01, zero_point=0)
    b.op(OP.FULLY_CONNECTED, [r, wt, bt], [f], _options(fb.FullyConnectedOptionsT), 4)
    y = b.tensor("probs", [1, 5], np.int8, scale=1 / 256, zero_point=-128)
    b.op(OP.SOFTMAX, [f], [y], _options(fb.SoftmaxOptionsT, beta=1.0), 2)
    return b.finish([x], [y])


def with_data_in_buffer0(model: bytes) -> bytes:
    """The same model with bytes in buffer 0, the sentinel: LiteRT runs it, TFLite Micro aborts."""
    m = fb.ModelT.InitFromPackedBuf(model, 0)
    m.buffers = [_Aligned(np.arange(64, dtype=np.uint8))] + [_Aligned(b.data) for b in m.buffers[1:]]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def float_mix(seed=0, fused_concat=True) -> bytes:
    """A float model using what Keras' converter emits beyond edgekit's own writer: float16 and
    int8 weights behind DEQUANTIZE, fused activations on pooling and concatenation, a RESHAPE
    with a shape tensor, a FULLY_CONNECTED without bias, negative axes. fused_concat=False: the
    same model with the concatenation's RELU6 as an op of its own (LiteRT's built-in kernels
    refuse a fused one; only XNNPACK on x86-64 runs it)."""
    rng = np.random.default_rng(seed)
    A, P = fb.ActivationFunctionType, fb.Padding
    b = ModelBuilder()
    f = lambda name, shape: b.tensor(name, shape)  # noqa: E731 (a float activation)
    x = f("input", [1, 6, 6, 3])
    w16 = b.tensor("w1_fp16", [4, 3, 3, 3], np.float16, rng.normal(0, 0.3, (4, 3, 3, 3)))
    w1 = f("w1", [4, 3, 3, 3])
    b.op(OP.DEQUANTIZE, [w16], [w1], version=3)
    b1 = b.tensor("b1", [4], np.float32, rng.normal(0, 0.1, 4))
    c1 = f("conv", [1, 4, 4, 4])
    b.op(OP.CONV_2D, [x, w1, b1], [c1], _options(fb.Conv2DOptionsT, padding=P.VALID, strideH=1, strideW=1,
                                                  dilationHFactor=1, dilationWFactor=1))
    pads = b.tensor("pads", [4, 2], np.int32, [[0, 0], [1, 1], [1, 1], [0, 0]])
    p = f("pad", [1, 6, 6, 4])
    b.op(OP.PAD, [c1, pads], [p])
    mp = f("pool", [1, 3, 3, 4])
    b.op(OP.MAX_POOL_2D, [p], [mp], _options(fb.Pool2DOptionsT, padding=P.VALID, strideH=2, strideW=2,
                                             filterHeight=2, filterWidth=2, fusedActivationFunction=A.RELU))
    th, sg = f("tanh", [1, 3, 3, 4]), f("sigmoid", [1, 3, 3, 4])
    b.op(OP.TANH, [mp], [th])
    b.op(OP.LOGISTIC, [mp], [sg])
    cat = f("concat", [1, 3, 3, 8])
    if fused_concat:
        b.op(OP.CONCATENATION, [th, sg], [cat], _options(fb.ConcatenationOptionsT, axis=-1,
                                                         fusedActivationFunction=A.RELU6))
    else:
        joined = f("joined", [1, 3, 3, 8])
        b.op(OP.CONCATENATION, [th, sg], [joined], _options(fb.ConcatenationOptionsT, axis=-1))
        b.op(OP.RELU6, [joined], [cat])
    k = b.tensor("scale", [8], np.float32, rng.uniform(0.5, 2, 8))
    mu = f("mul", [1, 3, 3, 8])
    b.op(OP.MUL, [cat, k], [mu], _options(fb.MulOptionsT))
    wq, sw = _int8_weights(rng, (1, 3, 3, 8), 3)
    w8 = b.tensor("dw_int8", [1, 3, 3, 8], np.int8, wq, sw * 50, 0, axis=3)
    w2 = f("dw_w", [1, 3, 3, 8])
    b.op(OP.DEQUANTIZE, [w8], [w2], version=2)
    dw = f("dw", [1, 3, 3, 8])
    b.op(OP.DEPTHWISE_CONV_2D, [mu, w2, b.tensor("b2", [8], np.float32, np.zeros(8))], [dw], _options(
        fb.DepthwiseConv2DOptionsT, padding=P.SAME, strideH=1, strideW=1, depthMultiplier=1,
        dilationHFactor=1, dilationWFactor=1, fusedActivationFunction=A.RELU6))
    m = f("mean", [1, 1, 1, 8])
    b.op(OP.MEAN, [dw, b.tensor("axes", [2], np.int32, [1, 2])], [m], _options(fb.ReducerOptionsT, keepDims=True))
    r = f("flatten", [1, 8])
    b.op(OP.RESHAPE, [m, b.tensor("shape", [2], np.int32, [-1, 8])], [r])
    fc = f("fc", [1, 5])
    b.op(OP.FULLY_CONNECTED, [r, b.tensor("fc_w", [5, 8], np.float32, rng.normal(0, 0.5, (5, 8))), -1], [fc],
         _options(fb.FullyConnectedOptionsT))
    ad, r6 = f("add", [1, 5]), f("relu6", [1, 5])
    b.op(OP.ADD, [fc, b.tensor("shift", [5], np.float32, rng.normal(0, 1, 5))], [ad], _options(fb.AddOptionsT))
    b.op(OP.RELU6, [ad], [r6])
    y = f("probs", [1, 5])
    b.op(OP.SOFTMAX, [r6], [y], _options(fb.SoftmaxOptionsT, beta=0.5))
    return b.finish([x], [y])


def float_with(builtin, options=None, version=1) -> bytes:
    """input [1,4,4,2] -> one op -> output, for checking how unsupported things are reported."""
    b = ModelBuilder()
    x, y = b.tensor("input", [1, 4, 4, 2]), b.tensor("layer_out", [1, 4, 4, 2])
    ins = [x] if builtin != OP.ADD else [x, b.tensor("c", [2], np.float32, [1, 2])]
    b.op(builtin, ins, [y], options, version)
    return b.finish([x], [y])


def tflm_crasher() -> bytes:
    """int8 conv whose filter takes 4 input channels while the input has 2: LiteRT refuses it,
    TFLite Micro divides by the group count (2 // 4 = 0) and dies of SIGFPE."""
    b = ModelBuilder()
    x = b.tensor("input", [1, 4, 4, 2], np.int8, scale=0.01)
    w = b.tensor("w", [4, 3, 3, 4], np.int8, np.ones((4, 3, 3, 4)), [0.01] * 4, axis=0)
    bias = b.tensor("b", [4], np.int32, np.zeros(4), [1e-4] * 4)
    y = b.tensor("y", [1, 4, 4, 4], np.int8, scale=0.01)
    b.op(OP.CONV_2D, [x, w, bias], [y], _options(fb.Conv2DOptionsT, padding=fb.Padding.SAME, strideH=1,
         strideW=1, dilationHFactor=1, dilationWFactor=1), 3)
    return b.finish([x], [y])


def keras_dynamic_batch(seed=0, layer="conv", new_shape="pack", shape_feeds_math=False) -> bytes:
    """A float model as Keras 3 exports one with batch None: shapes [1,...] with signature [-1,...],
    and the flatten's new shape computed at run time from SHAPE(x).

    input [1,6,6,3] -> conv 3x3 (4, relu) or depthwise x2 (6) -> flatten -> FC 5 -> softmax.
    new_shape: "pack" = PACK(STRIDED_SLICE(SHAPE(x)) as a scalar, -1) as Keras writes it;
    "concat" = CONCATENATION(GATHER(SHAPE(x), [0]), [-1]). shape_feeds_math: the SHAPE also feeds a
    CAST into an ADD on the activations, which no static reshape can stand for.
    """
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    c = 4 if layer == "conv" else 6
    x = b.tensor("input", [1, 6, 6, 3], signature=[-1, 6, 6, 3])
    y = b.tensor(layer, [1, 6, 6, c], signature=[-1, 6, 6, c])
    common = dict(padding=fb.Padding.SAME, strideH=1, strideW=1, dilationHFactor=1, dilationWFactor=1,
                  fusedActivationFunction=fb.ActivationFunctionType.RELU)
    if layer == "conv":
        w = b.tensor("conv/w", [c, 3, 3, 3], np.float32, rng.normal(0, 0.4, (c, 3, 3, 3)))
        b.op(OP.CONV_2D, [x, w, b.tensor("conv/b", [c], np.float32, rng.normal(0, 0.1, c))], [y],
             _options(fb.Conv2DOptionsT, **common), 3)
    else:
        w = b.tensor("dw/w", [1, 3, 3, c], np.float32, rng.normal(0, 0.4, (1, 3, 3, c)))
        b.op(OP.DEPTHWISE_CONV_2D, [x, w, b.tensor("dw/b", [c], np.float32, rng.normal(0, 0.1, c))], [y],
             _options(fb.DepthwiseConv2DOptionsT, depthMultiplier=2, **common), 3)
    i32 = lambda name, shape, data=None: b.tensor(name, shape, np.int32, data)  # noqa: E731
    shape = i32("flatten/Shape", [4])
    b.op(OP.SHAPE, [y], [shape], _options(fb.ShapeOptionsT, outType=fb.TensorType.INT32))
    packed = i32("flatten/packed", [2])
    if new_shape == "pack":
        batch = i32("flatten/strided_slice", [])
        b.op(OP.STRIDED_SLICE, [shape, i32("ss/begin", [1], [0]), i32("ss/end", [1], [1]), i32("ss/strides", [1], [1])],
             [batch], _options(fb.StridedSliceOptionsT, shrinkAxisMask=1))
        b.op(OP.PACK, [batch, i32("flatten/minus1", [], -1)], [packed],
             _options(fb.PackOptionsT, valuesCount=2, axis=0))
    else:
        batch = i32("flatten/batch", [1])
        b.op(OP.GATHER, [shape, i32("gather/indices", [1], [0])], [batch], _options(fb.GatherOptionsT, axis=0))
        b.op(OP.CONCATENATION, [batch, i32("flatten/minus1", [1], [-1])], [packed],
             _options(fb.ConcatenationOptionsT, axis=0))
    if shape_feeds_math:
        sf, y2 = b.tensor("shape_f", [4]), b.tensor("shifted", [1, 6, 6, c], signature=[-1, 6, 6, c])
        b.op(OP.CAST, [shape], [sf])
        b.op(OP.ADD, [y, sf], [y2], _options(fb.AddOptionsT))
        y = y2
    n = 6 * 6 * c
    flat = b.tensor("flatten", [1, n], signature=[-1, n])
    b.op(OP.RESHAPE, [y, packed], [flat])
    fc = b.tensor("dense", [1, 5], signature=[-1, 5])
    b.op(OP.FULLY_CONNECTED, [flat, b.tensor("dense/w", [5, n], np.float32, rng.normal(0, 0.3, (5, n))),
                              b.tensor("dense/b", [5], np.float32, rng.normal(0, 0.1, 5))], [fc],
         _options(fb.FullyConnectedOptionsT))
    probs = b.tensor("probs", [1, 5], signature=[-1, 5])
    b.op(OP.SOFTMAX, [fc], [probs], _options(fb.SoftmaxOptionsT, beta=1.0))
    return b.finish([x], [probs])
