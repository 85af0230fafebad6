"""The boards edgekit deploys to: descriptors (targets/<key>.toml, every number with its source)
and detection of the boards connected now.

    from edgekit.targets import load_board, all_boards, connected
    load_board("esp32s3").num("memory.psram_bytes")
"""
from .board import (Board, Connection, Sensor, UsbId, all_boards, board_keys, connected, detect,
                    load_board, load_board_file, parse_board, render_targets, targets_dir,
                    targets_report)

__all__ = ["Board", "Connection", "Sensor", "UsbId", "all_boards", "board_keys", "connected", "detect",
           "load_board", "load_board_file", "parse_board", "render_targets", "targets_dir", "targets_report"]
