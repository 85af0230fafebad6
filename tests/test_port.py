"""`--port` (and $EDGEKIT_PORT) on deploy and profile: a device path, a sim:// URL, an rfc2217:// URL.

A board already running the model at a given port is used as it is (nothing is built); a virtual
board behind a real port (a pseudo-terminal, an RFC 2217 server) says so in its info reply, so
its figures are labelled simulated, not measured. Detection by USB ID is skipped with a port.
"""
import contextlib
import io
import json

import pytest

import ir_models
from edgekit.tflite_file import TFLiteModel
from edgekit.cli import main
from edgekit.protocol import VirtualBoard, serve_pty, serve_rfc2217
from edgekit.targets import detection as detect_module

pytestmark = pytest.mark.filterwarnings(r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning")  # pyserial's


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("port") / "cnn_int8.tflite"
    path.write_bytes(ir_models.int8(ir_models.cnn()))
    return path


@pytest.fixture(autouse=True)
def no_usb_detection(monkeypatch, tmp_path):
    """Any USB-ID detection during these tests is a failure: a port must skip it."""
    def refuse(*a, **k):
        raise AssertionError("detect() ran although a port was given")
    monkeypatch.setattr(detect_module, "_serial_ports", refuse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEKIT_PORT", raising=False)


def run(argv, capsys):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    return code, stdout.getvalue(), capsys.readouterr().err


@contextlib.contextmanager
def served(kind, model_bytes, stand_in=False):
    board = VirtualBoard("nano33ble", stand_in=True) if stand_in else VirtualBoard("nano33ble", model_bytes)
    where, stop = (serve_pty if kind == "pty" else serve_rfc2217)(board)
    try:
        yield where
    finally:
        stop()
        board.close()


@pytest.mark.parametrize("kind", ["pty", "rfc2217"])
@pytest.mark.parametrize("command", ["deploy", "profile"])
def test_a_board_at_a_port_that_runs_the_model(kind, command, model, capsys):
    with served(kind, model.read_bytes()) as port:
        code, out, err = run([command, str(model), "--target", "nano33ble", "--port", port, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["via"] == port and r["mode"] == "simulated"  # the virtual board said what it is
    assert r["board_info"]["model_sha256"] == r["model_sha256"]
    assert f"simulated by the virtual board at {port}" in r["selected"]
    if command == "deploy":
        assert r["outputs_check"]["max_lsb"] <= 1


def test_a_sim_url_is_the_simulator(model, capsys):
    code, out, err = run(["deploy", str(model), "--target", "nano33ble", "--port", "sim://nano33ble", "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["mode"] == "simulated" and r["via"] == "sim://nano33ble" and "via sim://nano33ble" in r["selected"]


def test_the_port_comes_from_edgekit_port(model, capsys, monkeypatch):
    with served("rfc2217", model.read_bytes()) as port:
        monkeypatch.setenv("EDGEKIT_PORT", port)
        code, out, err = run(["profile", str(model), "--target", "nano33ble", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["via"] == port


def test_a_virtual_board_elsewhere_with_another_model_takes_this_one(model, capsys):
    """A virtual board (`edgekit board serve`, on a lab place) is "flashed" over its link."""
    other = ir_models.int8(ir_models.cnn(seed=5))
    with served("rfc2217", other) as port:
        code, out, err = run(["profile", str(model), "--target", "nano33ble", "--port", port, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["board_info"]["model_sha256"] == r["model_sha256"] == TFLiteModel(model.read_bytes()).sha256


def test_a_board_elsewhere_with_another_model_is_one_line(model, capsys):
    """A Nano elsewhere cannot be flashed: bossac needs its USB port (the stand-in answers as real firmware)."""
    with served("rfc2217", None, stand_in=True) as port:
        code, out, err = run(["profile", str(model), "--target", "nano33ble", "--port", port], capsys)
    assert code != 0 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not run this model" in errors[0] and "plugged into" in errors[0]
    assert err.splitlines()[-1] == errors[0]  # the error is the last word, without a traceback


@pytest.mark.parametrize("argv, said", [
    (["--sim", "--port", "/dev/ttyACM7"], "--sim and --port /dev/ttyACM7 disagree"),
    (["--hw", "--port", "sim://nano33ble"], "--hw and --port sim://nano33ble disagree"),
])
def test_contradictory_flags_are_one_line(argv, said, model, capsys):
    code, out, err = run(["profile", str(model), "--target", "nano33ble", *argv], capsys)
    assert code == 2 and said in err and err.count("\n") == 1


def test_a_raspberry_pi_takes_no_port(model, capsys):
    code, _, err = run(["profile", str(model), "--target", "rpi4", "--port", "/dev/ttyACM0"], capsys)
    assert code == 2 and "not reached over a serial port" in err


def test_capture_from_a_virtual_board_behind_a_port_is_labelled_simulated(model, capsys, tmp_path):
    with served("rfc2217", model.read_bytes()) as port:
        code, out, err = run(["capture", "--target", "nano33ble", "--sensor", "imu", "--label", "wave",
                              "--seconds", "0.2", "-o", str(tmp_path / "d"), "--port", port, "--json"], capsys)
    assert code == 0, err
    [entry] = json.loads(out)["recordings"]
    assert entry["mode"] == "simulated" and entry["via"].endswith(port) and entry["complete"]


def test_a_sim_url_takes_board_and_fault_options(model, capsys):
    """The options a sim:// URL takes anywhere (board options and faults) are taken by --port too."""
    code, out, err = run(["deploy", str(model), "--target", "nano33ble", "--port",
                          "sim://nano33ble?label=wave&seed=3&drop=0", "--json"], capsys)
    assert code == 0, err
    code, _, err = run(["deploy", str(model), "--target", "nano33ble", "--port", "sim://nano33ble?nonsense=1"], capsys)
    assert code == 2 and "unknown fault option 'nonsense'" in err
