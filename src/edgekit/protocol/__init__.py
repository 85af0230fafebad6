"""Boards over USB serial: the protocol client, virtual boards and their transports.

    from edgekit.protocol import BoardClient, VirtualBoard, serve_pty
    with BoardClient("/dev/ttyACM0") as b:            # or "sim://nano33ble?model=m_int8.tflite", "rfc2217://host:port"
        b.info(); b.load(x.tobytes()); b.infer(10, 1); b.raw(); b.layers()

The protocol is docs/protocol.md (MLPerf Tiny's host-device protocol plus edgekit's commands).
Importing this package registers it with pyserial, so serial.serial_for_url("sim://...") works.
Its names load when first used: the CLI reads its options (arguments.py) without the rest.
"""
import importlib

import serial as _serial

if "edgekit.protocol" not in _serial.protocol_handler_packages:
    _serial.protocol_handler_packages.append("edgekit.protocol")

__all__ = ["BoardClient", "BoardError", "BoardGone", "BoardReplyError", "BoardReset", "BoardTimeout",
           "Faults", "Frame", "SimSerial", "Stream", "VirtualBoard", "add_cli", "board_from_url",
           "VirtualSensor", "fixed3", "format_result", "run_board", "run_serve", "serve_pty", "serve_rfc2217"]

_HOME = {"BoardClient": "client", "BoardError": "client", "BoardGone": "client", "BoardReplyError": "client",
         "BoardReset": "client", "BoardTimeout": "client", "Frame": "client", "Stream": "client",
         "Faults": "faults", "add_cli": "arguments", "SimSerial": "transport", "board_from_url": "transport",
         "run_board": "transport", "run_serve": "transport", "serve_pty": "transport", "serve_rfc2217": "transport",
         "VirtualBoard": "virtual", "VirtualSensor": "virtual", "fixed3": "virtual", "format_result": "virtual"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'edgekit.protocol' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
