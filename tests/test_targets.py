"""Board descriptors (targets/*.toml), their loader, board detection and `edgekit targets`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from edgekit.errors import EdgekitError
from edgekit.targets import (all_boards, board_keys, connected, detect, load_board, load_board_file,
                             targets_dir)

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TOMLS = sorted((ROOT / "targets").glob("*.toml"))
KEYS = {"nano33ble", "esp32s3", "rpi4", "coral", "stm32l4r5"}


# ---------------------------------------------------------------------------------------------
# The descriptors themselves, read without edgekit's loader
# ---------------------------------------------------------------------------------------------

def _numbers_without_source(node, where=""):
    """Paths of numbers not inside a {value, source} table with a non-empty source."""
    if isinstance(node, dict):
        if "value" in node:
            return [] if isinstance(node.get("source"), str) and node["source"].strip() else [where]
        return [p for k, v in node.items() for p in _numbers_without_source(v, f"{where}.{k}".strip("."))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _numbers_without_source(v, f"{where}[{i}]")]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [where]
    return []


def test_the_five_descriptors_exist():
    assert {p.stem for p in TOMLS} == KEYS


@pytest.mark.parametrize("path", TOMLS, ids=lambda p: p.name)
def test_every_number_has_a_source(path):
    data = tomllib.loads(path.read_text())
    assert _numbers_without_source(data) == []
    # and the walk does see numbers: every board has a clock with its source
    assert data["chip"]["clock_hz"]["source"].strip()
    for u in data.get("usb", []):
        assert u["source"].strip(), u


def _sources(node, where=""):
    if isinstance(node, dict):
        if "value" in node:
            return [(where, node.get("source", ""))]
        return [s for k, v in node.items() for s in _sources(v, f"{where}.{k}".strip("."))]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _sources(v, f"{where}[{i}]")]
    return []


@pytest.mark.parametrize("path", TOMLS, ids=lambda p: p.name)
def test_fitted_values_live_only_in_the_latency_table(path):
    # datasheet, publication and measurement numbers are what the simulator is fitted against;
    # what edgekit.sim.fit produces goes in [latency], marked "fitted: edgekit.sim.fit"
    for where, source in _sources(tomllib.loads(path.read_text())):
        if source.lower().startswith("fitted"):
            assert where.startswith("latency."), where


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def test_load_each_board():
    boards = {b.key: b for b in all_boards()}
    assert set(boards) == KEYS == set(board_keys())
    for b in boards.values():
        assert b.num("chip.clock_hz") > 0 and b.source("chip.clock_hz")
        assert b.num("compute.peak_macs_per_cycle") > 0
        assert all(isinstance(v, (int, float, list)) for v in b.numbers().values())
        assert set(b.numbers()) == set(b.sources())
    nano = boards["nano33ble"]
    assert nano.num("memory.sram_bytes") == 256 * 1024 and nano.num("memory.flash_bytes") == 1024 * 1024
    assert "nRF52840" in nano.source("memory.sram_bytes")
    assert (nano.kind, nano.runtime, nano.kernels, nano.arch) == ("mcu", "tflm", "cmsis-nn", "arm")
    assert nano.fqbn == "arduino:mbed_nano:nano33ble"
    assert {(u.vid, u.pid, u.role) for u in nano.usb} == {("2341", "805a", "sketch"), ("2341", "005a", "bootloader")}
    assert {s.name for s in nano.sensors} >= {"imu", "microphone", "temperature", "pressure", "light"}
    esp = boards["esp32s3"]
    assert esp.board_options == "PSRAM=opi" and esp.num("memory.psram_bytes") == 8 * 1024 * 1024
    assert esp.num("compute.peak_macs_per_cycle") == 16
    pi = boards["rpi4"]
    assert pi.num("compute.threads") == 4 and pi.num("thermal.throttle_c") == 80
    assert pi.has("memory.dram_bw_bytes_per_s") and not pi.has("memory.sram_bw_bytes_per_s")
    coral = boards["coral"]
    assert coral.host == "rpi4" and coral.kind == "accelerator"
    assert coral.num("compute.invoke_overhead_s") == pytest.approx(38e-6)
    assert coral.num("chip.std_clock_hz") == 250e6 and coral.num("chip.clock_hz") == 500e6


def test_tflm_boards_agree_with_the_arena_planner():
    from edgekit.sim import arena
    for b in all_boards():
        if b.runtime == "tflm":
            library = arena.kernel_library(b.kernels) or "reference"
            assert b.arch in arena.KERNELS and library in arena.KERNELS[b.arch], b.key


def test_missing_entry_is_one_line_naming_the_board():
    with pytest.raises(EdgekitError) as e:
        load_board("nano33ble").num("memory.dram_bytes")
    assert "nano33ble" in str(e.value) and "\n" not in str(e.value)
    assert load_board("nano33ble").num("memory.dram_bytes", None) is None


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(EdgekitError) as e:
        load_board("uno")
    msg = str(e.value)
    assert "\n" not in msg and "'uno'" in msg
    assert all(k in msg for k in KEYS)


def _write(tmp_path, body, name="myboard"):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'key = "{name}"\nname = "My board"\nkind = "mcu"\nruntime = "tflm"\n'
                    f'kernels = "cmsis-nn"\narch = "arm"\n{body}')
    return path


def test_a_number_without_source_is_refused(tmp_path):
    ok = _write(tmp_path, '[chip]\nclock_hz = { value = 64_000_000, source = "datasheet" }\n')
    assert load_board_file(ok).num("chip.clock_hz") == 64_000_000

    bare = _write(tmp_path, "[memory]\nsram_bytes = 262144\n")
    with pytest.raises(EdgekitError) as e:
        load_board_file(bare)
    msg = str(e.value)
    assert "myboard.toml" in msg and "memory.sram_bytes" in msg and "source" in msg and "\n" not in msg

    empty = _write(tmp_path, '[memory]\nsram_bytes = { value = 262144, source = " " }\n')
    with pytest.raises(EdgekitError, match=r"myboard\.toml.*memory\.sram_bytes.*no source"):
        load_board_file(empty)

    no_source = _write(tmp_path, "[memory]\nsram_bytes = { value = 262144 }\n")
    with pytest.raises(EdgekitError, match="memory.sram_bytes"):
        load_board_file(no_source)

    in_a_list = _write(tmp_path, '[[sensors]]\nname = "imu"\npart = "x"\nchannels = ["ax"]\n'
                                 'units = ["g"]\nrates_hz = [100]\n')
    with pytest.raises(EdgekitError, match=r"sensors\[0\]\.rates_hz"):
        load_board_file(in_a_list)

    usb = _write(tmp_path, 'usb = [ { vid = "2341", pid = "805a", role = "sketch" } ]\n')
    with pytest.raises(EdgekitError, match=r"usb\[0\].*no source"):
        load_board_file(usb)


def test_a_bad_descriptor_is_refused(tmp_path):
    with pytest.raises(EdgekitError, match="not valid TOML"):
        load_board_file(_write(tmp_path, "[chip\n"))
    phone = _write(tmp_path, "")
    phone.write_text(phone.read_text().replace('"mcu"', '"phone"'))
    with pytest.raises(EdgekitError, match="kind = 'phone' is not one of mcu, linux, accelerator"):
        load_board_file(phone)
    wrong_key = tmp_path / "other.toml"
    wrong_key.write_text(_write(tmp_path, "").read_text())
    with pytest.raises(EdgekitError, match="differs from the file name"):
        load_board_file(wrong_key)


def test_targets_dir_is_the_repository_folder_here():
    # an editable install (or src/ on the path) reads targets/ in place; a wheel reads edgekit/boards/
    assert {p.stem for p in targets_dir().glob("*.toml")} == KEYS


def test_every_package_ships_in_the_wheel():
    # pyproject lists its packages (targets/ ships as edgekit.boards), so a new package must be listed
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")}
    assert found <= set(cfg["packages"]), f"add {sorted(found - set(cfg['packages']))} to pyproject.toml"
    assert cfg["package-dir"]["edgekit.boards"] == "targets"
    assert "*.toml" in cfg["package-data"]["edgekit.boards"]


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------

def _port(device, vid, pid, serial_number, description="n/a"):
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.serial_number, p.description = vid, pid, serial_number, description
    return p


def test_serial_detection_by_usb_id(monkeypatch, tmp_path):
    nano_sketch = _port("/dev/ttyACM0", 0x2341, 0x805A, "ABCDEF0123456789", "Nano 33 BLE")
    esp = _port("/dev/ttyACM1", 0x303A, 0x1001, "F4:12:FA:00:11:22", "USB JTAG/serial debug unit")
    ftdi = _port("/dev/ttyUSB0", 0x0403, 0x6001, "A10KZ3X5", "FT232R USB UART")
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: [ftdi, esp, nano_sketch])
    none = {"sysfs_root": tmp_path / "nosys", "proc_root": tmp_path / "noproc"}

    found = connected(**none)
    assert set(found) == {"nano33ble", "esp32s3"}      # the FTDI adapter is nobody's
    nano = found["nano33ble"]
    assert (nano.transport, nano.device, nano.role, nano.serial_number) == \
        ("serial", "/dev/ttyACM0", "sketch", "ABCDEF0123456789")
    assert (nano.vid, nano.pid) == ("2341", "805a")
    assert found["esp32s3"].device == "/dev/ttyACM1" and found["esp32s3"].role == "sketch"

    # a double-tapped Nano shows its bootloader ID; the same board, role bootloader
    boot = _port("/dev/ttyACM2", 0x2341, 0x005A, "ABCDEF0123456789")
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: [boot, ftdi])
    conn = detect(load_board("nano33ble"), **none)
    assert conn.role == "bootloader" and conn.device == "/dev/ttyACM2"
    assert detect(load_board("esp32s3"), **none) is None

    # with both, the sketch port wins; an explicit port list needs no monkeypatching
    assert detect(load_board("nano33ble"), ports=[boot, nano_sketch]).role == "sketch"
    assert detect(load_board("esp32s3"), ports=[_port("COM7", 0x2886, 0x0056, None)]).device == "COM7"
    assert connected(ports=[ftdi], **none) == {}


def _usb_device(root, name, vid, pid, speed=None, serial=None, product=None):
    d = root / "bus" / "usb" / "devices" / name
    d.mkdir(parents=True)
    (d / "idVendor").write_text(vid + "\n")
    (d / "idProduct").write_text(pid + "\n")
    for fname, text in (("speed", speed), ("serial", serial), ("product", product)):
        if text is not None:
            (d / fname).write_text(text + "\n")
    return d


def test_coral_detection_from_sysfs(tmp_path):
    sysfs = tmp_path / "sys"
    _usb_device(sysfs, "1-1", "1d6b", "0002", "480")                 # a root hub
    _usb_device(sysfs, "1-1.3", "046d", "c52b", "12")                # a mouse
    (sysfs / "bus" / "usb" / "devices" / "1-1:1.0").mkdir()         # interfaces have no idVendor
    coral = load_board("coral")
    assert detect(coral, sysfs_root=sysfs) is None

    _usb_device(sysfs, "2-1", "1a6e", "089a", "5000")                # before libedgetpu loads firmware
    conn = detect(coral, sysfs_root=sysfs)
    assert (conn.transport, conn.device, conn.role, conn.speed_mbps) == ("usb", "usb:2-1", "bootloader", 5000)

    _usb_device(sysfs, "2-2", "18d1", "9302", "5000", serial="1234", product="Coral USB Accelerator")
    conn = detect(coral, sysfs_root=sysfs)
    assert (conn.device, conn.role, conn.vid, conn.pid) == ("usb:2-2", "runtime", "18d1", "9302")
    assert conn.serial_number == "1234" and "Coral" in conn.description
    assert "coral" in connected(ports=[], sysfs_root=sysfs, proc_root=tmp_path / "noproc")
    assert detect(coral, sysfs_root=tmp_path / "nothing-here") is None


def test_pi_detection_from_the_device_tree(tmp_path):
    pi = load_board("rpi4")
    (tmp_path / "device-tree").mkdir()
    model = tmp_path / "device-tree" / "model"
    model.write_bytes(b"Raspberry Pi 3 Model B Plus Rev 1.3\x00")
    assert detect(pi, proc_root=tmp_path) is None
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    conn = detect(pi, proc_root=tmp_path)
    assert (conn.transport, conn.device, conn.role) == ("host", "localhost", "host")
    assert conn.description == "Raspberry Pi 4 Model B Rev 1.4"
    assert detect(pi, proc_root=tmp_path / "no-proc") is None


def test_edgekit_board_says_which_board_this_machine_is(tmp_path, monkeypatch):
    """Where the device tree is hidden (a container on a Pi, qemu-user), EDGEKIT_BOARD says it; it
    wins over the device tree, and a name that is no board edgekit runs on is one line."""
    from edgekit.errors import EdgekitError
    from edgekit.targets import BOARD_ENV, this_machine
    pi = load_board("rpi4")
    monkeypatch.setenv(BOARD_ENV, "rpi4")
    conn = detect(pi, proc_root=tmp_path / "no-proc")
    assert (conn.transport, conn.description) == ("host", "EDGEKIT_BOARD=rpi4")
    (tmp_path / "device-tree").mkdir()
    (tmp_path / "device-tree" / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    monkeypatch.setenv(BOARD_ENV, "nano33ble")  # a microcontroller runs no edgekit
    with pytest.raises(EdgekitError, match="EDGEKIT_BOARD=nano33ble is not a board edgekit runs on; set it to rpi4"):
        this_machine(tmp_path)
    monkeypatch.delenv(BOARD_ENV)
    assert this_machine(tmp_path)[0].key == "rpi4" and this_machine(tmp_path / "no-proc") is None


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def test_edgekit_targets_json():
    r = subprocess.run([sys.executable, "-m", "edgekit", "targets", "--json"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["targets"]
    assert {row["key"] for row in rows} == KEYS
    for row in rows:
        assert row["name"] and row["chip"] and row["runtime"] and row["kernels"]
    nano = next(row for row in rows if row["key"] == "nano33ble")
    assert nano["sram_bytes"] == 262144 and nano["clock_hz"] == 64_000_000
    if not connected():  # no board plugged into this machine (CI, the dev container)
        assert not any(row["connected"] for row in rows)
        assert all(row["status"] == "not connected (simulated)" for row in rows)


def test_edgekit_targets_table():
    r = subprocess.run([sys.executable, "-m", "edgekit", "targets"], capture_output=True, text=True,
                       timeout=120, cwd=ROOT, env={**os.environ, "COLUMNS": "160"})
    assert r.returncode == 0, r.stderr
    for text in ("nano33ble", "esp32s3", "rpi4", "coral", "stm32l4r5", "nRF52840 @ 64 MHz", "256 KiB"):
        assert text in r.stdout
