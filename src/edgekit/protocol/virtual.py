"""A virtual board: the whole serial protocol (docs/protocol.md) in Python, bytes in, bytes out.

    board = VirtualBoard("nano33ble", model_bytes)
    board.feed(b"name%")            # b"m-name-dut-[edgekit nano33ble]\r\nm-ready\r\n"

It takes what the caller already has: a Board or its key, a TFLiteModel or bytes, and with
simulation= the simulator's report for them (else it simulates the model itself).

It answers exactly what edgekit's firmware answers, on a virtual clock: an inference takes the
simulator's latency for the target (simulate(model, key)["latency_ms"]), `layers%` reports the
simulator's per-layer latencies, and the outputs are computed by TFLite Micro (LiteRT where TFLite
Micro is unavailable, and for the Pi and Coral), once per distinct input, in a persistent child
process. `stand_in=True` (or no model) runs the stand-in model of the C++ host harness instead
(protocol/stand_in.py documents it): no TFLite, fixed timings, byte-identical replies.

Every reply (texts, errors, order, number formats) follows the C++ protocol core,
firmware/common/edgekit_protocol.cpp, which the real firmware runs.

Clock rules (virtual mode): the clock starts at 0 at boot; each command costs its transfer time at
115200 baud (10 bits a byte, the `%` included) before it runs; warm-up and timed inferences cost
the simulated latency each; a stream costs its samples' duration. Timestamps print floor(clock)
modulo 2^32 (a board's micros() wraps).

Sensors (for `stream`) are VirtualSensor(name, channels, max_rate_hz, samples_per_frame, source),
source(sensor, channels, rate_hz, first_sample, count) -> int16 array (count, channels), all the
sensor's channels: `stream`'s optional channel mask selects columns of it, as the firmware core
keeps the masked channels of every Sensor::read(). By default the board descriptor's sensors
(descriptor_sensors) with edgekit.sim.sensors.SimulatedSensors: plausible IMU gestures,
speech-like audio, drifting room readings and camera stills, shaped by label=, seed=, revision= and
recording= (the sim:// options of the same names); pass `sensors=` a source callable (used for
every descriptor sensor; `synthetic_source` gives counter, triangle and square waves) or a list of
VirtualSensors, or call add_sensor(). Stand-in boards also have the harness's "counter" and 9-channel "wide" sensors.

Flashing: a real board takes a new model from its bootloader's tool; a virtual board takes it over
the serial link, the one command the firmware has not: `flash begin <bytes> <sha256>` makes the db
buffer that big, the model comes as a db load (dbx chunks, CRC-checked), and `flash end` checks the
sha256 and runs the new model from a fresh boot. So a virtual board served on a lab place
(`edgekit board serve`) runs each submission of an Olympics run, as a real one is flashed for each.
"""
from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import EdgekitError
from ..sim.sensors import SimulatedSensors, synthetic_source
from ..sim.simulate import simulate
from ..targets import Board, load_board
from ..tflite_file import TFLiteModel, model_of, tensor_type_name
from ..version import __version__
from . import stand_in as standin
from .model_runner import ModelRunner, tflm_refusal
from .wire import (BAUD, DBX_CHUNK, FRAME_BYTES, HELP, MAX_CHANNELS, MAX_COMMAND, MAX_TOKENS, PROFILE,
                   PROTOCOL_VERSION, VIRTUAL_FIRMWARE, WRAP)

SensorSource = Callable[[str, int, float, int, int], np.ndarray]


def fixed3(v: float) -> str:
    """A float32 with 3 decimals, as the firmware prints it without %f (put_fixed3 in
    edgekit_protocol.cpp): a = |v|; m = trunc(float32(float32(a * 1000) + 0.5)); '-' only when
    v < 0 and m > 0; "nan"; "inf"/"-inf" when a * 1000 exceeds 4294967040."""
    v = np.float32(v)
    if v != v:
        return "nan"
    neg = bool(v < 0)
    scaled = np.float32(np.float32(abs(v)) * np.float32(1000.0))
    if not scaled <= np.float32(4294967040.0):
        return "-inf" if neg else "inf"
    m = int(np.float32(scaled + np.float32(0.5)))
    return f"{'-' if neg and m else ''}{m // 1000}.{m % 1000:03d}"


def format_result(q: int, scale: float, zero_point: int) -> str:
    """A dequantized output as results% prints it: fixed3((float)(q - zp) * scale) in float32."""
    return fixed3(np.float32(np.float32(q - zero_point) * np.float32(scale)))


def parse_uint(s: str) -> int | None:
    """Decimal digits only, at least one (the C++ core's parse_uint); saturates at 2^32 - 1."""
    if not s or not all("0" <= c <= "9" for c in s):
        return None
    return min(int(s), 0xFFFFFFFF)


def parse_channel_mask(s: str, channels: int) -> int | None:
    """The core's parse_channel_mask: 1-8 hex digits (either case), not 0, no bit at or beyond the
    sensor's channel count; None when invalid."""
    if not 1 <= len(s) <= 8 or any(c not in "0123456789abcdefABCDEF" for c in s):
        return None
    m = int(s, 16)
    return m if m and not m >> channels else None


def _hex_check(h: str, limit: int | None = None) -> tuple[bytes | None, str | None]:
    """(bytes, None) or (None, error line), checked as the C++ core's decode_hex: an odd count
    first, then the first invalid digit, then (with limit) the chunk size."""
    if len(h) % 2:
        return None, "e-[Insufficent number of hex digits]"
    for c in h:
        if c not in "0123456789abcdefABCDEF":
            return None, f"e-[Invalid hex digit '{c}']"
    if limit is not None and len(h) // 2 > limit:
        return None, f"e-[Chunk too long: at most {limit} bytes]"
    return bytes.fromhex(h), None

# ---------------------------------------------------------------------------------------------
# What runs on the board
# ---------------------------------------------------------------------------------------------

@dataclass
class Tensor:
    nbytes: int
    dtype: str
    shape: tuple[int, ...]
    scale: float = 1.0
    zero_point: int = 0


@dataclass
class BoardModel:
    """What the protocol needs to know about the model on the board."""
    tag: str
    sha256: str
    firmware: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    latency_us: float
    layers: list[tuple[str, float]]          # (OP_NAME, microseconds) per op, in order
    arena_bytes: int
    flash_used: int
    run: Callable[[bytes], bytes]            # raw input bytes -> raw output bytes
    arena_used: Callable[[], int]
    close: Callable[[], None] = field(default=lambda: None)
    ready: Callable[[], str | None] = field(default=lambda: None)  # None, or why the model cannot run

    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.inputs)


def tflite_board_model(model: TFLiteModel | bytes, board: Board | str, tag: str | None = None,
                       runtime: str = "auto", simulation=None) -> BoardModel:
    """A .tflite model on a board: timings and memory from the simulator, outputs from TFLM/LiteRT.

    simulation: the simulator's report for this model on this board when the caller already has it
    (simulate()'s report, or a dict with "latency_ms", "layers" with "op" and "latency_ms" each,
    "arena_bytes", "flash_bytes"); else it is computed here."""
    model = model_of(model)
    board = _board_of(board)
    sg = model.parsed.subgraphs[0]

    def tensor(i) -> Tensor:
        t = sg.tensors[i]
        dtype = tensor_type_name(t.type)
        shape = tuple(int(d) for d in t.shape)
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 1.0
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
        try:
            item = np.dtype(dtype).itemsize
        except TypeError:
            item = 1
        return Tensor(int(np.prod(shape)) * item, dtype, shape, scale, zp)

    inputs, outputs = [tensor(i) for i in sg.inputs], [tensor(i) for i in sg.outputs]
    report = simulation if simulation is not None else simulate(model, board)
    # a report as a dict (JSON) or as simulate()'s ProfileReport
    value = report.get if isinstance(report, dict) else lambda key: getattr(report, key, None)
    for key, ours in (("model_sha256", model.sha256), ("target", board.key)):
        if value(key) not in (None, ours):
            raise EdgekitError(f"the simulation given is for {key} {value(key)}, but this is {ours}; pass "
                               "the report of this model on this board, or none to simulate it here")
    if runtime == "auto" and board.runtime != "tflm":
        runtime = "litert"  # the Pi and the Coral run LiteRT
    refusal = tflm_refusal(model) if runtime != "litert" else None
    if refusal:  # as the firmware build would: before the board answers, so no "reflash" advice follows
        raise EdgekitError(refusal)
    runner = ModelRunner(model, [(t.shape, t.dtype) for t in inputs], len(outputs), runtime=runtime)
    arena = int(value("arena_bytes") or 0)

    def arena_used() -> int:
        try:
            used = runner.arena_used
        except EdgekitError:
            used = None
        return int(used) if used is not None else arena

    def ready() -> str | None:
        try:
            runner.start()
            return None
        except EdgekitError as e:
            return str(e)

    return BoardModel(
        tag=tag or "edgekit", sha256=model.sha256, firmware=f"{VIRTUAL_FIRMWARE} {__version__}", inputs=inputs,
        outputs=outputs, latency_us=float(value("latency_ms")) * 1000.0,
        layers=[(row["op"], float(row["latency_ms"]) * 1000.0) for row in value("layers")],
        arena_bytes=arena, flash_used=int(value("flash_bytes") or len(model.data)),
        run=runner.run, arena_used=arena_used, close=runner.close, ready=ready)


def _board_of(board: Board | str) -> Board:
    return board if isinstance(board, Board) else load_board(board)


def stand_in_board_model(tag: str | None = None) -> BoardModel:
    s = standin
    return BoardModel(
        tag=tag or s.MODEL_TAG, sha256=s.MODEL_SHA256, firmware=s.FIRMWARE,
        inputs=[Tensor(s.INPUT_BYTES, "int8", (1, 96, 96, 3))],
        outputs=[Tensor(s.OUTPUTS, "int8", (1, s.OUTPUTS), s.OUTPUT_SCALE, s.OUTPUT_ZERO_POINT)],
        latency_us=float(s.INVOKE_US), layers=[(op, float(us)) for op, us in s.LAYERS],
        arena_bytes=s.ARENA_BYTES, flash_used=s.FLASH_USED, run=s.run, arena_used=lambda: s.ARENA_USED)


@dataclass
class VirtualSensor:
    """A stream sensor of a virtual board (the C++ core's Sensor). min_rate_hz: the lowest rate
    the sensor starts at; below it `stream` answers e-[Sensor failed to start: <name>], as the
    firmware's microphone does for any rate but 16000 Hz (its Sensor::start() refuses)."""
    name: str
    channels: int
    max_rate_hz: int
    samples_per_frame: int
    source: SensorSource = synthetic_source
    min_rate_hz: int = 1


def descriptor_sensors(board, source: SensorSource | None = None, revision: str | None = None) -> list[VirtualSensor]:
    """The stream sensors a virtual board offers, as the sensor contract and edgekit's
    firmware define them: every sensor of the descriptor with a max_rate_hz (first of each name, or
    the given revision, e.g. "Rev2"), all its channels (the Nano's IMU streams 9), up to that rate;
    "adc" (3 channels, 1000 Hz) on every MCU board even when the descriptor does not list it.
    Frames are as full as 96 bytes allow (the microphone and camera's 48 samples), except that the
    slow sensors (at most 50 Hz) send one sample per frame, so a reading is not held back for
    seconds. The default source is edgekit.sim.sensors.SimulatedSensors (plausible signals)."""
    if source is None:
        source = SimulatedSensors(board, revision=revision)
    chosen: dict = {}
    for s in board.sensors:
        if s.max_rate_hz and (s.name not in chosen or (revision and s.revision == revision)):
            chosen[s.name] = s
    out = [] if "adc" in chosen or board.kind != "mcu" else [VirtualSensor("adc", 3, 1000, FRAME_BYTES // 6, source)]
    for s in chosen.values():
        ch = min(len(s.channels), MAX_CHANNELS)
        per_frame = 1 if s.max_rate_hz <= 50 else FRAME_BYTES // 2
        # the firmware's PDM/I2S microphones run at exactly their one rate; anything else fails to start
        low = int(s.max_rate_hz) if s.name == "microphone" else 1
        out.append(VirtualSensor(s.name, ch, int(s.max_rate_hz), per_frame, source, min_rate_hz=low))
    return out


# ---------------------------------------------------------------------------------------------
# The board
# ---------------------------------------------------------------------------------------------

@dataclass
class _Stream:
    sensor: VirtualSensor
    rate: int
    samples: int
    per_frame: int
    t0: float               # clock when the stream command ran, microseconds
    columns: list[int]      # the sensor's channels sent (the channel mask's bits), in order
    sent: int = 0           # frames sent
    next_sample: int = 0


class VirtualBoard:
    """The protocol of docs/protocol.md for one board, with a virtual clock.

    feed(bytes) -> bytes: the replies to every complete command in the bytes (partial commands
    wait for more bytes). While streaming, poll() -> bytes returns the next frames (and at the end
    m-stream-done and m-ready); feed() then answers only stop%. boot_banner() -> the boot lines;
    reboot() -> bytes: the board restarts and forgets its input, results and stream.
    """

    def __init__(self, board: Board | str, model: TFLiteModel | bytes | None = None, stand_in: bool = False,
                 seed: int = 0, sensors: SensorSource | list[VirtualSensor] | None = None,
                 model_tag: str | None = None, runtime: str = "auto", label: str | None = None,
                 revision: str | None = None, recording: int = 0, simulation=None):
        self.board = _board_of(board)
        self.key = self.board.key
        if stand_in and model is not None:
            raise EdgekitError("give a model or stand_in=True, not both; the stand-in ignores models")
        self.stand_in = stand_in or model is None
        self.seed = seed
        self.runtime = runtime
        self.model = stand_in_board_model(model_tag) if self.stand_in else \
            tflite_board_model(model, self.board, model_tag, runtime, simulation)
        self.flash_sha256: str | None = None  # the image a `flash begin` announced
        if isinstance(sensors, list):
            self.sensors = {s.name: s for s in sensors}
        else:
            if sensors is None:  # plausible signals; label, seed and recording shape them
                sensors = SimulatedSensors(self.board, label=label, seed=seed, revision=revision,
                                           recording=recording)
            self.sensors = {s.name: s for s in descriptor_sensors(self.board, sensors, revision)}
            if self.stand_in:
                self.sensors[standin.SENSOR] = VirtualSensor(
                    standin.SENSOR, standin.SENSOR_CHANNELS, standin.SENSOR_MAX_RATE_HZ,
                    standin.SENSOR_SAMPLES_PER_FRAME, standin.counter_source)
                self.sensors[standin.WIDE_SENSOR] = VirtualSensor(
                    standin.WIDE_SENSOR, standin.WIDE_CHANNELS, standin.WIDE_MAX_RATE_HZ,
                    standin.WIDE_SAMPLES_PER_FRAME, standin.wide_source)
        self.model_error: str | None = None
        self.commands = 0         # complete commands received since power-on
        self.boots = 0
        self.inferences = 0       # invokes (warm-up included)
        self._power_on()

    def add_sensor(self, sensor: VirtualSensor) -> None:
        self.sensors[sensor.name] = sensor

    # -- state ------------------------------------------------------------------------------
    def _power_on(self) -> None:
        self.boots += 1
        self.clock = 0.0
        self.buffer = bytearray(self.model.input_bytes)
        self.load_size = 0     # N of the last successful db load (0: none)
        self.load_pos = 0      # bytes received by plain db commands
        self.outputs: bytes | None = None
        self.stream: _Stream | None = None
        self._cmd = bytearray()
        self._too_long = False

    def boot_banner(self) -> bytes:
        lines = ["m-timestamp-mode-performance", f"m-lap-us-{self._now()}"]
        if self.model_error:
            lines.append(f"e-[Model error: {self.model_error}]")
        return self._lines(lines + ["m-init-done", "m-ready"])

    def reboot(self) -> bytes:
        """Power-cycle: forget everything but the model, print the boot banner."""
        self._power_on()
        return self.boot_banner()

    @property
    def streaming(self) -> bool:
        return self.stream is not None

    def close(self) -> None:
        self.model.close()

    # -- bytes in, bytes out ----------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        out = []
        data = bytes(data)
        start = 0
        while True:
            end = data.find(b"%", start)
            self._append(data[start:end if end >= 0 else len(data)])
            if end < 0:
                return b"".join(out)
            out.append(self._complete())
            start = end + 1

    def _append(self, part: bytes) -> None:
        """Command bytes before a '%': line ends are ignored (between and inside commands); past
        MAX_COMMAND characters the command is discarded up to its '%'."""
        if self._too_long or not part:
            return
        part = part.replace(b"\r", b"").replace(b"\n", b"")
        room = MAX_COMMAND - len(self._cmd)
        if len(part) > room:
            self._too_long = True
        else:
            self._cmd += part

    def _complete(self) -> bytes:
        text = self._cmd.decode("latin-1")
        too_long = self._too_long
        self._cmd, self._too_long = bytearray(), False
        self.commands += 1
        self.clock += standin.COMMAND_US if self.stand_in else (len(text) + 1) * 10 * 1e6 / BAUD
        if too_long:
            return b"" if self.stream is not None else self._lines(["e-[Command too long]", "m-ready"])
        if self.stream is not None:  # only stop% is answered while streaming
            words = [w for w in text.split(" ") if w][:MAX_TOKENS]
            return self._finish_stream() if words[:1] == ["stop"] else b""
        lines = self.execute(text)
        # a stream's m-ready comes after its frames and m-stream-done (poll())
        return self._lines(lines if self.stream is not None else lines + ["m-ready"])

    def _now(self) -> int:
        t = int(math.floor(self.clock))
        return t if self.stand_in else t % WRAP  # a board's micros() wraps; the host harness's does not

    @staticmethod
    def _lines(lines: list[str]) -> bytes:
        return "".join(line + "\r\n" for line in lines).encode("latin-1")

    # -- commands ---------------------------------------------------------------------------
    def execute(self, text: str) -> list[str]:
        """The reply lines (without m-ready) to one command (without its '%'), not streaming."""
        words = [w for w in text.split(" ") if w][:MAX_TOKENS]
        cmd = words[0] if words else ""
        handler = {
            "name": lambda: [f"m-name-dut-[edgekit {self.key}]"],
            "profile": lambda: [f"m-profile-[{PROFILE}]", f"m-model-[{self.model.tag}]"],
            "help": lambda: [f"m-help-{h}" for h in HELP],
            "timestamp": lambda: [f"m-lap-us-{self._now()}"],
            "db": lambda: self._db(words),
            "dbx": lambda: self._dbx(words),
            "infer": lambda: self._infer(words),
            "results": self._results,
            "raw": self._raw,
            "layers": self._layers,
            "info": self._info,
            "stream": lambda: self._stream(words),
            "stop": lambda: ["e-[No stream running]"],
            "flash": lambda: self._flash(words),
        }.get(cmd)
        if handler is None:
            return [f"e-[Unknown command: {cmd}]"]
        return handler()

    def _db(self, words: list[str]) -> list[str]:
        if len(words) < 2:
            return ["e-[Command 'db' requires a subcommand]"]
        sub = words[1]
        if sub == "load":
            if len(words) < 3:
                return ["e-[Command 'db load' requires the # of bytes]"]
            n = parse_uint(words[2])
            if not n:
                return ["e-[Command 'db load' must be >0 bytes]"]
            self.load_pos = 0
            if n > len(self.buffer):
                self.load_size = 0
                return ["m-[Error: Input size exceeds maximum]"]
            self.load_size = n  # the buffer is not cleared
            return [f"m-[Expecting {n} bytes]"]
        if sub == "print":
            data = self.buffer[:self.load_size]
            return ["m-buffer-" + "-".join(f"{b:02x}" for b in data[i:i + 8]) for i in range(0, len(data), 8)]
        if self.load_size == 0 or self.load_pos >= self.load_size:
            return ["e-[No db load in progress]"]
        data, err = _hex_check(sub)
        if err:
            return [err]
        take = data[:self.load_size - self.load_pos]  # digits past the N bytes are disregarded
        self.buffer[self.load_pos:self.load_pos + len(take)] = take
        self.load_pos += len(take)
        return ["m-load-done"] if self.load_pos == self.load_size else []

    def _dbx(self, words: list[str]) -> list[str]:
        offset = parse_uint(words[1]) if len(words) > 1 else None
        crc_ok = len(words) > 2 and 1 <= len(words[2]) <= 8 and all(c in "0123456789abcdefABCDEF" for c in words[2])
        if len(words) < 4 or offset is None or not crc_ok:
            return ["e-[Usage: dbx <offset> <crc32> <hex>]"]
        if self.load_size == 0:
            return ["e-[No db load in progress]"]
        data, err = _hex_check(words[3], DBX_CHUNK)
        if err:
            return [err]
        if zlib.crc32(data) != int(words[2], 16):
            return [f"e-[CRC mismatch at {offset}]"]
        end = offset + len(data)
        if offset > self.load_size or end > self.load_size:
            return [f"e-[Chunk beyond the load of {self.load_size} bytes]"]
        self.buffer[offset:end] = data
        return [f"m-dbx-ok-{end}"]

    def _flash(self, words: list[str]) -> list[str]:
        """flash begin <bytes> <sha256>, then a db load of the image, then flash end (see the top)."""
        if len(words) == 4 and words[1] == "begin":
            n, room = parse_uint(words[2]), int(self.board.num("memory.flash_bytes", 2**24))
            if not n or n > room:
                return [f"e-[Image of {words[2]} bytes does not fit the flash ({room} bytes)]"]
            self.buffer, self.load_size, self.load_pos = bytearray(n), 0, 0
            self.flash_sha256 = words[3].lower()
            return ["m-flash-ready"]
        if words[1:] != ["end"]:
            return ["e-[Usage: flash begin <bytes> <sha256> | flash end]"]
        image = bytes(self.buffer[:self.load_size])
        announced, self.flash_sha256 = self.flash_sha256, None
        if announced is None or hashlib.sha256(image).hexdigest() != announced:
            return ["e-[Flash image incomplete or corrupted; flash begin again]"]
        try:
            model = tflite_board_model(image, self.board, runtime=self.runtime)
        except EdgekitError as e:
            self._power_on()
            return [f"e-[Model error: {' '.join(str(e).split())[:160]}]"]
        self.model.close()
        self.model, self.stand_in, self.model_error = model, False, None
        self._power_on()
        return ["m-flash-done"]

    def _usable(self) -> list[str]:
        return [f"e-[Model error: {self.model_error}]"] if self.model_error else []

    def _infer(self, words: list[str]) -> list[str]:
        n, w = 1, 10  # MLPerf Tiny's defaults; hosts always send both
        if len(words) >= 2:
            n = parse_uint(words[1])
            if not n:
                return ["e-[Inference iterations must be >0]"]
        if len(words) >= 3:
            w = parse_uint(words[2])
            if w is None:
                return ["e-[Inference warmup must be >=0]"]
        if self.model_error is None:
            self.model_error = self.model.ready()  # e.g. TFLite Micro cannot load the model
        if self._usable():
            return self._usable()
        self.outputs = None
        lines = [f"m-warmup-start-{w}"]
        try:
            out = self.model.run(bytes(self.buffer))
        except EdgekitError:
            if w:
                return lines + ["e-[Invoke failed]"]
            return lines + ["m-warmup-done", f"m-infer-start-{n}", "e-[Invoke failed]"]
        lat = self.model.latency_us
        self.clock += w * lat
        lines += ["m-warmup-done", f"m-infer-start-{n}"]
        t0 = self._now()
        self.clock += n * lat
        lines += [f"m-lap-us-{t0}", f"m-lap-us-{self._now()}", "m-infer-done"]
        self.inferences += n + w
        self.outputs = out
        return lines + [self._results_line()]

    def _output(self) -> tuple[Tensor, np.ndarray]:
        t = self.model.outputs[0]  # the firmware reports output 0, as TFLM's interpreter->output(0)
        return t, np.frombuffer(self.outputs[:t.nbytes], dtype=np.int8 if t.dtype == "int8" else np.uint8)

    def _results_line(self) -> str:
        t, arr = self._output()
        if t.dtype not in ("int8", "uint8"):
            return f"e-[Unsupported output type: {_dtype_name(t.dtype)}]"
        return "m-results-[" + ",".join(format_result(int(q), t.scale, t.zero_point) for q in arr) + "]"

    def _have_results(self) -> list[str]:
        if self._usable():
            return self._usable()
        return [] if self.outputs is not None else ["e-[No inference yet]"]

    def _results(self) -> list[str]:
        return self._have_results() or [self._results_line()]

    def _raw(self) -> list[str]:
        if self._have_results():
            return self._have_results()
        t, arr = self._output()
        if t.dtype not in ("int8", "uint8"):
            return [f"e-[Unsupported output type: {_dtype_name(t.dtype)}]"]
        return ["m-raw-[" + ",".join(str(int(x)) for x in arr) + "]"]

    def _layers(self) -> list[str]:
        return self._have_results() or \
            [f"m-layer-{i}-{op}-us-{int(round(us))}" for i, (op, us) in enumerate(self.model.layers)]

    def _info(self) -> list[str]:
        m = self.model
        return [f"m-info-board-{self.key}", f"m-info-firmware-{m.firmware}",
                f"m-info-protocol-{PROTOCOL_VERSION}", f"m-info-model-sha256-{m.sha256}",
                f"m-info-arena-bytes-{m.arena_bytes}", f"m-info-arena-used-{m.arena_used()}",
                f"m-info-flash-used-{m.flash_used}", f"m-info-clock-hz-{int(self.board.clock_hz)}",
                f"m-info-input-{m.inputs[0].nbytes}-{_dtype_name(m.inputs[0].dtype)}",
                f"m-info-output-{m.outputs[0].nbytes}-{_dtype_name(m.outputs[0].dtype)}"]

    # -- streams ----------------------------------------------------------------------------
    def _stream(self, words: list[str]) -> list[str]:
        rate = parse_uint(words[2]) if len(words) > 2 else None
        samples = parse_uint(words[3]) if len(words) > 3 else None
        if len(words) < 4 or rate is None or not samples:
            return ["e-[Usage: stream <sensor> <rate_hz> <samples>]"]
        sensor = self.sensors.get(words[1])
        if sensor is None:
            return [f"e-[Unknown sensor: {words[1]}]"]
        if rate == 0 or rate > sensor.max_rate_hz:
            return [f"e-[Invalid rate: {rate} (1 to {sensor.max_rate_hz} Hz)]"]
        mask = (1 << sensor.channels) - 1  # absent: all channels; checked after the rate, as the core
        if len(words) > 4:
            mask = parse_channel_mask(words[4], sensor.channels)
            if mask is None:
                return [f"e-[Invalid channel mask: {words[4]}]"]
        if rate < sensor.min_rate_hz:
            return [f"e-[Sensor failed to start: {sensor.name}]"]
        columns = [c for c in range(sensor.channels) if mask >> c & 1]
        per_frame = min(max(1, sensor.samples_per_frame), FRAME_BYTES // (2 * len(columns)))
        self.stream = _Stream(sensor, rate, samples, per_frame, self.clock, columns)
        return [f"m-stream-start-{sensor.name}-{rate}-{len(columns)}"]

    def _due(self, k: int) -> float:
        s = self.stream
        return s.t0 + (k * 1000000) // s.rate  # sample k is due at t0 + floor(k * 1e6 / rate)

    def poll(self, max_frames: int = 8, elapsed_s: float | None = None) -> bytes:
        """The next frames of a running stream (at most max_frames; with elapsed_s, only those whose
        last sample is due that many seconds after the stream started), then m-stream-done and
        m-ready at its end. The clock moves to each sample's due time."""
        s = self.stream
        if s is None:
            return b""
        lines = []
        while len(lines) < max_frames and s.next_sample < s.samples:
            k = s.next_sample
            count = min(s.per_frame, s.samples - k)
            if elapsed_s is not None and self._due(k + count - 1) - s.t0 > elapsed_s * 1e6:
                break
            data = np.asarray(s.sensor.source(s.sensor.name, s.sensor.channels, float(s.rate), k, count))
            data = data.reshape(count, s.sensor.channels)[:, s.columns]
            payload = np.ascontiguousarray(data).astype("<i2").tobytes()
            self.clock = max(self.clock, self._due(k))
            t_us = self._now()
            self.clock = max(self.clock, self._due(k + count - 1))
            lines.append(f"f-{s.sent}-{t_us}-{payload.hex()}-{zlib.crc32(payload):08x}")
            s.sent += 1
            s.next_sample += count
        out = self._lines(lines)
        if s.next_sample >= s.samples:
            out += self._finish_stream()
        return out

    def _finish_stream(self) -> bytes:
        """m-stream-done-<frames sent> and m-ready (samples of an unfinished frame are dropped)."""
        s, self.stream = self.stream, None
        return self._lines([f"m-stream-done-{s.sent}", "m-ready"])


def _dtype_name(dtype: str) -> str:
    return dtype if dtype in ("int8", "uint8", "int16", "float32") else "other"
