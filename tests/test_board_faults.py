"""What goes wrong on a USB serial link, injected by the virtual board (sim:// fault options and
pseudo-terminals), and what BoardClient makes of it: recovered runs or one-line errors, never a
wrong result and never a hang (every wait is bounded by short timeouts)."""
import os
import time

import numpy as np
import pytest

from board_fixtures import expected, model_path, sample  # noqa: F401  (pytest fixtures, used by name)
from edgekit.protocol import BoardClient, Faults, VirtualBoard, serve_pty
from edgekit.protocol.client import BoardError, BoardGone, BoardReset, BoardTimeout
from platforms import needs_tflm

pytestmark = needs_tflm

# Command numbers in a standard run with the 768-byte cnn input: info (1), db load (2),
# dbx x 8 (3-10), infer (11), raw (12), ...
INFER_COMMAND = 11




def sim(model_path, options="", **kw) -> BoardClient:
    kw.setdefault("timeout", 0.3)
    return BoardClient(f"sim://nano33ble?model={model_path}{'&' + options if options else ''}", **kw)


def run(c: BoardClient, sample) -> dict:
    c.info()
    c.load(sample.tobytes())
    return c.infer(10, 1)


@pytest.mark.parametrize("options", ["garbage=1&seed=1", "garbage=0.5&seed=2&split=1"])
def test_garbage_before_replies(model_path, sample, expected, options):
    c = sim(model_path, options)
    try:
        r = run(c, sample)
        assert c.raw() == expected
        assert r["results"] == pytest.approx([(q + 128) / 256 for q in expected], abs=0.0006)
        assert c.stats["garbage"] > 0  # skipped and counted
    finally:
        c.close()


def test_replies_split_across_reads(model_path, sample, expected):
    c = sim(model_path, "split=1&seed=3", timeout=1.0)
    try:
        reads = []
        real_read = c.ser.read
        c.ser.read = lambda n=1: reads.append(real_read(n)) or reads[-1]
        r = run(c, sample)
        assert c.raw() == expected and c.name() == "edgekit nano33ble"
        assert len(c.layers()) == 7 and r["latency_us"] > 0
        pieces = [x for x in reads if x]
        partial = [x for x in pieces if not x.endswith(b"\n")]  # reads that ended inside a line
        assert len(partial) > len(pieces) / 2 and np.mean([len(x) for x in pieces]) < 20
    finally:
        c.close()


def test_split_replies_over_a_pty(model_path, sample, expected):
    board = VirtualBoard("nano33ble", model_path.read_bytes())
    path, stop = serve_pty(board, Faults(split=True, garbage=0.3, seed=4))
    try:
        c = BoardClient(path, timeout=1.0, pace_s=0)
        run(c, sample)
        assert c.raw() == expected
        c.close()
    finally:
        stop()
        board.close()


def test_lost_ready_on_an_idempotent_command_is_retried(model_path):
    c = sim(model_path, "lose_ready=1")
    try:
        t = time.monotonic()
        assert c.name() == "edgekit nano33ble"          # first try times out, the retry answers
        assert time.monotonic() - t < 2
        assert c.stats["timeouts"] == 1 and c.stats["retries"] == 1
        assert c.info()["board"] == "nano33ble"
    finally:
        c.close()


def test_lost_ready_on_infer_is_an_error_never_a_result(model_path, sample, expected):
    c = sim(model_path, f"lose_ready={INFER_COMMAND}")
    try:
        c.info()
        c.load(sample.tobytes())
        with pytest.raises(BoardTimeout) as e:
            c.infer(10, 1)
        msg = str(e.value)
        assert "'infer 10 1'" in msg and "no m-ready" in msg and "not used" in msg and "\n" not in msg
        assert c.stats["commands"] == INFER_COMMAND  # infer was not sent again
        assert c.raw() == expected  # the link is usable again (stale bytes drained)
    finally:
        c.close()


def test_corrupted_dbx_chunk_is_caught_and_sent_again(model_path, sample, expected):
    c = sim(model_path, "corrupt_dbx=3&seed=5")
    try:
        r = c.load(sample.tobytes())
        assert r["crc_resends"] == 1 and c.ser.board.commands == 1 + 8 + 1
        assert c.db_print() == sample.tobytes()  # the board holds the right bytes
        c.infer(1, 0)
        assert c.raw() == expected
    finally:
        c.close()


def test_corrupted_commands_are_retried_or_resent(model_path, sample, expected):
    """Random corruption of command bytes on the way to the board: dbx chunks fail their CRC (or
    hex check) and go again; garbled idempotent commands are retried."""
    c = sim(model_path, "corrupt_in=0.004&seed=6", retries=6)
    try:
        c.load(sample.tobytes())
        assert c.db_print() == sample.tobytes()
        assert c.stats["crc_resends"] + c.stats["retries"] + c.stats["load_restarts"] > 0
    finally:
        c.close()


def test_reset_mid_run_recovers(model_path, sample, expected):
    c = sim(model_path, f"reset_after={INFER_COMMAND - 1}")
    try:
        r = run(c, sample)
        assert r["recovered"] is True and c.stats["resets"] == 1 and c.stats["recovered"] == 1
        assert abs(r["latency_us"] - c.ser.board.model.latency_us) <= 1
        assert c.raw() == expected
        assert any("reset during 'infer 10 1'" in e for e in c.events)
    finally:
        c.close()


def test_reset_mid_run_without_recovery_is_a_clear_error(model_path, sample):
    c = sim(model_path, f"reset_after={INFER_COMMAND - 1}", recover=False)
    try:
        with pytest.raises(BoardReset) as e:
            run(c, sample)
        msg = str(e.value)
        assert "reset during 'infer 10 1'" in msg and "load the input again" in msg and "\n" not in msg
    finally:
        c.close()


def test_reset_before_a_stateless_command_is_invisible(model_path):
    c = sim(model_path, "reset_after=1")
    try:
        assert c.name() == "edgekit nano33ble"
        assert c.name() == "edgekit nano33ble"  # this one meets the boot banner, then is sent again
        assert c.stats["resets"] == 1
    finally:
        c.close()


def test_results_after_a_reset_are_rebuilt(model_path, sample, expected):
    c = sim(model_path, f"reset_after={INFER_COMMAND}")  # the board reboots before raw%
    try:
        run(c, sample)
        assert c.raw() == expected  # input loaded again, infer run again, raw% sent again
        assert c.stats["recovered"] == 1
    finally:
        c.close()


def test_port_disappears(model_path, sample):
    c = sim(model_path, "vanish_after=3")
    try:
        with pytest.raises(BoardGone) as e:
            run(c, sample)
        msg = str(e.value)
        assert msg.startswith("the board at sim://nano33ble disappeared (unplugged or reset)") and "\n" not in msg
    finally:
        c.close()


def test_pty_disappears(model_path):
    board = VirtualBoard("nano33ble", model_path.read_bytes())
    path, stop = serve_pty(board)
    c = BoardClient(path, timeout=0.5, pace_s=0)
    try:
        assert c.name() == "edgekit nano33ble"
        stop()  # the board is unplugged
        with pytest.raises(BoardGone, match=rf"the board at {path} disappeared \(unplugged or reset\)"):
            c.name()
    finally:
        c.close()
        board.close()


def test_pty_vanish_fault(model_path, sample):
    board = VirtualBoard("nano33ble", model_path.read_bytes())
    path, stop = serve_pty(board, Faults(vanish_after=2))
    c = BoardClient(path, timeout=0.5, pace_s=0)
    try:
        with pytest.raises(BoardGone):
            run(c, sample)
    finally:
        c.close()
        stop()
        board.close()


def test_silent_port_times_out_with_a_clear_error():
    master, slave = os.openpty()  # nobody answers on the other side
    try:
        c = BoardClient(os.ttyname(slave), timeout=0.2, retries=1, pace_s=0)
        t = time.monotonic()
        with pytest.raises(BoardTimeout) as e:
            c.name()
        assert time.monotonic() - t < 3
        assert str(e.value).startswith(f"board at {os.ttyname(slave)} did not answer 'name' within 0.2 s")
        assert "is it running edgekit firmware at 115200 baud?" in str(e.value)
        c.close()
    finally:
        os.close(master)
        os.close(slave)


def test_boot_banner_waiting_at_open(model_path):
    """A board that resets when its port opens (ESP32 auto-reset): its banner must not be taken
    as the reply to the first command."""
    c = sim(model_path, "banner=1")
    try:
        assert c.name() == "edgekit nano33ble"
        assert c.timestamp() >= 0
    finally:
        c.close()


def test_lossy_reads_never_return_wrong_raw_outputs(model_path, sample, expected):
    """Bytes dropped from replies: with confirm=True every raw() either equals TFLite Micro's
    outputs or raises a one-line BoardError."""
    c = sim(model_path, "seed=8", timeout=0.2, confirm=True)
    c.info()
    c.load(sample.tobytes())
    c.infer(1, 0)
    c.ser.link.faults.drop = 0.003
    try:
        outcomes = []
        for _ in range(40):
            try:
                outcomes.append(c.raw() == expected)
            except BoardError as e:
                assert "\n" not in str(e)
                outcomes.append(None)
        assert all(o is not False for o in outcomes) and outcomes.count(True) > 20
    finally:
        c.close()


def _host_lines(data: bytes) -> list[str]:
    """The lines a host reads from `data` as BoardClient does: split at newlines, ends and line noise
    (bytes outside printable ASCII) stripped from the front."""
    out = []
    for raw in data.split(b"\n"):
        s = raw.decode("latin-1").strip()
        while s and not (" " < s[0] <= "~"):
            s = s[1:]
        out.append(s)
    return out


def test_stream_counts_gaps_and_corruption():
    """1000 frames with 0.2% of the bytes on the wire replaced (seed 9): every frame the board sent is
    counted once, as good (it arrived exactly as sent), corrupted (its line arrived, damaged) or lost
    (its line never arrived as a frame); gaps are the sequence numbers skipped between good frames."""
    rate = 0.002
    c = BoardClient("sim://nano33ble?stand_in=1&seed=9", timeout=0.3)
    sent, read = bytearray(), bytearray()  # the board's bytes before the faults, the host's after them
    emit, real_read = c.ser.link.emit, c.ser.read

    def tap_read(n=1):
        data = real_read(n)
        read.extend(data)
        return data
    c.ser.link.emit = lambda data: sent.extend(data) or emit(data)
    c.ser.read = tap_read
    try:
        c.ser.link.faults.corrupt = rate
        s = c.stream("counter", 10000, 4000)  # 1000 frames of 4 samples
        frames = [f for f in s]
        good = [f for f in frames if f.crc_ok]
        st = s.stats
        for f in good:  # a good frame's payload is exactly the counter's samples
            v = np.frombuffer(f.payload, "<i2").reshape(-1, 3)
            k = 4 * f.seq
            assert int(v[0, 0]) == int(np.int16(np.uint16((3 * k * 1000) % 65536)))
    finally:
        c.close()
    board = [line.decode() for line in bytes(sent).split(b"\r\n") if line.startswith(b"f-")]
    assert len(board) == 1000 and st["sent"] == 1000  # m-stream-done-1000 arrived
    whole = set(board)
    host = [line for line in _host_lines(bytes(read)) if line.startswith("f-")]
    intact = [line for line in host if line in whole]
    damaged = [line for line in host if line not in whole]
    assert st["good"] == len(good) == len(intact)
    assert st["corrupted"] == len(damaged)
    assert st["lost"] == 1000 - len(intact) - len(damaged) > 0   # lines that never arrived as frames
    assert st["good"] + st["corrupted"] + st["lost"] == st["sent"]
    assert st["gaps"] == good[-1].seq + 1 - len(good) and st["duplicates"] == 0
    # the fault model: a frame line of L bytes (its \r\n included) is hit with p = 1 - (1 - rate)^L
    line_bytes = np.mean([len(line) + 2 for line in board])
    p = 1 - (1 - rate) ** line_bytes
    hit = 1000 - st["good"]
    assert abs(hit - 1000 * p) <= 4 * (1000 * p * (1 - p)) ** 0.5, (hit, 1000 * p)
    assert st["corrupted"] > st["lost"]  # most hits damage a digit, not the line's start or end
