"""The conversion pipeline end to end on real runtimes (LiteRT, TFLite Micro)."""
import numpy as np
import pytest

import edgekit
import ir_models
from edgekit.export.tflite_writer import misaligned_buffers, write_tflite
from edgekit.quantize.calibrate import calibrate
from edgekit.runtime import litert
from platforms import needs_tflm


@pytest.fixture(params=[ir_models.cnn, ir_models.ds_block, ir_models.residual], ids=lambda f: f.__name__)
def float_file(request, tmp_path):
    g = request.param()
    path = tmp_path / f"{g.name}.tflite"
    path.write_bytes(write_tflite(g))
    return g, path


def test_float_tflite_matches_numpy_reference(float_file):
    g, path = float_file
    x = ir_models.calibration(g, 4, seed=5)
    ref = edgekit.reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    got = litert.run(path.read_bytes(), x)[0][0]
    np.testing.assert_allclose(got, ref, atol=1e-5)


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
def test_convert_float_tflite_to_verified_int8(float_file, tmp_path):
    g, path = float_file
    calib = ir_models.calibration(g, 100)
    q = edgekit.convert(path, calibration=calib)
    info = q.to_dict()
    assert info["source"] == "tflite-float"
    assert info["input"]["dtype"] == "int8" and all(o["dtype"] == "int8" for o in info["outputs"])
    assert info["agreement"]["top1_agreement"] >= 0.9  # random weights: near-tied classes flip
    assert info["agreement"]["max_abs_error"] < 0.05          # softmax outputs, 1/256 steps
    assert all(layer["sqnr_db"] is None or layer["sqnr_db"] > 20 for layer in info["layers"]), info["layers"]
    tflm = info["tflm"]
    assert tflm["ran"] and tflm["arena_bytes"] > 0 and tflm["max_lsb_vs_litert"] <= 1
    out = q.save(tmp_path / "m_int8.tflite")
    assert out.read_bytes() == q.tflite and misaligned_buffers(q.tflite) == []
    assert "top-1 agreement" in q.report()


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
def test_int8_passes_through_untouched(tmp_path):
    g = ir_models.cnn()
    q = edgekit.convert(write_tflite_to(tmp_path, g), calibration=ir_models.calibration(g, 32))
    int8_path = q.save(tmp_path / "already_int8.tflite")
    again = edgekit.convert(int8_path)
    assert again.tflite == q.tflite
    assert again.to_dict()["source"] == "tflite-int8"
    assert again.to_dict()["tflm"]["arena_bytes"] == q.to_dict()["tflm"]["arena_bytes"]


def write_tflite_to(tmp_path, g):
    path = tmp_path / f"{g.name}.tflite"
    path.write_bytes(write_tflite(g))
    return path


def test_calibration_methods_clip_no_wider_than_minmax():
    g = ir_models.ds_block()
    x = ir_models.calibration(g, 64)
    x[0, 0, 0, 0] = 40.0  # one outlier pixel
    mm = calibrate(g, x, "minmax")
    for method in ("percentile", "entropy"):
        r = calibrate(g, x, method)
        for t in mm:
            assert r[t][0] >= mm[t][0] - 1e-6 and r[t][1] <= mm[t][1] + 1e-6
        # the outlier widens the input's range under minmax only
        assert r[g.inputs[0]][1] < mm[g.inputs[0]][1] / 4, method


def test_every_calibration_method_converts(tmp_path):
    g = ir_models.residual()
    path = write_tflite_to(tmp_path, g)
    for method in ("minmax", "percentile", "entropy"):
        q = edgekit.convert(path, calibration=ir_models.calibration(g, 32),
                            method=method)
        assert q.to_dict()["calibration"]["method"] == method
        assert q.to_dict()["agreement"]["top1_agreement"] >= 0.9

