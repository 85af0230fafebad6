"""A student's mistakes get their real cause: calibration sanity on a trained TinyTorch model, and
outputs other people can read (file modes follow the umask)."""
import contextlib
import io
import json
import os

import numpy as np
import pytest

import tinytorch_api as tt
import edgekit
from edgekit import zoo
from edgekit.cli import main
from edgekit.convert import _split
from edgekit.export.tflite_writer import write_tflite


@pytest.fixture(scope="module")
def digits():
    """A TinyTorch MLP with the weights of the digits MLP trained on [0, 1] inputs, and the data."""
    graph, data = zoo.digits_mlp()
    const = {name: t.data for name, t in graph.tensors.items() if t.is_const}
    model = tt.Sequential(tt.Linear(64, 64), tt.ReLU(), tt.Linear(64, 10), tt.Softmax())
    for layer, name in ((model.layers[0], "fc1"), (model.layers[2], "fc2")):
        layer.weight = tt.Tensor(const[f"{name}/weights"].T)  # TinyTorch's Linear is x @ W
        layer.bias = tt.Tensor(const[f"{name}/bias"])
    return model, graph, data


def _accuracy(q, data):
    return float((q.predict(data["x_test"]).argmax(1) == data["y_test"]).mean())


def test_agreement_is_measured_on_held_out_calibration_samples(digits):
    model, _, data = digits
    x = data["x_train"][:200].copy()
    held_index = np.flatnonzero(np.isin(np.arange(200), _split(np.arange(200)[:, None])[1][:, 0]))
    assert len(held_index) == 40
    x[held_index[0]] *= 3  # an outlier the ranges must not have seen: it was held out
    q = edgekit.convert(model, example_input=tt.Tensor(x[:1]), calibration=x)
    agree = q.info["agreement"]
    assert agree["on"] == "held-out calibration samples" and agree["samples"] == 40
    assert q.info["calibration"]["samples"] == 160 and q.info["calibration"]["held_out"] == 40
    i = q.info["input"]
    top = i["scale"] * (127 - i["zero_point"])  # the largest input the int8 model represents
    assert top < 1.01 * np.delete(x, held_index[0], 0).max() < x.max()  # the outlier set no range
    # the figures are those of the held-out samples themselves
    held = x[held_index]
    want = q.float_predict(held)
    got = q.predict(held)
    assert agree["top1_agreement"] == pytest.approx(float((want.argmax(1) == got.argmax(1)).mean()))
    assert agree["max_abs_error"] == pytest.approx(float(np.abs(want - got).max()), abs=1e-6)
    assert "on 40 held-out calibration samples" in " ".join(q.report().split())
    assert q.info["warnings"] == []
    assert _accuracy(q, data) > 0.9


def test_unnormalised_calibration_is_named(digits):
    """Trained on [0, 1], calibrated on 0-255: the held-out samples are scaled the same wrong way
    and agree, so the warning is what tells; agreement on data scaled as in training collapses."""
    model, _, data = digits
    q = edgekit.convert(model, example_input=tt.Tensor(data["x_train"][:1]), calibration=data["x_train"][:200] * 255,
                        val=data["x_test"])
    (warning,) = q.info["warnings"]
    assert "calibration inputs reach |x| = 255" in warning and "example input" in warning
    assert "scale the calibration inputs" in warning
    assert "warning: the calibration inputs" in q.report()
    assert q.info["agreement"]["on"] == "validation set"
    assert q.info["agreement"]["top1_agreement"] < 0.5
    assert _accuracy(q, data) < 0.5
    # without a validation set the warning is still there (held-out agreement cannot see it)
    q = edgekit.convert(model, example_input=tt.Tensor(data["x_train"][:1]), calibration=data["x_train"][:200] * 255)
    assert len(q.info["warnings"]) == 1 and "255" in q.info["warnings"][0]
    # an example input that is all zeros says nothing about scale
    q = edgekit.convert(model, example_input=tt.Tensor(np.zeros((1, 64))), calibration=data["x_train"][:200],
                        verify=False)
    assert q.info["warnings"] == []


def test_too_few_calibration_samples_are_named(digits):
    model, _, data = digits
    x = data["x_train"]
    q = edgekit.convert(model, example_input=tt.Tensor(x[:1]), calibration=x[:1])
    assert q.info["warnings"] == ["calibrated on 1 sample: give 100-500 representative inputs, scaled as in training"]
    assert q.info["agreement"]["on"] == "calibration set" and q.info["agreement"]["samples"] == 1
    assert q.info["calibration"]["held_out"] == 0
    assert "on 1 sample of the calibration set (too few to hold any out" in " ".join(q.report().split())
    q = edgekit.convert(model, example_input=tt.Tensor(x[:1]), calibration=x[:30])
    (warning,) = q.info["warnings"]
    assert warning.startswith("calibrated on 24 samples (6 more held out to measure agreement): give 100-500")
    q = edgekit.convert(model, example_input=tt.Tensor(x[:1]), calibration=x[:50])
    assert q.info["warnings"] == []


def test_cli_prints_warnings_on_stderr_and_in_json(digits, tmp_path, capfd):
    """An ONNX or TFLite file has no example input: the validation set is what the range is
    compared with."""
    _, graph, data = digits
    model = tmp_path / "digits.tflite"
    model.write_bytes(write_tflite(graph))
    np.save(tmp_path / "calib.npy", data["x_train"][:200] * 255)
    np.save(tmp_path / "val.npy", data["x_test"])
    argv = ["convert", str(model), "--calib", str(tmp_path / "calib.npy"), "--val", str(tmp_path / "val.npy")]
    assert main(argv + ["--json"]) == 0
    out, err = capfd.readouterr()
    (warning,) = json.loads(out)["warnings"]
    assert "the validation set |x| = 1" in warning
    assert "warning: the calibration inputs reach" in err and err.count("warning:") == 1
    assert main(argv) == 0
    out, err = capfd.readouterr()
    assert "warning:" in err and "warning:" not in out  # once, on stderr
    assert main(argv[:4]) == 0  # no validation set: nothing to compare the range with
    assert "warning" not in capfd.readouterr().err
    np.save(tmp_path / "few.npy", data["x_train"][:30])
    assert main(["deploy", str(model), "--calib", str(tmp_path / "few.npy"), "--target", "rpi4", "--sim"]) == 0
    err = capfd.readouterr().err
    assert err.count("warning:") == 1 and "calibrated on 24 samples (6 more held out" in " ".join(err.split())


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_saved_models_follow_the_umask(digits, tmp_path, umask, mode):
    model, _, data = digits
    q = edgekit.convert(model, example_input=tt.Tensor(data["x_train"][:1]), calibration=data["x_train"][:60],
                        verify=False)
    old = os.umask(umask)
    try:
        path = q.save(tmp_path / "sub" / "digits_int8.tflite")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["convert", str(_float_file(tmp_path, digits)), "--calib", str(_calib(tmp_path, data)),
                         "--no-verify", "-o", str(tmp_path / "cli_int8.tflite")]) == 0
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == mode
    assert os.stat(tmp_path / "cli_int8.tflite").st_mode & 0o777 == mode
    assert path.read_bytes() == q.tflite
    assert [p.name for p in path.parent.iterdir()] == ["digits_int8.tflite"]  # no temporary file left


def _float_file(tmp_path, digits):
    path = tmp_path / "digits.tflite"
    path.write_bytes(write_tflite(digits[1]))
    return path


def _calib(tmp_path, data):
    path = tmp_path / "calib.npy"
    np.save(path, data["x_train"][:60])
    return path
