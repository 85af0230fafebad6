"""From a TinyTorch model object (and the same model as ONNX) to int8, on real runtimes."""
import numpy as np
import pytest

import edgekit
import tinytorch_api as tt
from edgekit import zoo
from edgekit.runtime import litert
from platforms import needs_tflm


@pytest.fixture(scope="module")
def digits():
    graph, data = zoo.digits_mlp()
    # the same trained weights in a student's TinyTorch model: Linear keeps W as (in, out)
    model = tt.Sequential(tt.Linear(64, 64), tt.ReLU(), tt.Linear(64, 10), tt.Softmax())
    for layer, name in ((model.layers[0], "fc1"), (model.layers[2], "fc2")):
        op = next(o for o in graph.ops if o.name == name)
        layer.weight = tt.Tensor(graph.tensors[op.inputs[1]].data.T.copy())
        layer.bias = tt.Tensor(graph.tensors[op.inputs[2]].data.copy())
    return model, data


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
def test_digits_mlp_keeps_accuracy_after_int8(digits):
    model, d = digits
    q = edgekit.convert(model, example_input=tt.Tensor(d["x_train"][:1]), calibration=d["x_train"][:200],
                        val=d["x_test"])
    float_pred = model.forward(tt.Tensor(d["x_test"])).data.argmax(1)
    int8_pred = q.predict(d["x_test"]).argmax(1)
    float_acc = (float_pred == d["y_test"]).mean()
    int8_acc = (int8_pred == d["y_test"]).mean()
    assert float_acc > 0.93
    assert abs(float_acc - int8_acc) <= 0.01, (float_acc, int8_acc)
    assert (float_pred == int8_pred).mean() >= 0.98
    info = q.to_dict()
    assert info["agreement"]["top1_agreement"] >= 0.98 and info["agreement"]["samples"] == len(d["x_test"])
    assert info["tflm"]["ran"] and info["tflm"]["max_lsb_vs_litert"] <= 1


def test_digits_via_onnx_gives_the_same_int8_model(digits, tmp_path):
    model, d = digits
    direct = edgekit.convert(model, example_input=tt.Tensor(d["x_train"][:1]), calibration=d["x_train"][:200])
    path = edgekit.export_onnx(model, tt.Tensor(d["x_train"][:1]), tmp_path / "digits.onnx")
    via_onnx = edgekit.convert(path, calibration=d["x_train"][:200])
    a = litert.run(direct.tflite, d["x_test"], raw=False)[0][0]
    b = litert.run(via_onnx.tflite, d["x_test"], raw=False)[0][0]
    np.testing.assert_array_equal(a, b)  # same weights, same ranges: the same int8 arithmetic


class TinyCNN:
    """A student's CNN: Conv2d, BatchNorm2d, ReLU, MaxPool2d and a flatten inside forward."""

    def __init__(self):
        np.random.seed(3)
        self.conv1 = tt.Conv2d(1, 8, 3, padding=1)
        self.bn1 = tt.BatchNorm2d(8)
        self.relu = tt.ReLU()
        self.pool = tt.MaxPool2d(2)
        self.conv2 = tt.Conv2d(8, 16, 3, padding=1)
        self.fc = tt.Linear(16 * 2 * 2, 10)
        rng = np.random.default_rng(4)
        self.bn1.running_mean = rng.normal(0, 0.2, 8)
        self.bn1.running_var = rng.uniform(0.5, 2, 8)
        self.bn1.gamma = tt.Tensor(rng.uniform(0.5, 1.5, 8))
        self.bn1.beta = tt.Tensor(rng.normal(0, 0.2, 8))
        self.bn1.eval()

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc(x.reshape(x.shape[0], -1))


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
def test_tinytorch_cnn_converts_and_runs_in_litert_and_tflm(tmp_path):
    model = TinyCNN()
    d = zoo.digits_mlp()[1]
    images = d["x_train"][:200].reshape(-1, 1, 8, 8)
    q = edgekit.convert(model, example_input=tt.Tensor(images[:1]), calibration=images)
    info = q.to_dict()
    assert [l["op"] for l in info["layers"]][:2] == ["conv2d", "max_pool2d"]  # BN folded, ReLU fused
    float_out = model.forward(tt.Tensor(images[:50])).data
    np.testing.assert_allclose(q.float_predict(images[:50]), float_out, rtol=1e-4, atol=1e-4)
    assert info["agreement"]["top1_agreement"] >= 0.95
    assert info["tflm"]["ran"] and info["tflm"]["arena_bytes"] > 0 and info["tflm"]["max_lsb_vs_litert"] <= 1
    # the ONNX path on the same model gives the same int8 outputs
    path = edgekit.export_onnx(model, tt.Tensor(images[:1]), tmp_path / "cnn.onnx")
    via_onnx = edgekit.convert(path, calibration=images)
    np.testing.assert_array_equal(via_onnx.predict(images[:50]), q.predict(images[:50]))


def test_readme_main_job_runs(tmp_path):
    """`python3 dev.py demo` runs examples/demo.py: train, convert, inspect, deploy to a simulated Nano."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    demo = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
    res = subprocess.run([sys.executable, str(demo), "--out", str(tmp_path), "--json"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert abs(out["float_accuracy"] - out["int8_accuracy"]) <= 0.01
    assert out["deploy"]["mode"] == "simulated" and out["deploy"]["fits"]
    assert (tmp_path / "layers.png").exists() and (tmp_path / "digits_int8.tflite").exists()


def test_deploy_a_tinytorch_model_from_python(digits):
    model, d = digits
    q = edgekit.convert(model, example_input=tt.Tensor(d["x_train"][:1]), calibration=d["x_train"][:100])
    r = edgekit.deploy(q, "esp32s3")
    assert r.mode == "simulated" and r.fits and r.outputs_check["max_lsb"] <= 1
    direct = edgekit.deploy(model, "esp32s3", example_input=tt.Tensor(d["x_train"][:1]),
                            calibration=d["x_train"][:100])
    assert direct.latency_ms == r.latency_ms
