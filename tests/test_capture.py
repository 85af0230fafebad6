"""Sensor capture against the virtual board: files, manifest, exact loss counts under
injected faults (corrupted and dropped bytes, an unplug and Ctrl-C in the middle of a recording),
appending, Edge Impulse JSON, load_dataset, and the CLI's errors. Virtual clock: no real waiting."""
import json
import re
import wave
import zlib

import numpy as np
import pytest
import serial

import edgekit
import edgekit.protocol  # noqa: F401  (registers sim://)
from edgekit.protocol.client import BoardGone
from edgekit.capture import Session, capture, load_dataset, read_recording, verify
from edgekit.capture.manifest import sha256_file
from edgekit.sim.sensors import SimulatedSensors
from edgekit.cli import main
from edgekit.targets import load_board

FRAME_RE = re.compile(rb"f-(\d+)-(\d+)-((?:[0-9a-f]{2})*)-([0-9a-f]{8})")


class Tap:
    """A sim:// port whose board output is recorded before the faults (what the board sent) and
    after them (what the host read). It only watches: every byte still goes through."""

    def __init__(self, url):
        self.ser = serial.serial_for_url(url, timeout=0.02)
        self.sent, self.read = bytearray(), bytearray()
        link = self.ser.link
        emit, read = link.emit, self.ser.read

        def tap_emit(data):
            self.sent.extend(data)
            return emit(data)

        def tap_read(n=1):
            data = read(n)
            self.read.extend(data)
            return data
        link.emit, self.ser.read = tap_emit, tap_read

    def frames(self, data) -> list[tuple[int, int, bytes]]:
        """(seq, t_us, payload) of every whole frame line with a good CRC in `data`."""
        out = []
        for line in bytes(data).split(b"\r\n"):
            m = FRAME_RE.fullmatch(line)
            if m and zlib.crc32(bytes.fromhex(m.group(3).decode())) == int(m.group(4), 16):
                out.append((int(m.group(1)), int(m.group(2)), bytes.fromhex(m.group(3).decode())))
        return out


def split_streams(frames):
    """Frames grouped per stream (a sequence number that does not grow starts a new one)."""
    groups, last = [], None
    for f in frames:
        if last is None or f[0] <= last:
            groups.append([])
        groups[-1].append(f)
        last = f[0]
    return groups


def csv_rows(path):
    values, t = read_recording(path)
    return t, values


@pytest.mark.parametrize("faults", ["corrupt=0.01&seed=5", "drop=0.003&corrupt=0.002&seed=6"])
def test_faults_every_intact_frame_on_disk_every_loss_counted(tmp_path, faults):
    """1% corrupted bytes (and dropped bytes): the frames that arrived exactly as the board sent
    them are exactly the frames on disk, sample for sample, and frames sent = written + gaps."""
    tap = Tap(f"sim://nano33ble?label=wave&{faults}")
    entries = capture("nano33ble", "imu", tmp_path, label="wave", rate=100, seconds=2, count=4,
                      channels=["ax", "ay", "az", "gx", "gy", "gz"], port=tap.ser, timeout=0.3)
    streams = split_streams(tap.frames(tap.sent))   # more than 4 when a garbled start made capture ask again
    received = set(tap.frames(tap.read))
    total_lost = 0
    for entry in entries:
        t, _ = csv_rows(tmp_path / entry["file"])
        # the recording's stream: the first left whose frames hold the file's first timestamp
        while not any(f in received and f[1] - s0 == (t[0] if len(t) else 0)
                      for s0 in [streams[0][0][1]] for f in streams[0]):
            streams.pop(0)
        sent = streams.pop(0)
        assert entry["complete"] and entry["frames_sent"] == 25 and entry["channels"] == ["ax", "ay", "az", "gx", "gy", "gz"]
        intact = [f for f in sent if f in received]
        t0 = sent[0][1]
        t, values = csv_rows(tmp_path / entry["file"])
        raw = np.round(values / np.array(entry["scales"])).astype(np.int16)
        expect_t = np.concatenate([f[1] - t0 + (np.arange(8) * 10000) for f in intact]) if intact else np.zeros(0)
        expect_raw = np.concatenate([np.frombuffer(f[2], "<i2").reshape(-1, 6) for f in intact]) if intact else None
        assert t.tolist() == expect_t.tolist()               # exactly the intact frames, in order
        if intact:
            assert np.array_equal(raw, expect_raw)           # and their samples, bit for bit
        assert entry["frames_written"] == len(intact)
        assert entry["frames_written"] + entry["gaps"] == 25  # every missing frame counted
        assert entry["lost_samples"] == 200 - len(t) and entry["samples"] == len(t)
        assert entry["crc_failures"] + entry["header_errors"] <= entry["gaps"]
        total_lost += entry["gaps"]
    assert total_lost > 10  # the faults did hit
    assert verify(tmp_path) == []


def test_unplug_mid_recording_keeps_what_arrived(tmp_path):
    """The board is unplugged 20 frames into the second recording: the first is complete, the second
    keeps its 20 frames, marked incomplete; the session ends with BoardGone; everything parses."""
    s = Session("nano33ble", "imu", tmp_path, "punch", rate=100, seconds=2, count=3,
                port="sim://nano33ble?label=punch&unplug_frames=60", timeout=0.3)  # 40 frames a recording
    with pytest.raises(BoardGone):
        s.run()
    recs = json.loads((tmp_path / "manifest.json").read_text())["recordings"]
    assert [r["status"] for r in recs] == ["complete", "disconnected"]
    assert recs[0]["samples"] == 200 and recs[0]["complete"]
    assert recs[1]["samples"] == 100 and recs[1]["frames_written"] == 20 and not recs[1]["complete"]
    assert "disappeared" in recs[1]["reason"]
    t, values = csv_rows(tmp_path / recs[1]["file"])
    assert len(t) == 100 and values.shape == (100, 9) and t[-1] == 990000
    assert verify(tmp_path) == []
    assert not (tmp_path / "punch" / "punch.3.csv").exists()


def test_unplug_mid_stream_of_a_wav(tmp_path):
    s = Session("nano33ble", "microphone", tmp_path, "yes", seconds=1, count=1,
                port="sim://nano33ble?label=yes&unplug_frames=100", timeout=0.3)
    with pytest.raises(BoardGone):
        s.run()
    rec = json.loads((tmp_path / "manifest.json").read_text())["recordings"][0]
    with wave.open(str(tmp_path / rec["file"])) as w:   # a valid WAV up to the last frame received
        assert w.getnframes() == 100 * 48 == rec["samples"] and w.getframerate() == 16000
    assert rec["status"] == "disconnected" and sha256_file(tmp_path / rec["file"]) == rec["sha256"]


class StopAfter:
    """Ctrl-C after n samples of the second recording (raised where a user's Ctrl-C lands)."""

    def __init__(self, n):
        self.n, self.recording = n, -1

    def countdown(self, *a): ...

    def begin(self, index, count, path, samples):
        self.recording = index

    def update(self, samples, rate, lost):
        if self.recording == 1 and samples >= self.n:
            raise KeyboardInterrupt

    def end(self, entry): ...


def test_ctrl_c_keeps_the_recording_and_marks_it_incomplete(tmp_path):
    s = Session("nano33ble", "imu", tmp_path, "circle", rate=100, seconds=2, count=3,
                port="sim://nano33ble?label=circle", timeout=0.3, progress=StopAfter(50))
    with pytest.raises(KeyboardInterrupt):
        s.run()
    recs = json.loads((tmp_path / "manifest.json").read_text())["recordings"]
    assert [r["status"] for r in recs] == ["complete", "interrupted"]
    assert recs[1]["samples"] == 50 and recs[1]["frames_sent"] >= 10 and recs[1]["complete"] is False
    assert recs[1]["frames_after_interrupt"] == recs[1]["frames_sent"] - 10
    t, values = csv_rows(tmp_path / recs[1]["file"])
    assert len(t) == 50 and t[-1] == 490000
    assert verify(tmp_path) == []


def test_files_append_and_the_simulation_is_deterministic(tmp_path):
    a = capture("nano33ble", "imu", tmp_path / "a", label="wave", seconds=1, count=2, seed=7)
    b = capture("nano33ble", "imu", tmp_path / "b", label="wave", seconds=1, count=2, seed=7)
    assert [e["sha256"] for e in a] == [e["sha256"] for e in b]      # same seed, same data
    more = capture("nano33ble", "imu", tmp_path / "a", label="wave", seconds=1, count=2, seed=7)
    assert [e["file"] for e in more] == ["wave/wave.3.csv", "wave/wave.4.csv"]
    assert len({e["sha256"] for e in a + more}) == 4                 # new recordings, new variation
    assert sha256_file(tmp_path / "a" / "wave" / "wave.1.csv") == a[0]["sha256"]  # never rewritten
    (tmp_path / "a" / "wave" / "wave.9.csv").write_text("timestamp_us\n")   # a file the manifest lacks
    again = capture("nano33ble", "imu", tmp_path / "a", label="wave", seconds=1, count=1)
    assert again[0]["file"] == "wave/wave.10.csv"
    assert len(json.loads((tmp_path / "a" / "manifest.json").read_text())["recordings"]) == 5


def test_values_follow_the_contract(tmp_path):
    """The CSV holds the simulated physical values (raw * scale) of the samples the board sent."""
    e = capture("nano33ble", "imu", tmp_path, label="wave", seconds=1, count=1, seed=3, revision="Rev2")[0]
    assert e["part"] == "BMI270 + BMM150" and e["rate_achieved"] == 100 and not e["shortfall"]
    board = load_board("nano33ble")
    src = SimulatedSensors(board, label="wave", seed=3, revision="Rev2", recording=0)
    want = src("imu", 9, 100.0, 0, 100) * np.array(e["scales"])
    t, values = csv_rows(tmp_path / e["file"])
    assert np.allclose(values, want, rtol=1e-5, atol=1e-9) and t.tolist() == list(range(0, 1000000, 10000))
    assert "timestamp_us,ax_g,ay_g,az_g,gx_dps" in (tmp_path / e["file"]).read_text().split("\n")[0]
    mag = values[:, 6:]
    assert (np.diff(mag, axis=0) != 0).any(axis=1).sum() <= 10   # the BMM150 updates at 10 Hz


def test_edge_impulse_json_audio_and_camera(tmp_path):
    imu = capture("esp32s3", "imu", tmp_path, label="punch", rate=50, seconds=1, count=1, ei_json=True)[0]
    doc = json.loads((tmp_path / imu["ei_json"]["file"]).read_text())
    assert doc["protected"]["ver"] == "v1" and len(doc["signature"]) == 64
    p = doc["payload"]
    assert p["interval_ms"] == 20 and [s["name"] for s in p["sensors"]] == ["ax", "ay", "az", "gx", "gy", "gz"]
    assert np.array(p["values"]).shape == (50, 6)
    _, values = csv_rows(tmp_path / imu["file"])
    assert np.allclose(np.array(p["values"]), values, rtol=1e-5)
    mic = capture("esp32s3", "microphone", tmp_path, label="yes", seconds=1, count=1, ei_json=True)[0]
    doc = json.loads((tmp_path / mic["ei_json"]["file"]).read_text())["payload"]
    assert doc["sensors"] == [{"name": "audio", "units": "wav"}] and len(doc["values"]) == 16000
    with wave.open(str(tmp_path / mic["file"])) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert pcm.tolist() == doc["values"] and np.abs(pcm).max() > 2000  # a word-like burst is in it
    cam = capture("esp32s3", "camera", tmp_path, label="cat", count=2, image="jpeg")
    for c in cam:
        img, _ = read_recording(tmp_path / c["file"])
        assert img.shape == (96, 96, 3) and c["samples"] == 9216 and c["rate_achieved"] == pytest.approx(2, rel=1e-3)
    assert verify(tmp_path) == []


def test_audio_keywords_differ():
    """Two keywords' bursts have different spectra; silence has no burst."""
    board = load_board("nano33ble")

    def spectrum(label):
        x = SimulatedSensors(board, label=label, seed=1)("microphone", 1, 16000.0, 0, 16000)[:, 0] / 32768
        return np.abs(np.fft.rfft(x))[:4000], np.abs(x).max()
    yes, no, silence = spectrum("yes"), spectrum("no"), spectrum("silence")
    assert silence[1] < 0.05 < min(yes[1], no[1])
    peak_yes, peak_no = np.argmax(yes[0][100:]) + 100, np.argmax(no[0][100:]) + 100
    assert abs(int(peak_yes) - int(peak_no)) > 50


def test_stream_api_and_load_dataset(tmp_path):
    frames = list(edgekit.stream("nano33ble", "imu", rate=200, seconds=1, channels=["ax", "ay", "az"],
                                 force="sim", label="circle"))
    assert sum(len(f.t_us) for f in frames) == 200 and frames[0].values.shape[1] == 3
    assert frames[0].units == ["g", "g", "g"] and np.concatenate([f.values for f in frames])[:, 2].mean() > 0.7  # gravity
    it = edgekit.stream("nano33ble", "temperature", force="sim")      # endless until closed
    first = next(it)
    it.close()
    assert 15 < first.values[0, 0] < 30 and 20 < first.values[0, 1] < 70
    for label in ("idle", "wave"):
        capture("nano33ble", "imu", tmp_path, label=label, seconds=1, count=3)
    x, y, labels = load_dataset(tmp_path)
    assert x.shape == (6, 100, 9) and x.dtype == np.float32 and labels == ["idle", "wave"]
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    capture("nano33ble", "microphone", tmp_path, label="yes", seconds=0.1, count=1)
    with pytest.raises(edgekit.EdgekitError, match="several sensors"):
        load_dataset(tmp_path)
    assert load_dataset(tmp_path, sensor="microphone").x.shape == (1, 1600, 1)


def _cli(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_capture_sensors_plot(tmp_path, capsys):
    rc, out, _ = _cli(capsys, "capture", "--target", "nano33ble", "--sensor", "imu", "--label", "wave",
                      "--count", "2", "-o", str(tmp_path), "--sim", "--json", "--plot", "--format", "ei-json")
    doc = json.loads(out)
    assert rc == 0 and [r["file"] for r in doc["recordings"]] == ["wave/wave.1.csv", "wave/wave.2.csv"]
    assert doc["recordings"][0]["mode"] == "simulated" and (tmp_path / "plots" / "wave.1.png").stat().st_size > 1000
    rc, out, _ = _cli(capsys, "sensors", "--target", "nano33ble", "--json")
    rows = {(r["sensor"], r["revision"]): r for r in json.loads(out)["sensors"]}
    assert rows[("imu", "Rev2")]["channels"][6:] == ["mx", "my", "mz"] and rows[("imu", "Rev1")]["max_rate"] == 1000
    assert rows[("microphone", None)]["units"] == ["pcm16"]
    rc, out, _ = _cli(capsys, "plot", str(tmp_path / "wave" / "wave.1.csv"), "-o", str(tmp_path / "w.png"))
    assert rc == 0 and (tmp_path / "w.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--sensor", "gps"], "has no sensor 'gps'"),
    (["--sensor", "imu", "--rate", "5000"], "at most 1000 Hz"),
    (["--sensor", "microphone", "--rate", "8000"], "exactly 16000 Hz"),
    (["--sensor", "imu", "--channels", "ax,qq"], "no channel 'qq'"),
    (["--sensor", "imu", "--label", "../up"], "--label"),
    (["--sensor", "imu", "--revision", "Rev9"], "no revision 'Rev9'"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "data"
    args = ["capture", "--target", "nano33ble", "-o", str(out), "--sim"] + argv
    rc, _, err = _cli(capsys, *(args if "--label" in argv else args + ["--label", "wave"]))
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_unwritable_folder(tmp_path, capsys):
    import os
    afile = tmp_path / "f"
    afile.write_text("x")
    rc, _, err = _cli(capsys, "capture", "--target", "nano33ble", "--sensor", "imu", "--label", "wave",
                      "-o", str(afile), "--sim")
    assert rc == 2 and "is a file" in err
    rc, _, err = _cli(capsys, "capture", "--target", "nano33ble", "--sensor", "imu", "--label", "wave",
                      "-o", str(afile / "data"), "--sim")
    assert rc == 2 and "cannot write" in err
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere: the permission case needs another user")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, _, err = _cli(capsys, "capture", "--target", "nano33ble", "--sensor", "imu", "--label", "wave",
                          "-o", str(locked / "data"), "--sim")
    finally:
        locked.chmod(0o700)
    assert rc == 2 and "cannot write" in err and not (locked / "data").exists()
