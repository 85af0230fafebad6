"""The tools a firmware build needs per board, and the exact commands that install them.

One table for `doctor` (what to check, what to print when it is missing), `build` (what to run)
and the README.txt of each generated project.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass

ESP32_INDEX_URL = "https://espressif.github.io/arduino-esp32/package_esp32_index.json"
# Sketches hold model_data.cc: arduino-cli compiles .cc sketch files from 0.34.0 (arduino-cli
# PR 2273, Aug 2023: ".cxx and .cc extension in compile"); older versions silently skip them.
MIN_ARDUINO_CLI = (0, 34, 0)


# Rev1 (EDGEKIT_NANO_REV1) and Rev2 (EDGEKIT_NANO_REV2) sensors; PDM comes with the core. The
# XIAO ESP32S3's sensors need no library (ESP_I2S, esp_camera and Wire come with the core).
NANO_SENSOR_LIBRARIES = ("Arduino_LSM9DS1", "Arduino_BMI270_BMM150", "Arduino_HTS221", "Arduino_HS300x",
                         "Arduino_LPS22HB", "Arduino_APDS9960")


@dataclass(frozen=True)
class BoardTools:
    core: str                      # arduino-cli platform ID
    core_install: tuple[str, ...]  # commands, in order
    core_upgrade: tuple[str, ...]  # commands that bring an installed core to a new enough version
    libraries: tuple[str, ...]     # library names (library.properties name=) that provide TFLM
    library_install: tuple[str, ...]
    core_min: tuple[int, int, int] | None = None  # the core version that brings TFLM itself
    tflm_note: str = ""
    # Optional: the libraries of the board's stream sensors, needed only when the sketch is built
    # with their flags (firmware/README.md, "Stream sensors"); the default build needs none.
    sensor_libraries: tuple[str, ...] = ()
    sensor_library_install: tuple[str, ...] = ()


def board_tools(key: str) -> BoardTools:
    if key == "nano33ble":
        # firmware/nano33ble/nano33ble.ino includes <Chirale_TensorFlowLite.h>: the Library Manager's
        # "Chirale_TensorFLowLite" (sic), TFLite Micro regenerated for mbed and ESP32 Arduino boards.
        # (With -DEDGEKIT_TFLM_ARDUINO_EXAMPLES the sketch takes tflite-micro-arduino-examples'
        # Arduino_TensorFlowLite instead; the default build does not, so doctor asks for Chirale's.)
        return BoardTools(
            core="arduino:mbed_nano",
            core_install=("arduino-cli core update-index", "arduino-cli core install arduino:mbed_nano"),
            core_upgrade=("arduino-cli core update-index", "arduino-cli core upgrade arduino:mbed_nano"),
            libraries=("Chirale_TensorFLowLite",),
            library_install=("arduino-cli lib install Chirale_TensorFLowLite",),
            sensor_libraries=NANO_SENSOR_LIBRARIES,
            sensor_library_install=("arduino-cli lib install " + " ".join(NANO_SENSOR_LIBRARIES),))
    if key == "esp32s3":
        # firmware/esp32s3/esp32s3.ino uses the TFLite Micro that arduino-esp32 3.x ships in its
        # prebuilt ESP-IDF libraries (Espressif's esp-tflite-micro, with ESP-NN): no Arduino library,
        # and none should be added (a second TFLM would clash and run reference kernels).
        return BoardTools(
            core="esp32:esp32",
            core_install=(f"arduino-cli core update-index --additional-urls {ESP32_INDEX_URL}",
                          f"arduino-cli core install esp32:esp32 --additional-urls {ESP32_INDEX_URL}"),
            core_upgrade=(f"arduino-cli core update-index --additional-urls {ESP32_INDEX_URL}",
                          f"arduino-cli core upgrade esp32:esp32 --additional-urls {ESP32_INDEX_URL}"),
            libraries=(), library_install=(), core_min=(3, 0, 0),
            tflm_note="esp-tflite-micro (with ESP-NN) bundled with esp32:esp32 3.x")
    raise KeyError(key)


FIRMWARE_BOARDS = ("nano33ble", "esp32s3")


def arduino_cli_install(system: str | None = None) -> str:
    """The one-liner that installs arduino-cli on this OS ("Linux", "Darwin", "Windows")."""
    system = system or {"win32": "Windows", "darwin": "Darwin"}.get(sys.platform, "Linux")
    if system == "Windows":
        return "winget install ArduinoSA.CLI"
    if system == "Darwin":
        return "brew install arduino-cli"
    return ("curl -fsSL https://raw.githubusercontent.com/arduino/arduino-cli/master/install.sh "
            "| BINDIR=$HOME/.local/bin sh")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from e.g. 'arduino-cli  Version: 1.1.1 Commit: ...' or 'esptool v4.7.0'."""
    m = re.search(r"[Vv]ersion:?\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text) or re.search(r"\bv?(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
