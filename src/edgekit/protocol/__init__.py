"""Boards over USB serial: the protocol client, virtual boards and their transports.

    from edgekit.protocol import BoardClient, VirtualBoard, serve_pty
    with BoardClient("/dev/ttyACM0") as b:            # or "sim://nano33ble?model=m_int8.tflite", "rfc2217://host:port"
        b.info(); b.load(x.tobytes()); b.infer(10, 1); b.raw(); b.layers()

The protocol is docs/protocol.md (MLPerf Tiny's host-device protocol plus edgekit's commands).
Importing this package registers it with pyserial, so serial.serial_for_url("sim://...") works.
"""
import serial as _serial

if "edgekit.protocol" not in _serial.protocol_handler_packages:
    _serial.protocol_handler_packages.append("edgekit.protocol")

from .client import (BoardClient, BoardError, BoardGone, BoardReplyError, BoardReset, BoardTimeout,  # noqa: E402
                     Frame, Stream)
from .faults import Faults  # noqa: E402
from .transport import SimSerial, add_cli, board_from_url, run_board, run_serve, serve_pty, serve_rfc2217  # noqa: E402
from .virtual import VirtualBoard, VirtualSensor, fixed3, format_result  # noqa: E402

__all__ = ["BoardClient", "BoardError", "BoardGone", "BoardReplyError", "BoardReset", "BoardTimeout",
           "Faults", "Frame", "SimSerial", "Stream", "VirtualBoard", "add_cli", "board_from_url",
           "VirtualSensor", "fixed3", "format_result", "run_board", "run_serve", "serve_pty", "serve_rfc2217"]
