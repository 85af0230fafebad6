"""Which one stands behind a board command: the board itself, or its simulator. Decided here once,
for deploy, profile, capture and the Olympics alike.

    choice = choose(load_board("nano33ble"), force=None, port=None)
    choice.mode      # "measured", "emulated" or "simulated"
    choice.port      # the serial port or URL to talk to (None: find it, or the in-process simulator)
    choice.why       # one line for the user

A port (--port, or $EDGEKIT_PORT) is a device path or any pyserial URL: `sim://nano33ble` is the
simulator, `rfc2217://host:port` or `socket://host:port` a board on another machine. With a port,
USB-ID detection is skipped. force="emu" runs the board's real firmware and TFLite Micro kernels
on an emulated Cortex-M4 (QEMU), for the boards whose descriptor has an [emulation] table.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import EdgekitError
from .descriptor import Board
from .detection import BOARD_ENV, Connection, detect

PORT_ENV = "EDGEKIT_PORT"


@dataclass(frozen=True)
class Choice:
    mode: str                        # "measured", "emulated" or "simulated"
    why: str                         # "nano33ble: simulated (no board connected)"
    port: str | None = None          # a device path or pyserial URL given by the user
    connection: Connection | None = None   # the board found by its USB ID (or this machine, for the Pi)

    @property
    def simulated(self) -> bool:
        return self.mode == "simulated"

    @property
    def emulated(self) -> bool:
        return self.mode == "emulated"


def is_sim_url(port: str | None) -> bool:
    return bool(port) and port.lower().startswith("sim://")


def choose(board: Board, force: str | None = None, port: str | None = None,
           detect_board=detect) -> Choice:
    """The board when connected (or force="hw"), else its simulator; `port` (else $EDGEKIT_PORT)
    names the board's port instead of finding it. force="sim" always simulates."""
    if force not in (None, "hw", "sim", "emu"):
        raise ValueError(force)
    if force == "emu":
        return _emulated(board, port)
    given = port
    port = port or os.environ.get(PORT_ENV) or None
    if port and board.kind != "mcu":
        if given:
            raise EdgekitError(f"{board.name} is not reached over a serial port; leave out --port "
                               f"(a Raspberry Pi is profiled on itself, or over ssh with --host)")
        port = None  # $EDGEKIT_PORT names the lab's microcontroller, not this board
    if force == "sim":
        if given and not is_sim_url(given):
            raise EdgekitError(f"--sim and --port {given} disagree: leave out --sim to use the board at "
                               f"{given}, or leave out --port to simulate {board.key}")
        return Choice("simulated", f"{board.key}: simulated (--sim)", given if is_sim_url(given) else None)
    if port:
        if is_sim_url(port):
            if force == "hw":
                raise EdgekitError(f"--hw and --port {port} disagree: {port} is a simulated board; give the "
                                   "real board's port, or leave out --hw")
            return Choice("simulated", f"{board.key}: simulated via {port.split('?')[0]}", port)
        return Choice("measured", f"{board.key}: measured on the board at {port.split('?')[0]}", port)
    conn = detect_board(board)
    if conn is None:
        if force == "hw" and board.kind == "linux":  # the board is this machine, or it is not
            raise EdgekitError(f"--hw: this machine is not a {board.name} (/proc/device-tree/model does not name "
                               f"one); on the board itself, where the device tree is hidden (a container, "
                               f"qemu-user), set EDGEKIT_BOARD={board.key}; from another machine use --host "
                               "user@board, or leave out --hw to simulate it")
        if force == "hw":
            ids = ", ".join(f"{u.vid}:{u.pid}" for u in board.usb) or "this machine's model"
            raise EdgekitError(f"--hw: no {board.name} is connected (looked for {ids}); plug it in, give its "
                               "port with --port, or leave out --hw to simulate it")
        return Choice("simulated", f"{board.key}: simulated (no board connected)")
    if conn.transport == "host":  # edgekit runs on the board itself
        said = (f"{conn.description}, unchecked: no device tree confirms it is a {board.name}, so the figures are "
                "this machine's" if conn.description.startswith(BOARD_ENV) else conn.description)
        return Choice("measured", f"{board.key}: measured on this machine ({said})", connection=conn)
    return Choice("measured", f"{board.key}: measured on the board at {conn.label()}", connection=conn)


def can_emulate(board: Board) -> bool:
    """Whether edgekit can run this board's firmware on an emulated core (its descriptor's [emulation])."""
    return isinstance(board.data.get("emulation"), dict)


def _emulated(board: Board, port: str | None) -> Choice:
    if not can_emulate(board):
        raise EdgekitError(f"--emu: {board.name} cannot be emulated (edgekit emulates Cortex-M4 boards, e.g. "
                           "nano33ble and stm32l4r5); use --sim to simulate it")
    if port:
        raise EdgekitError(f"--emu and --port {port} disagree: the emulated board gets its own port; leave out one")
    return Choice("emulated", f"{board.key}: emulated (the real firmware and TFLite Micro kernels on QEMU's "
                              "Cortex-M4)")
