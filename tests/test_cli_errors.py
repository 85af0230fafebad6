"""Bad input: each a clear one-line error, a non-zero exit, no traceback and no output file."""
import os
import pickle
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ir_models
from edgekit.export.tflite_writer import write_tflite


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def assert_clean_failure(res, tmp_path, *words):
    assert res.returncode != 0
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr + res.stdout
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:"), err
    for w in words:
        assert w.lower() in err.lower(), err
    assert not list(tmp_path.glob("*_int8.tflite")) and not list(tmp_path.glob("out*")), "a file was written"


@pytest.fixture
def float_model(tmp_path):
    g = ir_models.cnn()
    path = tmp_path / "cnn.tflite"
    path.write_bytes(write_tflite(g))
    np.save(tmp_path / "calib.npy", ir_models.calibration(g, 16))
    return path


def test_truncated_file(tmp_path, float_model):
    data = float_model.read_bytes()
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(data[: len(data) // 2])
    res = run_cli("convert", bad, "--calib", tmp_path / "calib.npy", "-o", tmp_path / "out.tflite", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "truncated.tflite")


def test_not_a_model(tmp_path):
    bad = tmp_path / "notes.tflite"
    bad.write_text("these are my lecture notes, not a model\n" * 20)
    res = run_cli("convert", bad, "--calib", tmp_path / "x.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "notes.tflite")


def test_pickle_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    res = run_cli("convert", bad, "--calib", tmp_path / "x.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "pickle")


def test_nan_weights(tmp_path):
    g = ir_models.cnn()
    w = next(t for t in g.tensors.values() if t.is_const and t.data.ndim == 4)
    w.data[0, 0, 0, 0] = np.nan
    path = tmp_path / "nan.tflite"
    path.write_bytes(write_tflite(g))
    np.save(tmp_path / "calib.npy", ir_models.calibration(g, 4))
    res = run_cli("convert", path, "--calib", tmp_path / "calib.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "nan", "conv1")


def test_unsupported_op(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    model = helper.make_model(helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="erf_1")],
                                                "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "erf.onnx"
    onnx.save(model, path)
    np.save(tmp_path / "calib.npy", np.zeros((4, 8), np.float32))
    res = run_cli("convert", path, "--calib", tmp_path / "calib.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "Erf", "erf_1", "supported")


def test_calibration_wrong_shape(tmp_path, float_model):
    np.save(tmp_path / "wrong.npy", np.zeros((8, 16, 16), np.float32))
    res = run_cli("convert", float_model, "--calib", tmp_path / "wrong.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "shape", "(N, 16, 16, 3)")


def test_calibration_empty(tmp_path, float_model):
    np.save(tmp_path / "empty.npy", np.zeros((0, 16, 16, 3), np.float32))
    res = run_cli("convert", float_model, "--calib", tmp_path / "empty.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "empty")


def test_missing_calibration(tmp_path, float_model):
    res = run_cli("convert", float_model, cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "--calib")


def test_pickled_calibration_set(tmp_path, float_model):
    np.save(tmp_path / "objs.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    res = run_cli("convert", float_model, "--calib", tmp_path / "objs.npy", cwd=tmp_path)
    assert_clean_failure(res, tmp_path, "unpickle")


def test_good_conversion_writes_file_and_json(tmp_path, float_model):
    import json
    res = run_cli("convert", float_model, "--calib", tmp_path / "calib.npy", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    out = tmp_path / "cnn_int8.tflite"
    assert out.exists() and info["output"] == str(out)
    assert info["int8_bytes"] == out.stat().st_size
    assert info["agreement"]["top1_agreement"] >= 0.9
    res = run_cli("inspect", out, "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)


@pytest.mark.parametrize("args", [["targets", "--json"], ["targets"], ["inspect", "MODEL", "--json"]])
def test_reader_closing_early_exits_quietly(tmp_path, float_model, args):
    """`edgekit ... --json | head -c 10`: the reader is gone before edgekit writes; no error, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the child starts: its first write meets a broken pipe
    # stdout block-buffered, as on a user's machine: with PYTHONUNBUFFERED (set on some CI images) the
    # write happens inside the command and the flush at exit, where the error escaped, is never tried
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    try:
        res = subprocess.run([sys.executable, "-m", "edgekit", *[str(float_model) if a == "MODEL" else a for a in args]],
                             cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    finally:
        os.close(write_end)
    assert res.stderr == "", res.stderr
    assert res.returncode == 141  # as a tool killed by SIGPIPE: `set -o pipefail` still sees the cut
