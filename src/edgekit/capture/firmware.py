"""`edgekit capture --flash`: put edgekit's firmware with the board's sensors on a connected board.

The sketches compile their sensors in only when asked (firmware/<board>/<board>.ino: each needs
its Arduino library), so a board flashed by `edgekit deploy` streams only `adc`. Capturing needs
the sensors: this builds the sketch with them around a tiny placeholder model (the firmware always
carries one; capture never runs it) and flashes it with arduino-cli, then returns the port the
board comes back on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..convert import convert
from ..errors import EdgekitError
from ..graph import Graph
from ..sketch.build import build_and_flash
from ..sketch.generate import generate_project
from ..targets import detect, load_board


def placeholder_model() -> bytes:
    """The smallest useful int8 model: 4 inputs, one fully connected layer to 2 outputs."""
    g = Graph(name="placeholder")
    x = g.add_input("input", (1, 4))
    w = g.add_const("fc/weights", np.eye(2, 4, dtype=np.float32))
    b = g.add_const("fc/bias", np.zeros(2, np.float32))
    g.outputs = [g.add_op("fully_connected", [x, w, b], "fc", activation=None)]
    calib = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    return convert(g.finalize(), calibration=calib, verify=False, per_tensor_dense=True).tflite  # the Nano's library


def sensor_set(target: str, revision: str | None) -> str:
    if target == "nano33ble":
        if revision not in ("Rev1", "Rev2"):
            raise EdgekitError("--flash on the Nano 33 BLE Sense needs --revision Rev1 or Rev2: the two have "
                               "different IMU and humidity chips (Rev2 boards say 'Rev2' on the back; Rev1 has the "
                               "LSM9DS1 IMU)")
        return revision
    if target == "esp32s3":
        return "Sense"
    raise EdgekitError(f"--flash: {target} has no edgekit capture firmware; use nano33ble or esp32s3")


def flash_sensor_firmware(target: str, revision: str | None, progress=lambda m: None,
                          build_root: str | Path = "edgekit-build") -> str:
    """Build and flash the capture firmware to the connected board; the port it runs on after."""
    board = load_board(target)
    sensors = sensor_set(board.key, revision)
    conn = detect(board)
    if conn is None:
        raise EdgekitError(f"--flash: no {board.name} is connected; plug it in (edgekit targets shows what is "
                           "connected)")
    progress(f"building edgekit's firmware with the {sensors} sensors for {board.name}")
    project = generate_project(placeholder_model(), board.key, Path(build_root) / f"{board.key}_capture_{sensors}",
                               sensors=sensors)
    result = build_and_flash(project, board.key, port=conn.device, progress=progress)
    return result.port
