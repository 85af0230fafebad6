"""One interface for every board, with a hardware and a simulated backend behind it.

    target, why = select("nano33ble")          # the board if connected, else its simulator
    target.prepare(model)                       # does it fit? (raises with needed/available/short-by)
    target.flash(model)
    outputs = target.infer(int8_inputs)
    report = target.profile(model, runs=10)     # report["mode"] is "measured" or "simulated"

Every command that takes --target goes through select(); --hw and --sim force either backend.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from . import Board, Connection, detect, load_board


class Target:
    mode = "?"

    def __init__(self, board: Board, connection: Connection | None = None):
        self.board, self.connection = board, connection
        self.model: bytes | None = None
        self.options: dict = {}  # the Coral's usb (2, 3), clock ("std", "max") and partition

    @property
    def key(self) -> str:
        return self.board.key

    def detect(self) -> Connection | None:
        return detect(self.board)

    def prepare(self, model: bytes) -> dict:
        """The memory plan of `model` on this board; raises EdgekitError if it does not fit."""
        from ..sim.simulate import simulate
        if self.board.kind == "accelerator":
            return {}  # the Edge TPU streams what its cache cannot hold; edgetpu.plan did the checks
        report = simulate(model, self.key)
        if not report["fits"]:
            raise EdgekitError(no_fit_message(self.board, report))
        return report

    def flash(self, model: bytes) -> None:
        raise NotImplementedError

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None,
                host_arena: int | None = None) -> dict:
        raise NotImplementedError

    def capture(self, sensor: str, rate_hz: float | None, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """`seconds` of a sensor: (t_us (n,), values (n, channels) in physical units), frames that
        failed their CRC left out. Recording to files, with the loss accounting, is edgekit.capture."""
        from ..capture.api import stream
        if self.board.kind != "mcu":
            raise EdgekitError(f"{self.board.name} has no sensors edgekit streams; capture from nano33ble or esp32s3")
        how = {"force": "sim"} if self.mode == "simulated" else {"port": self.connection.device}
        frames = list(stream(self.key, sensor, rate=rate_hz, seconds=seconds, **how))
        if not frames:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float64)
        return np.concatenate([f.t_us for f in frames]), np.concatenate([f.values for f in frames])


def no_fit_message(board: Board, report: dict) -> str:
    parts = []
    for name, b in report["memory"].items():
        if isinstance(b, dict) and b.get("short_by"):
            parts.append(f"{name} needs {b['needed']:,} B, has {b['available']:,} B, short by {b['short_by']:,} B")
    advice = "; ".join(report["memory"].get("advice", [])) or "use a smaller model"
    return f"the model does not fit {board.name}: {'; '.join(parts)}. To fit: {advice}"


class _SerialTarget(Target):
    """A board behind the serial protocol: the same client code for a real port and a virtual board."""

    client = None

    def _connect(self, model: bytes) -> None:
        raise NotImplementedError

    def flash(self, model: bytes) -> None:
        self.prepare(model)
        self.close()
        self._connect(model)
        self.model = model
        info = self.client.info()
        want = hashlib.sha256(model).hexdigest()
        if info.get("model-sha256") not in (None, want):
            raise EdgekitError(f"{self.board.name} runs another model (sha256 {info.get('model-sha256', '?')[:12]}…, "
                               f"expected {want[:12]}…); flash it again")

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Raw outputs (e.g. int8) for raw inputs stacked over samples, one `db load` + `infer` each."""
        if self.client is None:
            raise EdgekitError("nothing is flashed yet: call flash(model) first")
        shape, dtype = _output_spec(self.model)
        outs = []
        for x in inputs:
            self.client.load(np.ascontiguousarray(x).tobytes())
            self.client.infer(1, 0)
            outs.append(np.array(self.client.raw(), dtype).reshape(shape[1:]))
        return [np.stack(outs)]

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None,
                host_arena: int | None = None) -> dict:
        """Latency from the board's own lap timestamps over `runs` inferences (after one warm-up)."""
        from ..sim.simulate import simulate
        if self.model != model:
            self.flash(model)
        x = _random_inputs_for(model)
        self.client.load(x.tobytes())
        timed = self.client.infer(runs, 1)
        report = simulate(model, self.key, host_arena=host_arena, duration_s=duration_s, runs=runs,
                          **self.options)
        report["mode"] = self.mode
        report["via"] = self.via
        if not report.get("thermal") and not self.options:
            report["latency_ms"] = report["latency_ms_p90"] = timed["latency_us"] / 1e3
        report["energy_mj"] = self.board.num("power.active_w") * report["latency_ms"]
        on_board = {op_index: us for op_index, _, us in self.client.layers()}
        for i, layer in enumerate(report["layers"]):
            if i in on_board:
                layer["board_us"] = on_board[i]
        report["board_info"] = self.client.info()
        return report

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class SimulatedTarget(_SerialTarget):
    """The board's simulator, reached as a virtual board (sim://<key>) through the same protocol
    client as a real board: memory limits and latency from the board's descriptor, outputs computed
    by TFLite Micro (microcontrollers; LiteRT where TFLM has no wheel) or LiteRT (the Pi, the Coral)."""
    mode = "simulated"

    def _connect(self, model: bytes) -> None:
        from ..protocol import BoardClient
        self._dir = tempfile.TemporaryDirectory(prefix="edgekit-sim-")
        path = Path(self._dir.name) / "model.tflite"
        path.write_bytes(model)
        self.via = f"sim://{self.key}"
        self.client = BoardClient(f"sim://{self.key}?model={path}")

    def _uses_tflm(self) -> tuple[bool, str]:
        if self.board.runtime != "tflm":
            return False, f"LiteRT on this machine (the board runs {self.board.runtime}: the same int8 arithmetic)"
        from ..runtime.tflm import tflm_available
        ok, why = tflm_available()
        return (True, "TFLite Micro") if ok else (False, f"LiteRT, since {why}")

    def outputs_by(self) -> str:
        return self._uses_tflm()[1]

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None,
                host_arena: int | None = None) -> dict:
        report = super().profile(model, runs, duration_s, host_arena)
        report["outputs_by"] = self.outputs_by()
        return report


class HardwareTarget(_SerialTarget):
    """The board itself: microcontrollers get edgekit's firmware built around the model (arduino-cli,
    esptool) and are driven over their serial port; on a Raspberry Pi (with or without the Coral)
    edgekit runs the model in this process (edgekit.pi)."""
    mode = "measured"

    def _on_host(self) -> bool:
        return self.board.kind in ("linux", "accelerator")

    def flash(self, model: bytes) -> None:
        if not self._on_host():
            return super().flash(model)
        self.prepare(model)
        self.model = model  # nothing to flash: the Pi runs it in this process

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        if not self._on_host():
            return super().infer(inputs)
        if self.model is None:
            raise EdgekitError("nothing is flashed yet: call flash(model) first")
        from ..pi import infer
        return infer(self.model, inputs, accelerator=self.board.kind == "accelerator", usb=self.connection)

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None,
                host_arena: int | None = None) -> dict:
        if not self._on_host():
            return super().profile(model, runs, duration_s, host_arena)
        from ..pi import profile_on_board
        return profile_on_board(model, self.key, runs=runs, connection=self.connection, duration_s=duration_s)

    def _connect(self, model: bytes) -> None:
        from ..protocol import BoardClient
        if self.board.kind != "mcu":  # the Pi and the Coral run the model in this process (edgekit.pi)
            raise EdgekitError(f"{self.board.name} has no serial firmware: its models run in this process")
        from ..sketch.build import build_and_flash
        from ..sketch.generate import generate_project
        out = Path("edgekit-build") / f"{self.key}_{hashlib.sha256(model).hexdigest()[:8]}"
        project = generate_project(model, self.key, out)
        result = build_and_flash(project, self.key, port=self.connection.device)
        self.via = result.port
        self.client = BoardClient(result.port)


def _output_spec(model: bytes) -> tuple[tuple[int, ...], type]:
    from ..tflite_file import NUMPY_TYPES, read_model, tensor_type_name
    m = read_model(model)
    sub = m.subgraphs[0]
    t = sub.tensors[sub.outputs[0]]
    return tuple(int(d) for d in t.shape), NUMPY_TYPES[tensor_type_name(t.type)]


def _random_inputs_for(model: bytes) -> np.ndarray:
    from ..verify import random_inputs
    return random_inputs(model)[0]


def select(key: str, force: str | None = None, connection: Connection | None = None) -> tuple[Target, str]:
    """The target for `key`: the board when connected (or force="hw"), else its simulator.

    Returns the target and one line saying which was chosen and why, for the user.
    """
    board = load_board(key)
    if force not in (None, "hw", "sim"):
        raise ValueError(force)
    if force == "sim":
        return SimulatedTarget(board), f"{board.key}: simulated (--sim)"
    conn = connection or detect(board)
    if conn is None:
        if force == "hw":
            ids = ", ".join(f"{u.vid}:{u.pid}" for u in board.usb) or "this machine's model"
            raise EdgekitError(f"--hw: no {board.name} is connected (looked for {ids}); plug it in, "
                               "or leave out --hw to simulate it")
        return SimulatedTarget(board), f"{board.key}: simulated (no board connected)"
    return HardwareTarget(board, conn), f"{board.key}: measured on the board at {conn.label()}"
