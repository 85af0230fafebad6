"""Recording files, written as samples arrive and flushed after every frame, so that a crash, an
unplugged board or Ctrl-C loses nothing already received:

- CsvWriter: `timestamp_us` plus one column per channel, `<channel>_<unit>` (ax_g, gx_dps, ...),
  physical values (raw * scale) with 6 significant digits (enough to get the raw int16 back);
- WavWriter: 16-bit PCM mono; the RIFF header's sizes are rewritten every 0.1 s and at the end, so
  the file is a valid WAV at every moment;
- StillWriter: a camera still (RGB565 pixels) as PNG or JPEG once the still is over (an image
  cannot be appended to); missing pixels stay black and are counted by the session;
- write_ei_json: the Edge Impulse data-acquisition JSON of a finished recording.

Every writer opens its file with mode "x": an existing recording is never overwritten. Creating
the file (the constructor) and writing to it (start, write, close) are separate steps: once the
file exists, a failed write leaves it for the manifest to list as incomplete, and abandon()
closes it without raising and says how many whole samples reached the disk.
"""
from __future__ import annotations

import json
import os
import struct
import time
from contextlib import suppress
from pathlib import Path

import numpy as np

from .disk import WriteFailed


class CsvWriter:
    def __init__(self, path: Path, names: list[str], units: list[str], scales: list[float]):
        self.path = path
        self.f = open(path, "x", newline="")
        self.scales = np.asarray(scales, dtype=np.float64)
        self.integer = bool(np.all(self.scales == np.round(self.scales)))
        self.header = ",".join(["timestamp_us"] + [f"{n}_{u}" for n, u in zip(names, units)]) + "\n"

    def start(self) -> None:
        self.f.write(self.header)
        self.f.flush()

    def write(self, t_us: np.ndarray, raw: np.ndarray) -> None:
        """Rows for samples with timestamps t_us (n,) and raw int16 values (n, channels)."""
        values = raw * self.scales
        fmt = "{:.0f}" if self.integer else "{:.6g}"
        lines = []
        for t, row in zip(t_us.tolist(), values.tolist()):
            lines.append(str(t) + "," + ",".join(fmt.format(v) for v in row))
        self.f.write("\n".join(lines) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    def abandon(self) -> int:
        """Close after a failed write; the rows on disk that end in a newline (a cut last row is
        left for readers to skip)."""
        with suppress(OSError):     # the flush of what did not fit fails again: it is lost
            self.f.close()
        return max(0, self.path.read_bytes().count(b"\n") - 1)


class WavWriter:
    """16-bit PCM mono WAV. Samples are flushed after every frame; the header's two sizes are
    rewritten at most every 0.1 s and at close (rewriting them for each of 333 frames a second
    costs more CPU than the rest of the recording), so the file is a valid WAV at every moment
    and after a hard crash its header misses at most the last 0.1 s."""

    HEADER_EVERY_S = 0.1

    def __init__(self, path: Path, rate_hz: int):
        self.path, self.rate = path, int(rate_hz)
        self.f = open(path, "xb")
        self.data_bytes = 0
        self._patched = time.monotonic()

    def start(self) -> None:
        self.f.write(self._header())
        self.f.flush()

    def _header(self) -> bytes:
        # RIFF chunk, fmt chunk (PCM = 1, mono, rate, byte rate, block align 2, 16 bits), data chunk
        return (b"RIFF" + struct.pack("<I", 36 + self.data_bytes) + b"WAVE"
                + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, self.rate, 2 * self.rate, 2, 16)
                + b"data" + struct.pack("<I", self.data_bytes))

    def _patch_sizes(self) -> None:
        end = self.f.tell()
        self.f.seek(4)
        self.f.write(struct.pack("<I", 36 + self.data_bytes))
        self.f.seek(40)
        self.f.write(struct.pack("<I", self.data_bytes))
        self.f.seek(end)
        self._patched = time.monotonic()

    def write(self, t_us, raw: np.ndarray) -> None:
        data = np.ascontiguousarray(raw[:, 0], dtype="<i2").tobytes()
        self.f.write(data)
        self.data_bytes += len(data)
        if time.monotonic() - self._patched >= self.HEADER_EVERY_S:
            self._patch_sizes()
        self.f.flush()

    def close(self) -> None:
        self._patch_sizes()
        self.f.close()

    def abandon(self) -> int:
        """Close after a failed write, the header's sizes set to the whole samples on disk (in
        place: it needs no new space); returns that number of samples."""
        with suppress(OSError):
            self.f.close()
        size = self.path.stat().st_size
        if size < 44:
            return 0                  # not even the header: nothing to patch
        with suppress(OSError), open(self.path, "r+b") as f:
            self.f, self.data_bytes = f, (size - 44) // 2 * 2
            self._patch_sizes()
        return (size - 44) // 2


def rgb565_to_rgb888(pixels: np.ndarray) -> np.ndarray:
    """uint16 RGB565 (...,) -> uint8 RGB (..., 3), each channel scaled to 0..255."""
    p = pixels.astype(np.uint16)
    r, g, b = (p >> 11) & 0x1F, (p >> 5) & 0x3F, p & 0x1F
    return np.stack([r * 255 // 31, g * 255 // 63, b * 255 // 31], axis=-1).astype(np.uint8)


class StillWriter:
    """One still: pixels arrive by index (row-major); the image is written at close()."""

    def __init__(self, path: Path, width: int, height: int, image_format: str = "png"):
        self.path, self.w, self.h, self.format = path, width, height, image_format
        self.f = open(path, "xb")         # claims the name now: never overwrite, never race
        self.pixels = np.zeros(width * height, dtype=np.uint16)
        self.filled = 0

    def start(self) -> None: ...          # nothing to write before the still is whole

    def put(self, first: int, raw: np.ndarray) -> None:
        n = min(len(raw), len(self.pixels) - first)
        if n > 0:
            self.pixels[first:first + n] = raw[:n, 0].view(np.uint16)
            self.filled += n

    def close(self) -> None:
        from PIL import Image
        img = Image.fromarray(rgb565_to_rgb888(self.pixels.reshape(self.h, self.w)), "RGB")
        img.save(self.f, format="JPEG" if self.format == "jpeg" else "PNG", **({"quality": 95} if self.format == "jpeg" else {}))
        self.f.close()

    def abandon(self) -> int:
        """Close after a failed save: a cut image holds no usable pixels."""
        with suppress(OSError):
            self.f.close()
        return 0


def write_ei_json(path: Path, device_name: str, device_type: str, rate_hz: float, names: list[str],
                  units: list[str], values: np.ndarray) -> None:
    """Edge Impulse's data acquisition format (unsigned: alg "none", a zero signature), which the
    Edge Impulse uploader and many tutorials read. values: physical values (n, channels); a
    single channel is written as a flat list, as Edge Impulse writes audio."""
    data = {
        "protected": {"ver": "v1", "alg": "none", "iat": int(time.time())},
        "signature": "0" * 64,
        "payload": {
            "device_name": device_name,
            "device_type": device_type,
            "interval_ms": 1000.0 / rate_hz,
            "sensors": [{"name": n, "units": u} for n, u in zip(names, units)],
            "values": values[:, 0].tolist() if values.shape[1] == 1 else values.tolist(),
        },
    }
    try:
        with open(path, "x") as f:
            json.dump(data, f)
    except FileExistsError:
        raise                  # someone else's file: left alone
    except OSError as e:
        _remove(path)          # ours (mode "x"), and half of a JSON file is of no use
        raise WriteFailed("writing", path, e) from None


def atomic_write_json(path: Path, data) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path`: a reader (or a
    crash) sees the old file or the new one, never half of one. A failure (a full disk) removes
    the temporary file and raises WriteFailed naming `path`, which is left as it was."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise WriteFailed("writing", path, e) from None


def _remove(path: Path) -> None:
    with suppress(OSError):
        path.unlink()
