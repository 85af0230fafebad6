"""Dense weights: one scale per output by default (as TensorFlow 2.21 and ai-edge-quantizer write
them: better SQNR), one per tensor for the boards whose TFLite Micro applies only the first scale
(the Nano's Arduino library). Such a board refuses a per-channel model in one line; deploying a
float model to it converts per tensor."""
import numpy as np

import edgekit
from edgekit import cli
from edgekit.runtime import litert
from edgekit.targets import load_board
from edgekit.tflite_file import per_channel_dense, read_model

import ir_models


def _dense_model():
    graph = ir_models.cnn()
    assert any(op.kind == "fully_connected" for op in graph.ops)
    return graph, ir_models.calibration(graph, 64)


def test_default_is_per_channel_and_the_flag_gives_one_scale():
    graph, x = _dense_model()
    channel = edgekit.convert(graph, calibration=x, verify=False)
    tensor = edgekit.convert(graph, calibration=x, verify=False, per_tensor_dense=True)
    assert channel.info["dense_weights"] == "per-channel" and per_channel_dense(read_model(channel.tflite))
    assert tensor.info["dense_weights"] == "per-tensor" and not per_channel_dense(read_model(tensor.tflite))
    # per-channel is at least as close to the float model (on held-out inputs)
    held = ir_models.calibration(graph, 64, seed=5)
    want = channel.float_predict(held)
    err = {k: float(np.mean((q.predict(held) - want) ** 2)) for k, q in (("channel", channel), ("tensor", tensor))}
    assert err["channel"] <= err["tensor"] * 1.05, err


def test_which_boards_need_one_scale():
    assert load_board("nano33ble").dense_weights == "per-tensor"
    assert load_board("stm32l4r5").dense_weights == "per-tensor"
    assert load_board("esp32s3").dense_weights == "per-channel"


def test_nano_refuses_a_per_channel_model_in_one_line_and_deploy_converts_per_tensor(tmp_path, capsys):
    graph, x = _dense_model()
    int8 = tmp_path / "cnn_int8.tflite"
    edgekit.convert(graph, calibration=x, verify=False).save(int8)
    assert cli.main(["deploy", str(int8), "--target", "nano33ble", "--sim", "--runs", "2"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--per-tensor-dense" in errors[0] and "one weight scale per output" in errors[0]
    assert cli.main(["profile", str(int8), "--target", "esp32s3", "--sim", "--runs", "2", "--json"]) == 0
    capsys.readouterr()

    float_path = tmp_path / "cnn.tflite"
    from edgekit.export.tflite_writer import write_tflite
    float_path.write_bytes(write_tflite(graph))
    np.save(tmp_path / "calib.npy", x)
    report = edgekit.deploy(str(float_path), "nano33ble", runs=2, force="sim", calibration=tmp_path / "calib.npy")
    assert report.fits and report.outputs_check["max_lsb"] <= 1
    assert litert.run(ir_models.int8(graph), x[:1])  # the per-tensor helper the board tests use still runs
