"""Running an image on QEMU's mps2-an386 (Cortex-M4F), its UART0 behind a local TCP port.

    with start(image) as emu:
        with BoardClient(emu.port) as board:     # emu.port = "socket://127.0.0.1:<port>"
            board.info()

`-icount shift=0` makes the guest's clock count instructions (one per virtual ns), so timings are
exact and repeatable. QEMU holds the guest until a client connects (wait=on); start() connects
first, reads the boot banner (kept in `banner`) and lets go, so the board is booted and idle when
the caller's client connects. The process is killed on close(), on leaving the `with`, and at exit.
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
    # tb-size: QEMU reserves a 1 GB translation cache by default, more than a memory-limited
    # process (an Olympics evaluation) may have; 64 MB holds the whole firmware's code many times
    return [qemu_binary(), "-M", MACHINE, "-accel", "tcg,tb-size=64", "-icount", "shift=0", "-nographic",
            "-monitor", "none",
            "-kernel", str(elf), "-semihosting-config", "enable=on,target=native",
            "-chardev", f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on", "-serial", "chardev:s0"]


class Emulation:
    """A running QEMU; a context manager. `port` is the pyserial URL of the board's serial port."""

    def __init__(self, process: subprocess.Popen, port: str, log, elf: Path):
        self.process = process
        self.port = port
        self.elf = elf
        self._log = log
        self.banner: str | None = None  # what the firmware printed at boot, up to m-ready
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


def _boot(port: int, deadline: float) -> tuple[str, bool]:
    """Connects once and reads the boot banner up to its m-ready, as a board that booted before the
    host opened its port (a client connecting later then starts with an idle board, not a banner
    crossing its first command). (what arrived, whether the banner was complete)."""
    buf = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=max(0.1, deadline - time.monotonic())) as s:
            while b"m-ready" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        pass
    return buf.decode(errors="replace"), b"m-ready" in buf


def start(image, timeout_s: float = 30.0) -> Emulation:
    """Starts QEMU on image.path (an Image or an ELF path) and returns once the firmware booted (its
    banner read) and QEMU listens for the caller's client; EdgekitError (one line, QEMU's or the
    firmware's own message in it) if it cannot."""
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
                emu.banner, booted = _boot(port, deadline)
                if booted:
                    return emu
                break
            if not emu.running:
                break
            time.sleep(0.01)
        text = emu.log()
        emu.close()
        said = [ln for ln in (emu.banner or "").splitlines() if ln.startswith("e-[")]
        if said:  # the firmware's own last words (a fault at boot)
            raise EdgekitError(f"the emulated board stopped while booting: {said[-1]}; rebuild the image, and "
                               "report it with the build folder if it happens again")
        if emu.process.returncode is None or emu.process.returncode == -9:
            raise EdgekitError(f"the emulated board did not boot within {timeout_s:g} s; the machine may be "
                               "overloaded: try again, or give start() a longer timeout_s")
        if "Address already in use" in text and attempt < 2:
            continue
        raise EdgekitError(f"QEMU stopped before the board started: {_last_line(text)}; check that "
                           f"qemu-system-arm supports -M {MACHINE} (QEMU 6.0 or later) and that {elf} is an "
                           "image from edgekit.emulator.build_image")
    raise AssertionError("unreachable")
