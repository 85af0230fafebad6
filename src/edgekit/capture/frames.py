"""Which received frames go on disk, and exactly what was lost.

A frame's CRC covers its payload only, not its sequence number or timestamp. A byte changed in
those digits on the way (into another digit) would give an intact-looking frame with a wrong
place in the recording. So a CRC-good frame is also checked against the last frame written: its
sequence number must be higher, and the time between them must match the frames between them
(dseq * samples per frame / rate, within half a sample period plus 2%). A frame that disagrees is
held; the next good frame decides: agreeing with the last written one, the held frame had a
garbled header (dropped, counted in header_errors); agreeing with the held one, the board's
timeline really moved (a stall) and both are written. Before anything is written the first frame
waits for a second one to agree with it.

Losses are counted by sequence number: `gaps` is the number of frames never written (leading,
between written frames, and trailing up to the frames the board sent), so frames written + gaps =
frames sent, exactly. The causes are counted too: CRC failures and malformed frame lines (from
the client's Stream), header errors (here); frames whose line never arrived at all (a lost
newline merges two lines into one broken one) show only in gaps.
"""
from __future__ import annotations

import math

from ..protocol.client import Frame
from ..protocol.wire import WRAP


class FrameCheck:
    def __init__(self, rate_hz: float, channels: int):
        self.rate, self.channels = float(rate_hz), channels
        self.per_frame = 0            # samples in a full frame (the largest seen)
        self.last: Frame | None = None
        self.pending: Frame | None = None
        self.header_errors = 0
        self.written = 0              # frames passed on
        self.gaps = 0                 # frames missing before/between the written ones
        self.first_seq: int | None = None

    def samples_in(self, frame: Frame) -> int:
        return len(frame.payload) // (2 * self.channels)

    def consistent(self, a: Frame, b: Frame) -> bool:
        dseq = b.seq - a.seq
        if dseq <= 0:
            return False
        expected = dseq * self.per_frame * 1e6 / self.rate
        actual = (b.t_us - a.t_us) % WRAP
        return abs(actual - expected) <= 0.5e6 / self.rate + 0.02 * expected

    def feed(self, frame: Frame) -> list[Frame]:
        """The frames to write now (in order) after receiving `frame`."""
        if not frame.crc_ok:
            return []  # the client's Stream counts it (corrupted)
        n = self.samples_in(frame)
        if n == 0 or len(frame.payload) % (2 * self.channels):
            self.header_errors += 1  # a payload that fits no whole sample: not what the board sent
            return []
        self.per_frame = max(self.per_frame, n)
        held, self.pending = self.pending, None
        if self.last is None:
            if held is None:
                self.pending = frame            # wait for a second frame to vouch for it
                return []
            if self.consistent(held, frame):
                return self._take(held, frame)
            self.header_errors += 1             # they disagree: drop the older, hold the newer
            self.pending = frame
            return []
        if self.consistent(self.last, frame):
            if held is not None:
                self.header_errors += 1         # the held frame's header was garbled
            return self._take(frame)
        if held is not None and held.seq > self.last.seq and self.consistent(held, frame):
            return self._take(held, frame)      # the board's timeline moved: both are real
        if held is not None:
            self.header_errors += 1
        self.pending = frame
        return []

    def finish(self) -> list[Frame]:
        """At the end of the stream: a held frame that nothing contradicts is written."""
        held, self.pending = self.pending, None
        if held is None:
            return []
        if self.last is None:
            return self._take(held)             # the only frame: nothing disagrees with it
        self.header_errors += 1                 # it disagreed with the last written and nothing vouched
        return []

    def _take(self, *frames: Frame) -> list[Frame]:
        for f in frames:
            if self.last is None:
                self.first_seq = f.seq
                self.gaps += f.seq              # frames before the first one written
            else:
                self.gaps += f.seq - self.last.seq - 1
            self.last = f
            self.written += 1
        return list(frames)

    def trailing(self, frames_sent: int | None) -> int:
        """Frames the board sent after the last one written (0 when unknown or none)."""
        if frames_sent is None:
            return 0
        last = self.last.seq if self.last is not None else -1
        return max(0, frames_sent - 1 - last)

    def expected_frames(self, samples: int) -> int | None:
        """Frames a stream of `samples` that ran to its end sends (the last one may be partial)."""
        return math.ceil(samples / self.per_frame) if self.per_frame else None
