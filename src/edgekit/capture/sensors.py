"""What a board's sensors offer (targets/*.toml) and checking a capture request against it.

    specs = stream_sensors(load_board("nano33ble"))       # {"imu": Sensor(...), "microphone": ...}
    req = plan(board, "imu", rate=100, seconds=2)          # Request: channels, samples, the stream's rate
    describe(board)                                        # rows for `edgekit sensors`

A camera is asked for in stills per second (the protocol streams pixels: 96x96 of them a still),
and one recording is one still.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import EdgekitError
from ..targets import Board, Sensor

MAX_SAMPLES = 2**32 - 1        # the protocol's numbers are 32-bit


def stream_sensors(board: Board, revision: str | None = None) -> dict[str, Sensor]:
    """The sensors edgekit's firmware streams (those with a max_rate_hz), one per name: the given
    revision's (e.g. "Rev2") or the first listed."""
    out: dict[str, Sensor] = {}
    for s in board.sensors:
        if s.max_rate_hz and (s.name not in out or (revision and s.revision == revision)):
            out[s.name] = s
    return out


def pixels_per_still(s: Sensor) -> int:
    w, h = s.frame_size or (96, 96)
    return w * h


def max_rate(s: Sensor) -> float:
    """The highest rate in the unit users give: stills per second for a camera, else Hz."""
    return s.max_rate_hz / pixels_per_still(s) if s.name == "camera" else float(s.max_rate_hz)


def default_rate(s: Sensor) -> float:
    """The rate a capture uses when none is given: the microphone's fixed 16 kHz, the camera's
    fastest, 100 Hz for motion (what gesture tutorials use), the fastest for slow sensors."""
    if s.name in ("microphone", "camera"):
        return max_rate(s)
    return min(100.0, max_rate(s))


@dataclass(frozen=True)
class Request:
    """One recording's stream: what to send to the board and what to expect back."""
    sensor: Sensor
    rate: float                # as the user gave it (Hz, or stills/s for a camera)
    stream_rate: int           # the `stream` command's rate (Hz, or pixels/s)
    samples: int               # per recording (pixels for a camera)
    channels: list[int] | None  # indices of the channels to send (None: all)
    seconds: float

    @property
    def names(self) -> list[str]:
        idx = self.channels if self.channels is not None else range(len(self.sensor.channels))
        return [self.sensor.channels[i] for i in idx]

    @property
    def units(self) -> list[str]:
        idx = self.channels if self.channels is not None else range(len(self.sensor.channels))
        return [self.sensor.units[i] for i in idx]

    @property
    def scales(self) -> list[float]:
        idx = self.channels if self.channels is not None else range(len(self.sensor.channels))
        scales = self.sensor.scales or (1.0,) * len(self.sensor.channels)
        return [scales[i] for i in idx]


def plan(board: Board, sensor: str, rate: float | None = None, seconds: float = 2.0,
         channels: list[str] | list[int] | None = None, revision: str | None = None) -> Request:
    """Check a capture request against the board's sensors; EdgekitError says what to change."""
    specs = stream_sensors(board, revision)
    s = specs.get(sensor)
    if s is None:
        raise EdgekitError(f"{board.key} has no sensor '{sensor}' to capture from; use one of: "
                           f"{', '.join(specs) or 'none'} (edgekit sensors --target {board.key} lists them)")
    top = max_rate(s)
    unit = "stills/s" if s.name == "camera" else "Hz"
    rate = default_rate(s) if rate is None else float(rate)
    if not (rate > 0) or rate > top:
        raise EdgekitError(f"{sensor} on {board.key} streams at most {top:g} {unit}; give --rate between "
                           f"{'0.1' if s.name == 'camera' else '1'} and {top:g}")
    if s.name == "microphone" and rate != top:
        raise EdgekitError(f"the microphone on {board.key} records at exactly {top:g} Hz (16-bit PCM); "
                           f"leave out --rate or give --rate {top:g}")
    if s.name != "camera" and rate != int(rate):
        raise EdgekitError(f"--rate {rate:g}: the board streams whole hertz; give e.g. --rate {max(1, round(rate))}")
    if not (seconds > 0) or not math.isfinite(seconds):
        raise EdgekitError(f"--seconds {seconds:g}: give a recording length above 0, e.g. --seconds 2")
    if s.name == "camera":
        stream_rate = max(1, round(rate * pixels_per_still(s)))
        samples = pixels_per_still(s)          # one still per recording
    else:
        stream_rate = int(rate)
        samples = max(1, round(rate * seconds))
    if samples > MAX_SAMPLES:
        raise EdgekitError(f"{seconds:g} s at {rate:g} Hz is {samples:,} samples; one recording holds at "
                           f"most {MAX_SAMPLES:,}: record shorter pieces")
    return Request(s, rate, stream_rate, samples, _channel_indices(s, channels, board.key), seconds)


def _channel_indices(s: Sensor, channels, key: str) -> list[int] | None:
    if not channels:
        return None
    idx = []
    for c in channels:
        if isinstance(c, int) or (isinstance(c, str) and c.isdigit()):
            i = int(c)
        elif c in s.channels:
            i = s.channels.index(c)
        else:
            raise EdgekitError(f"{s.name} on {key} has no channel '{c}'; its channels are {', '.join(s.channels)}")
        if not 0 <= i < len(s.channels):
            raise EdgekitError(f"{s.name} on {key} has channels 0 to {len(s.channels) - 1}, not {i}")
        if i not in idx:
            idx.append(i)
    idx.sort()  # the board sends the masked channels in index order
    return None if idx == list(range(len(s.channels))) else idx


def describe(board: Board) -> list[dict]:
    """Every sensor of the board, as `edgekit sensors` shows it."""
    rows = []
    for s in board.sensors:
        row = {"sensor": s.name, "revision": s.revision, "part": s.part, "channels": list(s.channels),
               "units": list(s.units), "scales": list(s.scales), "streams": bool(s.max_rate_hz),
               "max_rate": max_rate(s) if s.max_rate_hz else None,
               "rate_unit": "stills/s" if s.name == "camera" else "Hz",
               "max_rate_source": s.max_rate_source, "chip_rates_hz": list(s.rates_hz)}
        if s.name == "camera":
            row["still"] = list(s.frame_size or (96, 96))
            row["max_stream_rate_hz"] = s.max_rate_hz
        rows.append(row)
    return rows
