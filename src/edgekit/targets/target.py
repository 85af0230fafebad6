"""One interface for every board, with a hardware and a simulated backend behind it.

    target, why = select("nano33ble")          # the board if connected, else its simulator
    target.prepare(model)                       # does it fit? (raises with needed/available/short-by)
    target.flash(model)
    outputs = target.infer(int8_inputs)
    report = target.profile(model, runs=10)     # report["mode"] is "measured" or "simulated"

Every command that takes --target goes through select(); --hw and --sim force either backend.
"""
from __future__ import annotations

import numpy as np

from ..errors import EdgekitError
from .board import Board, Connection, detect, load_board


class Target:
    mode = "?"

    def __init__(self, board: Board, connection: Connection | None = None):
        self.board, self.connection = board, connection
        self.model: bytes | None = None

    @property
    def key(self) -> str:
        return self.board.key

    def detect(self) -> Connection | None:
        return detect(self.board)

    def prepare(self, model: bytes) -> dict:
        """The memory plan of `model` on this board; raises EdgekitError if it does not fit."""
        from ..sim.simulate import simulate
        report = simulate(model, self.key)
        if not report["fits"]:
            raise EdgekitError(no_fit_message(self.board, report))
        return report

    def flash(self, model: bytes) -> None:
        raise NotImplementedError

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None) -> dict:
        raise NotImplementedError

    def capture(self, sensor: str, rate_hz: float, seconds: float):
        raise EdgekitError(f"sensor capture on {self.board.name} is not available yet in this edgekit; "
                           "it arrives with the week-4 capture support")


def no_fit_message(board: Board, report: dict) -> str:
    parts = []
    for name, b in report["memory"].items():
        if isinstance(b, dict) and b.get("short_by"):
            parts.append(f"{name} needs {b['needed']:,} B, has {b['available']:,} B, short by {b['short_by']:,} B")
    advice = "; ".join(report["memory"].get("advice", [])) or "use a smaller model"
    return f"the model does not fit {board.name}: {'; '.join(parts)}. To fit: {advice}"


class SimulatedTarget(Target):
    """The board's simulator: memory limits and latency from its descriptor, outputs computed by
    TFLite Micro (microcontrollers; LiteRT where TFLM has no wheel) or LiteRT (the Pi, the Coral)."""
    mode = "simulated"

    def flash(self, model: bytes) -> None:
        self.prepare(model)
        self.model = model

    def _uses_tflm(self) -> tuple[bool, str]:
        if self.board.runtime != "tflm":
            return False, f"{self.board.runtime} on the board: LiteRT computes the same int8 arithmetic"
        from ..runtime.tflm import tflm_available
        ok, why = tflm_available()
        return (True, "TFLite Micro") if ok else (False, f"LiteRT, since {why}")

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Raw outputs (e.g. int8) for raw inputs stacked over samples."""
        if self.model is None:
            raise EdgekitError("nothing is flashed yet: call flash(model) first")
        use_tflm, _ = self._uses_tflm()
        if use_tflm:
            from ..runtime.tflm import run_tflm
            return run_tflm(self.model, [inputs]).outputs
        from ..runtime import litert
        return litert.run(self.model, inputs, raw=True)[0]

    def outputs_by(self) -> str:
        return self._uses_tflm()[1]

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None,
                host_arena: int | None = None) -> dict:
        from ..sim.simulate import simulate
        report = simulate(model, self.key, host_arena=host_arena, duration_s=duration_s, runs=runs)
        report["outputs_by"] = self.outputs_by()
        return report


class HardwareTarget(Target):
    """The board itself. Detection works now; building, flashing and measuring on the board arrive
    with edgekit's firmware (microcontrollers) and the Coral/Pi runner."""
    mode = "measured"

    def _not_yet(self, what: str):
        raise EdgekitError(f"{self.board.name} is connected at {self.connection.device}, but {what} on "
                           "the hardware is not in this edgekit yet (it arrives with the firmware and "
                           "Coral support); add --sim to simulate the board meanwhile")

    def flash(self, model: bytes) -> None:
        self._not_yet("flashing")

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        self._not_yet("inference")

    def profile(self, model: bytes, runs: int = 10, duration_s: float | None = None, **_) -> dict:
        self._not_yet("profiling")


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
