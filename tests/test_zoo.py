"""The zoo's reference models: published sizes, runnable graphs, live activations, determinism."""
import numpy as np
import pytest

from edgekit import zoo
from edgekit.reference import run

WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


def macs_and_params(graph):
    """MACs (batch 1) and parameters (weights + biases) of the conv, depthwise and dense layers,
    counted the way the published numbers are: from the weight and output tensor shapes."""
    macs = params = 0
    for op in graph.ops:
        if op.kind not in WEIGHTED:
            continue
        w = graph.tensors[op.inputs[1]].shape
        out = graph.tensors[op.outputs[0]].shape
        params += int(np.prod(w)) + int(np.prod(graph.tensors[op.inputs[2]].shape))
        if op.kind == "conv2d":  # every output pixel: O * kh * kw * I
            macs += int(np.prod(out[1:3])) * int(np.prod(w))
        elif op.kind == "depthwise_conv2d":  # every output value: kh * kw
            macs += int(np.prod(out[1:])) * w[1] * w[2]
        else:
            macs += int(np.prod(w))
    return macs, params


@pytest.fixture(scope="module")
def person_detect():
    return zoo.mobilenet_v1(alpha=0.25, size=96, channels=1, classes=2)


@pytest.fixture(scope="module")
def kws():
    return zoo.ds_cnn_kws()


@pytest.fixture(scope="module")
def digits():
    return zoo.digits_mlp()


# Published: TFLM person_detect.tflite 7.16 M MACs, 210.7 K params; MLPerf Tiny kws_ref_model.tflite
# 2.66 M MACs, 22.6 K params (the MLPerf Tiny reference kws_ref_model.tflite, github.com/mlcommons/tiny).
@pytest.mark.parametrize("model, macs, params", [("person_detect", 7.16e6, 210.7e3), ("kws", 2.66e6, 22.6e3)])
def test_sizes_match_published(model, macs, params, request):
    got_macs, got_params = macs_and_params(request.getfixturevalue(model))
    assert got_macs == pytest.approx(macs, rel=0.03)
    assert got_params == pytest.approx(params, rel=0.03)


def test_mobilenet_layers(person_detect):
    g = person_detect
    kinds = [op.kind for op in g.ops]
    assert kinds.count("depthwise_conv2d") == 13 and kinds.count("conv2d") == 1 + 13 + 1
    assert kinds[-3:] == ["conv2d", "reshape", "softmax"] and "mean" in kinds
    assert g.tensors[g.inputs[0]].shape == (1, 96, 96, 1)
    assert g.tensors[g.outputs[0]].shape == (1, 2)
    widths = [g.tensors[op.outputs[0]].shape[-1] for op in g.ops if op.kind == "conv2d"]
    assert widths[0] == 8 and widths[-2] == 256  # 32 and 1024 scaled by alpha 0.25
    assert g.tensors[[op for op in g.ops if op.kind == "mean"][0].inputs[0]].shape == (1, 3, 3, 256)


def test_mobilenet_scales_with_alpha_and_size():
    # MobileNet v1 1.0 at 224: the well-known 569 M MACs and 4.2 M params (1001 classes).
    macs, params = macs_and_params(zoo.mobilenet_v1(alpha=1.0, size=224, channels=3, classes=1001))
    assert macs == pytest.approx(569e6, rel=0.03) and params == pytest.approx(4.24e6, rel=0.03)


def test_mobilenet_v2_is_the_published_architecture():
    # MobileNetV2 1.0 at 224 (Sandler et al. 2018, table 3): 300 M MACs, 3.4 M params; 17 blocks,
    # 10 of them with a residual add
    g = zoo.mobilenet_v2()
    macs, params = macs_and_params(g)
    assert macs == pytest.approx(300e6, rel=0.03) and params == pytest.approx(3.47e6, rel=0.03)
    kinds = [op.kind for op in g.ops]
    assert kinds.count("depthwise_conv2d") == 17 and kinds.count("add") == 10
    assert g.tensors[g.outputs[0]].shape == (1, 1000)


def test_kws_layers(kws):
    assert kws.tensors[kws.inputs[0]].shape == (1, 49, 10, 1)
    assert kws.tensors[kws.ops[0].outputs[0]].shape == (1, 25, 5, 64)
    assert kws.tensors[kws.ops[0].inputs[1]].shape == (64, 10, 4, 1)
    assert [op.kind for op in kws.ops].count("depthwise_conv2d") == 4
    assert kws.tensors[kws.outputs[0]].shape == (1, 12)


@pytest.mark.parametrize("model", ["person_detect", "kws"])
def test_runs_to_a_softmax(model, request):
    g = request.getfixturevalue(model)
    x = zoo.calibration_batch(g, 4)
    assert x.dtype == np.float32 and x.shape == (4,) + g.tensors[g.inputs[0]].shape[1:]
    y = run(g, {g.inputs[0]: x})[g.outputs[0]]
    assert y.shape == (4, g.tensors[g.outputs[0]].shape[-1])
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1, atol=1e-5)


def test_default_mobilenet_runs():
    g = zoo.mobilenet_v1()  # 96x96x3, 2 classes
    y = run(g, {g.inputs[0]: zoo.calibration_batch(g, 4, seed=1)})[g.outputs[0]]
    assert y.shape == (4, 2) and np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("model", ["person_detect", "kws"])
def test_activations_are_realistic(model, request):
    """No dead or always-saturated layers, channels alive, and outputs that depend on the input."""
    g = request.getfixturevalue(model)
    values = run(g, {g.inputs[0]: zoo.calibration_batch(g, 32, seed=7)}, keep=True)
    for op in g.ops:
        act = op.attrs.get("activation")
        if op.kind not in WEIGHTED or act is None:
            continue
        v = values[op.outputs[0]]
        assert 0.3 < (v > 0).mean() < 0.9, op.name
        alive = (v > 0).reshape(-1, v.shape[-1]).any(axis=0).mean()
        assert alive > 0.9, f"{op.name}: only {alive:.0%} of channels ever fire"
        if act == "relu6":
            assert (v >= 6).mean() < 0.1, op.name
        else:
            assert 2 < v.max() < 100, op.name
        b = g.tensors[op.inputs[2]].data
        assert np.all(b != 0)  # folded BatchNorm leaves non-zero biases
    out = values[g.outputs[0]]
    assert out.std(axis=0).max() > 0.05  # the prediction changes with the input
    assert out.max() < 1 - 1e-6 or out.min() > 0  # not every row a hard one-hot


def test_weights_have_per_channel_spread(person_detect):
    """Folded BatchNorm makes output channels' weight ranges differ, as in trained models."""
    for op in person_detect.ops:
        if op.kind == "depthwise_conv2d":
            w = person_detect.tensors[op.inputs[1]].data
            per_channel = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0)
            assert per_channel.max() / per_channel.min() > 2, op.name


def _weights(g):
    return {n: t.data for n, t in g.tensors.items() if t.is_const}


@pytest.mark.parametrize("build", [lambda s: zoo.mobilenet_v1(seed=s), lambda s: zoo.ds_cnn_kws(seed=s),
                                   lambda s: zoo.digits_mlp(seed=s, epochs=2)[0]])
def test_deterministic(build):
    a, b, c = _weights(build(3)), _weights(build(3)), _weights(build(4))
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert any(not np.array_equal(a[n], c[n]) for n in a)


def test_calibration_batch(person_detect, kws):
    a = zoo.calibration_batch(person_detect, 8, seed=2)
    np.testing.assert_array_equal(a, zoo.calibration_batch(person_detect, 8, seed=2))
    assert not np.array_equal(a, zoo.calibration_batch(person_detect, 8, seed=3))
    assert a.shape == (8, 96, 96, 1) and a.min() >= -1 and a.max() <= 1 and a.std() > 0.1
    m = zoo.calibration_batch(kws, 8)
    assert m.shape == (8, 49, 10, 1) and m.min() >= -120 and m.max() <= 25
    assert m[..., 0, 0].mean() < m[..., 1:, 0].mean()  # log energy: large and negative
    u = zoo.calibration_batch(person_detect, 2, kind="uniform")
    assert u.min() >= 0 and u.max() <= 1


def test_digits_mlp(digits):
    g, data = digits
    assert data["accuracy"] >= 0.93 and data["float_accuracy"] == data["accuracy"]
    for k in ("x_train", "x_test"):
        assert data[k].dtype == np.float32 and data[k].shape[1] == 64
        assert data[k].min() >= 0 and data[k].max() <= 1
    assert len(data["x_train"]) == len(data["y_train"]) and len(data["x_test"]) == len(data["y_test"])
    assert len(data["x_test"]) == pytest.approx(0.3 * 1797, abs=10)
    assert set(np.unique(data["y_test"])) == set(range(10))  # stratified: every class tested
    y = run(g, {g.inputs[0]: data["x_test"]})[g.outputs[0]]
    np.testing.assert_allclose(y.sum(axis=1), 1, atol=1e-5)
    assert float((y.argmax(axis=1) == data["y_test"]).mean()) == pytest.approx(data["accuracy"])
    assert [op.kind for op in g.ops] == ["fully_connected", "fully_connected", "softmax"]


def test_digits_split_is_fixed(digits):
    _, a = digits
    _, b = zoo.digits_mlp(seed=5, epochs=1)
    np.testing.assert_array_equal(a["x_test"], b["x_test"])
    np.testing.assert_array_equal(a["y_train"], b["y_train"])
