"""A VirtualBoard behind a wire that can misbehave: the faults real USB-serial links show.

`Link` sits between a host's bytes and a VirtualBoard. Commands go to the board whole (split at
'%'); the board's replies come back as timed pieces, after the faults in `Faults` (all off by
default, all reproducible from `seed`):

  drop=p         each reply byte is lost with probability p
  corrupt=p      each reply byte is replaced by a random byte with probability p
  garbage=p      before a reply, with probability p, junk: binary noise or a bootloader-like line
  split=1        replies arrive in random pieces of 1-8 bytes, 0.2-2 ms apart
  lose_ready=k   the k-th m-ready line (counting every reply) is lost
  corrupt_dbx=k  one data hex digit of the k-th dbx command is changed on its way to the board
  corrupt_in=p   each command byte (but '%') is replaced by a random letter with probability p
  reset_after=k  the board reboots on receiving command k+1 (once): it prints the boot banner
                 (after m-warmup-start for an infer) and forgets its input and results
  vanish_after=k after command k has been answered the port is gone: reads and writes fail
  unplug_frames=k  the board is unplugged after sending k stream frames (in the middle of a stream):
                 the frames sent arrive, then the port is gone
  banner=1       the boot banner is waiting when the port opens (a board reset by opening it)
  realtime=1     stream frames come at the sensor's rate in wall time (default: as fast as read)
"""
from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, fields

from ..errors import EdgekitError


@dataclass
class Faults:
    drop: float = 0.0
    corrupt: float = 0.0
    garbage: float = 0.0
    split: bool = False
    lose_ready: int = 0
    corrupt_dbx: int = 0
    corrupt_in: float = 0.0
    reset_after: int = 0
    vanish_after: int = 0
    unplug_frames: int = 0
    banner: bool = False
    realtime: bool = False
    seed: int = 0

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "Faults":
        """From text options (a URL query): unknown names and bad values raise EdgekitError."""
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, text in options.items():
            if name not in kinds:
                raise EdgekitError(f"unknown fault option '{name}'; known: {', '.join(kinds)}")
            kind = kinds[name]
            try:
                if kind in ("bool", bool):
                    values[name] = text.strip().lower() in ("1", "true", "yes", "on", "")
                elif kind in ("int", int):
                    values[name] = int(text)
                else:
                    values[name] = float(text)
            except ValueError:
                raise EdgekitError(f"fault option {name}={text!r} is not a number; e.g. {name}=1") from None
            if kind in ("float", float) and not 0 <= values[name] <= 1:
                raise EdgekitError(f"fault option {name}={text} is a probability; give a value from 0 to 1")
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name not in ("seed", "realtime"))


NOISE_LINES = [b"ets Jul 29 2019 12:21:46\r\n", b"rst:0x1 (POWERON_RESET),boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n",
               b"\r\n", b"~~ line noise ~~\r\n", b"Arduino Nano 33 BLE bootloader\r\n"]


class Vanished(Exception):
    """The port is gone (the transport turns this into its own error)."""


class Link:
    """Bytes between a host and a VirtualBoard, with faults. Not thread-safe: one user at a time."""

    def __init__(self, board, faults: Faults | None = None):
        self.board = board
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self._pending: deque[tuple[float, bytes]] = deque()
        self._last_release = 0.0
        self._cmd = bytearray()
        self.commands = 0        # complete commands received
        self.readies = 0         # m-ready lines the board sent
        self.dbx = 0
        self.did_reset = False
        self.gone = False        # armed: the port disappears once the pending bytes are read
        self.frames = 0          # stream frames the board sent
        self._stream_wall: float | None = None
        if self.faults.banner:
            self.emit(board.boot_banner())

    # -- host -> board ----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.gone:
            raise Vanished()
        data = bytes(data)
        start = 0
        while True:
            end = data.find(b"%", start)
            if end < 0:
                self._cmd += data[start:]
                return
            raw, self._cmd = bytes(self._cmd) + data[start:end + 1], bytearray()
            start = end + 1
            self._command(raw)
            if self.gone:
                return  # the rest of the bytes went nowhere

    def _command(self, raw: bytes) -> None:
        f = self.faults
        self.commands += 1
        word = raw.strip(b"\r\n").split(b" ", 1)[0]
        if word == b"dbx":
            self.dbx += 1
            if f.corrupt_dbx and self.dbx == f.corrupt_dbx:
                raw = self._corrupt_payload(raw)
        if f.corrupt_in:
            raw = bytes(b if b == 0x25 or self.rng.random() >= f.corrupt_in else self.rng.choice(b"abcdefxyz")
                        for b in raw)
        if f.reset_after and not self.did_reset and self.commands == f.reset_after + 1:
            self.did_reset = True
            partial = b""
            if word == b"infer":  # crashed during the run
                parts = raw.rstrip(b"%").split()
                partial = b"m-warmup-start-" + (parts[2] if len(parts) > 2 else b"10") + b"\r\n"
            self._stream_wall = None
            self.emit(partial + self.board.reboot())
        else:
            self.emit(self.board.feed(raw))
            if self.board.streaming and self._stream_wall is None:
                self._stream_wall = time.monotonic()
            elif not self.board.streaming:
                self._stream_wall = None
        if f.vanish_after and self.commands >= f.vanish_after:
            self.gone = True

    def _corrupt_payload(self, raw: bytes) -> bytes:
        """Change one hex digit of a dbx command's data (still a valid hex digit: only the CRC sees it)."""
        parts = raw.rstrip(b"%").split(b" ")
        if len(parts) != 4 or not parts[3]:
            return raw
        data = bytearray(parts[3])
        i = self.rng.randrange(len(data))
        data[i] = ord("0") if data[i] != ord("0") else ord("1")
        parts[3] = bytes(data)
        return b" ".join(parts) + b"%"

    # -- board -> host ----------------------------------------------------------------------
    def emit(self, data: bytes) -> None:
        """Queue board output, through the faults."""
        if not data:
            return
        f = self.faults
        if f.lose_ready:
            data = self._lose_ready(data)
        if f.garbage and self.rng.random() < f.garbage:
            data = self._noise() + data
        if f.drop or f.corrupt:
            out = bytearray()
            for b in data:
                r = self.rng.random()
                if r < f.drop:
                    continue
                if r < f.drop + f.corrupt:
                    b = self.rng.randrange(256)
                out.append(b)
            data = bytes(out)
        now = time.monotonic()
        if f.split:
            t = max(now, self._last_release)
            i = 0
            while i < len(data):
                n = self.rng.randint(1, 8)
                t += self.rng.uniform(0.0002, 0.002)
                self._pending.append((t, data[i:i + n]))
                i += n
            self._last_release = t
        else:
            self._pending.append((now, data))

    def _lose_ready(self, data: bytes) -> bytes:
        ready = b"m-ready\r\n"
        out, start = bytearray(), 0
        while True:
            i = data.find(ready, start)
            if i < 0:
                out += data[start:]
                return bytes(out)
            self.readies += 1
            out += data[start:i]
            if self.readies != self.faults.lose_ready:
                out += ready
            start = i + len(ready)

    def _noise(self) -> bytes:
        if self.rng.random() < 0.5:
            return bytes(self.rng.choice([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]) for _ in range(self.rng.randint(1, 12)))
        return self.rng.choice(NOISE_LINES)

    def take(self, more: bool = True) -> bytes:
        """The bytes that have arrived by now. more=False: do not generate new stream frames."""
        now = time.monotonic()
        if more and not self._pending and self.board.streaming:
            elapsed = now - self._stream_wall if (self.faults.realtime and self._stream_wall) else None
            limit = 8
            if self.faults.unplug_frames:
                limit = min(limit, self.faults.unplug_frames - self.frames)
            data = self.board.poll(limit, elapsed)
            self.frames += sum(1 for line in data.split(b"\r\n") if line.startswith(b"f-"))
            self.emit(data)
            if self.faults.unplug_frames and self.frames >= self.faults.unplug_frames and not self.gone:
                self.gone = True
                self.board.reboot()  # unplugged: the board loses power and its stream; nobody hears its banner
            if not self.board.streaming:
                self._stream_wall = None
        out = bytearray()
        while self._pending and self._pending[0][0] <= now:
            out += self._pending.popleft()[1]
        return bytes(out)

    def next_event(self) -> float | None:
        """When more bytes may arrive (monotonic time), None when nothing is on its way."""
        if self._pending:
            return self._pending[0][0]
        if self.board.streaming:
            return time.monotonic() + (0.002 if self.faults.realtime else 0.0)
        return None

    @property
    def idle(self) -> bool:
        return not self._pending and not self.board.streaming
