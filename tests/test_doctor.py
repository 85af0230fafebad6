"""`edgekit doctor`: fake tools on a temporary PATH (real subprocesses printing what the real tools
print) and a Host describing the machine; every missing thing comes with its exact fix command."""
import os
import shutil
import sys
import textwrap

import pytest
from rich.console import Console

from edgekit.doctor import Host, doctor, doctor_ok, print_doctor, render_doctor

ARDUINO_CLI = """\
#!{python}
import sys
args = sys.argv[1:]
if args == ["version"]:
    print("arduino-cli  Version: {version} Commit: fa6eafcb Date: 2024-11-22T09:31:36Z")
elif args == ["core", "list"]:
    print({cores!r})
elif args == ["lib", "list"]:
    print({libs!r})
else:
    sys.exit(2)
"""
CORES = textwrap.dedent("""\
    ID                Installed Latest Name
    arduino:mbed_nano 4.1.5     4.2.1  Arduino Mbed OS Nano Boards
    esp32:esp32       3.1.1     3.3.0  esp32""")
LIBS = textwrap.dedent("""\
    Name                   Installed   Available    Location Description
    Arduino_LSM9DS1        1.1.1       -            user     Allows you to read the accelerometer
    Arduino_BMI270_BMM150  1.2.1       -            user     Allows you to read the accelerometer
    Arduino_HTS221         1.0.0       -            user     Allows you to read the temperature
    Arduino_HS300x         1.0.0       -            user     Allows you to read the temperature
    Arduino_LPS22HB        1.0.2       -            user     Allows you to read the pressure
    Arduino_APDS9960       1.0.4       -            user     Allows you to read colour and gestures
    Chirale_TensorFLowLite 2.0.0       -            user     Allows you to run machine learning models""")
ESPTOOL = """\
#!{python}
import sys
print("esptool.py v4.8.1")
print("4.8.1")
"""
ARM_GCC = """\
#!{python}
import os, sys
asked = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("-print-file-name=")]
if asked:  # as gcc: the library's full path when it has it, else the bare name
    path = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "..", "newlib", asked[0])
    print(os.path.abspath(path) if os.path.exists(path) else asked[0])
else:
    print("arm-none-eabi-g++ (15:12.2.rel1-1) 12.2.1 20221205")
"""
QEMU = """\
#!{python}
print("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)")
"""

LINUX = dict(system="Linux", machine="x86_64", user="student", groups={"student", "dialout"},
             configured_groups={"student", "dialout"}, existing_groups={"student", "dialout", "plugdev"},
             serial_devices={"/dev/ttyACM0": (True, "dialout")})


def _exe(path, text):
    path.write_text(text.format(python=sys.executable))
    path.chmod(0o755)


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """Put fakes on a fresh PATH: tools(arduino_cli=True, version=..., cores=..., libs=..., esptool=..., gcc=...)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))

    def make(arduino_cli=True, version="1.1.1", cores=CORES, libs=LIBS, esptool=True, gcc=True, compiler=True,
             qemu=True, newlib=True):
        if arduino_cli:
            _exe(bin_dir / "arduino-cli", ARDUINO_CLI.replace("{version}", version)
                 .replace("{cores!r}", repr(cores)).replace("{libs!r}", repr(libs)))
        if esptool:
            _exe(bin_dir / "esptool.py", ESPTOOL)
        if gcc:
            _exe(bin_dir / "arm-none-eabi-g++", ARM_GCC)
        if compiler:
            _exe(bin_dir / "edgetpu_compiler", "print('Edge TPU Compiler version 16.0.384591198')")
        if qemu:
            _exe(bin_dir / "qemu-system-arm", QEMU)
        if newlib:
            (tmp_path / "newlib").mkdir(exist_ok=True)
            for lib in ("libc.a", "libstdc++.a"):
                (tmp_path / "newlib" / lib).write_bytes(b"!<arch>\n")
        return bin_dir
    return make


def installed(name, dist):
    return {"serial": "3.5", "ai_edge_litert": "2.3.0", "tflite_micro": "0.dev20261023", "pycoral": "2.0.0"}.get(name)


def _by_name(checks):
    return {c.name: c for c in checks}


def _text(checks) -> str:
    """What `edgekit doctor` prints, at a narrow terminal width: fix commands stay whole lines."""
    console = Console(record=True, width=60)
    print_doctor(checks, console)
    return console.export_text(styles=False)


def test_everything_present_passes(tools):
    tools()
    checks = doctor(host=Host(**LINUX), modules=installed)
    c = _by_name(checks)
    assert doctor_ok(checks)
    assert c["arduino-cli"].status == "ok" and c["arduino-cli"].detail.startswith("1.1.1 (")
    assert c["core arduino:mbed_nano"].status == "ok" and "4.1.5" in c["core arduino:mbed_nano"].detail
    assert c["core esp32:esp32"].status == "ok"
    assert c["TFLite Micro (nano33ble)"].detail == "Chirale_TensorFLowLite 2.0.0"
    assert c["TFLite Micro (esp32s3)"].status == "ok" and "bundled with esp32:esp32 3.x" in c["TFLite Micro (esp32s3)"].detail
    assert c["esptool"].status == "ok" and c["esptool"].detail.startswith("4.8.1")
    assert c["serial ports"].status == "ok" and c["group dialout"].status == "ok"
    assert c["pyserial"].detail == "3.5" and c["LiteRT"].status == "ok" and c["tflite-micro"].status == "ok"
    assert c["gcc-arm-none-eabi"].status == "ok" and "12.2.1" in c["gcc-arm-none-eabi"].detail
    assert c["qemu-system-arm"].status == "ok" and "7.2.22" in c["qemu-system-arm"].detail
    assert c["newlib for arm-none-eabi"].status == "ok"
    assert c["Coral (pycoral, libedgetpu)"].status == "skip"
    assert c["edgetpu_compiler"].status == "ok" and c["edgetpu_compiler"].detail.endswith("edgetpu_compiler")
    assert c["sensor libraries (nano33ble)"].status == "ok" and "sensor libraries (esp32s3)" not in c
    lab = ("labgrid", "ser2net", "labgrid coordinator")  # optional, checked in test_lab_checks_are_optional
    assert all(c.status in ("ok", "skip") for c in checks if c.name not in lab)
    assert "Ready: every required tool is installed." in _text(checks)


def test_lab_checks_are_optional(tools, monkeypatch):
    bin_dir = tools()
    monkeypatch.delenv("EDGEKIT_LABGRID_CLIENT", raising=False)
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    c = _by_name(doctor(host=Host(**LINUX), modules=installed))
    assert c["labgrid"].status == "info" and "pip install labgrid" in c["labgrid"].fix
    assert c["ser2net"].status == "info" and c["ser2net"].fix == "sudo apt-get install ser2net"
    assert "labgrid coordinator" not in c
    _exe(bin_dir / "labgrid-client", "#!{python}\nprint('nano-a')\nprint('esp-a')\n")
    _exe(bin_dir / "ser2net", "#!{python}\n")
    c = _by_name(doctor(host=Host(**LINUX), modules=installed))
    assert c["labgrid"].status == "ok" and c["ser2net"].status == "ok"
    assert c["labgrid coordinator"].status == "info" and "LG_COORDINATOR" in c["labgrid coordinator"].detail
    monkeypatch.setenv("LG_COORDINATOR", "labhost:20408")
    c = _by_name(doctor(host=Host(**LINUX), modules=installed))
    assert c["labgrid coordinator"].status == "ok" and c["labgrid coordinator"].detail == "labhost:20408: 2 place(s)"
    _exe(bin_dir / "labgrid-client", "#!{python}\nimport sys\nprint('Server error: Error: Could not connect')\n"
         "sys.exit(1)\n")
    checks = doctor(host=Host(**LINUX), modules=installed)
    c = _by_name(checks)
    assert c["labgrid coordinator"].status == "warn" and "does not answer: Server error" in c["labgrid coordinator"].detail
    assert doctor_ok(checks)  # a lab is optional: an unreachable coordinator does not fail doctor


def test_sensor_libraries_are_optional_and_named(tools):
    tools(libs=LIBS.replace("Arduino_APDS9960", "Something_Else"))
    checks = doctor(host=Host(**LINUX), modules=installed)
    c = _by_name(checks)["sensor libraries (nano33ble)"]
    assert c.status == "info" and not c.required and "Arduino_APDS9960" in c.detail
    assert c.fix.startswith("arduino-cli lib install Arduino_LSM9DS1") and doctor_ok(checks)


def test_edgetpu_compiler_missing_or_not_for_this_machine(tools):
    tools(compiler=False)
    c = _by_name(doctor(host=Host(**LINUX), modules=installed))["edgetpu_compiler"]
    assert c.status == "info" and "apt-get install edgetpu-compiler" in c.fix and not c.required
    mac = _by_name(doctor(host=Host(**{**LINUX, "system": "Darwin", "machine": "arm64"}), modules=installed))
    assert "x86-64 Linux only" in mac["edgetpu_compiler"].detail and mac["edgetpu_compiler"].fix is None


def test_nothing_installed_prints_every_fix(tools):
    tools(arduino_cli=False, esptool=False, gcc=False)
    checks = doctor(host=Host(**LINUX), modules=lambda name, dist: None)
    c = _by_name(checks)
    assert not doctor_ok(checks)
    assert c["arduino-cli"].status == "missing"
    assert c["arduino-cli"].fix == ("curl -fsSL https://raw.githubusercontent.com/arduino/arduino-cli/master/"
                                    "install.sh | BINDIR=$HOME/.local/bin sh")
    assert c["core arduino:mbed_nano"].status == "skip"
    assert c["core arduino:mbed_nano"].fix == "arduino-cli core update-index && arduino-cli core install arduino:mbed_nano"
    assert c["esptool"].fix == "pip install esptool" and not c["esptool"].required
    assert c["pyserial"].fix == "pip install pyserial"
    assert c["LiteRT"].fix == "pip install ai-edge-litert"
    assert c["tflite-micro"].fix == "pip install tflite-micro"
    assert c["gcc-arm-none-eabi"].fix == "sudo apt-get install gcc-arm-none-eabi"
    text = _text(checks)
    lines = [l.strip() for l in text.splitlines()]
    for check in checks:
        if check.status in ("missing", "warn") and check.fix:
            assert check.fix in lines  # each command on one line, whole
    assert "required item(s) missing" in text and print_doctor(checks, Console(file=open(os.devnull, "w"))) is False
    wide = Console(record=True, width=300)
    wide.print(render_doctor(checks))
    assert c["arduino-cli"].fix in wide.export_text()


@pytest.mark.parametrize("system, fix", [("Darwin", "brew install arduino-cli"),
                                         ("Windows", "winget install ArduinoSA.CLI")])
def test_arduino_cli_install_command_per_os(tools, system, fix):
    tools(arduino_cli=False)
    c = _by_name(doctor(host=Host(system=system, machine="arm64"), modules=installed))
    assert c["arduino-cli"].fix == fix
    assert c["serial ports"].status == "info"  # no group business off Linux
    assert c["tflite-micro"].status == "ok"


def test_old_arduino_cli_cannot_compile_cc_files(tools):
    tools(version="0.33.1")
    c = _by_name(doctor(host=Host(**LINUX), modules=installed))
    assert c["arduino-cli"].status == "missing" and "too old, 0.34.0+" in c["arduino-cli"].detail
    assert "install.sh" in c["arduino-cli"].fix


def test_missing_cores_and_libraries_have_their_install_commands(tools):
    tools(cores="ID          Installed Latest Name\narduino:avr 1.8.6     1.8.6  Arduino AVR Boards",
          libs="No libraries installed.")
    checks = doctor(host=Host(**LINUX), modules=installed)
    c = _by_name(checks)
    assert not doctor_ok(checks)
    assert c["core arduino:mbed_nano"].status == "missing"
    assert c["core esp32:esp32"].fix == (
        "arduino-cli core update-index --additional-urls https://espressif.github.io/arduino-esp32/"
        "package_esp32_index.json && arduino-cli core install esp32:esp32 --additional-urls "
        "https://espressif.github.io/arduino-esp32/package_esp32_index.json")
    nano_lib = c["TFLite Micro (nano33ble)"]
    assert nano_lib.status == "missing" and "Chirale_TensorFLowLite" in nano_lib.detail
    assert nano_lib.fix == "arduino-cli lib install Chirale_TensorFLowLite"
    assert c["TFLite Micro (esp32s3)"].status == "skip" and c["TFLite Micro (esp32s3)"].fix is None


def test_esp32_core_2_has_no_tflite_micro(tools):
    tools(cores="ID                Installed Latest Name\narduino:mbed_nano 4.1.5     4.2.1  Nano\n"
                "esp32:esp32       2.0.17    3.3.0  esp32")
    checks = doctor(host=Host(**LINUX), modules=installed)
    c = _by_name(checks)
    assert not doctor_ok(checks)
    assert c["core esp32:esp32"].status == "missing" and "2.0.17 is too old" in c["core esp32:esp32"].detail
    assert c["core esp32:esp32"].fix.endswith(
        "arduino-cli core upgrade esp32:esp32 --additional-urls https://espressif.github.io/arduino-esp32/"
        "package_esp32_index.json")


def test_only_the_chosen_boards_are_checked(tools):
    tools(cores="ID                Installed Latest Name\narduino:mbed_nano 4.1.5     4.2.1  Nano",
          libs="Name                   Installed\nArduino_TensorFlowLite 2.4.0-ALPHA")
    checks = doctor(boards=("nano33ble",), host=Host(**LINUX), modules=installed)
    c = _by_name(checks)
    assert "core esp32:esp32" not in c and "TFLite Micro (esp32s3)" not in c
    # the sketch's default build includes Chirale's header: Arduino_TensorFlowLite alone is not enough
    assert c["TFLite Micro (nano33ble)"].status == "missing" and not doctor_ok(checks)


def test_serial_port_without_permission(tools):
    tools()
    host = Host(**{**LINUX, "groups": {"student"}, "configured_groups": {"student"},
                   "serial_devices": {"/dev/ttyACM0": (False, "dialout"), "/dev/ttyUSB0": (True, "dialout")}})
    checks = doctor(host=host, modules=installed)
    c = _by_name(checks)
    assert not doctor_ok(checks)
    assert c["serial ports"].status == "missing" and "/dev/ttyACM0" in c["serial ports"].detail
    assert "/dev/ttyUSB0" not in c["serial ports"].detail
    assert c["serial ports"].fix == "sudo usermod -aG dialout $USER  # then log out and back in"


def test_arch_linux_uses_uucp(tools):
    tools()
    host = Host(system="Linux", machine="x86_64", user="s", groups={"s"}, configured_groups={"s"},
                existing_groups={"s", "uucp"}, serial_devices={})
    c = _by_name(doctor(host=host, modules=installed))
    assert c["serial ports"].status == "info"  # nothing plugged in
    assert c["group uucp"].status == "warn" and c["group uucp"].fix.startswith("sudo usermod -aG uucp $USER")
    assert doctor_ok(list(c.values()))  # a warning while no board is plugged in


def test_added_to_dialout_but_not_logged_in_again(tools):
    tools()
    host = Host(**{**LINUX, "groups": {"student"}, "serial_devices": {"/dev/ttyACM0": (True, "dialout")}})
    c = _by_name(doctor(host=host, modules=installed))
    assert c["group dialout"].status == "missing" and c["group dialout"].fix == "log out and back in (or reboot)"


def test_root_needs_no_group(tools):
    tools()
    host = Host(**{**LINUX, "is_root": True, "user": "root", "groups": {"root"}, "configured_groups": {"root"}})
    c = _by_name(doctor(host=host, modules=installed))
    assert "group dialout" not in c and c["serial ports"].status == "ok"


def test_tflite_micro_is_informational_where_it_has_no_wheels(tools):
    tools()
    host = Host(**{**LINUX, "machine": "aarch64"})
    c = _by_name(doctor(host=host, modules=lambda n, d: None if n == "tflite_micro" else "1.0"))
    assert c["tflite-micro"].status == "info" and c["tflite-micro"].ok


def test_raspberry_pi_reports_coral_runtime_as_information(tools):
    tools()
    host = Host(**{**LINUX, "machine": "aarch64", "board": "rpi4", "board_why": "Raspberry Pi 4 Model B Rev 1.4"})
    checks = doctor(host=host, modules=lambda n, d: None if n == "pycoral" else installed(n, d))
    c = _by_name(checks)
    assert c["pycoral"].status == "info" and c["pycoral"].fix == "sudo apt-get install python3-pycoral"
    assert c["libedgetpu"].required is False
    assert doctor_ok(checks)


def test_a_broken_arduino_cli_is_reported_not_raised(tools, tmp_path):
    bin_dir = tools()
    (bin_dir / "arduino-cli").write_text(f"#!{sys.executable}\nimport sys\nprint('segfault-ish', file=sys.stderr)\n"
                                         "sys.exit(3)\n")
    c = _by_name(doctor(host=Host(**LINUX), modules=installed))
    assert c["arduino-cli"].status == "missing" and "exit 3" in c["arduino-cli"].detail


def test_which_is_injectable(tools):
    bin_dir = tools()
    c = _by_name(doctor(which=lambda name: None, host=Host(**LINUX), modules=installed))
    assert c["arduino-cli"].status == "missing" and c["esptool"].status == "warn"
    c = _by_name(doctor(which=lambda name: shutil.which(name, path=str(bin_dir)), host=Host(**LINUX),
                        modules=installed))
    assert c["arduino-cli"].status == "ok"


def test_runs_on_this_machine():
    checks = doctor()  # the real PATH, packages and serial devices: it must not crash
    assert {"arduino-cli", "pyserial", "LiteRT", "tflite-micro", "esptool"} <= {c.name for c in checks}
    assert _by_name(checks)["pyserial"].status == "ok"  # an edgekit dependency
    host = Host.current()
    assert host.system and isinstance(host.serial_devices, dict)


@pytest.mark.parametrize("missing, name", [({"qemu": False}, "qemu-system-arm"),
                                           ({"newlib": False}, "newlib for arm-none-eabi")])
def test_what_emu_needs_is_optional_with_the_install_command(tools, missing, name):
    tools(**missing)
    checks = doctor(host=Host(**LINUX), modules=installed)
    c = _by_name(checks)[name]
    assert doctor_ok(checks) and c.status == "info" and not c.required
    assert "--emu" in c.detail or "emulated board" in c.detail
    assert c.fix == ("sudo apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi "
                     "libstdc++-arm-none-eabi-newlib")
    assert c.fix in _text(checks)


def test_on_the_pi_nothing_of_the_microcontrollers_is_required(tools):
    """A week-11 Pi has no arduino-cli, cores or serial boards: doctor passes with the Pi's checks."""
    tools(arduino_cli=False, esptool=False, gcc=False, compiler=False, qemu=False, newlib=False)
    host = Host(**{**LINUX, "machine": "aarch64", "board": "rpi4", "board_why": "EDGEKIT_BOARD=rpi4"})
    checks = doctor(host=host, modules=lambda n, d: None if n in ("pycoral", "tflite_micro") else installed(n, d))
    c = _by_name(checks)
    assert doctor_ok(checks)
    assert c["this machine"].detail == "rpi4 (EDGEKIT_BOARD=rpi4)" and c["LiteRT"].required
    assert "arduino-cli" not in c and "tflite-micro" not in c
    assert c["microcontroller tools"].status == "skip" and not c["microcontroller tools"].required
    assert c["Coral USB Accelerator"].status == "info" and not c["Coral USB Accelerator"].required
    checks = doctor(host=host, modules=lambda n, d: None)  # no LiteRT: the Pi cannot run a model
    assert not doctor_ok(checks) and _by_name(checks)["LiteRT"].fix == "pip install ai-edge-litert"
