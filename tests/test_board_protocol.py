"""The serial protocol end to end: BoardClient against VirtualBoard, over pyserial's sim:// URL and
over a real pseudo-terminal, with real TFLite Micro, the real simulator and (when g++ is there)
the C++ host harness. Every wait is bounded by short client timeouts."""
import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import serial

from board_fixtures import expected, model_path, sample  # noqa: F401  (pytest fixtures, used by name)
from edgekit.protocol import BoardClient, VirtualBoard, fixed3, serve_pty
from edgekit.protocol import stand_in
from edgekit.protocol.client import BoardError, BoardReplyError, channel_mask
from edgekit.protocol.virtual import VirtualSensor
from edgekit import emulator
from edgekit.errors import EdgekitError
from edgekit.sim.simulate import simulate
from platforms import needs_tflm, sigint_default

ROOT = Path(__file__).resolve().parents[1]
MLPERF_NAME = re.compile(r"^m-(name)-dut-\[([^]]+)]$")  # the MLPerf Tiny runner's pattern




@pytest.fixture(params=["sim", "pty"])
def client(request, model_path):
    """A BoardClient talking to a virtual nano33ble over a sim:// URL or a pseudo-terminal."""
    if request.param == "sim":
        c = BoardClient(f"sim://nano33ble?model={model_path}", timeout=1.0)
        yield c
        c.close()
    else:
        board = VirtualBoard("nano33ble", model_path.read_bytes())
        path, stop = serve_pty(board)
        assert path.startswith("/dev/")
        c = BoardClient(path, timeout=1.0, pace_s=0)
        yield c
        c.close()
        stop()
        board.close()


@needs_tflm
def test_full_cycle(client, model_path, sample, expected):
    model = model_path.read_bytes()
    sim = simulate(model, "nano33ble")

    info = client.info()
    assert info["model_sha256"] == hashlib.sha256(model).hexdigest()
    assert info["board"] == "nano33ble" and info["protocol"] == 1
    assert info["firmware"].startswith("edgekit-virtual ")
    assert info["arena_bytes"] == sim.arena_bytes and info["flash_used"] == sim.flash_bytes
    assert 0 < info["arena_used"] <= info["arena_bytes"]
    assert info["clock_hz"] == 64_000_000
    assert (info["input_bytes"], info["input_dtype"]) == (768, "int8")
    assert (info["output_bytes"], info["output_dtype"]) == (10, "int8")
    assert client.name() == "edgekit nano33ble"
    assert client.profile() == {"profile": "ULPMark for tinyML Firmware V0.0.1", "model": "edgekit"}

    loaded = client.load(sample.tobytes())
    assert loaded["bytes"] == 768 and loaded["chunks"] == 8 and loaded["crc_resends"] == 0
    assert client.db_print() == sample.tobytes()

    r = client.infer(10, 1)
    assert (r["n"], r["warmup"], r["recovered"]) == (10, 1, False)
    assert abs(r["latency_us"] - sim.latency_ms * 1000) <= 1.0  # the simulator's latency, 1 us/inference
    assert client.raw() == expected                                # TFLite Micro's int8 outputs, exactly
    scale, zp = 1 / 256, -128                                      # the softmax output's quantization
    assert r["results"] == pytest.approx([(q - zp) * scale for q in expected], abs=0.0006)
    assert client.results() == r["results"]

    layers = client.layers()
    assert [op for _, op, _ in layers] == [row["op"] for row in sim.layers]
    assert [i for i, _, _ in layers] == list(range(len(sim.layers)))
    for (_, _, us), row in zip(layers, sim.layers):
        assert abs(us - row["latency_ms"] * 1000) <= 0.5
    t = client.timestamp()
    assert t >= r["t1_us"]
    assert client.stats["garbage"] == 0 and client.stats["retries"] == 0


@needs_tflm
def test_legacy_db_load(model_path, sample, expected):
    """MLPerf Tiny's plain `db <hex>` loading, 31 bytes a command, gives the same inference."""
    c = BoardClient(f"sim://nano33ble?model={model_path}", timeout=1.0)
    try:
        before = c.ser.board.commands
        r = c.load(sample.tobytes(), legacy=True)
        assert r["chunks"] == 25  # ceil(768 / 31)
        assert c.ser.board.commands - before == 1 + 25
        c.infer(1, 0)
        assert c.raw() == expected
        assert c.db_print() == sample.tobytes()
    finally:
        c.close()


def _runner_command(port, cmd: str, timeout: float = 5.0) -> list[str]:
    """As the MLPerf Tiny runner does: send cmd + '%', collect lines until one contains m-ready."""
    port.write((cmd + "%").encode())
    lines, buf, end = [], b"", time.monotonic() + timeout
    while time.monotonic() < end:
        buf += port.read(max(1, port.in_waiting))
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.decode().strip()
            lines.append(line)
            if "m-ready" in line:
                return lines
    raise AssertionError(f"No response to command {cmd}")


EMULATOR, NO_EMULATOR = emulator.available("nano33ble")


@needs_tflm
@pytest.mark.parametrize("how", ["sim", "pty", pytest.param("emulated", marks=pytest.mark.skipif(
    not EMULATOR, reason=f"no emulated board here: {NO_EMULATOR}"))])
def test_mlperf_runner_conversation(how, model_path, sample, expected, tmp_path):
    """The MLPerf Tiny runner's commands against the virtual board (a sim:// port, a pseudo-terminal)
    and against the real firmware on the emulated Cortex-M4 (QEMU), with the runner's own reading."""
    board = stop = None
    if how == "sim":
        import edgekit.protocol  # noqa: F401  (registers sim://)
        port = serial.serial_for_url(f"sim://nano33ble?model={model_path}", timeout=0.05)
    elif how == "emulated":
        image = emulator.build_image(model_path.read_bytes(), "nano33ble", tmp_path / "image")
        emu = emulator.start(image)
        stop = emu.close
        port = serial.serial_for_url(emu.port, timeout=0.05)
    else:
        board = VirtualBoard("nano33ble", model_path.read_bytes())
        path, stop = serve_pty(board)
        port = serial.Serial(path, 115200, timeout=0.05)
    try:
        names = [m for m in map(MLPERF_NAME.match, _runner_command(port, "name")) if m]
        assert names and names[0].group(2) == "edgekit nano33ble"
        assert "m-profile-[ULPMark for tinyML Firmware V0.0.1]" in _runner_command(port, "profile")
        data = sample.tobytes()
        assert _runner_command(port, f"db load {len(data)}") == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
        for off in range(0, len(data), 31):
            reply = _runner_command(port, "db " + data[off:off + 31].hex())
            assert reply == (["m-load-done", "m-ready"] if off + 31 >= len(data) else ["m-ready"])
        reply = _runner_command(port, "infer 10 1")
        assert reply[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-10"]
        laps = [int(x[len("m-lap-us-"):]) for x in reply if x.startswith("m-lap-us-")]
        assert len(laps) == 2 and laps[1] > laps[0]
        results = [x for x in reply if x.startswith("m-results-[")]
        values = [float(v) for v in results[0][len("m-results-["):-1].split(",")]
        assert values == pytest.approx([(q + 128) / 256 for q in expected], abs=0.0006)
        assert reply[-1] == "m-ready"
    finally:
        port.close()
        if stop:
            stop()
        if board:
            board.close()


def test_virtual_board_bytes():
    """Framing: partial commands wait, line ends are ignored, every reply ends with m-ready."""
    b = VirtualBoard("nano33ble", stand_in=True)
    assert b.boot_banner() == b"m-timestamp-mode-performance\r\nm-lap-us-0\r\nm-init-done\r\nm-ready\r\n"
    assert b.feed(b"na") == b""
    assert b.feed(b"me%\r\n") == b"m-name-dut-[edgekit nano33ble]\r\nm-ready\r\n"
    assert b.feed(b"nonsense 1 2%") == b"e-[Unknown command: nonsense]\r\nm-ready\r\n"
    assert b.feed(b"x" * 300 + b"%") == b"e-[Command too long]\r\nm-ready\r\n"
    assert b.feed(b"y" * 256 + b"%") == b"e-[Unknown command: " + b"y" * 256 + b"]\r\nm-ready\r\n"
    assert b.feed(b"results%") == b"e-[No inference yet]\r\nm-ready\r\n"
    assert b.feed(b"stop%") == b"e-[No stream running]\r\nm-ready\r\n"
    assert b.feed(b"db load 999999%") == b"m-[Error: Input size exceeds maximum]\r\nm-ready\r\n"
    assert b.feed(b"db load 4%db 0102%db 03zz%db 030%db 0304ff%") == (
        b"m-[Expecting 4 bytes]\r\nm-ready\r\nm-ready\r\ne-[Invalid hex digit 'z']\r\nm-ready\r\n"
        b"e-[Insufficent number of hex digits]\r\nm-ready\r\nm-load-done\r\nm-ready\r\n")
    assert b.feed(b"db print%") == b"m-buffer-01-02-03-04\r\nm-ready\r\n"
    chunk = bytes(range(5))
    assert b.feed(b"dbx 0 %08x %s%%" % (zlib.crc32(chunk) ^ 1, chunk.hex().encode())) == \
        b"e-[CRC mismatch at 0]\r\nm-ready\r\n"
    assert b.feed(b"db load 5%") == b"m-[Expecting 5 bytes]\r\nm-ready\r\n"
    assert b.feed(b"dbx 0 %08x %s%%" % (zlib.crc32(chunk), chunk.hex().encode())) == b"m-dbx-ok-5\r\nm-ready\r\n"


def test_stand_in_clock_and_outputs():
    """The stand-in documented in firmware/host/edgekit_host_board.cpp, by its own examples."""
    b = VirtualBoard("nano33ble", stand_in=True)
    reply = b.feed(b"infer 10 1%").decode().split("\r\n")
    assert reply[3:5] == ["m-lap-us-1010", "m-lap-us-11010"]
    assert reply[6] == "m-results-[0.500,0.500,0.500,0.500]" and reply[-2] == "m-ready"
    assert b.feed(b"layers%") == (b"m-layer-0-CONV_2D-us-400\r\nm-layer-1-DEPTHWISE_CONV_2D-us-300\r\n"
                                  b"m-layer-2-FULLY_CONNECTED-us-200\r\nm-layer-3-SOFTMAX-us-100\r\nm-ready\r\n")
    data = bytes([1, 2, 3, 4] * 4) + bytes([250])
    assert stand_in.run(data) == bytes([(1 * 4 + 250) & 0xFF, 8, 12, 16])
    assert fixed3(16 / 256) == "0.063" and fixed3(-0.0004) == "0.000" and fixed3(-1.5) == "-1.500"
    assert fixed3(float("nan")) == "nan" and fixed3(1e7) == "inf"


def test_stream_frames():
    c = BoardClient("sim://nano33ble?stand_in=1", timeout=1.0)
    try:
        with c.stream("counter", 1000, 10) as s:
            frames = list(s)
        assert [f.seq for f in frames] == [0, 1, 2] and all(f.crc_ok for f in frames)
        assert [len(f.payload) for f in frames] == [24, 24, 12]  # 4 samples of 3 int16 a frame
        t0 = frames[0].t_us
        assert [f.t_us - t0 for f in frames] == [0, 4000, 8000]
        values = np.frombuffer(b"".join(f.payload for f in frames), "<i2").reshape(10, 3)
        assert values[:, 0].tolist() == [int(np.int16(np.uint16((3 * k * 1000) % 65536))) for k in range(10)]
        assert s.stats["good"] == 3 and s.stats["sent"] == 3 and s.stats["gaps"] == 0 and s.stats["lost"] == 0
        s2 = c.stream("adc", 100, 0 + 1000)  # stop early
        first = next(iter(s2))
        assert first.seq == 0 and first.crc_ok
        stats = s2.stop()
        assert stats["sent"] >= 1
        assert c.name() == "edgekit nano33ble"  # back to commands
        with pytest.raises(BoardReplyError, match="Unknown sensor: nope"):
            c.stream("nope", 10, 10)
    finally:
        c.close()


def _values(frames, channels: int) -> np.ndarray:
    return np.frombuffer(b"".join(f.payload for f in frames), "<i2").reshape(-1, channels)


def test_virtual_stream_channel_masks():
    """The virtual board keeps the masked columns of what the sensor source returns, sizes frames
    by the channels sent, and refuses bad masks as the C++ core does."""
    b = VirtualBoard("nano33ble", stand_in=True)
    assert b.feed(b"stream wide 1000 7 1c0%") == b"m-stream-start-wide-1000-3\r\n"
    out = b.poll(100).decode().split("\r\n")
    payload = bytes.fromhex(out[0].split("-")[3])
    assert np.frombuffer(payload, "<i2").reshape(7, 3).tolist() == \
        stand_in.wide_source("wide", 9, 1000.0, 0, 7)[:, 6:].tolist()
    assert out[1:] == ["m-stream-done-1", "m-ready", ""]
    b.feed(b"stream wide 2000 10%")                         # all 9 channels: 5 samples a frame
    assert [len(ln.split("-")[3]) // 4 for ln in b.poll(100).decode().split("\r\n")[:2]] == [45, 45]
    for bad in ["0", "200", "xyz", "123456789", "-1"]:
        assert b.feed(f"stream wide 100 10 {bad}%".encode()) == \
            f"e-[Invalid channel mask: {bad}]\r\nm-ready\r\n".encode()
    assert b.feed(b"stream counter 100 10 8%") == b"e-[Invalid channel mask: 8]\r\nm-ready\r\n"
    assert b.feed(b"stream wide 9999 10 0%") == b"e-[Invalid rate: 9999 (1 to 2000 Hz)]\r\nm-ready\r\n"
    assert b"m-help-stream <sensor> <rate_hz> <samples> [<channel_mask>]" in b.feed(b"help%")


def test_virtual_sensor_minimum_rate():
    """A sensor with min_rate_hz (the firmware's microphone runs at 16 kHz only) fails to start below it."""
    mic = VirtualSensor("microphone", 1, 16000, 48, stand_in.counter_source, min_rate_hz=16000)
    b = VirtualBoard("nano33ble", stand_in=True, sensors=[mic])
    assert b.feed(b"stream microphone 8000 10%") == b"e-[Sensor failed to start: microphone]\r\nm-ready\r\n"
    assert b.feed(b"stream microphone 16000 96%") == b"m-stream-start-microphone-16000-1\r\n"
    assert b.poll(100).decode().split("\r\n")[-3:] == ["m-stream-done-2", "m-ready", ""]


def test_client_stream_channels_round_trip():
    c = BoardClient("sim://nano33ble?stand_in=1", timeout=1.0)
    try:
        every = stand_in.wide_source("wide", 9, 1000.0, 0, 20)
        with c.stream("wide", 1000, 20, channels=[8, 0, 4]) as s:
            frames = list(s)
        assert s.channels == 3 and s.selected == [0, 4, 8]
        assert all(f.crc_ok for f in frames) and [len(f.payload) for f in frames] == [96, 24]  # 16 + 4 samples
        assert _values(frames, 3).tolist() == every[:, [0, 4, 8]].tolist()
        with c.stream("wide", 1000, 20) as s:               # None: every channel, as before
            assert s.channels == 9 and _values(list(s), 9).tolist() == every.tolist()
        with c.stream("counter", 1000, 3, channels=[1]) as s:
            assert _values(list(s), 1)[:, 0].tolist() == stand_in.counter_source("counter", 3, 1.0, 0, 3)[:, 1].tolist()
        with pytest.raises(BoardReplyError, match=r"Invalid channel mask: 8\]"):
            c.stream("counter", 100, 10, channels=[3])
        for bad in ([], [-1], [32]):
            with pytest.raises(BoardError, match="channel indices"):
                c.stream("counter", 100, 10, channels=bad)
        assert channel_mask([0, 1, 2]) == "7" and channel_mask([8, 6, 7, 7]) == "1c0"
        assert c.name() == "edgekit nano33ble"              # nothing left in the way
    finally:
        c.close()


def test_client_notices_firmware_without_masks(monkeypatch):
    """Firmware that predates masks ignores the extra word and sends every channel: the client says so."""
    original = VirtualBoard._stream
    monkeypatch.setattr(VirtualBoard, "_stream", lambda self, words: original(self, words[:4]))
    c = BoardClient("sim://nano33ble?stand_in=1", timeout=1.0)
    try:
        with pytest.raises(BoardError, match="predates channel masks"):
            c.stream("counter", 100, 1000, channels=[0])
        assert c.name() == "edgekit nano33ble"              # the stream was stopped
    finally:
        c.close()


def _harness(tmp_path) -> Path:
    src = [ROOT / "firmware/common/edgekit_protocol.cpp", ROOT / "firmware/host/edgekit_host_board.cpp"]
    if not shutil.which("g++") or not all(p.exists() for p in src):
        pytest.skip("needs g++ and the C++ host harness (firmware/host/edgekit_host_board.cpp)")
    exe = tmp_path / "edgekit_host_board"
    subprocess.run(["g++", "-std=c++17", "-O2", *map(str, src), "-o", str(exe)], check=True, timeout=120)
    return exe


def _script() -> list[bytes]:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, stand_in.INPUT_BYTES, dtype=np.uint8).tobytes()
    cmds = [b"name%", b"profile%", b"help%", b"timestamp%", b"info%", b"results%", b"raw%", b"layers%", b"stop%",
            b"bogus x%", b"%", b"db%", b"db load%", b"db load 0%", b"db load 5x%", b"db load 99999%", b"db 00%",
            b"db load 5%", b"db print%", b"db 0102%", b"db 0z%", b"db 012%", b"db 03040506%", b"db 07%",
            b"db print%", b"dbx%", b"dbx 0 1 zz%", b"dbx x 0 00%", b"x" * 300 + b"%", b"\r\ntimestamp%\r\n",
            b"db load %d%%" % len(data)]
    for off in range(0, len(data), 96):
        chunk = data[off:off + 96]
        cmds.append(b"dbx %d %08x %s%%" % (off, zlib.crc32(chunk), chunk.hex().encode()))
    cmds += [b"dbx 0 00000000 0102%", b"dbx 27640 %08x %s%%" % (zlib.crc32(b"\1" * 16), (b"\1" * 16).hex().encode()),
             b"dbx 0 %08x %s%%" % (zlib.crc32(b"\1" * 97), (b"\1" * 97).hex().encode()),
             b"infer 0 1%", b"infer 1 x%", b"infer 5x%", b"infer 10 1%", b"results%", b"raw%", b"layers%",
             b"infer%", b"infer 3%", b"stream%", b"stream foo 10 5%", b"stream counter 0 5%",
             b"stream counter 20000 5%", b"stream counter 100 0%", b"stream counter 1000 10%", b"timestamp%",
             b"stream counter 333 9%", b"timestamp%", b"infer 2 0%", b"help 1 2 3 4 5 6 7 8 9 10%"]
    # channel masks: selections, either case, 9 channels, frames sized by the channels sent, errors
    cmds += [b"stream counter 1000 10 5%", b"stream counter 1000 9 7%", b"stream wide 2000 23%",
             b"stream wide 2000 40 1%", b"stream wide 1500 13 1C0%", b"stream wide 2000 17 0f%",
             b"stream wide 100 3 00000100 x%", b"stream counter 100 5 0%", b"stream counter 100 5 8%",
             b"stream wide 100 5 200%", b"stream wide 100 5 3FF%", b"stream wide 100 5 g1%",
             b"stream wide 100 5 123456789%", b"stream wide 100 5 -1%", b"stream wide 0 5 zz%",
             b"stream wide 100 0 1%", b"timestamp%"]
    return cmds


def test_stand_in_matches_cpp_harness(tmp_path):
    """VirtualBoard(stand_in=True) and the C++ protocol core with its host harness answer a script
    of commands (errors, loads, inferences, streams) with the very same bytes."""
    exe = _harness(tmp_path)
    proc = subprocess.Popen([str(exe), "--board", "nano33ble"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    fd = proc.stdout.fileno()

    def read(n: int) -> bytes:
        buf, end = b"", time.monotonic() + 5
        while len(buf) < n and time.monotonic() < end:
            if select.select([fd], [], [], 0.05)[0]:
                buf += os.read(fd, 65536)
        if select.select([fd], [], [], 0)[0]:  # more is a difference too (later ones show in the next reply)
            buf += os.read(fd, 65536)
        return buf

    try:
        board = VirtualBoard("nano33ble", stand_in=True)
        want = board.boot_banner()
        assert read(len(want)) == want
        for cmd in _script():
            want = board.feed(cmd)
            while board.streaming:
                want += board.poll(1000)
            proc.stdin.write(cmd)
            proc.stdin.flush()
            assert read(len(want)) == want, cmd[:40]
        time.sleep(0.2)
        assert not select.select([fd], [], [], 0)[0], "the harness said more than the virtual board"
    finally:
        proc.stdin.close()
        proc.wait(timeout=5)


def test_serve_cli(model_path):
    """`edgekit board serve` prints the pty path, serves, and exits 0 on Ctrl-C without a traceback."""
    code = ("import argparse, sys\n"
            "from edgekit.protocol import add_cli, run_board\n"
            "p = argparse.ArgumentParser(prog='edgekit'); sub = p.add_subparsers(dest='command')\n"
            "add_cli(sub)\n"
            "sys.exit(run_board(p.parse_args(sys.argv[1:])))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "board", "serve", "--target", "nano33ble",
                             "--model", str(model_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)  # Ctrl-C must reach it
    try:
        ready = select.select([proc.stdout], [], [], 30)[0]
        assert ready, "serve printed no path"
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        c = BoardClient(path, timeout=1.0, pace_s=0)
        assert c.name() == "edgekit nano33ble"
        assert c.info()["model_sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
        c.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_urls_and_ports(tmp_path):
    with pytest.raises(EdgekitError, match="unknown fault option 'bogus'"):
        BoardClient("sim://nano33ble?stand_in=1&bogus=1", timeout=0.5)
    with pytest.raises(EdgekitError, match="cannot read the model"):
        BoardClient(f"sim://nano33ble?model={tmp_path / 'missing.tflite'}", timeout=0.5)
    with pytest.raises(EdgekitError, match="nosuchboard"):
        BoardClient("sim://nosuchboard", timeout=0.5)
    with pytest.raises(BoardError, match=r"cannot open the board at /dev/ttyEDGEKIT0"):
        BoardClient("/dev/ttyEDGEKIT0", timeout=0.5)


def test_client_drives_the_cpp_harness_like_the_stand_in(tmp_path):
    """BoardClient over a real pty to the C++ host harness, and over sim:// to the stand-in:
    the same info, outputs, timings, layers and stream frames."""
    exe = _harness(tmp_path)
    proc = subprocess.Popen([str(exe), "--pty", "--board", "nano33ble"], stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([proc.stdout], [], [], 10)[0], "the harness printed no pty"
        path = proc.stdout.readline().split()[1]
        data = np.random.default_rng(5).integers(0, 256, stand_in.INPUT_BYTES, dtype=np.uint8).tobytes()
        seen = []
        for port in (path, "sim://nano33ble?stand_in=1"):
            c = BoardClient(port, timeout=2.0, pace_s=0)
            try:
                info = c.info()
                c.load(data)
                r = c.infer(10, 1)
                raw = c.raw()
                c.load(data[::-1], legacy=True)
                r2 = c.infer(2, 0)
                with c.stream("counter", 2000, 10) as s:
                    frames = [(f.seq, f.payload, f.crc_ok) for f in s]
                with c.stream("wide", 2000, 21, channels=[0, 8]) as s:
                    frames += [(f.seq, f.payload, f.crc_ok) for f in s]
                s2 = c.stream("counter", 200, 100000)
                next(iter(s2))
                stopped = s2.stop()
                seen.append((c.name(), info, r["latency_us"], r["results"], raw, c.layers(), c.db_print()[:64],
                             r2["results"], frames, stopped["sent"] >= 1, c.stats["garbage"], c.stats["retries"]))
            finally:
                c.close()
        assert seen[0] == seen[1]
        name, info, latency, results, raw, layers, *_ = seen[0]
        assert name == "edgekit nano33ble" and info["input_bytes"] == stand_in.INPUT_BYTES
        assert latency == 1000.0 and raw == list(np.frombuffer(stand_in.run(data), np.int8))
        assert [op for _, op, _ in layers] == [op for op, _ in stand_in.LAYERS]
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_client_on_an_open_serial_object():
    port = serial.serial_for_url("sim://esp32s3?stand_in=1", timeout=1)
    c = BoardClient(port, timeout=0.5)
    assert c.port.startswith("sim://esp32s3") and c.pace_s == 0
    assert c.name() == "edgekit esp32s3" and c.info()["clock_hz"] == 240_000_000
    c.close()
    assert port.is_open  # the caller's port stays the caller's
    port.close()
