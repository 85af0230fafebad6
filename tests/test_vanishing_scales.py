"""Networks whose activations vanish (~1e-12) still give an int8 file that LiteRT and TFLite Micro load.

Without a floor on tiny ranges, a fused ReLU6 bound (6.0) no longer fits an int32 in the output's scale
and LiteRT refuses the model; vanishing logits make TFLite Micro's int8 softmax abort in Prepare."""
import numpy as np
import pytest

import edgekit
from edgekit.quantize.scheme import activation_params
from edgekit.runtime import litert
from edgekit.runtime.tflm import run_tflm
from ir_models import Builder
from platforms import needs_tflm


def vanishing(tail: str):
    """conv (relu6), depthwise (relu6), dense (relu6), dense [, softmax]: each layer's weights and bias
    are shrunk by 1e-3, so the activations fall to ~1e-12 by the last layer."""
    b = Builder((1, 8, 8, 2), seed=3, name=f"vanishing_{tail}")
    b.conv("conv1", 4, act="relu6")
    b.dwconv("dw1", act="relu6")
    b.op("reshape", "flatten", shape=(1, 256))
    b.dense("fc1", 8, 256, act="relu6")
    b.dense("fc2", 4, 8)
    if tail == "softmax":
        b.op("softmax", "softmax")
    shrink = 1.0
    for op in b.g.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            shrink *= 1e-3
            w, bias = (b.g.tensors[t] for t in op.inputs[1:])
            w.data = (w.data * 1e-3).astype(np.float32)
            bias.data = (bias.data * shrink).astype(np.float32)
    return b.done()


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
@pytest.mark.parametrize("tail", ["logits", "softmax"])
def test_vanishing_activations_convert_load_and_agree(tail):
    g = vanishing(tail)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 2)).astype(np.float32)
    ref = edgekit.reference.run(g, {g.inputs[0]: x})
    if tail == "logits":
        assert 1e-14 < np.abs(ref[g.outputs[0]]).max() < 1e-10  # the bug's setting: ~1e-12 outputs

    q = edgekit.convert(g, calibration=x)  # verified in LiteRT and TFLite Micro before it returns
    it = litert.load(q.tflite)
    out = it.get_output_details()[0]
    scale = out["quantization"][0]
    got = litert.run(q.tflite, x)[0][0]
    # as close to the float model as the int8 grid allows (softmax: 1/256 steps, as in test_convert)
    assert np.abs(got - ref[g.outputs[0]]).max() <= scale
    assert q.to_dict()["tflm"]["ran"]


@needs_tflm
@pytest.mark.parametrize("tail", ["logits", "softmax"])
def test_vanishing_model_runs_in_tflite_micro_like_litert(tail):
    g = vanishing(tail)
    x = np.random.default_rng(1).uniform(-1, 1, (16, 8, 8, 2)).astype(np.float32)
    q = edgekit.convert(g, calibration=x)
    inp = litert.load(q.tflite).get_input_details()[0]
    xq = litert.quantize_input(x, inp)
    micro = run_tflm(q.tflite, [xq]).outputs[0].astype(np.int32)
    lite = litert.run(q.tflite, xq, raw=True)[0][0].astype(np.int32)
    assert np.abs(micro - lite).max() <= 1


def test_floor_only_touches_vanishing_ranges():
    tiny = activation_params(-1e-12, 3e-12)
    assert tiny.scale[0] > 6 / 2**31  # a fused ReLU6's 6.0 fits an int32 in this scale
    assert -128 <= tiny.zero_point[0] <= 127
    for lo, hi in [(-1e-3, 2e-3), (0.0, 6.0), (-0.37, 0.0), (0.0, 2e-6)]:
        p = activation_params(lo, hi)
        assert p.scale[0] == np.float32((np.float32(hi) - np.float32(lo)) / np.float32(255)), (lo, hi)
