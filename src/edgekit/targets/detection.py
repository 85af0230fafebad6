"""Which boards are connected now: a serial port with a board's USB ID, a Coral on the USB bus, or
this machine being a Raspberry Pi.

    from edgekit.targets import connected, detect, load_board
    connected()                       # {"nano33ble": Connection(device="/dev/ttyACM0", role="sketch", ...)}

Which board this machine is: $EDGEKIT_BOARD (e.g. rpi4) when set, else the board whose
device_tree_model /proc/device-tree/model names. The variable is for where the device tree is
hidden (a container on a Pi masks /sys/firmware; qemu-user has none) and for testing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekitError
from .descriptor import Board, _hex4, all_boards

BOARD_ENV = "EDGEKIT_BOARD"


@dataclass(frozen=True)
class Connection:
    key: str
    transport: str                   # "serial" (a port), "usb" (sysfs device), "host" (this machine)
    device: str                      # /dev/ttyACM0, COM3, usb:2-1, localhost
    role: str                        # sketch | bootloader | runtime | host
    vid: str | None = None
    pid: str | None = None
    serial_number: str | None = None
    description: str = ""
    speed_mbps: int | None = None    # USB link speed where the OS reports it (Coral: 5000 = USB 3)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}

    def label(self) -> str:
        extra = f", {self.speed_mbps} Mb/s" if self.speed_mbps else ""
        return f"{self.device} ({self.role}{extra})"


_ROLE_ORDER = {"sketch": 0, "runtime": 0, "bootloader": 1}


def _serial_ports() -> list:
    try:
        from serial.tools import list_ports
    except ImportError:  # pragma: no cover - pyserial is a dependency
        return []
    try:
        return list(list_ports.comports())
    except Exception:  # pragma: no cover - a broken OS enumeration is "nothing connected"
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode(errors="replace").strip("\x00\n\r\t ")
    except OSError:
        return None


def _detect_serial(board: Board, ports: list) -> Connection | None:
    found = []
    for port in ports:
        for u in board.usb:
            if u.matches(getattr(port, "vid", None), getattr(port, "pid", None)):
                found.append((_ROLE_ORDER.get(u.role, 2), port.device, port, u))
    if not found:
        return None
    _, _, port, u = min(found, key=lambda t: (t[0], t[1]))
    return Connection(board.key, "serial", port.device, u.role, u.vid, u.pid,
                      getattr(port, "serial_number", None) or None,
                      getattr(port, "description", "") or "")


def _detect_sysfs_usb(board: Board, sysfs_root: Path) -> Connection | None:
    devices = sysfs_root / "bus" / "usb" / "devices"
    if not devices.is_dir():
        return None
    found = []
    for dev in sorted(devices.iterdir()):
        vid, pid = _read(dev / "idVendor"), _read(dev / "idProduct")
        if not vid or not pid:
            continue
        for u in board.usb:
            if _hex4(vid) and _hex4(pid) and u.matches(vid, pid):
                found.append((_ROLE_ORDER.get(u.role, 2), dev, u))
    if not found:
        return None
    _, dev, u = min(found, key=lambda t: (t[0], t[1].name))
    speed = _read(dev / "speed")
    try:
        speed_mbps = int(float(speed)) if speed else None
    except ValueError:
        speed_mbps = None
    desc = " ".join(x for x in (_read(dev / "manufacturer"), _read(dev / "product")) if x)
    return Connection(board.key, "usb", f"usb:{dev.name}", u.role, u.vid, u.pid,
                      _read(dev / "serial") or None, desc, speed_mbps)


def this_machine(proc_root: str | Path = "/proc") -> tuple[Board, str] | None:
    """The board edgekit runs on, and how that is known; None on a laptop or a PC."""
    linux = [b for b in all_boards() if b.kind == "linux"]
    named = os.environ.get(BOARD_ENV, "").strip()
    if named:
        for b in linux:
            if b.key == named:
                return b, f"{BOARD_ENV}={named}"
        raise EdgekitError(f"{BOARD_ENV}={named} is not a board edgekit runs on; set it to "
                           f"{' or '.join(b.key for b in linux)}, or unset it to read /proc/device-tree/model")
    model = _read(Path(proc_root) / "device-tree" / "model")
    for b in linux:
        wanted = b.data.get("device_tree_model")
        if model and wanted and wanted in model:
            return b, model
    return None


def _detect_host(board: Board, proc_root: Path) -> Connection | None:
    found = this_machine(proc_root)
    if found and found[0].key == board.key:
        return Connection(board.key, "host", "localhost", "host", description=found[1])
    return None


def detect(board: Board, *, ports: list | None = None, sysfs_root: str | Path = "/sys",
           proc_root: str | Path = "/proc") -> Connection | None:
    """Where `board` is connected now, or None.

    MCUs: a serial port whose USB VID/PID is in the board's usb list (pyserial's comports(), or
    `ports` for tests); a sketch port wins over a bootloader one. Accelerators (the Coral, which
    is no serial device): a USB device under <sysfs_root>/bus/usb/devices with a listed ID
    (Linux only). A Linux board (the Pi): <proc_root>/device-tree/model contains the descriptor's
    device_tree_model, i.e. edgekit itself runs on it.
    """
    if board.kind == "mcu" and board.usb:
        return _detect_serial(board, _serial_ports() if ports is None else ports)
    if board.kind == "accelerator" and board.usb:
        return _detect_sysfs_usb(board, Path(sysfs_root))
    if board.kind == "linux":
        return _detect_host(board, Path(proc_root))
    return None


def connected(*, ports: list | None = None, sysfs_root: str | Path = "/sys",
              proc_root: str | Path = "/proc", boards: list[Board] | None = None) -> dict[str, Connection]:
    """{key: Connection} for every known board connected now (serial ports enumerated once)."""
    boards = all_boards() if boards is None else boards
    if ports is None and any(b.kind == "mcu" and b.usb for b in boards):
        ports = _serial_ports()
    out = {}
    for b in boards:
        conn = detect(b, ports=ports, sysfs_root=sysfs_root, proc_root=proc_root)
        if conn is not None:
            out[b.key] = conn
    return out
