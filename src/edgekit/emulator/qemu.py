"""Running an image on QEMU's mps2-an386 (Cortex-M4F), its UART0 behind a local TCP port.

    with start(image) as emu:
        with BoardClient(emu.port) as board:     # emu.port = "socket://127.0.0.1:<port>"
            board.info()

`-icount shift=0` makes the guest's clock count instructions (one per virtual ns), so timings are
exact and repeatable. QEMU holds the guest until the first client connects (wait=on): nothing the
firmware prints is lost. The process is killed on close(), on leaving the `with`, and at exit.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import EdgekitError

QEMU_INSTALL = "sudo apt-get install qemu-system-arm"
MACHINE = "mps2-an386"


def qemu_binary() -> str:
    path = shutil.which("qemu-system-arm")
    if not path:
        raise EdgekitError(f"qemu-system-arm is not installed: {QEMU_INSTALL}")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_command(elf: Path, port: int) -> list[str]:
    return [qemu_binary(), "-M", MACHINE, "-icount", "shift=0", "-nographic", "-monitor", "none",
            "-kernel", str(elf), "-semihosting-config", "enable=on,target=native",
            "-chardev", f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on", "-serial", "chardev:s0"]


class Emulation:
    """A running QEMU; a context manager. `port` is the pyserial URL of the board's serial port."""

    def __init__(self, process: subprocess.Popen, port: str, log, elf: Path):
        self.process = process
        self.port = port
        self.elf = elf
        self._log = log
        atexit.register(self.close)

    def log(self) -> str:
        """What QEMU wrote to stdout and stderr so far."""
        try:  # pread: QEMU shares the file offset, which must stay where it writes
            return os.pread(self._log.fileno(), 1 << 20, 0).decode(errors="replace")
        except (OSError, ValueError):
            return ""

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        atexit.unregister(self.close)
        self._log.close()

    def __enter__(self) -> "Emulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def start(image, timeout_s: float = 30.0) -> Emulation:
    """Starts QEMU on image.path (an Image or an ELF path) and returns once it listens for the serial
    client; EdgekitError (one line, QEMU's own message in it) if it cannot."""
    elf = Path(getattr(image, "path", image))
    if not elf.is_file():
        raise EdgekitError(f"the firmware image {elf} does not exist; build it with edgekit.emulator.build_image")
    for attempt in range(3):  # the free port can be taken between the probe and QEMU's bind
        port = _free_port()
        log = tempfile.TemporaryFile(prefix="edgekit-qemu-")
        try:
            proc = subprocess.Popen(qemu_command(elf, port), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        except OSError as e:
            log.close()
            raise EdgekitError(f"could not start qemu-system-arm ({e.strerror or e}); reinstall it: "
                               f"{QEMU_INSTALL}") from None
        emu = Emulation(proc, f"socket://127.0.0.1:{port}", log, elf)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = emu.log()
            if "waiting for connection" in text:
                return emu
            if not emu.running:
                break
            time.sleep(0.01)
        text = emu.log()
        emu.close()
        if emu.process.returncode is None or emu.process.returncode == -9:
            raise EdgekitError(f"QEMU did not open its serial port within {timeout_s:g} s; the machine may be "
                               "overloaded: try again, or give start() a longer timeout_s")
        if "Address already in use" in text and attempt < 2:
            continue
        raise EdgekitError(f"QEMU stopped before the board started: {_last_line(text)}; check that "
                           f"qemu-system-arm supports -M {MACHINE} (QEMU 6.0 or later) and that {elf} is an "
                           "image from edgekit.emulator.build_image")
    raise AssertionError("unreachable")
