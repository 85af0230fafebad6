"""The emulated board: the Nano sketch's protocol core, TFLite Micro wiring and generated model files,
built for the Cortex-M4 against the real TFLite Micro + CMSIS-NN library (with the board's own
compiler flags) and run on QEMU's mps2-an386, spoken to over the same serial protocol.

    from edgekit import emulator
    ok, why = emulator.available("nano33ble")
    image = emulator.build_image(model, "nano33ble", progress=print)
    with emulator.start(image) as emu, BoardClient(emu.port) as board:
        board.info()        # firmware "edgekit-emulated <version>"; every "us" is an instruction count

library.py builds and caches the library, image.py the per-model image, qemu.py runs it.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import EdgekitError
from .image import Image, build_image, emulated_board
from .library import find_library
from .qemu import Emulation, start

__all__ = ["Emulation", "Image", "available", "build_image", "find_library", "start"]

APT = "sudo apt-get install"


def _arm_lib(gxx: str, name: str) -> bool:
    """Whether the arm-none-eabi toolchain has `name` (libc.a, libstdc++.a) for the Cortex-M4."""
    try:
        out = subprocess.run([gxx, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16",
                              f"-print-file-name={name}"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return os.path.isabs(out) and os.path.isfile(out)


def available(board=None) -> tuple[bool, str]:
    """(True, "") when QEMU, the Arm toolchain with newlib and libstdc++, and the TFLite Micro Arduino
    library are all here (and `board`, if given, can be emulated); else (False, what is missing and
    the command that installs it)."""
    if board is not None:
        try:
            emulated_board(board)
        except EdgekitError as e:
            return False, str(e)
    if not shutil.which("qemu-system-arm"):
        return False, f"qemu-system-arm is not installed: {APT} qemu-system-arm"
    gxx = shutil.which("arm-none-eabi-g++")
    if not gxx or not shutil.which("arm-none-eabi-gcc"):
        return False, f"the Arm GNU toolchain (arm-none-eabi-g++) is not installed: {APT} gcc-arm-none-eabi"
    if not _arm_lib(gxx, "libc.a"):
        return False, f"newlib for arm-none-eabi is not installed: {APT} libnewlib-arm-none-eabi"
    if not _arm_lib(gxx, "libstdc++.a"):
        return False, f"libstdc++ for arm-none-eabi is not installed: {APT} libstdc++-arm-none-eabi-newlib"
    try:
        find_library()
    except EdgekitError as e:
        return False, str(e)
    return True, ""
