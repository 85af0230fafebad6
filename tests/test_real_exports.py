"""MobileNetV1-0.25 as people export it: Keras with a dynamic batch through TF's converter, and
tf2onnx's channels-last ONNX (fixtures written by tests/data/make_mobilenet_exports.py). Both
convert, and the int8 model agrees with the float file run by another runtime on inputs it was
not calibrated on."""
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgekit
from edgekit import zoo
from edgekit.runtime import litert
from edgekit.tflite_file import builtin_name, read_model
from platforms import needs_tflm

DATA = Path(__file__).parent / "data"
KERAS = DATA / "mobilenet_v1_0.25_96_keras_batch_none.tflite"
TF2ONNX = DATA / "mobilenet_v1_0.25_96_tf2onnx.onnx"


def _images(n, seed):
    return zoo.calibration_batch(zoo.mobilenet_v1(0.25, 96, 3), n, seed=seed)


def test_the_fixtures_are_what_the_exporters_write():
    m = read_model(KERAS.read_bytes(), KERAS.name)
    sub = m.subgraphs[0]
    assert list(sub.tensors[sub.inputs[0]].shapeSignature) == [-1, 96, 96, 3]
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= {builtin_name(m, op.opcodeIndex) for op in sub.operators}
    o = onnx.load(TF2ONNX)
    assert o.graph.node[0].op_type == "Transpose" and o.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    assert [d.dim_value for d in o.graph.input[0].type.tensor_type.shape.dim[1:]] == [96, 96, 3]


def _float_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    if path.suffix == ".tflite":
        return litert.run(path.read_bytes(), x)[0][0]
    import onnxruntime as ort  # the test extra has it: its absence is a failure, not a skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
@pytest.mark.parametrize("path", [KERAS, TF2ONNX], ids=["keras-batch-none", "tf2onnx-nhwc"])
def test_real_export_converts_and_agrees_with_its_float_model(path):
    q = edgekit.convert(path, calibration=_images(100, seed=0))
    info = q.to_dict()
    assert info["source"] == ("tflite-float" if path.suffix == ".tflite" else "onnx")
    assert info["tflm"]["ran"] and info["tflm"]["max_lsb_vs_litert"] <= 1
    x = _images(64, seed=7)  # channels-last, as both exports take it
    want, got = _float_outputs(path, x), q.predict(x)
    assert np.abs(got - want).max() < 0.15
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.95
