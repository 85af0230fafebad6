"""The firmware's protocol core (firmware/common/edgekit_protocol.cpp), driven over a real
pseudo-terminal with pyserial, as edgekit drives a board.

The host harness (firmware/host/edgekit_host_board.cpp) wires the core to the master side of a
pty (``--fd``, inherited from os.openpty); the test opens the slave side by path with pyserial.
The harness's stand-in model and fake clock are deterministic (documented at the top of the
harness), so replies are compared byte for byte. The core is also compiled freestanding for the
host and, when arm-none-eabi-g++ is installed, for the Nano 33 BLE's Cortex-M4.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import serial  # pyserial is a core dependency: its absence is a failure, not a skip
if not hasattr(os, "openpty"):
    pytest.skip("the host harness needs POSIX pseudo-terminals", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "firmware" / "common" / "edgekit_protocol.cpp"
HARNESS = ROOT / "firmware" / "host" / "edgekit_host_board.cpp"

INPUT_BYTES = 96 * 96 * 3
BANNER = ["m-timestamp-mode-performance", "m-lap-us-0", "m-init-done", "m-ready"]
SHA = "ab" * 32


# ------------------------------------------------------------------------------------------------
# The stand-in model and the core's number format, in Python (what the virtual board must match)

def fmt3(v) -> str:
    """The core's 3-decimal rule: m = trunc(float32(float32(|v| * 1000) + 0.5))."""
    v = np.float32(v)
    if np.isnan(v):
        return "nan"
    neg = bool(v < 0)
    a = np.float32(-v if neg else v)
    t = np.float32(a * np.float32(1000.0))
    if not t <= np.float32(4294967040.0):
        return "-inf" if neg else "inf"
    m = int(np.float32(t + np.float32(0.5)))
    return ("-" if neg and m > 0 else "") + f"{m // 1000}.{m % 1000:03d}"


def standin(buf: bytes) -> tuple[list[int], str]:
    """Raw int8 outputs and the m-results line of the stand-in model for a 27648-byte input."""
    raw = []
    for i in range(4):
        s = sum(buf[i::4]) % 256
        raw.append(s - 256 if s >= 128 else s)
    vals = [fmt3(np.float32(q + 128) * np.float32(1 / 256)) for q in raw]
    return raw, "m-results-[" + ",".join(vals) + "]"


def counter_sample(k: int) -> list[int]:
    out = []
    for c in range(3):
        v = ((3 * k + c) * 1000) % 65536
        out.append(v - 65536 if v >= 32768 else v)
    return out


def wide_sample(k: int) -> list[int]:
    """The harness's 9-channel "wide" sensor, all channels of sample k."""
    out = []
    for c in range(9):
        v = ((9 * k + c) * 300) % 65536
        out.append(v - 65536 if v >= 32768 else v)
    return out


# ------------------------------------------------------------------------------------------------
# Build and connect

@pytest.fixture(scope="module")
def harness_bin(tmp_path_factory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed: the firmware core's host harness cannot be built")
    out = tmp_path_factory.mktemp("firmware") / "edgekit_host_board"
    r = subprocess.run([gxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", str(CORE),
                        str(HARNESS), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


class Board:
    """pyserial on the pty slave; the harness serves the master."""

    def __init__(self, ser: serial.Serial, proc: subprocess.Popen):
        self.ser, self.proc = ser, proc

    def send(self, text: str) -> None:
        self.ser.write(text.encode("latin-1"))
        self.ser.flush()

    def line(self, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\r\n"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no complete line from the harness (got {buf!r})")
            buf += self.ser.read_until(b"\r\n")
        return buf[:-2].decode("latin-1")

    def lines_until_ready(self, timeout: float = 5.0) -> list[str]:
        out = []
        while (ln := self.line(timeout)) != "m-ready":
            out.append(ln)
        return out

    def cmd(self, command: str, timeout: float = 5.0) -> list[str]:
        """Sends command + '%' and returns the reply lines before m-ready."""
        self.send(command + "%")
        return self.lines_until_ready(timeout)

    def nothing_pending(self, wait: float = 0.15) -> bool:
        time.sleep(wait)
        return self.ser.in_waiting == 0


@pytest.fixture
def board(harness_bin):
    master, slave = os.openpty()
    ser = serial.Serial(os.ttyname(slave), 115200, timeout=0.2)
    os.close(slave)  # pyserial holds its own descriptor
    proc = subprocess.Popen([str(harness_bin), "--fd", str(master), "--sha256", SHA,
                             "--board", "host"], pass_fds=(master,))
    os.close(master)
    b = Board(ser, proc)
    try:
        assert [b.line() for _ in range(4)] == BANNER
        yield b
    finally:
        ser.close()
        try:
            proc.wait(timeout=2)  # the pty hangs up when pyserial closes: the harness exits
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dbx(offset: int, chunk: bytes, crc: int | None = None) -> str:
    crc = zlib.crc32(chunk) if crc is None else crc
    return f"dbx {offset} {crc:08x} {chunk.hex()}"


# ------------------------------------------------------------------------------------------------
# Conversations

def test_banner_name_profile_help_timestamp(board):
    name = board.cmd("name")
    assert name == ["m-name-dut-[edgekit host]"]
    assert re.match(r"^m-(name)-dut-\[([^]]+)]$", name[0])            # the MLPerf Tiny runner's regex
    assert board.cmd("profile") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]",
                                    "m-model-[edgekit]"]
    helps = board.cmd("help")
    assert len(helps) == 15 and all(h.startswith("m-help-") for h in helps)
    assert "m-help-dbx <offset> <crc32> <hex>" in helps
    assert board.cmd("timestamp") == ["m-lap-us-40"]                 # four commands, 10 us each


def test_db_load_hex_print(board):
    assert board.cmd(f"db load {INPUT_BYTES + 1}") == ["m-[Error: Input size exceeds maximum]"]
    assert board.cmd(f"db load {INPUT_BYTES}") == [f"m-[Expecting {INPUT_BYTES} bytes]"]
    assert board.cmd("db load 20") == ["m-[Expecting 20 bytes]"]
    data = bytes(range(0xA0, 0xA0 + 20))
    assert board.cmd("db " + data[:10].hex()) == []                   # nothing until all 20 arrived
    assert board.cmd("db " + data[10:].hex().upper() + "ffff") == ["m-load-done"]  # extra digits dropped
    assert board.cmd("db print") == [
        "m-buffer-" + "-".join(f"{b:02x}" for b in data[i:i + 8]) for i in range(0, 20, 8)]
    assert board.cmd("db 00") == ["e-[No db load in progress]"]
    assert board.cmd("db") == ["e-[Command 'db' requires a subcommand]"]
    assert board.cmd("db load") == ["e-[Command 'db load' requires the # of bytes]"]
    assert board.cmd("db load 0") == ["e-[Command 'db load' must be >0 bytes]"]


def test_hex_digit_errors(board):
    assert board.cmd("db load 4") == ["m-[Expecting 4 bytes]"]
    assert board.cmd("db 123") == ["e-[Insufficent number of hex digits]"]
    assert board.cmd("db 12zz") == ["e-[Invalid hex digit 'z']"]
    assert board.cmd("db 12345678") == ["m-load-done"]               # the bad tokens stored nothing
    assert board.cmd("db print") == ["m-buffer-12-34-56-78"]


def test_infer_laps_results_raw_layers(board):
    assert board.cmd("results") == ["e-[No inference yet]"]
    assert board.cmd("raw") == ["e-[No inference yet]"]
    assert board.cmd("layers") == ["e-[No inference yet]"]
    assert board.cmd("db load 8") == ["m-[Expecting 8 bytes]"]
    data = bytes([1, 2, 3, 4, 0x90, 250, 0, 0x7F])
    assert board.cmd("db " + data.hex()) == ["m-load-done"]
    # clock: 5 commands so far = 50 us; this one's '%' makes 60, one warm-up run 1060 = T0,
    # ten timed runs 11060 = T1 (the stand-in takes exactly 1000 us per invoke)
    raw, results = standin(data + bytes(INPUT_BYTES - len(data)))
    assert board.cmd("infer 10 1") == [
        "m-warmup-start-1", "m-warmup-done", "m-infer-start-10",
        "m-lap-us-1060", "m-lap-us-11060", "m-infer-done", results]
    assert raw == [-111, -4, 3, -125]
    assert results == "m-results-[0.066,0.484,0.512,0.012]"
    assert board.cmd("results") == [results]
    assert board.cmd("raw") == ["m-raw-[-111,-4,3,-125]"]
    assert board.cmd("layers") == [
        "m-layer-0-CONV_2D-us-400", "m-layer-1-DEPTHWISE_CONV_2D-us-300",
        "m-layer-2-FULLY_CONNECTED-us-200", "m-layer-3-SOFTMAX-us-100"]
    assert board.cmd("timestamp") == ["m-lap-us-11100"]
    assert board.cmd("infer 0 1") == ["e-[Inference iterations must be >0]"]
    assert board.cmd("infer 1 x") == ["e-[Inference warmup must be >=0]"]


def test_results_round_half_away_from_zero(board):
    assert board.cmd("db load 1") == ["m-[Expecting 1 bytes]"]
    assert board.cmd("db 90") == ["m-load-done"]                      # q = -112: v = 16/256 = 0.0625
    assert board.cmd("infer 1 0")[-1] == "m-results-[0.063,0.500,0.500,0.500]"
    assert fmt3(0.0625) == "0.063" and fmt3(-0.0004) == "0.000" and fmt3(-1.5) == "-1.500"


def test_info(board):
    assert board.cmd("info") == [
        "m-info-board-host", "m-info-firmware-0.1.0", "m-info-protocol-1",
        f"m-info-model-sha256-{SHA}", "m-info-arena-bytes-131072", "m-info-arena-used-98304",
        "m-info-flash-used-262144", "m-info-clock-hz-64000000", "m-info-input-27648-int8",
        "m-info-output-4-int8"]


def test_dbx_crc_resend_and_limits(board):
    assert board.cmd(dbx(0, b"\x01")) == ["e-[No db load in progress]"]
    assert board.cmd("db load 200") == ["m-[Expecting 200 bytes]"]
    data = bytes(random.Random(7).randrange(256) for _ in range(200))
    assert board.cmd(dbx(0, data[:96])) == ["m-dbx-ok-96"]
    bad = zlib.crc32(data[96:192]) ^ 1
    assert board.cmd(dbx(96, data[96:192], bad)) == ["e-[CRC mismatch at 96]"]
    assert board.cmd("db print")[12] == "m-buffer-00-00-00-00-00-00-00-00"   # chunk was dropped
    assert board.cmd(dbx(96, data[96:192])) == ["m-dbx-ok-192"]              # resent
    assert board.cmd(dbx(96, data[96:192])) == ["m-dbx-ok-192"]              # twice is harmless
    assert board.cmd(dbx(192, data[192:])) == ["m-dbx-ok-200"]
    printed = board.cmd("db print")
    assert bytes.fromhex("".join(ln[len("m-buffer-"):].replace("-", "") for ln in printed)) == data
    assert board.cmd(dbx(196, bytes(8))) == ["e-[Chunk beyond the load of 200 bytes]"]
    assert board.cmd(dbx(0, bytes(97))) == ["e-[Chunk too long: at most 96 bytes]"]
    assert board.cmd("dbx 0 abc") == ["e-[Usage: dbx <offset> <crc32> <hex>]"]
    assert board.cmd("dbx 0 xyz 00") == ["e-[Usage: dbx <offset> <crc32> <hex>]"]
    assert board.cmd("dbx 0 00000000 123") == ["e-[Insufficent number of hex digits]"]
    assert board.cmd("dbx 0 00000000 0g") == ["e-[Invalid hex digit 'g']"]
    assert board.cmd(f"dbx 0 {zlib.crc32(b'AB'):08X} 4142") == ["m-dbx-ok-2"]  # either case


def test_full_input_by_dbx_matches_standin(board):
    data = bytes(random.Random(1).randrange(256) for _ in range(INPUT_BYTES))
    assert board.cmd(f"db load {INPUT_BYTES}") == [f"m-[Expecting {INPUT_BYTES} bytes]"]
    for off in range(0, INPUT_BYTES, 96):
        assert board.cmd(dbx(off, data[off:off + 96])) == [f"m-dbx-ok-{off + 96}"]
    raw, results = standin(data)
    assert board.cmd("infer 1 0")[-1] == results
    assert board.cmd("raw") == ["m-raw-[" + ",".join(map(str, raw)) + "]"]


def test_unknown_and_empty_commands(board):
    assert board.cmd("bogus foo") == ["e-[Unknown command: bogus]"]
    assert board.cmd("") == ["e-[Unknown command: ]"]
    assert board.cmd("NAME") == ["e-[Unknown command: NAME]"]
    board.send("\r\nname%\r\n")                                       # line ends are ignored
    assert board.lines_until_ready() == ["m-name-dut-[edgekit host]"]
    assert board.cmd("  name   extra ") == ["m-name-dut-[edgekit host]"]


def test_overlong_command(board):
    assert board.cmd("x" * 300) == ["e-[Command too long]"]
    assert board.cmd("name" + " " * 252) == ["m-name-dut-[edgekit host]"]    # 256: accepted
    assert board.cmd("name" + " " * 253) == ["e-[Command too long]"]         # 257: not
    assert board.cmd("name") == ["m-name-dut-[edgekit host]"]                # back in step


def parse_frame(ln: str) -> tuple[int, int, bytes, int]:
    m = re.fullmatch(r"f-(\d+)-(\d+)-([0-9a-f]*)-([0-9a-f]{8})", ln)
    assert m, ln
    return int(m[1]), int(m[2]), bytes.fromhex(m[3]), int(m[4], 16)


def test_stream_three_channels_twenty_frames(board):
    (stamp,) = board.cmd("timestamp")
    t0 = int(stamp[len("m-lap-us-"):]) + 10                           # the stream command's '%'
    board.send("stream counter 1000 80%")
    assert board.line() == "m-stream-start-counter-1000-3"
    for f in range(20):
        seq, t_us, payload, crc = parse_frame(board.line())
        assert seq == f and t_us == t0 + 4000 * f                     # 4 samples at 1 kHz a frame
        assert crc == zlib.crc32(payload)
        values = struct.unpack("<12h", payload)                       # 4 samples x 3 channels
        assert list(values) == sum((counter_sample(4 * f + s) for s in range(4)), [])
    assert board.lines_until_ready() == ["m-stream-done-20"]
    # a last frame with fewer samples
    board.send("stream counter 1000 6%")
    assert board.line() == "m-stream-start-counter-1000-3"
    lens = [len(parse_frame(board.line())[2]) for _ in range(2)]
    assert lens == [24, 12]
    assert board.lines_until_ready() == ["m-stream-done-2"]


def test_stop_mid_stream_and_other_commands_ignored(board):
    board.send("stream counter 200 4000%")                            # 1000 frames, 5 s
    assert board.line() == "m-stream-start-counter-200-3"
    got = [board.line() for _ in range(3)]
    board.send("name%info%stop%")
    rest = board.lines_until_ready()
    frames = got + rest[:-1]
    assert all(ln.startswith("f-") for ln in frames)                  # no m-name, no m-info lines
    assert [parse_frame(ln)[0] for ln in frames] == list(range(len(frames)))
    assert rest[-1] == f"m-stream-done-{len(frames)}" and len(frames) < 100
    assert board.nothing_pending()
    assert board.cmd("name") == ["m-name-dut-[edgekit host]"]
    assert board.cmd("stop") == ["e-[No stream running]"]


def test_stream_errors(board):
    assert board.cmd("stream mic 16000 10") == ["e-[Unknown sensor: mic]"]
    assert board.cmd("stream counter 0 10") == ["e-[Invalid rate: 0 (1 to 10000 Hz)]"]
    assert board.cmd("stream counter 10001 10") == ["e-[Invalid rate: 10001 (1 to 10000 Hz)]"]
    assert board.cmd("stream counter 100") == ["e-[Usage: stream <sensor> <rate_hz> <samples>]"]
    assert board.cmd("stream counter 100 0") == ["e-[Usage: stream <sensor> <rate_hz> <samples>]"]


def stream_values(board, command: str, channels: int) -> tuple[list[int], list[list[int]]]:
    """Runs a whole stream; (samples per frame, the samples) after checking the frames' CRCs and
    sequence numbers."""
    board.send(command + "%")
    sensor, rate = command.split()[1:3]
    assert board.line() == f"m-stream-start-{sensor}-{rate}-{channels}"
    per_frame, samples, lines = [], [], board.lines_until_ready()
    for f, ln in enumerate(lines[:-1]):
        seq, _, payload, crc = parse_frame(ln)
        assert seq == f and crc == zlib.crc32(payload) and len(payload) % (2 * channels) == 0
        values = struct.unpack(f"<{len(payload) // 2}h", payload)
        per_frame.append(len(payload) // (2 * channels))
        samples += [list(values[i:i + channels]) for i in range(0, len(values), channels)]
    assert lines[-1] == f"m-stream-done-{len(lines) - 1}"
    return per_frame, samples


def test_stream_channel_mask_selects_channels(board):
    # bit i = channel i: 5 = channels 0 and 2 of the counter, 1c0 = the "magnetometer" 6..8 of wide
    per_frame, got = stream_values(board, "stream counter 1000 6 5", 2)
    assert got == [[counter_sample(k)[0], counter_sample(k)[2]] for k in range(6)]
    assert per_frame == [4, 2]                            # the sensor's 4 a frame still fit
    _, got = stream_values(board, "stream wide 1000 7 1C0", 3)   # either case
    assert got == [wide_sample(k)[6:] for k in range(7)]
    _, got = stream_values(board, "stream counter 1000 5 7", 3)  # every channel = no mask
    assert got == [counter_sample(k) for k in range(5)]


def test_stream_nine_channels_and_samples_per_frame(board):
    # samples per frame = max(1, min(sensor's 16, 96 // (2 * channels sent)))
    per_frame, got = stream_values(board, "stream wide 2000 12", 9)
    assert per_frame == [5, 5, 2] and got == [wide_sample(k) for k in range(12)]
    for mask, channels, spf in [("1", 1, 16), ("7", 3, 16), ("f", 4, 12), ("ff", 8, 6), ("1ff", 9, 5)]:
        per_frame, got = stream_values(board, f"stream wide 2000 {spf + 1} {mask}", channels)
        assert per_frame == [spf, 1], mask
        assert got[-1] == wide_sample(spf)[:channels]


def test_stream_bad_channel_masks(board):
    for cmd, mask in [("counter", "0"), ("counter", "8"), ("counter", "f"), ("wide", "200"), ("wide", "3ff"),
                      ("wide", "xyz"), ("wide", "-1"), ("wide", "123456789"), ("wide", "0x1")]:
        assert board.cmd(f"stream {cmd} 100 10 {mask}") == [f"e-[Invalid channel mask: {mask}]"], (cmd, mask)
    _, got = stream_values(board, "stream wide 1000 2 00000100 extra", 1)  # 8 digits; extra words ignored
    assert got == [[wide_sample(0)[8]], [wide_sample(1)[8]]]
    # arguments are checked left to right: a bad rate is reported before a bad mask
    assert board.cmd("stream wide 5000 10 0") == ["e-[Invalid rate: 5000 (1 to 2000 Hz)]"]
    assert board.cmd("stream nope 100 10 0") == ["e-[Unknown sensor: nope]"]
    assert board.nothing_pending()
    assert board.cmd("name") == ["m-name-dut-[edgekit host]"]


# ------------------------------------------------------------------------------------------------
# Other ways to run the harness

def test_harness_opens_a_pty_slave_by_path(harness_bin):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    proc = subprocess.Popen([str(harness_bin), "--port", path])
    try:
        buf = b""
        deadline = time.monotonic() + 5
        os.set_blocking(master, False)
        sent = False
        while b"m-name-dut-[edgekit host]\r\nm-ready\r\n" not in buf:
            assert time.monotonic() < deadline, buf
            if not sent and buf.count(b"m-ready\r\n") == 1:
                os.write(master, b"name%")
                sent = True
            try:
                buf += os.read(master, 4096)
            except BlockingIOError:
                time.sleep(0.01)
        assert buf.startswith(b"m-timestamp-mode-performance\r\nm-lap-us-0\r\n")
    finally:
        proc.terminate()
        proc.wait()
        os.close(master)
        os.close(slave)


def test_harness_makes_its_own_pty(harness_bin):
    proc = subprocess.Popen([str(harness_bin), "--pty"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().split()
        assert first[0] == "pty" and first[1].startswith("/dev/")
        with serial.Serial(first[1], 115200, timeout=0.2) as ser:
            b = Board(ser, proc)
            b.send("name%")
            # the banner went out before the port was opened: it may or may not still be there
            lines = []
            while not lines or lines[-1] != "m-ready" or "m-name-dut-[edgekit host]" not in lines:
                lines.append(b.line())
            assert lines[-2:] == ["m-name-dut-[edgekit host]", "m-ready"]
    finally:
        proc.terminate()
        proc.wait()


def test_stdin_stdout_finishes_a_stream_at_eof(harness_bin):
    r = subprocess.run([str(harness_bin)], input=b"stream counter 10000 8%", capture_output=True,
                       timeout=10)
    lines = r.stdout.decode().split("\r\n")
    assert lines[:4] == BANNER
    assert lines[4] == "m-stream-start-counter-10000-3"
    assert [parse_frame(ln)[1] for ln in lines[5:7]] == [10, 410]
    assert lines[7:] == ["m-stream-done-2", "m-ready", ""]


# ------------------------------------------------------------------------------------------------
# The core is freestanding: no C++ runtime, no standard library

ALLOWED_UNDEFINED = {"memcpy", "memset", "memmove", "memcmp"}  # GCC needs these even freestanding


def _undefined(nm: str, obj: Path) -> set[str]:
    out = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    return {ln.split()[-1] for ln in out.splitlines() if ln.strip()}


@pytest.mark.parametrize("std", ["c++11", "c++17"])
def test_core_compiles_freestanding_on_the_host(tmp_path, std):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed")
    obj = tmp_path / "core.o"
    r = subprocess.run([gxx, f"-std={std}", "-c", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-ffreestanding", "-fno-exceptions", "-fno-rtti", "-nostdinc++",
                        str(CORE), "-o", str(obj)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    nm = shutil.which("nm")  # binutils: installed wherever g++ is (g++ needs its assembler and linker)
    assert nm is not None, "nm is not on PATH beside g++: install binutils to check the core's undefined symbols"
    assert _undefined(nm, obj) <= ALLOWED_UNDEFINED


@pytest.mark.parametrize("fpu", [[], ["-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]],
                         ids=["soft-float", "fpv4-hard-float"])
def test_core_compiles_for_cortex_m4(tmp_path, fpu):
    gxx = shutil.which("arm-none-eabi-g++")
    if gxx is None:
        pytest.skip("arm-none-eabi-g++ is not installed (Debian: apt-get install gcc-arm-none-eabi)")
    obj = tmp_path / "core_m4.o"
    r = subprocess.run([gxx, "-std=gnu++14", "-c", "-mcpu=cortex-m4", "-mthumb", *fpu,
                        "-ffreestanding", "-fno-exceptions", "-fno-rtti", "-Os", "-Wall", "-Wextra",
                        "-Werror", str(CORE), "-o", str(obj)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    nm = shutil.which("arm-none-eabi-nm")  # binutils-arm-none-eabi: a dependency of gcc-arm-none-eabi
    assert nm is not None, ("arm-none-eabi-nm is not on PATH beside arm-none-eabi-g++: install "
                            "binutils-arm-none-eabi to check the core's undefined symbols")
    undefined = _undefined(nm, obj)
    # soft-float helpers (__aeabi_f*) come from libgcc, part of the compiler itself
    assert {s for s in undefined if not s.startswith("__aeabi_")} <= ALLOWED_UNDEFINED
