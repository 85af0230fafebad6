"""Virtual boards behind serial ports: a pyserial URL handler (sim://) and a real pseudo-terminal.

    import edgekit.protocol, serial
    port = serial.serial_for_url("sim://nano33ble?model=out/m_int8.tflite", timeout=1)
    port.write(b"name%"); port.read_until(b"m-ready\\r\\n")

URL: sim://<target>[?options], options (query parameters):
  model=<path>     the .tflite the board runs (else the C++ host harness's stand-in model)
  stand_in=1       the stand-in model (and fake clock) of the C++ host harness
  seed=<N>         seeds the fault injection and the simulated sensor signals
  tag=<text>       the model tag profile% prints (default "edgekit", as the firmware)
  label=<text>     what the simulated sensors show (imu: idle, wave, punch, circle; microphone: a
                   word-like burst whose spectrum depends on the label), edgekit.sim.sensors
  revision=<Rev>   the board revision whose sensors to simulate (nano33ble: Rev1 or Rev2)
  recording=<N>    number of the first recording (each stream is a new one with its own variation)
  and the faults of protocol/faults.py: drop, corrupt, garbage, split, lose_ready, corrupt_dbx,
  corrupt_in, reset_after, vanish_after, unplug_frames, banner, realtime.

pyserial finds the handler as edgekit.protocol.protocol_sim (importing edgekit.protocol registers the
package in serial.protocol_handler_packages).

serve_pty(board) serves a VirtualBoard on a real pseudo-terminal (any serial program can open the
path it returns); `edgekit board serve --target nano33ble [--model m.tflite]` does that from the shell.
serve_rfc2217(board) serves it over TCP as an RFC 2217 port (rfc2217://host:port, which pyserial and
so BoardClient and `edgekit capture --port` open like a local port): `edgekit board serve --rfc2217 PORT`.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
import tty
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from serial.rfc2217 import PortManager
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from ..errors import EdgekitError
from .faults import Faults, Link, Vanished
from .virtual import VirtualBoard

BOARD_OPTIONS = ("model", "stand_in", "tag", "label", "revision", "recording")
READ_GONE = "device reports readiness to read but returned no data (device disconnected or multiple access on port?)"
WRITE_GONE = "write failed: [Errno 5] Input/output error"


def split_url(url: str) -> tuple[str, dict[str, str], Faults]:
    """(target, board options, Faults) of a sim:// URL: the query's BOARD_OPTIONS go to the board,
    the rest are fault options."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sim" or not parts.netloc:
        raise EdgekitError(f"'{url}' is not a virtual board URL; write sim://<target>?model=<path>, "
                           "e.g. sim://nano33ble?model=m_int8.tflite")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    board_opts = {k: options.pop(k) for k in BOARD_OPTIONS if k in options}
    return parts.netloc, board_opts, Faults.from_options(options)


def board_from_url(url: str) -> tuple[VirtualBoard, Faults]:
    """The VirtualBoard and Faults a sim:// URL describes."""
    target, board_opts, faults = split_url(url)
    model = None
    if board_opts.get("model"):
        path = Path(board_opts["model"]).expanduser()
        try:
            model = path.read_bytes()
        except OSError as e:
            raise EdgekitError(f"cannot read the model {path} for {url.split('?')[0]} ({e.strerror}); "
                               "check the model= path") from None
    stand_in = board_opts.get("stand_in", "").lower() in ("1", "true", "yes", "on")
    if stand_in and model is not None:
        raise EdgekitError(f"{url.split('?')[0]}: give model= or stand_in=1, not both")
    recording = board_opts.get("recording", "0")
    if not recording.isdigit():
        raise EdgekitError(f"{url.split('?')[0]}: recording={recording!r} must be a whole number, e.g. recording=3")
    board = VirtualBoard(target, model, stand_in=stand_in, seed=faults.seed,
                         model_tag=board_opts.get("tag") or None, label=board_opts.get("label") or None,
                         revision=board_opts.get("revision") or None, recording=int(recording))
    return board, faults


class SimSerial(SerialBase):
    """A serial port (pyserial API) with a VirtualBoard on the other end. No threads: the board
    answers inside write(), and timed reply pieces (split=1) are released by read()."""

    BAUDRATES = SerialBase.BAUDRATES

    def __init__(self, *args, **kwargs):
        self.board: VirtualBoard | None = None
        self.link: Link | None = None
        self._rx = bytearray()
        self._owns_board = True
        super().__init__(*args, **kwargs)

    @classmethod
    def attached(cls, board: VirtualBoard, faults: Faults | None = None, timeout: float | None = None) -> SimSerial:
        """An open port (named sim://<key>) in front of a VirtualBoard the caller already built, e.g.
        BoardClient(SimSerial.attached(vb)). Closing the port leaves the board to its owner."""
        port = cls(timeout=timeout)
        port._port = f"sim://{board.key}"
        port.board, port.link, port._owns_board = board, Link(board, faults or Faults()), False
        port.is_open = True
        return port

    def open(self):
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.board, faults = board_from_url(self._port)
        self.link = Link(self.board, faults)
        self._rx = bytearray()
        self.is_open = True

    def close(self):
        if self.is_open:
            self.is_open = False
            if self.board is not None and self._owns_board:
                self.board.close()
        super().close()

    def _reconfigure_port(self):
        pass

    def _update_dtr_state(self):
        pass

    def _update_rts_state(self):
        pass

    def _update_break_state(self):
        pass

    def _pump(self) -> None:
        self._rx += self.link.take()
        if not self._rx and self.link.gone and self.link.idle:
            raise SerialException(READ_GONE)

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        self._pump()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        timeout = self._timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pump()
            if len(self._rx) >= size:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            nxt = self.link.next_event()
            wait = 0.05 if nxt is None else max(nxt - now, 0.0)
            if deadline is not None:
                wait = min(wait, deadline - now)
            if wait > 0:
                time.sleep(wait)
        data = bytes(self._rx[:size])
        del self._rx[:size]
        return data

    def write(self, data) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        data = bytes(data)
        try:
            self.link.write(data)
        except Vanished:
            raise SerialException(WRITE_GONE) from None
        return len(data)

    def flush(self):
        pass  # nothing is buffered on the way out (io's close() calls this after is_open is False)

    def reset_input_buffer(self):
        if not self.is_open:
            raise PortNotOpenError()
        self._rx += self.link.take(more=False)
        self._rx.clear()

    def reset_output_buffer(self):
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def out_waiting(self) -> int:
        return 0

    @property
    def cts(self):
        return True

    @property
    def dsr(self):
        return True

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        return True


# ---------------------------------------------------------------------------------------------
# A real pseudo-terminal
# ---------------------------------------------------------------------------------------------

def serve_pty(board: VirtualBoard, faults: Faults | None = None) -> tuple[str, callable]:
    """Serve `board` on a new pseudo-terminal in raw mode. Returns (slave path, stop).

    A thread moves bytes between the pty's master side and the board. stop() ends the thread and
    closes the pty (a host that still has it open then sees the port disappear); it is idempotent.
    With faults.vanish_after the pty is closed by itself after that many commands.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    link = Link(board, faults or Faults())
    wake_r, wake_w = os.pipe()
    done = threading.Event()
    lock = threading.Lock()
    closed = []

    def close_fds():
        with lock:
            if closed:
                return
            closed.append(True)
            for fd in (master, slave, wake_r, wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def loop():
        out = bytearray()
        try:
            while not done.is_set():
                out += link.take(more=len(out) < 4096)
                if link.gone and link.idle and not out:
                    break  # vanish: the pty closes
                nxt = link.next_event()
                timeout = 0.05 if nxt is None else max(0.0, min(0.05, nxt - time.monotonic()))
                r, w, _ = select.select([master, wake_r], [master] if out else [], [], timeout)
                if wake_r in r:
                    break
                if master in r:
                    try:
                        data = os.read(master, 4096)
                    except OSError:  # EIO: no process has the slave open (ours keeps it open)
                        data = b""
                    if data:
                        try:
                            link.write(data)
                        except Vanished:
                            pass
                if master in w and out:
                    try:
                        n = os.write(master, bytes(out[:4096]))
                        del out[:n]
                    except BlockingIOError:
                        pass
        finally:
            close_fds()

    thread = threading.Thread(target=loop, name=f"edgekit-pty-{board.key}", daemon=True)
    thread.start()

    def stop():
        done.set()
        with lock:
            if not closed:
                try:
                    os.write(wake_w, b"x")
                except OSError:
                    pass
        thread.join(timeout=2)
        close_fds()

    return path, stop


# ---------------------------------------------------------------------------------------------
# RFC 2217 over TCP
# ---------------------------------------------------------------------------------------------

class _Connection:
    """What PortManager writes its Telnet replies to: the client's socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)


def serve_rfc2217(board: VirtualBoard, faults: Faults | None = None, host: str = "127.0.0.1",
                  port: int = 0) -> tuple[str, callable]:
    """Serve `board` as an RFC 2217 serial port on host:port (0: a free port), one client at a
    time. Returns (its rfc2217://host:port URL, stop); stop() is idempotent.

    One thread accepts a client, then moves bytes between its socket (through pyserial's
    PortManager, which answers the Telnet/RFC 2217 negotiation and the baud rate, modem line and
    purge requests) and an attached SimSerial. The board and its faults outlive a client, as a real
    board outlives a host that closes its port."""
    try:
        server = socket.create_server((host, port))
    except OSError as e:
        raise EdgekitError(f"cannot listen on {host}:{port} ({e.strerror}); pick another port, or 0 for a free one") from None
    server.listen(1)
    url = f"rfc2217://{host}:{server.getsockname()[1]}"
    ser = SimSerial.attached(board, faults, timeout=0)
    wake_r, wake_w = os.pipe()
    done = threading.Event()

    def serve_client(conn: socket.socket) -> None:
        manager = PortManager(ser, _Connection(conn))
        while not done.is_set():
            nxt = ser.link.next_event()
            timeout = 0.05 if nxt is None else max(0.0, min(0.05, nxt - time.monotonic()))
            r, _, _ = select.select([conn, wake_r], [], [], timeout)
            if wake_r in r:
                return
            if conn in r:
                data = conn.recv(4096)
                if not data:
                    return  # the client closed the port
                ser.write(b"".join(manager.filter(data)))
            out = ser.read(ser.in_waiting)
            if out:
                conn.sendall(b"".join(manager.escape(out)))

    def loop() -> None:
        try:
            while not done.is_set():
                r, _, _ = select.select([server, wake_r], [], [])
                if wake_r in r:
                    break
                conn, _ = server.accept()
                with conn:
                    try:
                        serve_client(conn)
                    except SerialException:
                        break  # the board vanished (a fault): its port is gone for good
                    except OSError:
                        pass  # the client went away mid-reply; wait for the next one
        finally:
            server.close()

    thread = threading.Thread(target=loop, name=f"edgekit-rfc2217-{board.key}", daemon=True)
    thread.start()

    def stop() -> None:
        if not done.is_set():
            done.set()
            os.write(wake_w, b"x")
            thread.join(timeout=2)
            os.close(wake_r)
            os.close(wake_w)

    return url, stop


# ---------------------------------------------------------------------------------------------
# edgekit board serve
# ---------------------------------------------------------------------------------------------

def run_board(args) -> int:
    if args.board_command == "serve":
        return run_serve(args)
    raise EdgekitError(f"unknown board command '{args.board_command}'; try: edgekit board serve --help")


def run_serve(args) -> int:
    """`edgekit board serve`: prints the device path (or rfc2217:// URL), serves until Ctrl-C or
    SIGTERM (exit 0)."""
    model = None
    if getattr(args, "model", None):
        try:
            model = Path(args.model).read_bytes()
        except OSError as e:
            raise EdgekitError(f"cannot read {args.model} ({e.strerror}); check the path") from None
        if args.stand_in:
            raise EdgekitError("give --model or --stand-in, not both")
    faults = Faults.from_options(dict(parse_qsl(getattr(args, "faults", "") or "", keep_blank_values=True)))
    board = VirtualBoard(args.target, model, stand_in=model is None, seed=faults.seed,
                         label=getattr(args, "label", None), revision=getattr(args, "revision", None))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old, stop = None, None
    if threading.current_thread() is threading.main_thread():  # before the path is printed: a caller may
        old = signal.signal(signal.SIGTERM, on_term)           # stop us the moment it reads it
    try:
        if getattr(args, "rfc2217", None) is not None:
            path, stop = serve_rfc2217(board, faults, args.host, args.rfc2217)
        else:
            path, stop = serve_pty(board, faults)
        what = "the stand-in model" if board.stand_in else f"{Path(args.model).name} (sha256 {board.model.sha256[:12]}...)"
        print(path, flush=True)
        print(f"serving a virtual {board.key} running {what} on {path}; Ctrl-C to stop", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if stop is not None:
            stop()
        board.close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    print("stopped", file=sys.stderr, flush=True)
    return 0
