"""The top of the hardware side: one backend class per board kind, over the layers below it.

    backend = open_backend("nano33ble")        # the board if connected, else its simulator
    backend.load(model)                         # an int8 TFLiteModel; the simulation is made once
    backend.check_fit()                         # raises with needed / available / short by
    backend.flash()
    outputs = backend.infer(int8_inputs)
    report = backend.profile()                  # report.mode is "measured" or "simulated"

Which stands behind a board (the board, or its simulator) is decided once, by
edgekit.targets.choose. A simulated board of any kind, and a microcontroller itself, are driven over
the serial protocol (edgekit.protocol); a Raspberry Pi runs the model in this process (edgekit.pi);
the Coral adds its Edge TPU plan (edgekit.edgetpu) to the Pi's backend.
"""
from __future__ import annotations

from ..targets import Board, choose, load_board
from .base import Backend
from .coral import Coral
from .linux import LinuxBoard
from .mcu import Microcontroller

BACKENDS: dict[str, type[Backend]] = {"mcu": Microcontroller, "linux": LinuxBoard, "accelerator": Coral}


def open_backend(board: Board | str, force: str | None = None, port: str | None = None,
                 connection=None) -> Backend:
    """The backend for `board`: the board when connected (or force="hw"; or at `port`), else its
    simulator (force="sim" always). `connection`: a board already found, skipping detection."""
    board = load_board(board) if isinstance(board, str) else board
    detect = (lambda b: connection) if connection is not None else None
    choice = choose(board, force, port, **({"detect_board": detect} if detect else {}))
    return BACKENDS[board.kind](board, choice)


__all__ = ["BACKENDS", "Backend", "Coral", "LinuxBoard", "Microcontroller", "open_backend"]
