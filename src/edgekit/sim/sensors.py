"""A simulator of a board's sensors: plausible, deterministic signals for virtual boards, so a
class can record data without boards.

    source = SimulatedSensors(load_board("nano33ble"), label="wave", seed=3)
    VirtualBoard("nano33ble", sensors=source)          # sim://nano33ble?label=wave&seed=3 does this

`synthetic_source` is the plain alternative: counter, triangle and square waves, exact in integers.

`source(sensor, channels, rate_hz, first, count)` returns the int16 samples (count, channels) the
firmware would send: physical values divided by the descriptor's scales (targets/*.toml), rounded
and clipped to int16. Every stream that starts at sample 0 is a new recording, and each recording
draws its own variation (amplitude, tempo, orientation, onset) from (seed, label, sensor, recording
number), so 15 recordings of "wave" are 15 different waves, and the same seed gives the same data.

What each sensor shows:
- imu: gravity (1 g, rotated by the recording's orientation) plus the gesture's motion plus noise.
  idle: a resting hand (tremor); wave: side to side at ~2 Hz with a rocking wrist; punch: sharp
  forward thrusts and their stops; circle: a horizontal circle at ~1 Hz. Other labels map to one of
  these by a checksum of the label. The magnetometer (9-axis boards) sees the Earth's field and
  holds each reading until its own update rate (20 Hz Rev1, 10 Hz Rev2) gives the next, as the chip.
- microphone: 16 kHz background noise and hum, with one or two word-like bursts: voiced sounds
  whose pitch and formants come from the label, so keywords are distinguishable.
- temperature/humidity, pressure, light: slowly drifting room readings with sensor noise.
- adc: floating analog pins: slow wander around mid-scale with noise.
- camera: 96x96 RGB565 stills: a shaded background and a shape whose kind and colour come from the
  label (position, size and lighting vary per still).
Signals are computed in blocks of samples (by sample number), so the result does not depend on how
the board slices its frames.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from ..errors import EdgekitError

GESTURES = ("idle", "wave", "punch", "circle")
BLOCK = 4096                     # samples computed at once (and cached) per sensor
SILENT_LABELS = ("idle", "silence", "noise", "background", "_background_noise_", "_silence_")


def synthetic_source(sensor: str, channels: int, rate_hz: float, first: int, count: int) -> np.ndarray:
    """Deterministic int16 samples (count, channels) for sample numbers first .. first+count-1.

    Channel c, sample k (integers only, so C++ can reproduce it bit for bit):
      c % 3 == 0: counter  (k + c) mod 32768
      c % 3 == 1: triangle t = (k + 8c) mod 64; (t if t < 32 else 64 - t) * 1000 - 16000
      c % 3 == 2: square   8000 if ((k + 8c) // 32) is odd else -8000
    """
    k = np.arange(first, first + count, dtype=np.int64)[:, None]
    c = np.arange(channels, dtype=np.int64)[None, :]
    counter = (k + c) % 32768
    t = (k + 8 * c) % 64
    tri = np.where(t < 32, t, 64 - t) * 1000 - 16000
    sq = np.where(((k + 8 * c) // 32) % 2 == 1, 8000, -8000)
    out = np.where(c % 3 == 0, counter, np.where(c % 3 == 1, tri, sq))
    return out.astype(np.int16)


def _h(text: str) -> int:
    """A stable small number for a text (Python's hash() changes between runs)."""
    return zlib.crc32(text.encode())


def gesture_of(label: str | None) -> str:
    """The motion pattern a label shows: the gesture itself, or one picked by the label's checksum."""
    label = (label or "idle").lower()
    return label if label in GESTURES else GESTURES[_h(label) % len(GESTURES)]


def _rotation(rng: np.random.Generator, spread_deg: float) -> np.ndarray:
    """A random small rotation (roll, pitch, yaw ~ N(0, spread)): how the board sits in the hand."""
    r, p, y = np.radians(rng.normal(0.0, spread_deg, 3))
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


class _Recording:
    """One stream of one sensor: its random variation and its cached blocks."""

    def __init__(self, sensor, label: str | None, seed: int, number: int, rate_hz: float):
        self.sensor, self.label, self.rate = sensor, label or "idle", float(rate_hz)
        self.key = [seed & 0xFFFFFFFF, _h(self.label), _h(sensor.name), number]
        rng = np.random.default_rng(self.key)
        # the person's variation from one recording to the next
        self.amp = rng.uniform(0.75, 1.3)
        self.tempo = rng.uniform(0.8, 1.25)
        self.phase = rng.uniform(0, 2 * math.pi)
        self.onset = rng.uniform(0.0, 0.3)                    # seconds before the gesture starts
        self.rot = _rotation(rng, 15.0)
        self.levels = rng.uniform(0, 1, 8)                    # room conditions, light, background
        self._cache: tuple[int, np.ndarray] | None = None

    def samples(self, first: int, count: int) -> np.ndarray:
        """Physical values (count, all channels) for sample numbers first .. first+count-1."""
        parts, k = [], first
        while k < first + count:
            b = k // BLOCK
            block = self._block(b)
            lo = k - b * BLOCK
            hi = min(BLOCK, first + count - b * BLOCK)
            parts.append(block[lo:hi])
            k = b * BLOCK + hi
        return np.concatenate(parts) if parts else np.zeros((0, len(self.sensor.channels)))

    def _block(self, b: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != b:
            k = np.arange(b * BLOCK, (b + 1) * BLOCK)
            noise = np.random.default_rng(self.key + [b + 1])  # per block: independent of slicing
            make = {"imu": self._imu, "microphone": self._audio, "camera": self._camera}.get(
                self.sensor.name, self._slow)
            self._cache = (b, make(k, noise))
        return self._cache[1]

    # -- IMU ---------------------------------------------------------------------------------
    def _imu(self, k: np.ndarray, noise: np.random.Generator) -> np.ndarray:
        t = k / self.rate
        a, w = np.zeros((len(t), 3)), np.zeros((len(t), 3))    # motion (g) and rotation (dps)
        on = np.clip((t - self.onset) / 0.15, 0, 1)            # the gesture fades in after its onset
        g = gesture_of(self.label)
        tau = 2 * math.pi
        if g == "idle":
            a[:, 0] = 0.01 * np.sin(tau * 0.4 * t + self.phase)
            w[:, 1] = 1.5 * np.sin(tau * 0.7 * t)
        elif g == "wave":
            f = 2.2 * self.tempo
            a[:, 0] = 0.9 * self.amp * np.sin(tau * f * t + self.phase) * on
            a[:, 2] = 0.15 * self.amp * np.sin(2 * (tau * f * t + self.phase)) * on
            w[:, 1] = 140 * self.amp * np.cos(tau * f * t + self.phase) * on
        elif g == "punch":
            period = 0.9 / self.tempo
            tp = (t - self.onset) % period                     # time since this punch started
            thrust = np.exp(-((tp - 0.10) / 0.04) ** 2)
            stop = np.exp(-((tp - 0.24) / 0.05) ** 2)
            a[:, 1] = self.amp * (2.6 * thrust - 2.0 * stop) * (t >= self.onset)
            a[:, 2] = -0.2 * self.amp * thrust * (t >= self.onset)
            w[:, 0] = 60 * self.amp * (thrust - stop) * (t >= self.onset)
        else:  # circle
            f = 1.1 * self.tempo
            a[:, 0] = 0.6 * self.amp * np.cos(tau * f * t + self.phase) * on
            a[:, 1] = 0.6 * self.amp * np.sin(tau * f * t + self.phase) * on
            w[:, 2] = 90 * self.amp * on + 10 * np.sin(tau * f * t)
        gravity = np.array([0.0, 0.0, 1.0])
        acc = (gravity + a) @ self.rot.T + noise.normal(0, 0.015, a.shape)
        gyro = w @ self.rot.T + noise.normal(0, 0.8, w.shape)
        cols = [acc, gyro]
        if len(self.sensor.channels) >= 9:
            field = np.array([22.0, 0.0, -42.0]) @ self.rot.T    # the Earth's field, in uT
            mag_rate = self.sensor.rates_hz[2] if len(self.sensor.rates_hz) > 2 else 20
            held = np.floor(t * mag_rate) / mag_rate             # the reading of the last update
            hn = np.random.default_rng(self.key + [10**6]).normal(0, 0.4, (1, 3))
            cols.append(field + 0.6 * np.sin(tau * 0.05 * held)[:, None] + hn)
        return np.concatenate(cols, axis=1)[:, :len(self.sensor.channels)]

    # -- microphone --------------------------------------------------------------------------
    def _audio(self, k: np.ndarray, noise: np.random.Generator) -> np.ndarray:
        t = k / self.rate
        x = noise.normal(0, 0.004 + 0.004 * self.levels[0], len(t))    # room noise
        x += 0.003 * np.sin(2 * math.pi * 50 * t)                        # mains hum
        if self.label.lower() not in SILENT_LABELS:
            h = _h(self.label)
            f0 = 110 + (h % 90) * self.tempo                     # pitch of the voice
            f1 = 300 + (h // 90) % 600                           # first formant (vowel)
            f2 = 900 + (h // 54000) % 1600                       # second formant
            syllables = 1 + (h // 7) % 2
            length = 0.22 * self.tempo
            for s in range(syllables):
                start = 0.25 + self.onset + s * (length + 0.08)
                env = np.clip(np.sin(math.pi * (t - start) / length), 0, None) * ((t > start) & (t < start + length))
                if not env.any():
                    continue
                glide = 1 + 0.08 * (s - 0.5) * (t - start)       # the pitch moves within a syllable
                voice = np.zeros_like(t)
                for n in range(1, 4000 // int(f0) + 1):          # harmonics, weighted by the formants
                    fn = n * f0
                    weight = math.exp(-((fn - f1) / 180) ** 2) + 0.6 * math.exp(-((fn - f2) / 260) ** 2) + 0.02
                    voice += weight * np.sin(2 * math.pi * fn * glide * t + n * self.phase)
                x += 0.25 * self.amp * env * voice / 3
        return np.clip(x, -1, 32767 / 32768)[:, None]

    # -- slow sensors: environment, light, adc ------------------------------------------------
    def _slow(self, k: np.ndarray, noise: np.random.Generator) -> np.ndarray:
        t = k / self.rate
        lv, n = self.levels, len(t)
        drift = np.sin(2 * math.pi * t / 600 + self.phase)      # a 10-minute room cycle
        name = self.sensor.name
        if name == "temperature":
            cols = [21 + 4 * lv[1] + 0.3 * drift + noise.normal(0, 0.02, n),
                    35 + 20 * lv[2] - 0.8 * drift + noise.normal(0, 0.1, n)]
        elif name == "pressure":
            cols = [100.4 + 1.8 * lv[3] + 0.02 * drift + noise.normal(0, 0.004, n)]
        elif name == "light":
            clear = (150 + 600 * lv[4]) * (1 + 0.05 * drift) + noise.normal(0, 4, n)
            cols = [clear * (0.30 + 0.1 * lv[5]), clear * 0.38, clear * (0.32 - 0.1 * lv[5]), clear,
                    5 + 10 * lv[6] + noise.normal(0, 1.5, n)]
        else:  # adc and anything else: floating inputs wander around mid-scale
            cols = [512 + 40 * np.sin(2 * math.pi * 0.3 * t + c) + noise.normal(0, 3, n)
                    for c in range(len(self.sensor.channels))]
        return np.stack(cols, axis=1)[:, :len(self.sensor.channels)]

    # -- camera --------------------------------------------------------------------------------
    def _camera(self, k: np.ndarray, noise: np.random.Generator) -> np.ndarray:
        w, h = self.sensor.frame_size or (96, 96)
        out = np.empty(len(k), dtype=np.float64)
        stills = k // (w * h)
        for s in np.unique(stills):
            img = still_rgb565(self.label, self.key + [int(s) + 7], w, h).reshape(-1)
            sel = stills == s
            out[sel] = img[k[sel] % (w * h)].view(np.int16)
        return out[:, None]


def still_rgb565(label: str, key: list[int], w: int = 96, h: int = 96) -> np.ndarray:
    """A synthetic still (h, w) of uint16 RGB565: a shaded background and the label's shape."""
    rng = np.random.default_rng(key)
    hue = _h(label)
    colour = np.array([(hue >> s) & 0xFF for s in (0, 8, 16)], dtype=np.float64) * 0.7 + 60
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    light = rng.uniform(0.6, 1.0)
    img = np.empty((h, w, 3))
    for c in range(3):                                   # a gently lit background
        img[..., c] = (40 + 60 * rng.uniform() + 50 * x * (c == 0) + 50 * y * (c == 2)) * light
    cx, cy, r = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.28)
    shape = ("circle", "square", "triangle", "stripes")[hue % 4] if label.lower() not in SILENT_LABELS else None
    if shape == "circle":
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
    elif shape == "square":
        mask = (abs(x - cx) < r) & (abs(y - cy) < r)
    elif shape == "triangle":
        mask = (y > cy - r) & (y < cy + r) & (abs(x - cx) < (y - cy + r) / 2)
    elif shape == "stripes":
        mask = (np.sin((x + y) * 40 + rng.uniform(0, 6)) > 0.3) & (abs(x - cx) < r * 1.4)
    else:
        mask = np.zeros_like(x, dtype=bool)
    img[mask] = colour * light
    img += rng.normal(0, 4, img.shape)                   # sensor noise
    rgb = np.clip(img, 0, 255).astype(np.uint16)
    return ((rgb[..., 0] >> 3) << 11) | ((rgb[..., 1] >> 2) << 5) | (rgb[..., 2] >> 3)


class SimulatedSensors:
    """The VirtualBoard sensor source (see the module docstring) for one board."""

    def __init__(self, board, label: str | None = None, seed: int = 0, revision: str | None = None,
                 recording: int = 0):
        self.label, self.seed, self.first_recording = label, int(seed), int(recording)
        known = sorted({s.revision for s in board.sensors if s.revision})
        if revision and revision not in known:
            raise EdgekitError(f"{board.key} has no revision '{revision}'; use one of: {', '.join(known) or 'none'}")
        self.specs = {}
        for s in board.sensors:   # one spec per name: the asked revision, else the first listed
            if s.name not in self.specs or (revision and s.revision == revision):
                self.specs[s.name] = s
        self.started: dict[str, int] = {}           # streams started per sensor
        self._current: dict[str, _Recording] = {}

    def recording(self, sensor: str, rate_hz: float) -> _Recording:
        n = self.first_recording + self.started.get(sensor, 0)
        self.started[sensor] = self.started.get(sensor, 0) + 1
        self._current[sensor] = _Recording(self.specs[sensor], self.label, self.seed, n, rate_hz)
        return self._current[sensor]

    def physical(self, sensor: str, rate_hz: float, first: int, count: int) -> np.ndarray:
        """Physical values (count, all channels); sample 0 starts a new recording."""
        rec = self._current.get(sensor)
        if first == 0 or rec is None or rec.rate != float(rate_hz):
            rec = self.recording(sensor, rate_hz)
        return rec.samples(first, count)

    def __call__(self, sensor: str, channels: int, rate_hz: float, first: int, count: int) -> np.ndarray:
        spec = self.specs.get(sensor)
        if spec is None:
            return synthetic_source(sensor, channels, rate_hz, first, count)
        values = self.physical(sensor, rate_hz, first, count)
        if sensor == "camera":  # already the RGB565 bit pattern
            raw = values
        else:
            scales = np.array(spec.scales or [1.0] * len(spec.channels))
            raw = np.round(values / scales)
        return np.clip(raw, -32768, 32767).astype(np.int16)[:, :channels]
