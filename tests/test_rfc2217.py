"""A virtual board served over RFC 2217 (pyserial's PortManager on a TCP socket): BoardClient and
`edgekit capture --port rfc2217://...` use it like a local port and get exactly what a sim:// board
gives. Servers listen on port 0 (a free port) on localhost; every wait is bounded."""
import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from board_fixtures import expected, model_path, sample  # noqa: F401  (pytest fixtures, used by name)
from edgekit.protocol import BoardClient, VirtualBoard, serve_rfc2217
from edgekit.errors import EdgekitError
from platforms import needs_tflm

EDGEKIT = [sys.executable, "-m", "edgekit"]
pytestmark = pytest.mark.filterwarnings(r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning")  # pyserial's


def conversation(client: BoardClient, data: bytes) -> dict:
    info = client.info()
    client.load(data)
    timing = client.infer(3, 1)
    return {"name": client.name(), "info": info, "timing": timing, "raw": client.raw(), "layers": client.layers()}


@needs_tflm
def test_rfc2217_board_answers_as_the_sim_board(model_path, sample, expected):
    board = VirtualBoard("nano33ble", model_path.read_bytes())
    url, stop = serve_rfc2217(board)
    try:
        assert url.startswith("rfc2217://127.0.0.1:")
        with BoardClient(url, timeout=2.0) as c:
            served = conversation(c, sample.tobytes())
            served_stats = dict(c.stats)
        with BoardClient(url, timeout=2.0) as c:  # a second client after the first closed the port
            assert c.name() == "edgekit nano33ble"
    finally:
        stop()
        board.close()
    with BoardClient(f"sim://nano33ble?model={model_path}", timeout=2.0) as c:
        local = conversation(c, sample.tobytes())
    assert served["raw"] == expected
    assert served == local
    assert not any(served_stats[k] for k in ("retries", "timeouts", "garbage", "crc_resends", "recovered"))


SCRIPT = b"help%info%db load 600%" + b"".join(b"db " + bytes((i + j) % 256 for j in range(60)).hex().encode() + b"%"
                                              for i in range(0, 600, 60)) + b"db print%stream imu 100 50%"


def transcript(port, readies: int, seconds: float = 5.0) -> bytes:
    """Everything the board says to SCRIPT, up to its `readies`-th m-ready (or the deadline)."""
    port.write(SCRIPT)
    out, deadline = bytearray(), time.monotonic() + seconds
    while out.count(b"m-ready\r\n") < readies and time.monotonic() < deadline:
        out += port.read(max(1, port.in_waiting))
    return bytes(out)


def test_rfc2217_carries_every_byte():
    """The raw bytes through the server equal the sim:// port's, byte for byte: a command
    script of ~1.6 kB and replies of ~6 kB (db print, a stream of 50 nine-channel samples)."""
    board = VirtualBoard("nano33ble", stand_in=True, label="wave")
    url, stop = serve_rfc2217(board)
    try:
        with serial.serial_for_url(url, timeout=0.1) as port:
            remote = transcript(port, 15)
    finally:
        stop()
    with serial.serial_for_url("sim://nano33ble?stand_in=1&label=wave", timeout=0.1) as port:
        local = transcript(port, 15)
    assert local.count(b"m-ready\r\n") == 15 and b"m-stream-done-" in local and len(local) > 5000
    assert remote == local


def _line(stream, deadline: float) -> str:
    """One line of a child's output, waiting at most until deadline."""
    r, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
    assert r, "the server printed nothing in time"
    return stream.readline().strip()


def _capture(port: str, out: Path) -> dict:
    done = subprocess.run(EDGEKIT + ["capture", "--target", "nano33ble", "--sensor", "imu", "--label", "x",
                                     "--seconds", "0.5", "-o", str(out), "--port", port, "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(done.stdout)["recordings"]
    return entry


def test_cli_serves_rfc2217_and_capture_records_every_sample(tmp_path):
    server = subprocess.Popen(EDGEKIT + ["board", "serve", "--target", "nano33ble", "--label", "x",
                                         "--rfc2217", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _line(server.stdout, time.monotonic() + 30)
        assert url.startswith("rfc2217://127.0.0.1:")
        remote = _capture(url, tmp_path / "remote")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
        assert "stopped" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    local = _capture("sim://nano33ble?label=x", tmp_path / "local")

    assert remote["complete"] and remote["samples"] == 50
    assert (remote["lost_samples"], remote["gaps"], remote["crc_failures"], remote["header_errors"]) == (0, 0, 0, 0)
    assert remote["via"].endswith(url)
    # the same board, label and seed: the same samples, byte for byte
    assert (tmp_path / "remote" / remote["file"]).read_bytes() == (tmp_path / "local" / local["file"]).read_bytes()


def test_a_port_in_use_is_a_one_line_error():
    board = VirtualBoard("nano33ble", stand_in=True)
    url, stop = serve_rfc2217(board)
    try:
        with pytest.raises(EdgekitError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*pick another port"):
            serve_rfc2217(board, port=int(url.rsplit(":", 1)[1]))
    finally:
        stop()
