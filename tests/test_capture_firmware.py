"""Capturing from a real board needs edgekit's firmware built with the board's sensors:
the generator's sensor flags, --flash, and what a board without them answers."""
import pytest

from edgekit.protocol import VirtualBoard, serve_pty
from edgekit.capture import Session
from edgekit.capture.firmware import placeholder_model, sensor_set
from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.sketch.generate import generate_project


@pytest.fixture(scope="module")
def placeholder():
    return placeholder_model()


@pytest.mark.parametrize("key,sensors,flags", [
    ("nano33ble", "Rev1", ["EDGEKIT_NANO_REV1"]),
    ("nano33ble", "Rev2", ["EDGEKIT_NANO_REV2"]),
    ("esp32s3", "Sense", ["EDGEKIT_XIAO_SENSE", "EDGEKIT_IMU_LSM6DS3"]),
])
def test_sensor_flags_go_into_model_config(tmp_path, placeholder, key, sensors, flags):
    p = generate_project(placeholder, key, tmp_path / f"{key}_cap", sensors=sensors)
    config = (p.path / "model_config.h").read_text()
    readme = (p.path / "README.txt").read_text()
    for f in flags:
        assert f"#define {f} 1" in config
    assert config.index(flags[0]) < config.index("#endif")
    if key == "nano33ble":  # its sensors need Arduino libraries: the README says which to install
        assert "arduino-cli lib install Arduino_LSM9DS1" in readme


def test_no_sensor_flags_by_default(tmp_path, placeholder):
    p = generate_project(placeholder, "nano33ble", tmp_path / "plain")
    config = (p.path / "model_config.h").read_text()
    assert "EDGEKIT_NANO_REV" not in config and "EDGEKIT_XIAO_SENSE" not in config
    assert "Arduino_LSM9DS1" not in (p.path / "README.txt").read_text()


def test_unknown_sensor_set(tmp_path, placeholder):
    with pytest.raises(EdgekitError, match="not a sensor set of nano33ble; use one of: Rev1, Rev2"):
        generate_project(placeholder, "nano33ble", tmp_path / "x", sensors="Rev3")
    assert not (tmp_path / "x").exists()


def test_the_nano_needs_its_revision():
    with pytest.raises(EdgekitError, match="--revision Rev1 or Rev2"):
        sensor_set("nano33ble", None)
    assert sensor_set("esp32s3", None) == "Sense"


def test_flash_refuses_sim_and_a_missing_board(tmp_path, capsys):
    base = ["capture", "--target", "esp32s3", "--sensor", "imu", "--label", "wave", "-o", str(tmp_path / "d"), "--flash"]
    assert main(base + ["--sim"]) == 2
    assert "leave out --sim" in capsys.readouterr().err
    assert main(base) == 2  # no XIAO on this machine
    assert "no Seeed XIAO ESP32S3" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "d").exists()


def test_a_board_without_sensor_firmware_is_told_to_flash(tmp_path):
    """A board flashed by `edgekit deploy` (no sensors compiled in) over a real pty, as a port."""
    board = VirtualBoard("nano33ble", stand_in=True, sensors=[])
    path, stop = serve_pty(board)
    try:
        s = Session("nano33ble", "imu", tmp_path / "d", "wave", rate=100, seconds=0.1, port=path, countdown=0)
        with pytest.raises(EdgekitError, match="has no 'imu' stream.*add --flash"):
            s.run()
    finally:
        stop()


def test_the_virtual_microphone_runs_at_its_one_rate_only():
    """As the firmware's PDM microphone: 16000 Hz starts, anything else fails to start."""
    board = VirtualBoard("nano33ble", stand_in=True)
    assert board.feed(b"stream microphone 8000 10%") == b"e-[Sensor failed to start: microphone]\r\nm-ready\r\n"
    assert board.feed(b"stream microphone 16000 48%").startswith(b"m-stream-start-microphone-16000-1\r\n")


def test_the_backend_interface_captures():
    """Backend.capture: the same call on a simulated board as on a real one; the Pi has no sensors."""
    from edgekit.backends import open_backend
    with open_backend("nano33ble", "sim") as t:
        t_us, values = t.capture("imu", 100, 0.5)
    assert values.shape == (50, 9) and list(t_us[:3]) == [0, 10000, 20000]
    assert 0.5 < abs(values[:, :3]).sum(axis=1).mean() < 3  # gravity and a gesture, in g
    with pytest.raises(EdgekitError, match="no sensors"):
        open_backend("rpi4", "sim").capture("imu", 100, 1)
