"""ONNX models of channels-last (Keras) networks, written the way tf2onnx writes them: an NHWC input
Transposed to NCHW, NCHW ops, and the Transposes its optimizer leaves (a pair that cancels, one
before a flatten). The expected outputs come from onnxruntime, fed the same NHWC data.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.errors import EdgekitError
from edgekit.importers.onnx_import import import_onnx
from edgekit.reference import run

RNG = np.random.default_rng(1)
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


class Tf2onnx:
    """Collects nodes and initializers named like tf2onnx's ('model/conv1/Conv2D')."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name, value, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, name, **attrs):
        out = f"{name}:0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def transpose(self, x, name, perm):
        return self.node("Transpose", [x], name, perm=perm)

    def conv(self, x, scope, c_in, c_out, k=1, stride=1, group=1):
        w = self.const(f"{scope}/kernel", RNG.normal(0, (2 / (k * k * c_in / group)) ** 0.5,
                                                      (c_out, c_in // group, k, k)))
        b = self.const(f"{scope}/bias", RNG.normal(0, 0.1, c_out))
        x = self.node("Conv", [x, w, b], f"{scope}/Conv2D", kernel_shape=[k, k], strides=[stride, stride],
                      group=group, auto_pad="SAME_UPPER" if k > 1 else "NOTSET")
        return self.node("Clip", [x, self.const(f"{scope}/min", 0.0), self.const(f"{scope}/max", 6.0)],
                         f"{scope}/Relu6")

    def dense(self, x, scope, n_in, n_out):
        y = self.node("MatMul", [x, self.const(f"{scope}/kernel", RNG.normal(0, 0.5, (n_in, n_out)))],
                      f"{scope}/MatMul")
        return self.node("Add", [y, self.const(f"{scope}/bias", RNG.normal(0, 0.1, n_out))], f"{scope}/BiasAdd")

    def build(self, input_shape, output):
        inp = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__0"] + input_shape)
        graph = helper.make_graph(self.nodes, "tf2onnx", [inp], [helper.make_empty_tensor_value_info(output)],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tf2onnx")
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model)
        return model


def mobilenet_v1():
    """MobileNetV1-0.25-like on 32x32x3: conv, depthwise-separable blocks, average pool, dense, softmax."""
    m = Tf2onnx()
    x = m.transpose("input_1", "model/conv1/Conv2D__6", TO_NCHW)
    x = m.conv(x, "model/conv1", 3, 8, k=3, stride=2)
    for i, (c_in, c_out, stride) in enumerate([(8, 16, 1), (16, 32, 2), (32, 32, 1)]):
        x = m.conv(x, f"model/conv_dw_{i}", c_in, c_in, k=3, stride=stride, group=c_in)
        if i == 1:  # a pair the optimizer left around a block: NCHW -> NHWC -> NCHW
            x = m.transpose(m.transpose(x, f"model/block_{i}/Transpose", TO_NHWC), f"model/block_{i}/Transpose__1",
                            TO_NCHW)
        x = m.conv(x, f"model/conv_pw_{i}", c_in, c_out)
    x = m.node("GlobalAveragePool", [x], "model/global_average_pooling2d/Mean")
    x = m.transpose(x, "model/global_average_pooling2d/Mean__21", TO_NHWC)
    x = m.node("Reshape", [x, m.const("model/reshape/shape", [-1, 32], np.int64)], "model/reshape/Reshape")
    y = m.dense(x, "model/predictions", 32, 10)
    return m.build([32, 32, 3], m.node("Softmax", [y], "model/predictions/Softmax", axis=-1))


def keras_flatten():
    """Conv then Keras' Flatten: the features are in HWC order, so the Transpose before it stays."""
    m = Tf2onnx()
    x = m.conv(m.transpose("input_1", "model/conv/Conv2D__4", TO_NCHW), "model/conv", 2, 4, k=3, stride=2)
    x = m.node("Flatten", [m.transpose(x, "model/flatten/Transpose", TO_NHWC)], "model/flatten/Reshape")
    return m.build([8, 8, 2], m.dense(x, "model/dense", 4 * 4 * 4, 5))


def keras_reduce_mean():
    """GlobalAveragePooling2D left channels-last: ReduceMean over axes 1 and 2 after the Transpose."""
    m = Tf2onnx()
    x = m.conv(m.transpose("input_1", "model/conv/Conv2D__4", TO_NCHW), "model/conv", 3, 6, k=3)
    x = m.transpose(x, "model/gap/Mean__8", TO_NHWC)
    x = m.node("ReduceMean", [x], "model/gap/Mean", axes=[1, 2], keepdims=0)
    return m.build([6, 6, 3], m.dense(x, "model/dense", 6, 4))


def onnx_run(model, x):
    import onnxruntime as ort  # the test extra has it: its absence is a failure, not a skip
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def nhwc_samples(model, n):
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    return RNG.uniform(0, 1, [n] + dims).astype(np.float32)


@pytest.mark.parametrize("build, kinds", [
    (mobilenet_v1, ["conv2d", "relu6"] + ["depthwise_conv2d", "relu6", "conv2d", "relu6"] * 3
     + ["mean", "reshape", "fully_connected", "softmax"]),
    (keras_flatten, ["conv2d", "relu6", "reshape", "fully_connected"]),
    (keras_reduce_mean, ["conv2d", "relu6", "mean", "fully_connected"])], ids=["mobilenet_v1", "flatten", "mean"])
def test_transposes_fold_into_the_nhwc_graph(build, kinds):
    model = build()
    graph = import_onnx(model.SerializeToString())
    x = nhwc_samples(model, 3)
    assert graph.source_layout == "NHWC"
    assert graph.tensors[graph.inputs[0]].shape == (1,) + x.shape[1:]  # the input as given, no reorder
    assert [op.kind for op in graph.ops] == kinds  # no op stands in for a Transpose
    got = run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_allclose(got, onnx_run(model, x), rtol=1e-5, atol=1e-5)


def test_nchw_models_keep_their_layout():
    m = Tf2onnx()
    model = m.build([3, 8, 8], m.node("Relu", ["input_1"], "relu"))
    graph = import_onnx(model.SerializeToString())
    assert graph.source_layout == "NCHW" and graph.tensors["input_1"].shape == (1, 8, 8, 3)


def test_channels_last_mobilenet_converts_to_agreeing_int8(tmp_path):
    model = mobilenet_v1()
    path = tmp_path / "mobilenet_v1.onnx"
    path.write_bytes(model.SerializeToString())
    q = edgekit.convert(path, calibration=nhwc_samples(model, 100))  # NHWC, as the Keras original takes
    assert q.source.layout == "NHWC"
    info = q.to_dict()
    assert info["agreement"]["top1_agreement"] >= 0.9  # random weights: near-tied classes flip
    assert info["agreement"]["max_abs_error"] < 0.05  # softmax outputs, 1/256 steps
    assert all(layer["sqnr_db"] is None or layer["sqnr_db"] > 20 for layer in info["layers"]), info["layers"]
    x = nhwc_samples(model, 20)
    want = onnx_run(model, x)
    got = q.predict(x)
    assert np.abs(got - want).max() < 0.05
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9


def lone_to_nhwc():
    m = Tf2onnx()
    x = m.conv(m.transpose("input_1", "in/Transpose", TO_NCHW), "conv", 3, 4, k=3)
    x = m.transpose(x, "model/stray/Transpose", TO_NHWC)
    return m.build([6, 6, 3], m.node("Relu", [x], "model/act/Relu"))


def odd_perm():
    m = Tf2onnx()
    x = m.conv(m.transpose("input_1", "in/Transpose", TO_NCHW), "conv", 3, 4, k=3)
    return m.build([6, 6, 3], m.transpose(x, "model/stray/Transpose", [0, 1, 3, 2]))


def pair_that_does_not_cancel():
    m = Tf2onnx()
    x = m.conv(m.transpose("input_1", "in/Transpose", TO_NCHW), "conv", 3, 4, k=3)
    x = m.transpose(m.transpose(x, "model/first/Transpose", TO_NHWC), "model/stray/Transpose", TO_NHWC)
    return m.build([6, 6, 3], m.node("Relu", [x], "model/act/Relu"))


def output_nhwc():
    m = Tf2onnx()
    x = m.conv(m.transpose("input_1", "in/Transpose", TO_NCHW), "conv", 3, 4, k=3)
    return m.build([6, 6, 3], m.transpose(x, "model/stray/Transpose", TO_NHWC))


@pytest.mark.parametrize("build", [lone_to_nhwc, odd_perm, pair_that_does_not_cancel, output_nhwc], ids=lambda f: f.__name__)
def test_a_transpose_that_cannot_fold_is_named_in_one_line(build):
    with pytest.raises(EdgekitError) as e:
        import_onnx(build().SerializeToString())
    assert "model/stray/Transpose" in str(e.value) and "\n" not in str(e.value)
