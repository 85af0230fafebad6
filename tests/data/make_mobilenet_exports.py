"""Writes the two real exports tests/test_real_exports.py converts (run with TensorFlow installed,
`pip install -e .[peers] tf2onnx`; written with TensorFlow 2.21, Keras 3.15, tf2onnx 1.17):

- mobilenet_v1_0.25_96_keras_batch_none.tflite: Keras' MobileNet(alpha=0.25) at 96x96x3, batch None,
  through tf.lite.TFLiteConverter: its head reshape is the SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE
  Keras 3 writes for a dynamic batch;
- mobilenet_v1_0.25_96_tf2onnx.onnx: the same model as a SavedModel through tf2onnx (opset 13):
  channels-last input, an NHWC -> NCHW Transpose in front.

Keras' random initialisation gives a net whose output barely moves, so the Keras layers carry the
weights of edgekit.zoo.mobilenet_v1(0.25, 96, 3, classes=2) (BatchNorm as identity plus the folded
bias): the float model is then the zoo's to ~1e-7.

    python tests/data/make_mobilenet_exports.py
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edgekit import reference, zoo

HERE = Path(__file__).resolve().parent


def keras_mobilenet():
    g = zoo.mobilenet_v1(0.25, 96, 3, classes=2)
    weights = {op.name: (g.tensors[op.inputs[1]].data, g.tensors[op.inputs[2]].data)
               for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d")}
    m = keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, classes=2)

    def put(layer, zoo_name, norm=None):
        w, b = weights[zoo_name]
        if norm is None:  # the classifier: a 1x1 conv with a bias
            m.get_layer(layer).set_weights([w.transpose(1, 2, 3, 0), b])
            return
        m.get_layer(layer).set_weights([w.transpose(1, 2, 3, 0)])  # edgekit [O, kh, kw, I] -> Keras [kh, kw, I, O]
        bn, c = m.get_layer(norm), b.shape[0]
        bn.set_weights([np.ones(c, np.float32), b, np.zeros(c, np.float32), np.full(c, 1 - bn.epsilon, np.float32)])

    put("conv1", "conv1", "conv1_bn")
    for i in range(1, 14):
        put(f"conv_dw_{i}", f"block{i}/depthwise", f"conv_dw_{i}_bn")
        put(f"conv_pw_{i}", f"block{i}/pointwise", f"conv_pw_{i}_bn")
    put("conv_preds", "logits")
    x = zoo.calibration_batch(g, 16)
    gap = np.abs(m(x).numpy() - reference.run(g, {g.inputs[0]: x})[g.outputs[0]]).max()
    assert gap < 1e-5, f"the Keras model is not the zoo's (max difference {gap})"
    return m


def main():
    m = keras_mobilenet()
    (HERE / "mobilenet_v1_0.25_96_keras_batch_none.tflite").write_bytes(
        tf.lite.TFLiteConverter.from_keras_model(m).convert())
    with tempfile.TemporaryDirectory() as tmp:
        m.export(tmp, verbose=False)
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", tmp, "--opset", "13",
                        "--output", str(HERE / "mobilenet_v1_0.25_96_tf2onnx.onnx")], check=True)


if __name__ == "__main__":
    main()
