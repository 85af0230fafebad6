"""The Python API of week 4: live frames from a sensor, and a captured data set ready for training.

    for frame in edgekit.stream("nano33ble", "imu", rate=100, seconds=5):
        print(frame.t_us[0], frame.values.mean(axis=0))      # values in g, dps, uT

    data = edgekit.load_dataset("data/")
    x, y, labels = data          # x: (recordings, samples, channels) float32, y: int labels
"""
from __future__ import annotations

import csv
import json
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import EdgekitError
from ..targets import load_board
from .frames import WRAP, FrameCheck
from .manifest import NAME, Manifest
from .sensors import plan
from .session import open_board


@dataclass
class SensorFrame:
    """Samples of one frame: t_us (n,) microseconds since the stream's first sample (device clock),
    values (n, channels) in physical units, raw (n, channels) int16 as the board sent them."""
    seq: int
    t_us: np.ndarray
    values: np.ndarray
    raw: np.ndarray
    channels: list[str]
    units: list[str]


def stream(target: str, sensor: str, rate: float | None = None, seconds: float | None = None,
           channels=None, force: str | None = None, port=None, label: str | None = None, seed: int = 0,
           realtime: bool = False) -> Iterator[SensorFrame]:
    """Frames from a sensor: the connected board, else its simulation (force="hw"/"sim" to choose).
    seconds=None streams until you break out of the loop. A simulated board sends as fast as you read
    unless realtime=True (then at the sensor's rate). Frames that fail their CRC or arrive with a
    garbled header are skipped; the generator's `lost` count is in the last frame's seq gaps."""
    board = load_board(target)
    req = plan(board, sensor, rate, seconds or 1.0, channels)
    samples = req.samples if seconds else 2**32 - 1
    client, _mode, _how = open_board(board.key, force, port, label=label, seed=seed,
                                     faults="realtime=1" if realtime else "")
    try:
        s = client.stream(req.sensor.name, req.stream_rate, samples, req.channels)
        check = FrameCheck(req.stream_rate, len(req.names))
        scales = np.asarray(req.scales)
        origin = None
        try:
            for frame in s:
                for f in check.feed(frame):
                    raw = np.frombuffer(f.payload, "<i2").reshape(-1, len(req.names))
                    k0 = f.seq * check.per_frame
                    due = (np.arange(k0, k0 + len(raw)) * 1000000) // req.stream_rate
                    if origin is None:
                        origin = (f.t_us - int(due[0])) % WRAP
                    t = ((f.t_us - origin) % WRAP) + due - due[0]
                    yield SensorFrame(f.seq, t, raw * scales, raw, req.names, req.units)
        finally:
            if not s.finished:
                s.stop()
    finally:
        client.close()


@dataclass
class Dataset:
    """x: (recordings, samples, channels) float32 for time series, (recordings, 96, 96, 3) uint8
    for camera stills; y: (recordings,) int; labels: the label names (y indexes them)."""
    x: np.ndarray
    y: np.ndarray
    labels: list[str]
    files: list[str] = field(default_factory=list)
    sensor: str = ""
    channels: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    rate: float | None = None
    skipped: list[str] = field(default_factory=list)   # incomplete or damaged recordings left out

    def __iter__(self):                 # x, y, labels = load_dataset(...)
        return iter((self.x, self.y, self.labels))

    def __len__(self):
        return len(self.y)


def read_recording(path: Path, entry: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, t_us): a CSV as (samples, channels) float + its timestamps; a WAV as (samples, 1) in
    [-1, 1); a still as (h, w, 3) uint8 (t_us None)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # a row is whole once its newline is on disk: a write failure can leave the last one cut
        lines = path.read_text().split("\n")[:-1]
        rows = list(csv.reader(lines))
        if not rows or rows[0][0] != "timestamp_us":
            raise EdgekitError(f"{path} is not an edgekit recording (no timestamp_us column)")
        data = np.array(rows[1:], dtype=np.float64).reshape(-1, len(rows[0]))
        return data[:, 1:], data[:, 0].astype(np.int64)
    if suffix == ".wav":
        with wave.open(str(path)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return (pcm.astype(np.float32) / 32768.0)[:, None], None
    if suffix in (".png", ".jpg", ".jpeg"):
        from PIL import Image
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB")), None
    raise EdgekitError(f"{path}: unknown recording type {suffix}")


def _on_grid(values: np.ndarray, t_us: np.ndarray, rate: float, length: int) -> np.ndarray:
    """Samples placed by their timestamps on the regular grid of `length` samples; a lost sample
    repeats the one before it (the first ones take the first received)."""
    idx = np.round(t_us * rate / 1e6).astype(np.int64)
    keep = (idx >= 0) & (idx < length)
    out = np.full((length, values.shape[1]), np.nan)
    out[idx[keep]] = values[keep]
    have = ~np.isnan(out[:, 0])
    if not have.any():
        return np.zeros((length, values.shape[1]))
    # index of the last received sample at or before each grid point (before the first: the first)
    src = np.maximum.accumulate(np.where(have, np.arange(length), -1))
    src[src < 0] = int(np.argmax(have))
    return out[src]


def load_dataset(folder: str | Path = "data", sensor: str | None = None, length: int | None = None,
                 include_incomplete: bool = False) -> Dataset:
    """The recordings of a captured data set as arrays ready for training.

    Time series are put on their regular sample grid (a lost sample repeats the previous one) and
    cut to `length` samples (default: the shortest complete recording). Incomplete recordings
    (interrupted, disconnected) are left out unless include_incomplete=True. Labels are sorted
    alphabetically: y = 0 is the first."""
    folder = Path(folder).expanduser()
    if not (folder / NAME).exists():
        raise EdgekitError(f"{folder} has no {NAME}: it is not a data set captured with edgekit capture; "
                           "give the folder you passed to capture -o")
    entries = Manifest(folder).recordings
    sensors = sorted({e["sensor"] for e in entries})
    if sensor is None:
        if len(sensors) > 1:
            raise EdgekitError(f"{folder} holds recordings of several sensors ({', '.join(sensors)}); "
                               "choose one: load_dataset(folder, sensor='imu')")
        sensor = sensors[0] if sensors else None
    chosen = [e for e in entries if e["sensor"] == sensor]
    usable = [e for e in chosen if e["complete"] or (include_incomplete and e["samples"])]
    skipped = [e["file"] for e in chosen if e not in usable]   # incomplete, or cut before any sample
    chosen = usable
    if not chosen:
        raise EdgekitError(f"{folder} has no complete recordings{' of ' + sensor if sensor else ''}; capture some first")
    labels = sorted({e["label"] for e in chosen})
    loaded = []
    for e in chosen:
        values, t = read_recording(folder / e["file"], e)
        loaded.append((e, values, t))
    first = chosen[0]
    if sensor == "camera":
        x = np.stack([v for _, v, _ in loaded])
    else:
        rate = first["rate_requested"]
        if length is None:  # the shortest complete recording: an incomplete one is filled, not a cut for all
            whole = [(e, v) for e, v, _ in loaded if e["complete"]] or [(e, v) for e, v, _ in loaded]
            length = min(e["samples_expected"] or len(v) for e, v in whole)
        rows = []
        for e, v, t in loaded:
            if t is None:        # audio: the WAV holds the samples in order
                v = np.concatenate([v, np.repeat(v[-1:], max(0, length - len(v)), 0)]) if len(v) else np.zeros((length, 1))
                rows.append(v[:length])
            else:
                rows.append(_on_grid(v, t, rate, length))
        x = np.stack(rows).astype(np.float32)
    y = np.array([labels.index(e["label"]) for e, _, _ in loaded], dtype=np.int64)
    return Dataset(x, y, labels, [e["file"] for e in chosen], sensor, first["channels"], first["units"],
                   first["rate_requested"], skipped)


def summary(folder: str | Path) -> dict:
    """Counts per label and the losses of a data set (for scripts and --json)."""
    entries = Manifest(Path(folder)).recordings
    per = {}
    for e in entries:
        per.setdefault(e["label"], 0)
        per[e["label"]] += 1
    return {"recordings": len(entries), "per_label": per,
            "incomplete": sum(not e["complete"] for e in entries),
            "lost_samples": sum(e["lost_samples"] or 0 for e in entries)}


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
