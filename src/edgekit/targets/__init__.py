"""The bottom of the hardware side: what edgekit knows about each board (targets/<key>.toml, every
number with its source) and which boards are connected now. Nothing here imports upward.

    from edgekit.targets import load_board, all_boards, connected
    load_board("esp32s3").num("memory.psram_bytes")
"""
from .descriptor import (Board, Sensor, UsbId, all_boards, board_keys, load_board, load_board_file,
                         parse_board, targets_dir)
from .detection import BOARD_ENV, Connection, connected, detect, this_machine
from .choose import PORT_ENV, Choice, can_emulate, choose, is_sim_url
from .table import render_targets, targets_report

__all__ = ["BOARD_ENV", "PORT_ENV", "Board", "Choice", "Connection", "can_emulate", "choose", "is_sim_url", "Sensor", "UsbId", "all_boards", "board_keys", "connected", "detect",
           "load_board", "load_board_file", "parse_board", "render_targets", "targets_dir", "targets_report",
           "this_machine"]
