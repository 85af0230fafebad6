"""The Arduino sketches (firmware/nano33ble/nano33ble.ino, firmware/esp32s3/esp32s3.ino) with
firmware/common/edgekit_tflm.h, compiled once per sensor flag set of firmware/README.md against the
real TensorFlow Lite Micro headers (../shared/vendor/Arduino_TensorFlowLite) and the declarations-only
stand-ins of the Arduino cores and sensor libraries in firmware/stand-ins/ (see its README).

What this checks: that the source of every flag-selected branch names functions, methods, types and
overloads the real headers declare, with argument types they accept, under -Wall -Wextra -Werror;
and that each flag set compiles in exactly the sensors firmware/README.md's table gives it (so that
a misspelt flag cannot pass by compiling the plain sketch). What it does not: link, build with the
boards' real cores, or run anything; the stand-ins declare only.

Nano 33 BLE: arm-none-eabi-g++ with the Arduino mbed core's code flags (the board descriptor's
emulation.cflags, ArduinoCore-mbed's cflags.txt) and C++ flags (gnu++14, no RTTI, no exceptions).
XIAO ESP32S3: there is no Xtensa compiler here, so its sketch is compiled with the same
arm-none-eabi-g++ (a 32-bit target with newlib, as ESP-IDF is) against the arduino-esp32 3.x
stand-ins. That is a compile check of the source against declarations, not the ESP32 toolchain. On
arduino-esp32 3.x the TFLM headers are esp-tflite-micro's; Arduino_TensorFlowLite's stand in for them
(the sketch uses the API both share: MicroInterpreter, MicroMutableOpResolver, MicroProfilerInterface,
GetModel), with TF_LITE_STATIC_MEMORY as esp-tflite-micro defines it for its users.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import ir_models
from edgekit.emulator.library import CXX_FLAGS, DEFINES, INCLUDES
from edgekit.sim.arena import plan_arena
from edgekit.sketch import generate_project
from edgekit.targets import load_board

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
STAND_INS = FIRMWARE / "stand-ins"
VENDOR = Path(__file__).resolve().parents[2] / "shared" / "vendor"
TFLM = VENDOR / "Arduino_TensorFlowLite" / "src"
ARM_GXX = shutil.which("arm-none-eabi-g++")

if not VENDOR.is_dir():
    pytest.skip(f"{VENDOR} (../shared/vendor next to the checkout) is absent: no real TFLite Micro "
                "headers to compile the sketches against", allow_module_level=True)
if ARM_GXX is None:
    pytest.skip("arm-none-eabi-g++ is not installed (apt-get install gcc-arm-none-eabi "
                "libstdc++-arm-none-eabi-newlib)", allow_module_level=True)

# firmware/README.md, "Stream sensors": the sensors each flag compiles in, and the leave-one-out flags.
NANO_ALL = {"imu", "microphone", "temperature", "pressure", "light"}
XIAO_ALL = {"microphone", "camera", "imu"}
SENSORS = {
    "nano33ble": {"EDGEKIT_NANO_REV1": NANO_ALL, "EDGEKIT_NANO_REV2": NANO_ALL,
                  "EDGEKIT_IMU_LSM9DS1": {"imu"}, "EDGEKIT_IMU_BMI270": {"imu"}},
    "esp32s3": {"EDGEKIT_XIAO_SENSE": {"microphone", "camera"}, "EDGEKIT_IMU_LSM6DS3": {"imu"}},
}
LEAVE_ONE_OUT = {  # (the flags it is combined with, the sensors that can be left out)
    "nano33ble": [(("EDGEKIT_NANO_REV1",), NANO_ALL), (("EDGEKIT_NANO_REV2",), NANO_ALL)],
    "esp32s3": [(("EDGEKIT_XIAO_SENSE", "EDGEKIT_IMU_LSM6DS3"), {"microphone", "camera"})],
}


def _expected(board: str, flags: tuple[str, ...]) -> set[str]:
    have = set().union(*(SENSORS[board].get(f, set()) for f in flags))
    return {s for s in have if f"EDGEKIT_NO_{s.upper()}" not in flags}


def _variants() -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for board in ("nano33ble", "esp32s3"):
        out.append((board, ()))
        out += [(board, (flag,)) for flag in SENSORS[board]]
        for base, sensors in LEAVE_ONE_OUT[board]:
            if len(base) > 1:
                out.append((board, base))
            out += [(board, base + (f"EDGEKIT_NO_{s.upper()}",)) for s in sorted(sensors)]
    # the other branch of esp32s3.ino's arena (model_config.h sets it for a model too big for SRAM)
    out.append(("esp32s3", ("EDGEKIT_XIAO_SENSE", "EDGEKIT_ARENA_IN_PSRAM")))
    return out


VARIANTS = _variants()


def _id(variant) -> str:
    board, flags = variant
    return f"{board}-{'+'.join(f.removeprefix('EDGEKIT_') for f in flags) or 'no-flag'}"


def _flags(board: str, flags: tuple[str, ...], model_dir: Path) -> list[str]:
    """The compiler and its options for one variant, without the mode and the file."""
    if board == "nano33ble":
        core = STAND_INS / "arduino" / "mbed_nano"
        libs = ["PDM", "Arduino_LSM9DS1", "Arduino_BMI270_BMM150", "Arduino_HTS221", "Arduino_HS300x",
                "Arduino_LPS22HB", "Arduino_APDS9960"]
        # what the mbed core's platform.txt, defines.txt and cxxflags.txt give a Nano 33 BLE sketch
        # (ARDUINO_ARDUINO_NANO33BLE selects the board in Arduino_TensorFlowLite's peripherals.h)
        target = [*shlex.split(load_board("nano33ble").text("emulation.cflags")), *CXX_FLAGS, *DEFINES,
                  "-DARDUINO_ARDUINO_NANO33BLE", "-DARDUINO_ARCH_MBED", "-D__MBED__=1",
                  "-Wno-missing-field-initializers", "-Wno-unused-parameter"]
    else:
        core = STAND_INS / "arduino" / "esp32"
        libs = ["ESP_I2S", "esp32-camera"]
        # arduino-esp32 3.x: C++ as gnu++2b; XIAO_ESP32S3's default board options (USB mode hwcdc,
        # CDC on boot: Serial is the USB port)
        target = ["-std=gnu++2b", "-fno-rtti", "-DARDUINO=10819", "-DARDUINO_XIAO_ESP32S3",
                  "-DARDUINO_ARCH_ESP32", "-DESP32", "-DARDUINO_USB_MODE=1", "-DARDUINO_USB_CDC_ON_BOOT=1",
                  "-DTF_LITE_STATIC_MEMORY"]
    # Third-party headers as system headers: -Werror applies to edgekit's code and the generated files.
    system = [core, *(STAND_INS / lib for lib in libs), *(TFLM / d if d else TFLM for d in INCLUDES)]
    return [ARM_GXX, *target, "-Wall", "-Wextra", "-Werror", *(f"-D{f}" for f in flags),
            # the firmware's own headers before the generated project's copies of them
            "-iquote", str(FIRMWARE / "common"), "-iquote", str(model_dir),
            *(a for d in system for a in ("-isystem", str(d)))]


def _prelude(board: str, out: Path) -> Path:
    """The sketch's own includes of Arduino.h and TensorFlow Lite Micro, in its order: the parsing
    every variant shares (most of it TFLM's flatbuffers code), precompiled once per board. The
    sketch's #includes of them are then no-ops."""
    sketch = (FIRMWARE / board / f"{board}.ino").read_text()
    lines = re.findall(r'^#include [<"](?:Arduino\.h|TensorFlowLite\.h|tensorflow/[^">]+)[>"]$', sketch, re.M)
    prelude = out / f"prelude_{board}" / "prelude.h"
    prelude.parent.mkdir()
    prelude.write_text("\n".join(lines) + "\n")
    return prelude


def _translation_unit(board: str, flags: tuple[str, ...], prelude: Path, out: Path) -> Path:
    """The sketch as the Arduino builder compiles it (Arduino.h first), then a check of which
    sensors the flags compiled in."""
    checks = []
    for sensor in sorted(XIAO_ALL | NANO_ALL):
        macro = f"EDGEKIT_HAVE_{sensor.upper()}"
        on = sensor in _expected(board, flags)
        checks.append(f"#if {'!' if on else ''}defined({macro})\n"
                      f"#error \"{sensor} should {'' if on else 'not '}be compiled in with these flags\"\n#endif\n")
    tu = out / f"{_id((board, flags))}.cpp"
    tu.write_text(f'#include "{prelude}"\n'
                  f'#include "{FIRMWARE / board / f"{board}.ino"}"\n' + "".join(checks))
    return tu


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every variant compiled, in parallel: {variant id: the compiler's result}."""
    assert TFLM.is_dir(), f"{VENDOR} is there but holds no Arduino_TensorFlowLite/src"
    out = tmp_path_factory.mktemp("sketches")
    # the generated model files a sketch includes (model_config.h, model_data.h, model_ops.h), made
    # by edgekit's generator for a small int8 CNN, as in tests/test_firmware_gen.py
    model = ir_models.int8(ir_models.cnn())
    host_arena = plan_arena(model, "host", "reference").minimum
    boards = ("nano33ble", "esp32s3")
    model_dirs = {b: generate_project(model, b, out / f"model_{b}", host_arena=host_arena).path for b in boards}
    preludes = {b: _prelude(b, out) for b in boards}
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            # (a precompiled header GCC cannot use is parsed as text instead: slower, never wrong)
            pch = {b: pool.submit(_run, [*_flags(b, (), model_dirs[b]), "-x", "c++-header", str(p), "-o", f"{p}.gch"])
                   for b, p in preludes.items()}
            for b, f in pch.items():
                assert f.result().returncode == 0, f"{b}: Arduino.h and TFLM's headers do not compile:\n{f.result().stderr}"
            futures = {_id(v): pool.submit(_run, [*_flags(v[0], v[1], model_dirs[v[0]]), "-fsyntax-only",
                                                  str(_translation_unit(*v, preludes[v[0]], out))])
                       for v in VARIANTS}
            return {k: f.result() for k, f in futures.items()}
    finally:
        for p in preludes.values():
            Path(f"{p}.gch").unlink(missing_ok=True)  # some 200 MB each


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_sketch_compiles_against_real_tflm_and_library_declarations(compiled, variant):
    result = compiled[_id(variant)]
    assert result.returncode == 0, f"{_id(variant)} does not compile:\n{result.stderr}"
    assert result.stderr == ""  # not even a note or a warning outside -Werror's reach
