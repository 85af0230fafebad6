"""The host side of the serial protocol (docs/protocol.md): one board behind one serial port.

    with BoardClient("/dev/ttyACM0") as board:        # or "sim://nano33ble?model=m_int8.tflite"
        board.info()["model_sha256"]
        board.load(x.tobytes())                       # db load N + CRC-checked dbx chunks
        r = board.infer(10, 1)                        # {"latency_us": ..., "results": [...], ...}
        board.raw(); board.layers()

What it guards against, as the spec's host rules ask:
- every wait has a timeout (`timeout` s per reply line; for infer plus `infer_s` per inference);
  no answer raises BoardTimeout naming the command and the port;
- reply lines are collected until m-ready, across reads (a line split over reads is put back
  together); lines that start with neither m-, e-[ nor f- are garbage: skipped and counted;
- idempotent commands (name, profile, info, timestamp, results, raw, layers, db print, dbx, help)
  are sent again after a timeout or a garbled reply (`retries` times); infer never is: a lost or
  garbled infer reply raises, so a wrong result is never returned;
- a dbx chunk the board rejects (CRC mismatch) is sent again;
- bytes are paced for slow USB-serial bridges (`pace_s` between commands and between 64-byte
  pieces of one command; 0 for sim:// boards);
- replies carry no checksum (only frames and dbx chunks do): with confirm=True, results, raw,
  layers and info are read twice until two reads agree, and infer's results are checked against
  a results% read, so that a reply corrupted in its digits is caught (at the cost of a command);
- the port disappearing (SerialException / OSError) raises BoardGone; a boot banner in the middle
  of a conversation (the board reset) raises BoardReset, or, with recover=True (the default) and
  an input this client loaded, the input is loaded again and the command run again (the result
  says "recovered": True and `events` records it).
All errors are EdgekitError subclasses with a one-line message: what was wrong, what to do.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import time
import zlib
from dataclasses import dataclass

import serial
from serial.serialutil import SerialException, SerialTimeoutException

from ..errors import EdgekitError
from .wire import BAUD, DBX_CHUNK, LEGACY_CHUNK, MAX_COMMAND, WRAP

DEFAULT_TIMEOUT_S = 5.0  # how long a reply may take, by default
DEFAULT_RETRIES = 2      # how often an idempotent command is sent again, by default
POLL_S = 0.02            # serial read timeout: how often the client looks at its deadlines
IDEMPOTENT = frozenset({"name", "profile", "info", "timestamp", "results", "raw", "layers", "db print",
                        "dbx", "help"})
NAME_RE = re.compile(r"^m-(name)-dut-\[([^]]+)]$")   # the MLPerf Tiny runner's pattern
INFO_INT = ("protocol", "arena-bytes", "arena-used", "flash-used", "clock-hz")
INFO_KEYS = ("board", "firmware", "protocol", "model-sha256", "arena-bytes", "arena-used", "flash-used",
             "clock-hz", "input", "output")
# The only e-[...] an idempotent command can get; any other means the command arrived garbled.
LEGIT_ERRORS = ("No inference yet", "Model error", "Unsupported output type")
_GARBAGE = object()


class BoardError(EdgekitError):
    """A problem talking to a board."""


class BoardTimeout(BoardError):
    """The board did not answer (completely) in time."""


class BoardGone(BoardError):
    """The serial port disappeared."""


class BoardUnreachable(BoardError):
    """The board's port could not be opened (absent, taken, or its network server gone)."""


class BoardReset(BoardError):
    """The board rebooted in the middle of the conversation."""


class BoardReplyError(BoardError):
    """The board answered with an e-[...] line (or an error the host cannot fix by retrying)."""

    def __init__(self, message: str, reply: str = ""):
        super().__init__(message)
        self.reply = reply


class _Timeout(Exception):
    def __init__(self, lines):
        self.lines = lines


class _Reset(Exception):
    pass


class _Garbled(Exception):
    pass


class _LoadFailed(Exception):
    pass


@dataclass(frozen=True)
class Frame:
    seq: int
    t_us: int
    payload: bytes
    crc_ok: bool


def _short(cmd: str) -> str:
    """A command as error messages show it: dbx/db data abbreviated."""
    words = cmd.split(" ")
    if words[0] in ("db", "dbx") and len(words[-1]) > 16 and words[-1] not in ("print", "load"):
        words[-1] = f"<{len(words[-1])} hex digits>"
    return " ".join(words)


def _clean(raw: bytes):
    """A reply line without its line end and leading line noise; None for an empty line,
    _GARBAGE for a line that is not m-, e-[ or f-."""
    s = raw.decode("latin-1").strip()
    i = 0
    while i < len(s) and not (" " < s[i] <= "~"):
        i += 1
    s = s[i:]
    if not s:
        return None
    if s.startswith(("m-", "e-[", "f-")):
        return s
    if s.endswith("m-ready"):  # noise in front of the end of a reply
        return "m-ready"
    return _GARBAGE


def _bracket(line: str, prefix: str) -> str:
    if not (line.startswith(prefix + "[") and line.endswith("]")):
        raise _Garbled(f"expected {prefix}[...], got {line!r}")
    return line[len(prefix) + 1:-1]


def _one(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.startswith(prefix)]
    if len(found) != 1:
        raise _Garbled(f"expected one {prefix} line, got {len(found)}")
    return found[0]


def parse_results(lines: list[str]) -> list[float]:
    body = _bracket(_one(lines, "m-results-"), "m-results-")
    if not body:
        return []
    vals = []
    for item in body.split(","):
        if not re.fullmatch(r"-?\d+(\.\d+)?", item):
            raise _Garbled(f"bad result {item!r}")
        vals.append(float(item))
    return vals


def parse_raw(lines: list[str]) -> list[int]:
    body = _bracket(_one(lines, "m-raw-"), "m-raw-")
    if not body:
        return []
    if not re.fullmatch(r"-?\d+(,-?\d+)*", body):
        raise _Garbled(f"bad raw outputs {body[:40]!r}")
    return [int(x) for x in body.split(",")]


def parse_layers(lines: list[str]) -> list[tuple[int, str, int]]:
    rows = []
    for line in lines:
        m = re.fullmatch(r"m-layer-(\d+)-([A-Za-z0-9_()]+)-us-(\d+)", line)
        if not m or int(m.group(1)) != len(rows):
            raise _Garbled(f"bad layer line {line!r}")
        rows.append((int(m.group(1)), m.group(2), int(m.group(3))))
    return rows


def parse_info(lines: list[str]) -> dict:
    info: dict = {"inputs": [], "outputs": []}
    for line in lines:
        if not line.startswith("m-info-"):
            raise _Garbled(f"unexpected line {line!r}")
        rest = line[len("m-info-"):]
        key = next((k for k in INFO_KEYS if rest.startswith(k + "-")), None)
        if key is None:
            info.setdefault("extra", []).append(rest)
            continue
        value = rest[len(key) + 1:]
        if key in INFO_INT:
            if not value.isdigit():
                raise _Garbled(f"bad {key} {value!r}")
            info[key.replace("-", "_")] = int(value)
        elif key == "model-sha256":
            if not re.fullmatch(r"[0-9a-f]{64}", value):
                raise _Garbled(f"bad sha256 {value!r}")
            info["model_sha256"] = value
        elif key in ("input", "output"):
            m = re.fullmatch(r"(\d+)-([a-z0-9]+)", value)
            if not m:
                raise _Garbled(f"bad {key} {value!r}")
            info[key + "s"].append((int(m.group(1)), m.group(2)))
        else:
            if not value or not all(" " <= c <= "~" for c in value):
                raise _Garbled(f"bad {key} {value!r}")
            info[key] = value
    missing = [k for k in INFO_KEYS if k.replace("-", "_") not in info and k + "s" not in info
               or (k in ("input", "output") and not info[k + "s"])]
    if missing:
        raise _Garbled(f"info lacks {', '.join(missing)}")
    for k in ("input", "output"):
        info[f"{k}_bytes"], info[f"{k}_dtype"] = info[k + "s"][0]
    return info


def parse_infer(lines: list[str], n: int, w: int) -> dict:
    if f"m-warmup-start-{w}" not in lines or "m-warmup-done" not in lines \
            or f"m-infer-start-{n}" not in lines or "m-infer-done" not in lines:
        raise _Garbled("infer reply lacks its start/done lines")
    laps = [line[len("m-lap-us-"):] for line in lines if line.startswith("m-lap-us-")]
    if len(laps) != 2 or not all(x.isdigit() for x in laps):
        raise _Garbled(f"expected two m-lap-us lines, got {laps}")
    t0, t1 = int(laps[0]), int(laps[1])
    dt = (t1 - t0) % WRAP  # micros() wraps every 71 minutes
    return {"n": n, "warmup": w, "t0_us": t0, "t1_us": t1, "latency_us": dt / n,
            "results": parse_results(lines), "recovered": False}


def _no_delay(ser) -> None:
    """A network port (socket://, rfc2217://) sends each small write at once: with Nagle's algorithm
    a 64-byte piece waits for the previous one's ACK, ~10x slower `db load` (measured on the
    emulated board: 490 bytes in 236 ms, 25 ms without the delay)."""
    sock = getattr(ser, "_socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # a socket that refuses the option still works, only slower


class BoardClient:
    """One board over a serial port (a device path, a pyserial URL such as sim://..., or an open
    pyserial-like object). See the module docstring for the rules it follows."""

    def __init__(self, port_or_serial, timeout: float = DEFAULT_TIMEOUT_S, pace_s: float | None = None,
                 retries: int = DEFAULT_RETRIES, baudrate: int = BAUD, infer_s: float = 2.0, recover: bool = True,
                 write_chunk: int = 64, confirm: bool = False):
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.infer_s = float(infer_s)
        self.recover = recover
        self.confirm = confirm
        self.write_chunk = max(1, int(write_chunk))
        if isinstance(port_or_serial, (str, os.PathLike)):
            port = os.fspath(port_or_serial)
            self.port = port.split("?", 1)[0] if "://" in port else port
            try:
                # pyserial's rfc2217:// client has no write timeout (it raises NotImplementedError)
                limit = {} if port.lower().startswith("rfc2217://") else {"write_timeout": max(self.timeout, 1.0)}
                self.ser = serial.serial_for_url(port, baudrate=baudrate, timeout=POLL_S, **limit)
            except EdgekitError:
                raise
            except (SerialException, OSError, ValueError) as e:
                raise BoardUnreachable(f"cannot open the board at {self.port} ({_why(e)}); check the port "
                                 "(edgekit targets lists connected boards) and that no other program "
                                 "(a serial monitor) has it open") from None
            _no_delay(self.ser)
            self._owns = True
        else:
            self.ser = port_or_serial
            self.port = str(getattr(port_or_serial, "port", None) or port_or_serial)
            self._owns = False
            try:
                self.ser.timeout = POLL_S
            except Exception:
                pass
        if pace_s is None:
            pace_s = 0.0 if "://" in self.port else 0.001
        self.pace_s = float(pace_s)
        self.stats = {"commands": 0, "garbage": 0, "retries": 0, "timeouts": 0, "crc_resends": 0,
                      "load_restarts": 0, "resets": 0, "recovered": 0}
        self.events: list[str] = []
        self._rx = bytearray()
        self._dirty = False
        self._last_io = 0.0
        self._loaded: bytes | None = None
        self._loaded_legacy = False
        self._last_infer: tuple[int, int] | None = None
        self._stream: Stream | None = None
        self._answered = 0  # replies completed (a boot banner before the first is no mid-run reset)
        try:
            self.ser.reset_input_buffer()  # whatever the board printed before we came
        except (SerialException, OSError) as e:
            raise self._gone(e) from None

    # -- public API --------------------------------------------------------------------------
    def name(self) -> str:
        def parse(lines):
            for line in lines:
                m = NAME_RE.match(line)
                if m:
                    return m.group(2)
            raise _Garbled("no m-name-dut line")
        return self._recovering("name", lambda: self._call("name", parse))

    def profile(self) -> dict:
        def parse(lines):
            return {"profile": _bracket(_one(lines, "m-profile-"), "m-profile-"),
                    "model": _bracket(_one(lines, "m-model-"), "m-model-")}
        return self._recovering("profile", lambda: self._call("profile", parse))

    def help(self) -> list[str]:
        return self._recovering("help", lambda: self._call("help", lambda lines: lines))

    def timestamp(self) -> int:
        def parse(lines):
            v = _one(lines, "m-lap-us-")[len("m-lap-us-"):]
            if not v.isdigit():
                raise _Garbled(f"bad timestamp {v!r}")
            return int(v)
        return self._recovering("timestamp", lambda: self._call("timestamp", parse))

    def info(self) -> dict:
        """board, firmware, protocol, model_sha256, arena_bytes, arena_used, flash_used, clock_hz,
        input_bytes, input_dtype, output_bytes, output_dtype (inputs/outputs: all of them)."""
        return self._recovering("info", lambda: self._confirmed("info", lambda: self._call("info", parse_info)))

    def load(self, data: bytes, legacy: bool = False) -> dict:
        """Loads the input buffer: db load N, then dbx chunks of 96 bytes with CRC-32 and offsets
        (a chunk the board rejects is sent again); legacy=True: plain `db <hex>` chunks of 31
        bytes, as the MLPerf Tiny runner sends them (no CRC: a failed load starts again)."""
        data = bytes(data)
        if not data:
            raise BoardError("nothing to load: the input is empty; give the model's input bytes")
        before = dict(self.stats)
        t = time.monotonic()
        self._check_idle()
        try:
            self._load_raw(data, legacy)
        except _Reset:  # _load_raw restarts after resets; this one came on its last try
            raise BoardReset(f"the board at {self.port} kept resetting while loading the input; check its "
                             "power supply and cable") from None
        return {"bytes": len(data), "chunks": -(-len(data) // (LEGACY_CHUNK if legacy else DBX_CHUNK)),
                "seconds": time.monotonic() - t,
                **{k: self.stats[k] - before[k] for k in ("crc_resends", "retries", "load_restarts", "resets")}}

    def flash_virtual(self, image: bytes) -> None:
        """Give a virtual board (`edgekit board serve`, info's firmware "edgekit-virtual") a new
        model over the link: real boards are flashed by their bootloader's tool, not over this protocol."""
        expect = lambda want: lambda lines: _one(lines, want)  # noqa: E731
        self._call(f"flash begin {len(image)} {hashlib.sha256(image).hexdigest()}", expect("m-flash-ready"),
                   idempotent=False)
        self.load(image)
        self._call("flash end", expect("m-flash-done"), idempotent=False, line_timeout=max(self.timeout, 30))

    def infer(self, n: int = 1, warmup: int = 0) -> dict:
        """Runs `infer n warmup`: latency_us = (T1 - T0) / n from the two m-lap-us lines, results =
        the dequantized outputs. Never retried after a lost or garbled reply (that raises)."""
        if n < 1 or warmup < 0:
            raise BoardError(f"infer needs n >= 1 and warmup >= 0, got n={n}, warmup={warmup}")
        result = self._recovering(f"infer {n} {warmup}", lambda: self._infer_raw(n, warmup), state=True)
        if self.confirm:
            again = self.results()
            if again != result["results"]:
                self.events.append(f"'infer {n} {warmup}' results differed from results%; took the confirmed ones")
                result["results"] = again
        return result

    def results(self) -> list[float]:
        return self._recovering("results", lambda: self._confirmed(
            "results", lambda: self._call("results", parse_results)), state=True, rerun=True)

    def raw(self) -> list[int]:
        return self._recovering("raw", lambda: self._confirmed(
            "raw", lambda: self._call("raw", parse_raw)), state=True, rerun=True)

    def layers(self) -> list[tuple[int, str, int]]:
        """(index, op, microseconds) per op of the last inference."""
        return self._recovering("layers", lambda: self._confirmed(
            "layers", lambda: self._call("layers", parse_layers)), state=True, rerun=True)

    def db_print(self) -> bytes:
        def parse(lines):
            out = bytearray()
            for line in lines:
                m = re.fullmatch(r"m-buffer-([0-9a-f]{2}(?:-[0-9a-f]{2}){0,7})", line)
                if not m:
                    raise _Garbled(f"bad buffer line {line!r}")
                out += bytes.fromhex(m.group(1).replace("-", ""))
            return bytes(out)
        line_timeout = self.timeout
        return self._recovering("db print", lambda: self._call("db print", parse, line_timeout=line_timeout),
                                state=True)

    def stream(self, sensor: str, rate_hz: float, samples: int, channels: list[int] | None = None) -> "Stream":
        """Starts `stream sensor rate_hz samples [mask]` (integers >= 1; for an open-ended capture
        give a large count and call stop()); iterate the returned Stream for Frames. channels: None
        for all the sensor's channels, or the indices of those to send (docs/protocol.md lists
        each sensor's channels in order); a frame's samples then hold just those, in index order."""
        self._check_idle()
        return Stream(self, sensor, rate_hz, samples, channels)

    def command(self, cmd: str, idempotent: bool | None = None) -> list[str]:
        """Any command; its reply lines before m-ready (e-[...] lines raise BoardReplyError)."""
        self._check_idle()
        if idempotent is None:
            idempotent = self._key(cmd) in IDEMPOTENT
        return self._recovering(cmd, lambda: self._call(cmd, lambda lines: lines, idempotent=idempotent))

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
            except EdgekitError:
                pass
        if self._owns:
            try:
                self.ser.close()
            except (SerialException, OSError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the exchange --------------------------------------------------------------------------
    @staticmethod
    def _key(cmd: str) -> str:
        words = cmd.split(" ")
        return " ".join(words[:2]) if words[0] == "db" and len(words) > 1 and words[1] in ("print", "load") \
            else words[0]

    def _check_idle(self):
        if self._stream is not None and not self._stream.finished:
            raise BoardError(f"a stream is running on {self.port}; stop it (stream.stop()) before other commands")

    def _gone(self, e) -> BoardGone:
        return BoardGone(f"the board at {self.port} disappeared (unplugged or reset): {_why(e)}; plug it in "
                         "again (or wait until it re-enumerates) and run again")

    def _send(self, cmd: str) -> None:
        data = (cmd + "%").encode("ascii")
        if len(data) - 1 > MAX_COMMAND:
            raise BoardError(f"command '{_short(cmd)}' is {len(data) - 1} characters; the firmware takes at most "
                             f"{MAX_COMMAND}")
        if self.pace_s:
            wait = self._last_io + self.pace_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            for i in range(0, len(data), self.write_chunk):
                if i and self.pace_s:
                    time.sleep(self.pace_s)
                self.ser.write(data[i:i + self.write_chunk])
        except SerialTimeoutException:
            raise BoardTimeout(f"could not write '{_short(cmd)}' to the board at {self.port} within "
                               f"{self.timeout:g} s; is the board stuck? reset it and run again") from None
        except (SerialException, OSError) as e:
            raise self._gone(e) from None
        self.stats["commands"] += 1
        self._last_io = time.monotonic()

    def _read_line(self, deadline: float):
        """The next valid line, or None at the deadline. Garbage lines are counted and skipped."""
        while True:
            i = self._rx.find(b"\n")
            if i >= 0:
                raw = bytes(self._rx[:i])
                del self._rx[:i + 1]
                line = _clean(raw)
                if line is None:
                    continue
                if line is _GARBAGE:
                    self.stats["garbage"] += 1
                    continue
                return line
            if len(self._rx) > 65536:  # a "line" this long is noise
                self._rx.clear()
                self.stats["garbage"] += 1
            if time.monotonic() >= deadline:
                return None
            try:
                waiting = self.ser.in_waiting
                chunk = self.ser.read(max(1, min(waiting, 65536)))
            except (SerialException, OSError) as e:
                raise self._gone(e) from None
            if chunk:
                self._rx += chunk

    def _collect(self, line_timeout: float, wait=None) -> list[str]:
        """Lines until m-ready (not included). Raises _Timeout when a line takes longer than
        line_timeout (or wait(lines so far), when given), _Reset when the boot banner appears."""
        lines: list[str] = []
        booting = False
        deadline = time.monotonic() + (wait(lines) if wait else line_timeout)
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise _Timeout(lines)
            if line == "m-ready":
                if booting:
                    raise _Reset()
                self._last_io = time.monotonic()
                self._answered += 1
                return lines
            if line.startswith("m-timestamp-mode-"):
                booting = True
                continue
            if line == "m-init-done":
                self._finish_banner()
                raise _Reset()
            if booting and line.startswith("m-lap-us-"):
                continue
            lines.append(line)
            deadline = time.monotonic() + (wait(lines) if wait else line_timeout)

    def _finish_banner(self) -> None:
        deadline = time.monotonic() + min(self.timeout, 1.0)
        while True:
            line = self._read_line(deadline)
            if line is None or line == "m-ready":
                return

    def _drain(self) -> None:
        """After a timeout or a garbled reply: let late bytes arrive, then throw them away."""
        quiet = min(0.1, max(0.02, self.timeout / 10))
        start = last = time.monotonic()
        try:
            while time.monotonic() - start < max(self.timeout, 0.5):
                n = self.ser.in_waiting
                if n:
                    self.ser.read(n)
                    last = time.monotonic()
                elif time.monotonic() - last >= quiet:
                    break
                else:
                    time.sleep(0.005)
            self.ser.reset_input_buffer()
        except (SerialException, OSError) as e:
            raise self._gone(e) from None
        self._rx.clear()
        self._dirty = False

    def _call(self, cmd: str, parse, idempotent: bool | None = None, line_timeout: float | None = None,
              check_errors: bool = True, wait=None):
        """Sends cmd, collects its reply and parses it; retries idempotent commands. Raises
        BoardTimeout, BoardReplyError, BoardError (garbled), BoardGone, or _Reset (the board rebooted:
        the caller decides)."""
        if idempotent is None:
            idempotent = self._key(cmd) in IDEMPOTENT
        line_timeout = line_timeout or self.timeout
        attempts = 1 + (self.retries if idempotent else 0)
        problem = ""
        timed_out_silent = False
        for attempt in range(attempts):
            if attempt:
                self.stats["retries"] += 1
                self.events.append(f"retried '{_short(cmd)}' after {problem}")
            if self._dirty:
                self._drain()
            self._send(cmd)
            try:
                lines = self._collect(line_timeout, wait)
            except _Timeout as t:
                self.stats["timeouts"] += 1
                self._dirty = True
                timed_out_silent = not t.lines
                problem = "no reply" if not t.lines else f"no m-ready after '{t.lines[-1][:60]}'"
                if not idempotent:
                    raise self._timeout_error(cmd, t.lines, wait(t.lines) if wait else line_timeout) from None
                continue
            except _Reset:
                # the command may still be answered after the banner (a board that booted just
                # before it arrived): drain before anything is sent again
                self.stats["resets"] += 1
                self._dirty = True
                self.events.append(f"the board reset during '{_short(cmd)}'" if self._answered else
                                   f"boot banner before the first reply (the board started or reset as the port "
                                   f"opened); '{_short(cmd)}' sent again")
                raise
            errors = [line for line in lines if line.startswith("e-[")]
            if errors and check_errors:
                err = errors[0]
                m = re.fullmatch(r"e-\[Unknown command: (.*)\]", err)
                if m and m.group(1) != cmd.split(" ")[0]:  # our command arrived mangled
                    problem = f"a garbled command ({err})"
                    self._dirty = True
                    if idempotent:
                        continue
                    raise BoardError(f"the board at {self.port} received '{_short(cmd)}' garbled ({err}); "
                                     f"check the cable and the baud rate ({BAUD}), then run again")
                if not m and idempotent and not any(x in err for x in LEGIT_ERRORS):
                    problem = f"an error it cannot give to '{_short(cmd)}' ({err}): a garbled command"
                    self._dirty = True
                    continue
                if m:
                    raise BoardReplyError(f"the board at {self.port} does not know '{cmd.split(' ')[0]}' ({err}): "
                                          "it does not run edgekit firmware (MLPerf Tiny firmware knows only the "
                                          "base commands); flash edgekit's firmware or use base commands", err)
                raise BoardReplyError(f"the board at {self.port} answered '{_short(cmd)}' with {err}; "
                                      f"{_advice(err)}", err)
            try:
                return parse(lines)
            except _Garbled as g:
                self._dirty = True
                problem = f"a garbled reply ({g})"
                if not idempotent:
                    raise BoardError(f"garbled reply from the board at {self.port} to '{_short(cmd)}' ({g}); "
                                     "nothing of it was used: check the cable and run again") from None
        if timed_out_silent:
            raise BoardTimeout(f"board at {self.port} did not answer '{_short(cmd)}' within {line_timeout:g} s "
                               f"({attempts} tries); is it running edgekit firmware at {BAUD} baud?")
        raise BoardError(f"the board at {self.port} answered '{_short(cmd)}' {attempts} times without a "
                         f"usable reply (last: {problem}); check the cable and the baud rate ({BAUD})")

    def _timeout_error(self, cmd: str, lines: list[str], line_timeout: float) -> BoardTimeout:
        if not lines:
            return BoardTimeout(f"board at {self.port} did not answer '{_short(cmd)}' within {line_timeout:g} s; "
                                f"is it running edgekit firmware at {BAUD} baud?")
        used = "its results are not used: run it again" if cmd.startswith("infer") else "run it again"
        return BoardTimeout(f"board at {self.port} stopped answering '{_short(cmd)}' after '{lines[-1][:60]}' "
                            f"(no m-ready within {line_timeout:g} s); {used}")

    def _recovering(self, what: str, fn, state: bool = False, rerun: bool = False):
        """Runs fn; when the board resets: commands without state are simply sent again; with
        state (the loaded input, the last results) the input is loaded again first (and, for
        results/raw/layers, the last infer run again) when recover=True and this client loaded it."""
        self._check_idle()
        recovered = False
        for k in range(self.retries + 1):
            try:
                result = fn()
                if recovered and isinstance(result, dict):
                    result["recovered"] = True
                return result
            except _Reset:
                last = k == self.retries
                if not state:
                    if last:
                        break
                    continue
                if not self.recover or self._loaded is None or last:
                    raise BoardReset(f"the board at {self.port} reset during '{_short(what)}' (its boot banner "
                                     "appeared) and lost its input and results; load the input again and rerun"
                                     + ("" if self.recover else " (or use recover=True)")) from None
                try:
                    self._load_raw(self._loaded, self._loaded_legacy)
                    if rerun and self._last_infer:
                        self._infer_raw(*self._last_infer)
                except _Reset:
                    continue
                recovered = True
                self.stats["recovered"] += 1
                self.events.append(f"the board reset during '{_short(what)}': input loaded again"
                                   + (f", 'infer {self._last_infer[0]} {self._last_infer[1]}' run again"
                                      if rerun and self._last_infer else "") + ", command sent again")
        raise BoardReset(f"the board at {self.port} kept resetting during '{_short(what)}'; check its power "
                         "supply and cable")

    def _confirmed(self, what: str, fn):
        """fn() (an idempotent read); with confirm=True, read until two reads in a row agree."""
        first = fn()
        if not self.confirm:
            return first
        for _ in range(self.retries + 1):
            second = fn()
            if second == first:
                return first
            self.events.append(f"two reads of '{what}' differed; reading again")
            first = second
        raise BoardError(f"the board at {self.port} gave a different '{what}' on every read: the link corrupts "
                         f"replies; check the cable (and the baud rate, {BAUD}), then run again")

    # -- loading -------------------------------------------------------------------------------
    def _load_raw(self, data: bytes, legacy: bool) -> None:
        last = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["load_restarts"] += 1
                self.events.append(f"load of {len(data)} bytes started again after {last}")
            try:
                self._load_once(data, legacy)
                self._loaded, self._loaded_legacy = data, legacy
                return
            except _Reset:
                self.stats["resets"] += 1
                self._dirty = True
                last = "a board reset"
                if attempt == self.retries:
                    raise
            except (BoardTimeout, _LoadFailed) as e:
                self._dirty = True  # late or stray replies must not meet the next try
                last = str(e)
                if attempt == self.retries:
                    if isinstance(e, BoardTimeout):
                        raise
                    raise BoardError(f"loading {len(data)} bytes into the board at {self.port} failed "
                                     f"{attempt + 1} times (last: {e}); check the cable and the baud rate") from None

    def _load_once(self, data: bytes, legacy: bool) -> None:
        n = len(data)
        lines = self._call(f"db load {n}", lambda lines: lines, idempotent=False, check_errors=False)
        if lines != [f"m-[Expecting {n} bytes]"]:
            if "m-[Error: Input size exceeds maximum]" in lines:
                raise BoardReplyError(f"the board at {self.port} cannot take {n} input bytes (m-[Error: Input size "
                                      "exceeds maximum]); give exactly the model's input (info() shows its size)",
                                      "m-[Error: Input size exceeds maximum]")
            raise _LoadFailed(f"'db load {n}' answered {lines[:2]}")
        if legacy:
            chunks = range(0, n, LEGACY_CHUNK)
            for off in chunks:
                end = min(off + LEGACY_CHUNK, n)
                lines = self._call(f"db {data[off:end].hex()}", lambda lines: lines, idempotent=False,
                                   check_errors=False)
                if any(line.startswith("e-[") for line in lines):
                    raise _LoadFailed(f"chunk at {off}: {lines[0]}")
                want = ["m-load-done"] if end == n else []
                if lines != want:
                    raise _LoadFailed(f"chunk at {off}: expected {want or 'nothing'}, got {lines[:2]}")
        else:
            for off in range(0, n, DBX_CHUNK):
                self._dbx(off, data[off:off + DBX_CHUNK])

    def _dbx(self, off: int, chunk: bytes) -> None:
        """One CRC-checked chunk, sent again until the board takes it. The CRC covers the data, not
        the offset: a reply naming another end means the board wrote the chunk elsewhere (an
        offset garbled on the way), and a chunk that got no answer at all may have been written
        elsewhere too; both make the whole load start again (_LoadFailed), never a silently wrong
        buffer."""
        cmd = f"dbx {off} {zlib.crc32(chunk):08x} {chunk.hex()}"
        ok = f"m-dbx-ok-{off + len(chunk)}"
        err = ""
        unanswered = False
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["crc_resends"] += 1
                self.events.append(f"dbx chunk at {off} sent again after {err}")
            if self._dirty:
                self._drain()
            self._send(cmd)
            try:
                lines = self._collect(self.timeout)
            except _Timeout as t:  # an m-ready lost after m-dbx-ok is still a taken chunk
                self.stats["timeouts"] += 1
                self._dirty = True
                lines = t.lines
            oks = [line for line in lines if line.startswith("m-dbx-ok-")]
            if ok in oks:
                if unanswered:
                    raise _LoadFailed(f"a try of the chunk at {off} got no answer (it may have landed elsewhere)")
                return
            if oks:
                raise _LoadFailed(f"the board took the chunk at {off} as '{oks[0]}' (a garbled offset)")
            errors = [line for line in lines if line.startswith("e-[")]
            if not errors:
                unanswered = True
                err = "no answer" if not lines else f"an unexpected reply {lines[0][:40]!r}"
                continue
            err = errors[0]
            if err == "e-[Unknown command: dbx]":
                raise BoardReplyError(f"the board at {self.port} does not know dbx ({err}): it runs MLPerf Tiny "
                                      "firmware; load with legacy=True (plain db chunks)", err)
            if "No db load in progress" in err:
                raise _LoadFailed(f"the board forgot the load at {off} ({err})")
            if "Chunk beyond the load" in err and not unanswered:
                raise BoardReplyError(f"the board at {self.port} answered 'dbx {off} ...' with {err}; it expects "
                                      "fewer bytes than given: load exactly the model's input", err)
            # CRC mismatch, bad hex, usage, unknown command: the chunk was garbled and dropped
        raise _LoadFailed(f"the chunk at {off} was rejected {self.retries + 1} times (last: {err})")

    def _infer_raw(self, n: int, w: int) -> dict:
        cmd = f"infer {n} {w}"

        def wait(lines):  # the line after m-warmup-start waits for W runs, after m-infer-start for N
            last = lines[-1] if lines else ""
            runs = w if last.startswith("m-warmup-start-") else n if last.startswith("m-infer-start-") else 0
            return self.timeout + runs * self.infer_s
        result = self._call(cmd, lambda lines: parse_infer(lines, n, w), idempotent=False, wait=wait)
        self._last_infer = (n, w)
        return result


class Stream:
    """A running `stream`: iterate for Frames (good and corrupted: check crc_ok, never use a bad
    one). Counts: good, corrupted, gaps (sequence numbers skipped between good frames), lost (frames
    the board sent that never arrived whole), garbage lines. stop() ends it early."""

    def __init__(self, client: BoardClient, sensor: str, rate_hz: float, samples: int,
                 channels: list[int] | None = None):
        self.client = client
        self.sensor, self.rate_hz, self.samples = sensor, float(rate_hz), int(samples)
        # the channel indices asked for (None: all); .channels is the count the board sends
        self.selected = None if channels is None else sorted(set(int(c) for c in channels))
        self.good = self.corrupted = self.gaps = self.duplicates = 0
        self.sent: int | None = None
        self.finished = False
        self._next = 0
        self._garbage0 = client.stats["garbage"]
        if int(rate_hz) != rate_hz or rate_hz < 1 or int(samples) != samples or samples < 1:
            raise BoardError(f"stream needs whole numbers >= 1 for rate_hz and samples, got {rate_hz} and {samples}")
        cmd = f"stream {sensor} {int(rate_hz)} {int(samples)}"
        if self.selected is not None:
            cmd += f" {channel_mask(self.selected)}"
        client._check_idle()
        if client._dirty:
            client._drain()
        client._send(cmd)
        deadline = time.monotonic() + client.timeout
        while True:
            line = client._read_line(deadline)
            if line is None:
                client._dirty = True
                raise BoardTimeout(f"board at {client.port} did not answer '{cmd}' within {client.timeout:g} s; "
                                   f"is it running edgekit firmware at {BAUD} baud?")
            if line.startswith("e-["):
                client._collect(client.timeout)
                raise BoardReplyError(f"the board at {client.port} answered '{cmd}' with {line}; {_advice(line)}", line)
            m = re.fullmatch(r"m-stream-start-(.+)-([0-9.]+)-(\d+)", line)
            if m:
                self.channels = int(m.group(3))
                break
            if line == "m-init-done":
                client._finish_banner()
                client._dirty = True
                raise BoardReset(f"the board at {client.port} reset when asked to stream; run again")
        self.per_frame = max(1, 96 // (2 * self.channels))  # a guess until the first frame
        self._seen_payload = False
        client._stream = self
        if self.selected is not None and self.channels != len(self.selected):
            # firmware older than the channel mask ignores the extra word and sends every channel
            self.stop()
            raise BoardError(f"the board at {client.port} sends {self.channels} channels of '{sensor}' where "
                             f"{len(self.selected)} were asked for: its firmware predates channel masks; "
                             "rebuild and flash it (edgekit deploy), or stream all channels")

    @property
    def lost(self) -> int | None:
        return None if self.sent is None else max(0, self.sent - self.good - self.corrupted)

    @property
    def stats(self) -> dict:
        return {"good": self.good, "corrupted": self.corrupted, "gaps": self.gaps, "duplicates": self.duplicates,
                "sent": self.sent, "lost": self.lost, "garbage": self.client.stats["garbage"] - self._garbage0}

    def __iter__(self):
        return self

    def _line_timeout(self) -> float:
        return self.client.timeout + 2 * self.per_frame / self.rate_hz

    def __next__(self) -> Frame:
        if self.finished:
            raise StopIteration
        c = self.client
        while True:
            line = c._read_line(time.monotonic() + self._line_timeout())
            if line is None:
                self._end()
                c._dirty = True
                raise BoardTimeout(f"the stream from the board at {c.port} stalled: no frame within "
                                   f"{self._line_timeout():g} s; check the sensor and the cable, then run again")
            frame = self._frame(line)
            if frame is not None:
                return frame
            if line.startswith("m-stream-done-"):
                v = line[len("m-stream-done-"):]
                self.sent = int(v) if v.isdigit() else None
                try:
                    c._collect(c.timeout)
                except _Timeout:
                    c._dirty = True
                except _Reset:
                    pass
                self._end()
                raise StopIteration
            if line == "m-ready":  # the done line was lost
                self._end()
                raise StopIteration
            if line == "m-init-done":
                c._finish_banner()
                self._end()
                c._dirty = True
                c.stats["resets"] += 1
                raise BoardReset(f"the board at {c.port} reset during the stream after {self.good} good frames; "
                                 "run it again")

    def _frame(self, line: str) -> Frame | None:
        if not line.startswith("f-"):
            return None
        m = re.fullmatch(r"f-(\d+)-(\d+)-((?:[0-9a-f]{2})*)-([0-9a-f]{8})", line)
        if not m:
            self.corrupted += 1  # a malformed f- line: counted, nothing to give
            return None
        payload = bytes.fromhex(m.group(3))
        ok = zlib.crc32(payload) == int(m.group(4), 16)
        seq = int(m.group(1))
        if not ok:
            self.corrupted += 1
            return Frame(seq, int(m.group(2)), payload, False)
        if seq > self._next:
            self.gaps += seq - self._next
        elif seq < self._next:
            self.duplicates += 1
        self._next = max(self._next, seq + 1)
        self.good += 1
        if payload and not self._seen_payload:  # the first good frame tells the board's frame size
            self.per_frame, self._seen_payload = max(1, len(payload) // (2 * self.channels)), True
        elif payload:
            self.per_frame = max(self.per_frame, len(payload) // (2 * self.channels))
        return Frame(seq, int(m.group(2)), payload, True)

    def _end(self):
        self.finished = True
        if self.client._stream is self:
            self.client._stream = None

    def stop(self) -> dict:
        """Ends the stream (stop%), reads up to its m-ready; frames still arriving are counted."""
        if self.finished:
            return self.stats
        c = self.client
        c._send("stop")
        deadline = time.monotonic() + c.timeout
        while True:
            line = c._read_line(deadline)
            if line is None:
                c._dirty = True
                break
            if self._frame(line) is not None:
                deadline = time.monotonic() + c.timeout
                continue
            if line.startswith("m-stream-done-"):
                v = line[len("m-stream-done-"):]
                self.sent = int(v) if v.isdigit() else None
            elif line == "m-ready":
                break
        self._end()
        if self.sent is not None and self.sent * self.per_frame >= self.samples:
            # the stream had ended on its own before stop% arrived: stop% gets its own reply,
            # e-[No stream running] and m-ready (docs/protocol.md); read it, or drain later
            try:
                c._collect(min(c.timeout, 1.0))
            except (_Timeout, _Reset):
                c._dirty = True
        return self.stats

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _why(e) -> str:
    msg = str(e).strip() or type(e).__name__
    msg = msg.split("\n")[0]
    return msg if len(msg) <= 80 else msg[:77] + "..."


def channel_mask(channels: list[int]) -> str:
    """The hex channel mask of `stream` (bit i = channel i) for channel indices, e.g. [0, 1, 2] -> "7"."""
    chans = [int(c) for c in channels]
    if not chans or any(c < 0 or c > 31 for c in chans):
        raise BoardError(f"channels must be a non-empty list of channel indices 0 to 31, got {list(channels)}")
    return f"{sum(1 << c for c in set(chans)):x}"


def _advice(err: str) -> str:
    if "hex digit" in err:
        return "bytes were lost on the way: check the cable and the baud rate, then load again"
    if "No inference" in err:
        return "run infer first"
    if "Model error" in err or "Invoke failed" in err:
        return "the firmware cannot run its model: rebuild and flash it (edgekit deploy)"
    if "requires" in err or "must be" in err or "Usage" in err:
        return "the command's arguments are wrong; see docs/protocol.md"
    if "Unknown sensor" in err:
        return "the board's firmware has no such sensor; use one its firmware offers"
    if "Invalid rate" in err:
        return "use a rate in the range the board gives"
    if "Invalid channel mask" in err:
        return "ask only for channels the sensor has (edgekit sensors --target T lists them)"
    if "No stream running" in err:
        return "start a stream first"
    return "see docs/protocol.md"
