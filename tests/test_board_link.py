"""BoardClient against a virtual nano33ble where the numbers or the link are awkward: a board clock
that wraps in the middle of a timed run, and a dbx offset changed on its way to the board (the
chunk's CRC covers its data, not its offset)."""
import pytest

from board_fixtures import expected, model_path, sample  # noqa: F401  (pytest fixtures, used by name)
from edgekit.protocol import BoardClient
from edgekit.protocol.wire import DBX_CHUNK, WRAP
from edgekit.sim.simulate import simulate
from platforms import needs_tflm

pytestmark = needs_tflm


def test_latency_is_right_when_the_boards_clock_wraps_during_the_run(model_path, sample):
    """micros() is a uint32: it wraps every 71.6 minutes, so a long-running board's T1 can be smaller
    than its T0. The latency is still (T1 - T0) mod 2^32 / N: the simulator's, not a negative number."""
    latency_us = simulate(model_path.read_bytes(), "nano33ble").latency_ms * 1000
    c = BoardClient(f"sim://nano33ble?model={model_path}", timeout=1.0)
    try:
        c.load(sample.tobytes())
        c.ser.board.clock = WRAP - 5 * latency_us  # 71.6 minutes after power-on, less five inferences
        r = c.infer(10, 1)
    finally:
        c.close()
    assert r["t1_us"] < r["t0_us"]                         # the clock wrapped between the two laps
    assert r["latency_us"] == pytest.approx(latency_us, abs=1.0)
    assert (r["t1_us"] - r["t0_us"]) % WRAP == pytest.approx(10 * latency_us, abs=10)


def test_a_chunk_written_at_a_garbled_offset_makes_the_load_start_again(model_path, sample, expected):
    """The third dbx chunk (offset 192) reaches the board as offset 96: its CRC still matches, the board
    writes it there and answers m-dbx-ok-192, not -288. The client must not take that as done: it loads
    the whole input again, so the board holds exactly the input and the outputs are TFLite Micro's."""
    third, second = b"dbx %d " % (2 * DBX_CHUNK), b"dbx %d " % DBX_CHUNK   # dbx 192, dbx 96
    c = BoardClient(f"sim://nano33ble?model={model_path}", timeout=0.5)
    write, garbled = c.ser.link.write, []

    def wire(data):
        if data.startswith(third) and not garbled:
            garbled.append(data)
            data = second + data[len(third):]
        return write(data)
    c.ser.link.write = wire
    try:
        r = c.load(sample.tobytes())
        assert garbled and r["load_restarts"] == 1
        assert any("started again" in e and f"m-dbx-ok-{2 * DBX_CHUNK}" in e for e in c.events), c.events
        assert c.db_print() == sample.tobytes()
        c.infer(1, 0)
        assert c.raw() == expected
    finally:
        c.close()


def test_flash_takes_only_the_image_it_was_announced(model_path, tmp_path):
    """`flash begin N sha256`, the image as a db load, `flash end`: an image whose bytes are not the
    announced ones (damaged where no chunk CRC saw it) is refused and the old model keeps running; the
    announced one is flashed and named by info."""
    import hashlib

    from edgekit.protocol.client import BoardReplyError
    image = model_path.read_bytes()
    c = BoardClient("sim://nano33ble", timeout=1.0)  # the stand-in model
    try:
        before = c.info()["model_sha256"]
        damaged = bytearray(image)
        damaged[len(damaged) // 2] ^= 0x01
        c._call(f"flash begin {len(image)} {hashlib.sha256(image).hexdigest()}", lambda lines: lines,
                idempotent=False)
        c.load(bytes(damaged))
        with pytest.raises(BoardReplyError, match="corrupted"):
            c._call("flash end", lambda lines: lines, idempotent=False)
        assert c.info()["model_sha256"] == before
        c.flash_virtual(image)
        assert c.info()["model_sha256"] == hashlib.sha256(image).hexdigest() != before
    finally:
        c.close()
