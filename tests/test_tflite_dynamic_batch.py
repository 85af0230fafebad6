"""Float .tflite files as Keras 3 writes them for batch None: the flatten's new shape is computed at
run time (SHAPE -> STRIDED_SLICE -> PACK, or GATHER/CONCATENATION); edgekit folds it to a static
reshape and the int8 model must agree with the float one run in LiteRT."""
import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.importers.tflite_import import import_tflite
from edgekit.runtime import litert
from tflite_builders import keras_dynamic_batch
from platforms import needs_tflm


def calibration(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 6, 6, 3)).astype(np.float32)


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
@pytest.mark.parametrize("layer,new_shape", [("conv", "pack"), ("depthwise", "pack"), ("conv", "concat")])
def test_dynamic_batch_flatten_converts_and_agrees_with_float(tmp_path, layer, new_shape):
    data = keras_dynamic_batch(layer=layer, new_shape=new_shape)
    path = tmp_path / "keras_batch_none.tflite"
    path.write_bytes(data)
    g = import_tflite(data)
    reshapes = [op for op in g.ops if op.kind == "reshape"]
    assert [op.attrs["shape"] for op in reshapes] == [(1, 6 * 6 * (4 if layer == "conv" else 6))]
    assert all(op.kind not in ("shape", "strided_slice", "pack", "gather") for op in g.ops)

    q = edgekit.convert(path, calibration=calibration(100))
    info = q.to_dict()
    assert info["source"] == "tflite-float"
    assert info["agreement"]["top1_agreement"] >= 0.9
    assert info["agreement"]["max_abs_error"] < 0.05
    assert info["tflm"]["ran"] and info["tflm"]["max_lsb_vs_litert"] <= 1
    # independently of edgekit's own report: the int8 file against the float file, both in LiteRT
    x = calibration(50, seed=7)
    want = litert.run(data, x)[0][0]
    got = litert.run(q.tflite, x)[0][0]
    assert np.abs(got - want).max() < 0.05
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9


def test_shape_feeding_computation_is_refused_in_one_line():
    data = keras_dynamic_batch(shape_feeds_math=True)
    litert.run(data, calibration(1))  # a valid model: LiteRT runs it
    with pytest.raises(EdgekitError) as e:
        import_tflite(data)
    msg = str(e.value)
    assert "\n" not in msg and "unsupported op SHAPE in layer 'flatten/Shape'" in msg
