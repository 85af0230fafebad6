"""The stand-in model, fake clock and "counter" sensor of the C++ host harness
(firmware/host/edgekit_host_board.cpp, whose header comment is the spec), reproduced exactly so
that VirtualBoard(key, stand_in=True) and `edgekit_host_board --board <key>` give byte-identical
replies to the same commands.

  input   int8, INPUT_BYTES = 96*96*3 bytes; the buffer starts all zero and db load never clears it
  invoke  output[i] = (sum of input[j] over j % 4 == i, bytes as unsigned 0..255) mod 256, i = 0..3
  output  4 bytes int8, scale 1/256, zero point -128 (results: (q + 128) / 256, 3 decimals)
  layers  CONV_2D 400 us, DEPTHWISE_CONV_2D 300, FULLY_CONNECTED 200, SOFTMAX 100 (sum 1000)
  info    the harness's defaults: firmware "0.1.0", model tag "edgekit", sha256 64 zeros,
          arena 131072 (used 98304), flash 262144; board = the target key and clock = its
          chip.clock_hz (run the harness with --board <key> --clock-hz <hz>; nano33ble's 64 MHz
          is the harness default)
  clock   starts at 0; +10 us for every '%' received (before its command runs; ignored and
          overlong commands too); +1000 us per invoke (warm-up runs included); while streaming
          it moves to each sample's due time. So `infer 10 1%` first answers m-lap-us-1010 and
          m-lap-us-11010.
  sensor  "counter": 3 channels, at most 10000 Hz, 4 samples per frame; sample k, channel c:
          int16(((3k + c) * 1000) mod 65536); frame f holds samples 4f..4f+3 and
          t_us = t0 + floor(4f * 1e6 / rate), t0 = the clock when the stream command ran.
          "wide": 9 channels (channel-mask tests), at most 2000 Hz, 16 samples per frame (5 fit
          with all 9 channels); sample k, channel c: int16(((9k + c) * 300) mod 65536).
"""
from __future__ import annotations

import numpy as np

INPUT_BYTES = 96 * 96 * 3
OUTPUTS = 4
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128
LAYERS = [("CONV_2D", 400), ("DEPTHWISE_CONV_2D", 300), ("FULLY_CONNECTED", 200), ("SOFTMAX", 100)]
INVOKE_US = 1000
COMMAND_US = 10
FIRMWARE = "0.1.0"
MODEL_TAG = "edgekit"
MODEL_SHA256 = "0" * 64
ARENA_BYTES = 131072
ARENA_USED = 98304
FLASH_USED = 262144

SENSOR = "counter"
SENSOR_CHANNELS = 3
SENSOR_MAX_RATE_HZ = 10000
SENSOR_SAMPLES_PER_FRAME = 4

WIDE_SENSOR = "wide"
WIDE_CHANNELS = 9
WIDE_MAX_RATE_HZ = 2000
WIDE_SAMPLES_PER_FRAME = 16


def run(data: bytes) -> bytes:
    """The stand-in's raw output bytes for the input buffer."""
    x = np.frombuffer(bytes(data)[:INPUT_BYTES].ljust(INPUT_BYTES, b"\0"), dtype=np.uint8).astype(np.int64)
    return bytes(int(x[i::OUTPUTS].sum()) & 0xFF for i in range(OUTPUTS))


def counter_source(sensor: str, channels: int, rate_hz: float, first: int, count: int) -> np.ndarray:
    """The harness's counter sensor: int16(((3k + c) * 1000) mod 65536) for sample k, channel c."""
    k = np.arange(first, first + count, dtype=np.int64)[:, None]
    c = np.arange(channels, dtype=np.int64)[None, :]
    return (((3 * k + c) * 1000) % 65536).astype(np.uint16).view(np.int16)


def wide_source(sensor: str, channels: int, rate_hz: float, first: int, count: int) -> np.ndarray:
    """The harness's 9-channel "wide" sensor: int16(((9k + c) * 300) mod 65536)."""
    k = np.arange(first, first + count, dtype=np.int64)[:, None]
    c = np.arange(channels, dtype=np.int64)[None, :]
    return (((9 * k + c) * 300) % 65536).astype(np.uint16).view(np.int16)
