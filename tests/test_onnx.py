"""ONNX import and export, on small models built the way torch.onnx.export writes them.

The expected outputs come from onnxruntime (the ONNX semantics, NCHW); edgekit's Graph runs in
numpy, NHWC (edgekit.reference). Models follow PyTorch's naming: nodes '/conv1/Conv', outputs
'/conv1/Conv_output_0', weights 'conv1.weight'.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.errors import EdgekitError, UnsupportedError
from edgekit.export.onnx_export import export_onnx_graph, graph_to_onnx
from edgekit.importers.onnx_import import import_onnx
from edgekit.passes import optimize
from edgekit.reference import run

RNG = np.random.default_rng(0)


# -- building PyTorch-like ONNX models -------------------------------------------------------
class Model:
    """Collects nodes and initializers; node(...) returns the output name like PyTorch's."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def weight(self, name, *shape, scale=0.3):
        self.inits.append(numpy_helper.from_array(RNG.normal(0, scale, shape).astype(np.float32), name))
        return name

    def const(self, name, value, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, name, **attrs):
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x, scope, c_in, c_out, k=3, group=1, bias=True, **attrs):
        w = self.weight(f"{scope}.weight", c_out, c_in // group, k, k)
        ins = [x, w] + ([self.weight(f"{scope}.bias", c_out)] if bias else [])
        return self.node("Conv", ins, f"/{scope}/Conv", kernel_shape=[k, k], group=group, **attrs)

    def bn(self, x, scope, c):
        params = [self.const(f"{scope}.weight", RNG.uniform(0.5, 1.5, c)),
                  self.const(f"{scope}.bias", RNG.normal(0, 0.2, c)),
                  self.const(f"{scope}.running_mean", RNG.normal(0, 0.2, c)),
                  self.const(f"{scope}.running_var", RNG.uniform(0.5, 2, c))]
        return self.node("BatchNormalization", [x] + params, f"/{scope}/BatchNormalization", epsilon=1e-5)

    def gemm(self, x, scope, n_in, n_out):
        return self.node("Gemm", [x, self.weight(f"{scope}.weight", n_out, n_in),
                                  self.weight(f"{scope}.bias", n_out)],
                         f"/{scope}/Gemm", alpha=1.0, beta=1.0, transB=1)

    def build(self, input_shape, outputs, opset=13, input_name="input"):
        inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)
        outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
        graph = helper.make_graph(self.nodes, "main_graph", [inp], outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  ir_version=8, producer_name="pytorch")
        model = onnx.shape_inference.infer_shapes(model)  # fills in the outputs' types and shapes
        onnx.checker.check_model(model)
        return model


def mlp():
    m = Model()
    h = m.node("Relu", [m.gemm("input", "fc1", 16, 32)], "/relu/Relu")
    # A Gemm as older exporters write nn.Linear: weight [in, out], transB=0, plus alpha/beta.
    w2, b2 = m.weight("fc2.weight", 32, 10), m.weight("fc2.bias", 10)
    y = m.node("Gemm", [h, w2, b2], "/fc2/Gemm", alpha=0.5, beta=2.0)
    return m.build(["batch_size", 16], [m.node("Softmax", [y], "/softmax/Softmax", axis=1)])


def cnn():
    m = Model()
    x = m.node("Relu", [m.bn(m.conv("input", "conv1", 3, 8, pads=[1, 1, 1, 1]), "bn1", 8)], "/relu1/Relu")
    x = m.node("MaxPool", [x], "/pool1/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    # stride 2, padding 1: not TFLite's SAME, so edgekit adds a pad op
    x = m.node("Relu", [m.conv(x, "conv2", 8, 12, strides=[2, 2], pads=[1, 1, 1, 1])], "/relu2/Relu")
    x = m.node("Flatten", [x], "/Flatten", axis=1)
    return m.build(["batch_size", 3, 12, 12], [m.gemm(x, "fc", 12 * 3 * 3, 5)])


def depthwise_separable():
    m = Model()
    lo = m.node("Constant", [], "/Constant", value=numpy_helper.from_array(np.array(0, np.float32)))
    hi = m.node("Constant", [], "/Constant_1", value=numpy_helper.from_array(np.array(6, np.float32)))
    x = m.node("Clip", [m.conv("input", "expand", 3, 8, k=1), lo, hi], "/expand_act/Clip")
    # depthwise with depth multiplier 2: groups=8, 16 output channels
    x = m.bn(m.conv(x, "dw", 8, 16, group=8, bias=False, pads=[1, 1, 1, 1]), "dw_bn", 16)
    x = m.node("Clip", [x, m.const("six_min", 0.0), m.const("six_max", 6.0)], "/dw_act/Clip")
    x = m.node("GlobalAveragePool", [m.conv(x, "project", 16, 8, k=1)], "/pool/GlobalAveragePool")
    x = m.node("Flatten", [x], "/Flatten", axis=1)
    return m.build(["batch_size", 3, 10, 10], [m.gemm(x, "classifier", 8, 4)])


def residual_concat():
    m = Model()
    x = m.conv("input", "conv1", 4, 4, pads=[1, 1, 1, 1])
    r = m.node("Relu", [m.node("Add", [x, "input"], "/Add")], "/relu/Relu")
    x = m.node("Concat", [r, "input"], "/Concat", axis=1)
    x = m.node("Mul", [x, m.const("scale", RNG.uniform(0.5, 2, (8, 1, 1)))], "/Mul")
    x = m.node("Add", [m.const("offset", 0.25), x], "/Add_1")  # constant first, as a scalar
    x = m.node("Sub", [x, m.const("mean", RNG.normal(0, 1, (1, 8, 1, 1)))], "/Sub")
    x = m.node("Div", [x, m.const("std", 2.0)], "/Div")
    x = m.node("Tanh", [m.node("Mul", [x, m.node("Sigmoid", [x], "/Sigmoid")], "/Mul_1")], "/Tanh")
    return m.build(["batch_size", 4, 6, 6], [x])


def padding():
    m = Model()
    x = m.node("Pad", ["input", m.const("pads", [0, 0, 1, 2, 0, 0, 2, 1], np.int64)], "/Pad", mode="constant")
    x = m.node("Relu", [m.conv(x, "conv", 3, 6)], "/Relu")  # VALID after the explicit Pad
    # PyTorch's AvgPool2d default counts the padding in (count_include_pad=1)
    a = m.node("AveragePool", [x], "/pool1/AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               count_include_pad=1)
    b = m.node("AveragePool", [x], "/pool2/AveragePool", kernel_shape=[3, 3], strides=[2, 2],
               auto_pad="SAME_UPPER")
    c = m.node("MaxPool", [x], "/pool3/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    return m.build(["batch_size", 3, 7, 7], [a, b, c])


def matmul_add():
    m = Model()
    x = m.node("MatMul", ["input", m.weight("onnx::MatMul_20", 12, 8)], "/fc1/MatMul")
    x = m.node("Add", [m.weight("fc1.bias", 8), x], "/fc1/Add")
    x = m.node("Tanh", [x], "/Tanh")
    y = m.node("MatMul", [x, m.weight("onnx::MatMul_21", 8, 3)], "/fc2/MatMul")  # no bias
    return m.build(["batch_size", 12], [y])


def dynamic_flatten():
    """x.view(x.size(0), -1) with a dynamic batch: Shape/Gather/Unsqueeze/Concat/Reshape."""
    m = Model()
    x = m.node("Relu", [m.conv("input", "conv", 2, 5, pads=[1, 1, 1, 1])], "/Relu")
    s = m.node("Shape", [x], "/Shape")
    n = m.node("Gather", [s, m.const("zero", 0, np.int64)], "/Gather", axis=0)
    n = m.node("Unsqueeze", [n, m.const("axes0", [0], np.int64)], "/Unsqueeze")
    shape = m.node("Concat", [n, m.const("minus_one", [-1], np.int64)], "/Concat", axis=0)
    x = m.node("Reshape", [x, shape], "/Reshape")
    x = m.gemm(x, "fc", 5 * 4 * 4, 6)
    x = m.node("Unsqueeze", [x, m.const("axes23", [2, 3], np.int64)], "/Unsqueeze_1")
    return m.build(["batch_size", 2, 4, 4], [m.node("Softmax", [x], "/Softmax", axis=1)])


def flat_to_image():
    """x.view(-1, 1, 8, 8) on flat 64-pixel inputs (digits as a vector), then a conv net."""
    m = Model()
    x = m.node("Reshape", ["input", m.const("img_shape", [1, 1, 8, 8], np.int64)], "/Reshape")
    x = m.node("Relu", [m.conv(x, "conv", 1, 4, pads=[1, 1, 1, 1])], "/Relu")
    x = m.node("Flatten", [x], "/Flatten")
    return m.build([1, 64], [m.gemm(x, "fc", 4 * 8 * 8, 10)])


def reduce_mean():
    m = Model()
    x = m.conv("input", "conv", 3, 6, pads=[1, 1, 1, 1])
    x = m.node("ReduceMean", [x], "/ReduceMean", axes=[2, 3], keepdims=0)
    return m.build([1, 3, 5, 5], [m.node("Dropout", [x], "/Dropout")])


def branches():
    m = Model()
    c = m.conv("input", "conv", 3, 4, pads=[1, 1, 1, 1])
    x = m.node("Add", [c, m.bn(c, "bn", 4)], "/Add")  # conv's output is read twice: BN cannot fold
    x = m.node("Clip", [x, m.const("zero", 0.0)], "/Clip")  # torch.clamp(x, min=0)
    s = m.node("GlobalMaxPool", [x], "/GlobalMaxPool")
    s = m.node("Squeeze", [s, m.const("hw_axes", [2, 3], np.int64)], "/Squeeze")
    s = m.node("Identity", [m.bn(m.gemm(s, "fc", 4, 6), "bn1d", 6)], "/Identity")  # BatchNorm1d
    y = m.conv(x, "conv_lower", 4, 2, k=2, auto_pad="SAME_LOWER")
    y = m.node("Softmax", [y], "/Softmax", axis=1)  # over the channels
    return m.build(["batch_size", 3, 5, 5], [s, y])


def opset18():
    m = Model()
    pads, axes = m.const("pads", [1, 2, 1, 2], np.int64), m.const("pad_axes", [2, 3], np.int64)
    x = m.node("Pad", ["input", pads, m.const("value", 0.0), axes], "/Pad")
    x = m.conv(x, "conv", 2, 3)
    x = m.node("ReduceMean", [x, m.const("mean_axes", [-1, -2], np.int64)], "/ReduceMean", keepdims=1)
    return m.build(["batch_size", 2, 4, 4], [m.node("Flatten", [x], "/Flatten")], opset=18)


def mobilenet_v3_block():
    """A MobileNetV3 block as torch.onnx.export writes it at opset 14: HardSwish, and a
    squeeze-excite gate with PyTorch's Hardsigmoid (alpha 1/6); one HardSigmoid with ONNX's defaults."""
    m = Model()
    x = m.node("HardSwish", [m.conv("input", "stem", 3, 8, strides=[2, 2], pads=[1, 1, 1, 1])], "/stem_act/HardSwish")
    x = m.node("HardSwish", [m.conv(x, "dw", 8, 8, group=8, pads=[1, 1, 1, 1])], "/dw_act/HardSwish")
    g = m.node("GlobalAveragePool", [x], "/se/GlobalAveragePool")
    g = m.node("Relu", [m.conv(g, "se.fc1", 8, 4, k=1)], "/se/Relu")
    g = m.node("HardSigmoid", [m.conv(g, "se.fc2", 4, 8, k=1)], "/se/HardSigmoid", alpha=1 / 6, beta=0.5)
    x = m.node("Mul", [x, g], "/se/Mul")
    x = m.node("HardSigmoid", [m.conv(x, "project", 8, 6, k=1)], "/gate/HardSigmoid")  # alpha 0.2, beta 0.5
    return m.build(["batch_size", 3, 12, 12], [x], opset=14)


def hardswish_opset13():
    """Below opset 14 torch.onnx.export writes nn.Hardswish as Mul(x, HardSigmoid(x, alpha=1/6))."""
    m = Model()
    x = m.conv("input", "conv", 3, 4, pads=[1, 1, 1, 1])
    x = m.node("Mul", [x, m.node("HardSigmoid", [x], "/act/HardSigmoid", alpha=1 / 6, beta=0.5)], "/act/Mul")
    return m.build(["batch_size", 3, 6, 6], [x], opset=13)


def spatial_concat():
    """Convs with strides (2, 1), joined along height (NCHW axis 2), then along width (axis 3)."""
    m = Model()
    a = m.conv("input", "conv_a", 3, 4, pads=[1, 1, 1, 1], strides=[2, 1])
    b = m.conv("input", "conv_b", 3, 4, pads=[1, 1, 1, 1], strides=[2, 1])
    tall = m.node("Concat", [a, b], "/Concat", axis=2)
    return m.build(["batch_size", 3, 6, 4], [m.node("Concat", [tall, tall], "/Concat_1", axis=-1)])


def asymmetric_pads():
    """Conv pads [top, left, bottom, right] that differ per side ('same' padding of an even kernel)."""
    m = Model()
    x = m.conv("input", "conv_even", 3, 4, k=2, pads=[0, 0, 1, 1])
    x = m.conv(x, "conv_odd", 4, 4, k=3, pads=[2, 0, 1, 1])  # height: 2 above, 1 below; width: 0 left, 1 right
    return m.build(["batch_size", 3, 6, 5], [x])


MODELS = [mlp, cnn, depthwise_separable, residual_concat, padding, matmul_add, dynamic_flatten,
          reduce_mean, branches, opset18, flat_to_image, mobilenet_v3_block, hardswish_opset13,
          spatial_concat, asymmetric_pads]


# -- comparing against onnxruntime ---------------------------------------------------------
def onnx_run(model, x):
    import onnxruntime as ort  # the test extra has it: its absence is a failure, not a skip
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def nhwc(x):
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def nchw(y):
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def graph_run(graph, x):
    out = run(graph, {graph.inputs[0]: nhwc(x)})
    return [nchw(out[t]) for t in graph.outputs]


def sample(model, batch=3):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if dims[0].dim_value == 1:
        batch = 1
    return RNG.normal(0, 1, [batch] + [d.dim_value for d in dims[1:]]).astype(np.float32)


def assert_outputs_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_import_matches_onnx_semantics(build):
    model = build()
    x = sample(model)
    graph = import_onnx(model.SerializeToString())
    assert_outputs_close(graph_run(graph, x), onnx_run(model, x))


def test_hardswish_written_as_mul_and_hardsigmoid_becomes_one_op():
    graph = optimize(import_onnx(hardswish_opset13().SerializeToString()))
    assert [op.kind for op in graph.ops] == ["conv2d", "hard_swish"]
    assert graph.ops[1].inputs == [graph.ops[0].outputs[0]] and not any(
        t.is_const and t.data.size == 1 for t in graph.tensors.values())  # 3 and 1/6 are gone too
    # a HardSigmoid that gates another tensor stays a gate: add (relu6) then mul
    block = optimize(import_onnx(mobilenet_v3_block().SerializeToString()))
    kinds = [op.kind for op in block.ops]
    assert kinds.count("hard_swish") == 2 and kinds.count("mul") == 4 and "add" in kinds


def test_import_structure_and_names(tmp_path):
    path = tmp_path / "cnn.onnx"
    onnx.save(cnn(), str(path))
    graph = import_onnx(path)
    kinds = [op.kind for op in graph.ops]
    assert graph.name == "cnn"
    assert graph.inputs == ["input"] and graph.tensors["input"].shape == (1, 12, 12, 3)
    assert "mul" not in kinds and "add" not in kinds  # BatchNorm folded into conv1
    assert kinds.count("pad") == 1  # only the stride-2 conv needs an explicit pad
    assert "conv1.weight" in graph.tensors and "/conv1/Conv" in [op.name for op in graph.ops]

    dw = import_onnx(depthwise_separable().SerializeToString())
    op = next(op for op in dw.ops if op.kind == "depthwise_conv2d")
    assert op.attrs["multiplier"] == 2 and dw.tensors[op.inputs[1]].shape == (1, 3, 3, 16)
    assert [op.kind for op in dw.ops].count("relu6") == 2

    mm = import_onnx(matmul_add().SerializeToString())
    assert [op.kind for op in mm.ops] == ["fully_connected", "tanh", "fully_connected"]


# -- errors ------------------------------------------------------------------------------------
def test_unsupported_op_names_op_and_node():
    m = Model()
    x = m.gemm("input", "fc", 8, 8)
    w, r = m.weight("lstm.w", 1, 32, 8), m.weight("lstm.r", 1, 32, 8)
    m.nodes.append(helper.make_node("LSTM", [x, w, r], ["y"], name="/lstm/LSTM", hidden_size=8))
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph(m.nodes, "g", [inp],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], m.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedError, match=r"unsupported op LSTM in layer '/lstm/LSTM'; supported: Conv"):
        import_onnx(model.SerializeToString())


@pytest.mark.parametrize("attrs, match", [
    ({"dilations": [2, 2]}, r"Conv dilation \(2, 2\) in layer '/conv/Conv'"),
    ({"group": 2}, r"grouped Conv \(group=2\) in layer '/conv/Conv'"),
])
def test_unsupported_conv_attribute(attrs, match):
    m = Model()
    y = m.conv("input", "conv", 4, 4, pads=[1, 1, 1, 1], **attrs)
    with pytest.raises(UnsupportedError, match=match):
        import_onnx(m.build([1, 4, 6, 6], [y]).SerializeToString())


@pytest.mark.parametrize("case", ["clip", "flatten_to_mul", "flatten_output", "maxpool_pad"])
def test_unsupported_patterns(case):
    m = Model()
    x = m.conv("input", "conv", 2, 3, pads=[1, 1, 1, 1])
    if case == "clip":
        y = m.node("Clip", [x, m.const("lo", -1.0), m.const("hi", 1.0)], "/Clip")
        match = r"Clip\(min=-1, max=1\).*'/Clip'"
    elif case == "flatten_to_mul":
        f = m.node("Flatten", [x], "/Flatten")
        y, match = m.node("Mul", [f, m.weight("w", 48)], "/Mul"), r"Mul reading a flatten of a 3x4x4.*'/Mul'"
    elif case == "flatten_output":
        y, match = m.node("Flatten", [x], "/Flatten"), r"flatten of a 3x4x4 feature map as the model's output in layer '/Flatten'"
    else:  # padding that is not SAME, on values that may be negative
        y = m.node("MaxPool", [x], "/MaxPool", kernel_shape=[2, 2], pads=[1, 1, 1, 1])
        match = r"MaxPool padding.*'/MaxPool'"
    with pytest.raises(UnsupportedError, match=match):
        import_onnx(m.build([1, 2, 4, 4], [y]).SerializeToString())


def test_garbage_and_truncated_files(tmp_path):
    with pytest.raises(EdgekitError, match="'junk.onnx' is not a valid ONNX model"):
        import_onnx(b"\x12\xff\xff\xff\xff this is not protobuf", name="junk")
    data = cnn().SerializeToString()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgekitError, match="'half.onnx'"):
        import_onnx(path)
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(EdgekitError, match="'empty.onnx' is not a valid ONNX model"):
        import_onnx(tmp_path / "empty.onnx")
    with pytest.raises(EdgekitError, match="does not exist"):
        import_onnx(tmp_path / "missing.onnx")


def test_nan_weights():
    model = mlp()
    w = next(t for t in model.graph.initializer if t.name == "fc2.weight")
    arr = numpy_helper.to_array(w).copy()
    arr[3, 4] = np.nan
    w.CopyFrom(numpy_helper.from_array(arr, "fc2.weight"))
    with pytest.raises(EdgekitError, match="NaN"):
        import_onnx(model.SerializeToString())


def test_input_checks():
    m = Model()
    y = m.node("Relu", ["input"], "/Relu")
    with pytest.raises(EdgekitError, match="fixed batch size of 8"):
        import_onnx(m.build([8, 4], [y]).SerializeToString())
    with pytest.raises(EdgekitError, match="unknown size"):
        import_onnx(m.build(["N", "features"], [y]).SerializeToString())


# -- export, and the round trip ----------------------------------------------------------------
@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_export_round_trip(build, tmp_path):
    graph = optimize(import_onnx(build().SerializeToString()))  # fused activations, as exported
    x = sample(build())
    want = graph_run(graph, x)
    path = export_onnx_graph(graph, tmp_path / "model.onnx")
    exported = onnx.load(str(path))
    onnx.checker.check_model(exported, full_check=True)
    assert {n.name for n in exported.graph.node} >= {op.name for op in graph.ops}
    again = import_onnx(path)
    assert_outputs_close(graph_run(again, x), want)
    assert_outputs_close(onnx_run(exported, x), want)  # the exported file means the same in ONNX


def test_export_general_reshapes_and_layouts():
    """Ops the ONNX importer never produces still export to an equivalent ONNX model."""
    from edgekit.graph import Graph
    g = Graph(name="odd")
    x = g.add_input("x", (1, 4, 4, 3))
    y = g.add_op("reshape", [x], "to_rows", shape=(1, 48))  # HWC flatten read by a non-dense op
    y = g.add_op("softmax", [y], "softmax", beta=0.5)
    z = g.add_op("reshape", [x], "regroup", shape=(1, 2, 8, 3))
    z = g.add_op("mean", [z], "mean_c", axes=(3,), keepdims=True)
    p = g.add_op("pad", [x], "pad", pads=((0, 0), (1, 0), (0, 2), (0, 0)))
    p = g.add_op("avg_pool2d", [p], "pool", kernel=(2, 2), stride=(2, 2), padding="SAME")
    d = g.add_op("fully_connected", [p, g.add_const("w", RNG.normal(0, 0.3, (5, 27))),
                                     g.add_const("b", RNG.normal(0, 0.3, 5))], "dense", activation="relu6")
    g.outputs = [y, z, d]
    g.finalize()
    x_nchw = RNG.normal(0, 1, (2, 3, 4, 4)).astype(np.float32)
    assert_outputs_close(onnx_run(graph_to_onnx(g), x_nchw), graph_run(g, x_nchw))
