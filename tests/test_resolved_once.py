"""One simulated `edgekit deploy` resolves its board and its model once and hands them down.

The command runs in this process (the CLI's own main()), with a profile hook that counts calls by
code object, so a call counts however its function was imported: each board descriptor is parsed
once (edgekit.targets.descriptor.parse_board), the model's flatbuffer is parsed once (the schema's
ModelT.InitFromPackedBuf), and the simulator runs once (edgekit.sim.simulate.simulate). Child
processes (TFLite Micro, LiteRT's C++ reader) are not this process's parsing and are not counted.
"""
import contextlib
import io
import json
import sys
import threading
from collections import Counter

import pytest
from ai_edge_litert import schema_py_generated as fb

import ir_models
from edgekit.cli import main
from edgekit.edgetpu import compiler as ec
from edgekit.sim import simulate as simulate_module
from edgekit.targets import descriptor

COUNTED = {
    descriptor.parse_board.__code__: "descriptor parsed",
    fb.ModelT.InitFromPackedBuf.__func__.__code__: "flatbuffer parsed",
    simulate_module.simulate.__code__: "simulator run",
}


@contextlib.contextmanager
def counting_calls():
    """Counter of COUNTED calls ("descriptor parsed: nano33ble", "simulator run", ...) while inside."""
    seen = Counter()

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in COUNTED:
            what = COUNTED[frame.f_code]
            if frame.f_code is descriptor.parse_board.__code__:
                what += f": {frame.f_locals['path'].stem}"
            seen[what] += 1

    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("resolved_once") / "cnn_int8.tflite"
    path.write_bytes(ir_models.int8(ir_models.cnn()))
    return path


@pytest.mark.parametrize("target, boards", [("nano33ble", ["nano33ble"]), ("esp32s3", ["esp32s3"]),
                                            ("coral", ["coral", "rpi4"])])  # the Coral's host is the Pi
def test_one_deploy_loads_each_board_once_parses_once_simulates_once(target, boards, model_file, monkeypatch,
                                                                     tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ec.shutil, "which", lambda name: None)  # the predicted Coral plan, on any machine
    descriptor._load.cache_clear()  # as a fresh process starts
    stdout = io.StringIO()
    with counting_calls() as seen, contextlib.redirect_stdout(stdout):
        assert main(["deploy", str(model_file), "--target", target, "--sim", "--json"]) == 0
    report = json.loads(stdout.getvalue())
    assert report["mode"] == "simulated" and report["outputs_check"]["samples"] > 0  # the whole deploy ran
    want = Counter({"flatbuffer parsed": 1, "simulator run": 1, **{f"descriptor parsed: {b}": 1 for b in boards}})
    assert seen == want, f"deploy --target {target}: {dict(seen)}"


def test_the_counter_sees_a_second_parse_and_a_second_simulation(model_file):
    """The hook counts what it should: without it the test above could pass on a broken count."""
    from edgekit.tflite_file import read_model
    data = model_file.read_bytes()
    descriptor._load.cache_clear()
    with counting_calls() as seen:
        read_model(data)
        read_model(data)
        simulate_module.simulate(data, "nano33ble")
    assert seen["flatbuffer parsed"] == 3 and seen["simulator run"] == 1
    assert seen["descriptor parsed: nano33ble"] == 1
