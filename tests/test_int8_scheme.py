"""The int8 scheme on its own: hand-computed scales and zero points, and int8 models against float.

The rules are TFLite's int8 quantization spec (tensorflow.org/lite/performance/quantization_spec,
which LiteRT and TFLite Micro implement):
- real = scale * (q - zero_point);
- activations: asymmetric int8, q in [-128, 127], the range widened to include 0 so that 0 is exact:
  scale = (max - min) / 255, zero_point = round(-128 - min / scale);
- weights: symmetric int8 in [-127, 127], zero point 0, one scale per output channel
  (dimension 0 of conv and dense weights, 3 of depthwise weights): scale = max |w| / 127;
- bias: int32, zero point 0, scale = input scale x weight scale (per channel).
Every expected number below is worked out by hand from these rules, not taken from edgekit, and
nothing here uses an external quantizer (tests/test_oracle.py compares with ai-edge-quantizer).
"""
import numpy as np
import pytest

import edgekit
import ir_models
from edgekit import reference
from edgekit.export.tflite_writer import write_tflite
from edgekit.graph import Graph
from edgekit.quantize.calibrate import calibrate
from edgekit.quantize.scheme import activation_params, bias_params, quantize_graph, weight_params
from edgekit.tflite_file import builtin_name, read_model, tensor_array, text


# -- activations ---------------------------------------------------------------------------------
# (calibrated min, max) -> (scale, zero point), worked out by hand:
ACTIVATIONS = [
    # span 4: scale 4/255; -128 - (-1) / (4/255) = -128 + 63.75 = -64.25 -> -64
    ((-1.0, 3.0), 4 / 255, -64),
    # a ReLU6 output: 0 is the minimum, so it is q = -128
    ((0.0, 6.0), 6 / 255, -128),
    # all negative: widened to [-2, 0]; -128 + 2 / (2/255) = -128 + 255 = 127
    ((-2.0, -0.5), 2 / 255, 127),
    # all positive: widened to [0, 2]
    ((0.5, 2.0), 2 / 255, -128),
    # -128 + 0.3 / (1.3/255) = -128 + 58.846 = -69.15 -> -69
    ((-0.3, 1.0), 1.3 / 255, -69),
]


@pytest.mark.parametrize("rng_, scale, zp", ACTIVATIONS, ids=lambda v: str(v))
def test_activation_scale_and_zero_point_by_hand(rng_, scale, zp):
    p = activation_params(*rng_)
    assert p.dtype == "int8" and p.scale.shape == (1,) and p.zero_point.shape == (1,)
    assert float(p.scale[0]) == pytest.approx(scale, rel=1e-6)
    assert int(p.zero_point[0]) == zp


@pytest.mark.parametrize("rng_, scale, zp", ACTIVATIONS, ids=lambda v: str(v))
def test_activation_range_ends_are_int8_ends(rng_, scale, zp):
    """q = -128 and q = 127 are the range's ends, each within half a step (the zero point is an integer)."""
    p = activation_params(*rng_)
    lo, hi = min(rng_[0], 0.0), max(rng_[1], 0.0)
    s, z = float(p.scale[0]), int(p.zero_point[0])
    assert -128 <= z <= 127  # 0 is an int8 value, q = zero_point, exactly
    assert abs(s * (-128 - z) - lo) <= s / 2 + 1e-7
    assert abs(s * (127 - z) - hi) <= s / 2 + 1e-7


# -- weights and biases --------------------------------------------------------------------------
def test_weight_scales_and_values_by_hand():
    w = np.array([[0.496, -1.27, 0.0149],   # channel 0: max |w| 1.27 -> scale 0.01
                  [2.54, 0.0, -0.993]],    # channel 1: max |w| 2.54 -> scale 0.02
                 np.float32)
    p = weight_params(w, 0)
    np.testing.assert_allclose(p.scale, [0.01, 0.02], rtol=1e-6)
    assert p.zero_point.tolist() == [0, 0] and p.axis == 0
    # 49.6 -> 50, -127, 1.49 -> 1;  127, 0, -49.65 -> -50
    assert p.values.tolist() == [[50, -127, 1], [127, 0, -50]]


def test_weights_of_a_depthwise_layer_have_one_scale_per_channel_on_axis_3():
    w = np.zeros((1, 2, 2, 3), np.float32)  # [1, kh, kw, C]
    w[0, ..., 0] = [[1.27, 0.5], [-0.2, 0.1]]          # max 1.27: scale 0.01
    w[0, ..., 1] = [[0.00254, -0.001], [0.0005, 0.0]]  # max 0.00254: scale 0.00002
    w[0, ..., 2] = [[-0.635, 0.0], [0.0, 0.3]]         # max 0.635: scale 0.005
    p = weight_params(w, 3)
    np.testing.assert_allclose(p.scale, [0.01, 0.00002, 0.005], rtol=1e-5)
    assert p.values[0, ..., 0].tolist() == [[127, 50], [-20, 10]]
    assert p.values[0, ..., 1].tolist() == [[127, -50], [25, 0]]  # a tiny channel keeps its full range
    assert p.values[0, ..., 2].tolist() == [[-127, 0], [0, 60]]


def test_bias_scale_is_input_scale_times_weight_scale_by_hand():
    b = np.array([0.00117, -0.00037], np.float32)
    p = bias_params(b, np.array([0.02], np.float32), np.array([0.01, 0.005], np.float32))
    np.testing.assert_allclose(p.scale, [0.0002, 0.0001], rtol=1e-6)
    assert p.dtype == "int32" and p.zero_point.tolist() == [0, 0]
    assert p.values.tolist() == [6, -4]  # 5.85 -> 6, -3.7 -> -4: to the nearest


def _file_tensors(data: bytes):
    """{name: (TensorT, values)} of a .tflite and its weighted ops as (op name, [x, w, b] names)."""
    m = read_model(data)
    sub = m.subgraphs[0]
    tensors = {text(t.name): t for t in sub.tensors}
    ops = [(builtin_name(m, op.opcodeIndex), [text(sub.tensors[i].name) for i in op.inputs])
           for op in sub.operators]
    return m, tensors, ops


def test_converted_file_holds_the_weights_and_biases_within_half_a_step():
    """Every conv, depthwise and dense layer of a converted model: one scale per output channel on the
    right axis, each channel's largest weight at +-127, every weight and bias within half a step."""
    g = ir_models.ds_block()
    q = quantize_graph(g, calibrate(g, ir_models.calibration(g, 16)))
    data = write_tflite(g, q)
    m, tensors, ops = _file_tensors(data)
    axis_of = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3}
    seen = set()
    for kind, (x, w, b) in ((k, names) for k, names in ops if k in axis_of):
        seen.add(kind)
        wt, bt, xt = tensors[w], tensors[b], tensors[x]
        axis, wq = axis_of[kind], tensor_array(m, wt).astype(np.float64)
        w_float, b_float = g.tensors[w].data, g.tensors[b].data
        scale = np.asarray(wt.quantization.scale, np.float64)
        assert wt.quantization.quantizedDimension == axis and scale.size == w_float.shape[axis], (kind, w)
        shape = [1] * wq.ndim
        shape[axis] = -1
        other = tuple(d for d in range(wq.ndim) if d != axis)
        np.testing.assert_allclose(scale, np.abs(w_float).max(axis=other) / 127, rtol=1e-6)
        assert (np.abs(wq).max(axis=other) == 127).all()
        assert (np.abs(wq * scale.reshape(shape) - w_float) <= scale.reshape(shape) / 2 * (1 + 1e-5)).all(), w
        assert list(wt.quantization.zeroPoint) == [0] * scale.size
        # the bias: int32, input scale x weight scale, zero point 0
        in_scale = float(xt.quantization.scale[0])
        b_scale = np.asarray(bt.quantization.scale, np.float64)
        np.testing.assert_allclose(b_scale, in_scale * scale, rtol=1e-6)
        bq = tensor_array(m, bt).astype(np.float64)
        assert tensor_array(m, bt).dtype == np.int32 and list(bt.quantization.zeroPoint) == [0] * b_scale.size
        assert (np.abs(bq * b_scale - b_float) <= b_scale / 2 * (1 + 1e-5)).all(), b
    assert seen == set(axis_of)


# -- int8 models against the float reference (LiteRT) ----------------------------------------------
def _identity_dense(n=64):
    """y = x through a real int8 kernel: a fully-connected layer with identity weights and no bias."""
    g = Graph(name="identity")
    x = g.add_input("input", (1, n))
    w, b = g.add_const("fc/weights", np.eye(n)), g.add_const("fc/bias", np.zeros(n))
    g.outputs = [g.add_op("fully_connected", [x, w, b], "fc", activation=None)]
    return g.finalize()


def test_every_value_of_the_calibrated_range_comes_back_within_half_a_step():
    """Calibrated on [-1, 3], the int8 model gives back every value of that range, both ends included,
    within half an output step (4/255 / 2): a range that is one step short at either end fails."""
    g = _identity_dense()
    rng = np.random.default_rng(0)
    ends = np.linspace(-1.0, 3.0, 64, dtype=np.float32)  # each sample holds the whole range
    calib = np.stack([rng.permutation(ends) for _ in range(12)])
    q = edgekit.convert(g, calibration=calib, verify=False)
    sweep = np.linspace(-1.0, 3.0, 64 * 40, dtype=np.float32).reshape(40, 64)
    got = q.predict(sweep)
    step = 4 / 255
    err = np.abs(got - sweep)
    worst = np.unravel_index(err.argmax(), err.shape)
    assert err.max() <= step / 2 + 1e-6, f"x = {sweep[worst]:.5f} came back as {got[worst]:.5f}: " \
                                         f"{err.max() / step:.2f} steps off"
    # both ends are represented: the largest and smallest values come back, not one step inside
    assert abs(got.max() - 3.0) <= step / 2 and abs(got.min() + 1.0) <= step / 2


def _head(seed=7):
    """A conv, a flatten and a dense layer whose output is a plain (re-quantized) activation."""
    b = ir_models.Builder((1, 8, 8, 2), seed, "head")
    b.conv("conv1", 6)
    b.op("reshape", "flatten", shape=(1, 8 * 8 * 6))
    b.dense("fc", 5, 8 * 8 * 6)
    return b.done()


def test_int8_outputs_match_the_float_model_within_a_fraction_of_a_step():
    """LiteRT's int8 run against edgekit's float reference on the calibration inputs: on average well
    under one output step, and no drift to one side; the same check fails for a one-step shift."""
    g = _head()
    x = ir_models.calibration(g, 64)
    q = quantize_graph(g, calibrate(g, x))
    y = edgekit.runtime.litert.run(write_tflite(g, q), x)[0][0]
    ref = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    step = float(q[g.outputs[0]].scale[0])

    def agrees(out):
        err = (out - ref) / step
        return np.abs(err).mean() < 0.5 and abs(err.mean()) < 0.25 and np.abs(err).max() < 2.5

    assert agrees(y), f"mean |error| {np.abs(y - ref).mean() / step:.2f} steps, bias {(y - ref).mean() / step:.2f}"
    assert not agrees(y + step) and not agrees(y - step)  # the check is tight enough to see one step
