"""The counts a capture's manifest gives for a recording cut short, checked against what the virtual
board sent (watched on the wire): samples kept, samples expected, samples lost, frames sent.

The virtual nano33ble's IMU sends 5 samples a frame; at 100 Hz for 2 s a recording is 200 samples in
40 frames. The virtual clock makes every number exact: no real waiting, nothing left to chance."""
import json
import wave

import pytest
import serial

import edgekit.protocol  # noqa: F401  (registers sim://)
from edgekit.capture import Session, verify
from edgekit.capture.api import summary
from edgekit.protocol.client import BoardGone

PER_FRAME = 5


class Wire:
    """A sim:// port that counts the frame lines the board sends (before any fault)."""

    def __init__(self, url):
        self.ser = serial.serial_for_url(url, timeout=0.02)
        self.sent = bytearray()
        emit = self.ser.link.emit

        def tap(data):
            self.sent.extend(data)
            return emit(data)
        self.ser.link.emit = tap

    def frames_per_stream(self) -> list[int]:
        """Frame lines sent by each stream, in order."""
        counts = []
        for line in bytes(self.sent).split(b"\r\n"):
            if line.startswith(b"f-0-"):
                counts.append(0)
            if line.startswith(b"f-"):
                counts[-1] += 1
        return counts


class CtrlCAfter:
    """Ctrl-C once the second recording holds n samples (raised where a user's Ctrl-C lands)."""

    def __init__(self, n):
        self.n, self.recording = n, -1

    def begin(self, index, count, path, samples):
        self.recording = index

    def update(self, samples, rate, lost):
        if self.recording == 1 and samples >= self.n:
            raise KeyboardInterrupt

    def countdown(self, *a): ...

    def end(self, entry): ...


def manifest(folder):
    return json.loads((folder / "manifest.json").read_text())["recordings"]


def test_an_interrupted_recording_counts_what_the_board_sent_as_expected(tmp_path):
    """Ctrl-C after 50 samples of the second recording: the board had sent more frames by the time it
    stopped; each of them is expected, and what was not kept is lost."""
    wire = Wire("sim://nano33ble?label=circle")
    s = Session("nano33ble", "imu", tmp_path, "circle", rate=100, seconds=2, count=3, port=wire.ser,
                timeout=0.3, progress=CtrlCAfter(50))
    with pytest.raises(KeyboardInterrupt):
        s.run()
    first, cut = manifest(tmp_path)
    streamed = wire.frames_per_stream()
    assert streamed[0] == 40 and 10 < streamed[1] < 40  # the second stream was stopped part-way
    assert (first["samples"], first["samples_expected"], first["lost_samples"]) == (200, 200, 0)
    assert cut["status"] == "interrupted" and cut["complete"] is False
    assert cut["frames_sent"] == streamed[1] == 24
    assert cut["frames_written"] == 10 and cut["samples"] == 10 * PER_FRAME
    assert cut["samples_expected"] == streamed[1] * PER_FRAME == 120
    assert cut["lost_samples"] == 120 - 50
    assert cut["frames_after_interrupt"] == streamed[1] - 10 and cut["gaps"] == 0
    assert summary(tmp_path)["lost_samples"] == 70 and summary(tmp_path)["incomplete"] == 1
    assert verify(tmp_path) == [] and verify(tmp_path).incomplete == [f"{cut['file']}: interrupted"]


def test_a_disconnected_recording_keeps_its_samples_and_claims_no_count_it_cannot_know(tmp_path):
    """Unplugged 60 frames in (20 into the second recording): the 100 samples that arrived are kept;
    the board could not say how many frames it sent, so neither expected nor lost samples are given
    (not a made-up 0), and the data set's lost-sample total counts none for it."""
    wire = Wire("sim://nano33ble?label=punch&unplug_frames=60")
    s = Session("nano33ble", "imu", tmp_path, "punch", rate=100, seconds=2, count=3, port=wire.ser, timeout=0.3)
    with pytest.raises(BoardGone):
        s.run()
    first, cut = manifest(tmp_path)
    assert wire.frames_per_stream() == [40, 20]
    assert (first["samples"], first["samples_expected"], first["lost_samples"], first["frames_sent"]) == (200, 200, 0, 40)
    assert cut["status"] == "disconnected" and cut["complete"] is False and "disappeared" in cut["reason"]
    assert (cut["samples"], cut["frames_written"], cut["gaps"]) == (100, 20, 0)
    assert (cut["frames_sent"], cut["samples_expected"], cut["lost_samples"]) == (None, None, None)
    assert summary(tmp_path)["lost_samples"] == 0 and summary(tmp_path)["incomplete"] == 1


def test_a_wav_header_says_16_bit_mono_at_its_rate(tmp_path):
    """The RIFF header of a recording cut by an unplug: every field a player reads is right (RIFF size,
    fmt: PCM, 1 channel, 16 kHz, 32,000 bytes a second, 2-byte blocks of 16 bits; data size)."""
    s = Session("nano33ble", "microphone", tmp_path, "yes", seconds=1, count=1,
                port="sim://nano33ble?label=yes&unplug_frames=100", timeout=0.3)
    with pytest.raises(BoardGone):
        s.run()
    rec = manifest(tmp_path)[0]
    raw = (tmp_path / rec["file"]).read_bytes()
    samples = rec["samples"]
    assert samples == 100 * 48 and len(raw) == 44 + 2 * samples
    assert raw[:4] == b"RIFF" and int.from_bytes(raw[4:8], "little") == len(raw) - 8 and raw[8:12] == b"WAVE"
    fmt = raw[12:36]
    assert fmt[:4] == b"fmt " and int.from_bytes(fmt[4:8], "little") == 16
    fields = [int.from_bytes(fmt[a:b], "little") for a, b in ((8, 10), (10, 12), (12, 16), (16, 20), (20, 22), (22, 24))]
    assert fields == [1, 1, 16000, 32000, 2, 16]  # PCM, mono, rate, byte rate, block align, bits
    assert raw[36:40] == b"data" and int.from_bytes(raw[40:44], "little") == 2 * samples
    with wave.open(str(tmp_path / rec["file"])) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, samples)


def test_an_incomplete_recording_taken_in_is_filled_to_the_complete_ones_length(tmp_path):
    """load_dataset(include_incomplete=True): the complete recordings keep their 200 samples; the
    interrupted one (50 samples) is filled to that length with its last sample, not the others cut."""
    from edgekit.capture import load_dataset
    s = Session("nano33ble", "imu", tmp_path, "circle", rate=100, seconds=2, count=3,
                port="sim://nano33ble?label=circle", timeout=0.3, progress=CtrlCAfter(50))
    with pytest.raises(KeyboardInterrupt):
        s.run()
    assert len(load_dataset(tmp_path).x) == 1  # the complete one alone, by default
    ds = load_dataset(tmp_path, include_incomplete=True)
    assert ds.x.shape[:2] == (2, 200)
    assert (ds.x[1, 50:] == ds.x[1, 49]).all()  # the cut one, held at its last sample
