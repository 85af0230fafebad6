"""What every board backend does, whatever the board: simulate the model once, check that it fits,
drive a simulated board over the serial protocol, check its outputs, and profile it.

A subclass per board kind says what differs: how the board itself is flashed and run
(`_flash_board`, `_infer_on_board`, `_profile_on_board`), what it needs before anything runs
(`_prepare`), and what its report adds (`_finish`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..capture.api import stream
from ..errors import EdgekitError
from ..profile_report import ProfileReport
from ..protocol import BoardClient, SimSerial, VirtualBoard
from ..protocol.transport import split_url
from ..protocol.wire import VIRTUAL_FIRMWARE
from ..runtime import litert
from ..runtime.tflm import run_tflm, tflm_available
from ..sim.simulate import simulate
from ..targets import Board, Choice
from ..tflite_file import TFLiteModel
from ..verify import random_inputs

VERIFY_SAMPLES = 4
PROBE_S = 2.0                           # how long a board at a given port may take to say what it runs


class Backend:
    """One board (or its simulator) for one model. See edgekit.backends for the order of calls."""

    accepts = ("int8", "uint8")   # quantization kinds taken as they are (others are converted)

    def __init__(self, board: Board, choice: Choice):
        self.board, self.choice = board, choice
        self.model: TFLiteModel | None = None
        self.host_arena: int | None = None     # TFLite Micro's measured arena, when known
        self.sim_options: dict = {}            # how the simulator is asked (the Coral's link and clock)
        self.sim_runtime = "auto"              # what computes the simulated board's outputs ("litert":
        #                                        when they are known already and only the timing is wanted)
        self.runs, self.duration_s = 10, None
        self.client: BoardClient | None = None
        self.via: str | None = None
        self.progress = lambda message: None
        self._simulation: ProfileReport | None = None

    @property
    def mode(self) -> str:
        return self.choice.mode

    @property
    def why(self) -> str:
        return self.choice.why

    @property
    def key(self) -> str:
        return self.board.key

    # -- the model -------------------------------------------------------------------------
    @classmethod
    def for_remote(cls, model: TFLiteModel) -> TFLiteModel:
        """The model to send to edgekit on another machine (a Pi over ssh) that runs this board."""
        return model

    def load(self, model: TFLiteModel, *, conversion: dict | None = None, runs: int = 10,
             duration_s: float | None = None, progress=lambda m: None, **options) -> None:
        """Take the int8 model this backend runs. conversion: convert()'s info when edgekit just
        made it (its TFLite Micro run gives the arena); options: what the board kind takes
        (the Coral: usb, clock)."""
        self.close()
        self.model, self.runs, self.duration_s, self.progress = model, runs, duration_s, progress
        self._simulation = None
        self._prepare(conversion, progress, **options)

    def _prepare(self, conversion: dict | None, progress, **options) -> None:
        """What the board kind needs before anything runs."""

    @property
    def simulation(self) -> ProfileReport:
        """The simulator's report for the loaded model, made once."""
        if self.model is None:
            raise EdgekitError("no model is loaded yet: call load(model) first")
        if self._simulation is None:
            self._simulation = simulate(self.model, self.board, host_arena=self.host_arena,
                                        duration_s=self.duration_s, runs=self.runs, **self.sim_options)
        return self._simulation

    def use_host_arena(self, arena: int) -> None:
        """TFLite Micro's arena, measured after loading (e.g. on a test set): simulate with it."""
        self.host_arena, self._simulation = int(arena), None

    def check_fit(self) -> None:
        """Raise EdgekitError (needed / available / short by, and what would fit) if it does not fit."""
        if not self.simulation.fits:
            raise EdgekitError(self.simulation.no_fit_message())

    # -- the board -------------------------------------------------------------------------
    def flash(self) -> None:
        """Put the model on the board (or start its simulator with it)."""
        self.check_fit()
        self.close()
        if self.choice.simulated:
            self._connect_simulator()
        elif self.choice.emulated:
            self._emulate()
        else:
            self._flash_board()

    def _emulate(self) -> None:
        raise EdgekitError(f"{self.board.name} cannot be emulated; use --sim to simulate it")

    def _connect_simulator(self) -> None:
        """The simulator as a virtual board behind the same protocol client as a real board."""
        faults = None
        if self.choice.port:  # sim://<key>?<options>: the simulator, with any faults injected
            faults = split_url(self.choice.port)[2]
        board = VirtualBoard(self.board, self.model, simulation=self.simulation, runtime=self.sim_runtime)
        self.client = BoardClient(SimSerial.attached(board, faults))
        self.via = f"sim://{self.key}"

    def _flash_board(self) -> None:
        raise NotImplementedError

    def _connect(self, port: str, client: BoardClient | None = None) -> None:
        """Talk to the board at `port` (through `client`, when open already) and check that it runs this model."""
        self.client = client or BoardClient(port)
        self.via = port
        info = self.client.info()
        want = self.model.sha256
        if info.get("model_sha256") not in (None, want):
            raise EdgekitError(f"{self.board.name} at {port.split('?')[0]} runs another model (sha256 "
                               f"{info.get('model_sha256', '?')[:12]}…, expected {want[:12]}…); flash it again")
        if str(info.get("firmware", "")).startswith(VIRTUAL_FIRMWARE):
            # a virtual board behind a real port (`edgekit board serve`): its figures are simulated
            self.choice = dataclasses.replace(self.choice, mode="simulated",
                                              why=f"{self.choice.why.split(':')[0]}: simulated by the virtual board "
                                                  f"at {port.split('?')[0]}")

    def _board_info(self, port: str) -> dict | None:
        """What the board at `port` says it runs (info%), or None: no board, another sketch, or a
        board in its bootloader."""
        try:
            probe = BoardClient(port, timeout=PROBE_S, retries=0)
        except EdgekitError:
            return None
        try:
            return probe.info()
        except EdgekitError:
            return None
        finally:
            probe.close()

    def _runs_this_model(self, port: str) -> bool:
        """Whether the board at `port` already runs edgekit's firmware with this model (then nothing
        needs building or flashing); connected when it does."""
        same = (self._board_info(port) or {}).get("model_sha256") == self.model.sha256
        if same:
            self._connect(port)
        return same

    def infer(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Raw outputs (e.g. int8) for raw inputs stacked over samples."""
        if self.client is None and self.choice.simulated:
            raise EdgekitError("nothing is flashed yet: call flash() first")
        if self.client is None:
            return self._infer_on_board(inputs)
        shape, dtype = self.model.outputs[0]
        outs = []
        for x in inputs:
            self.client.load(np.ascontiguousarray(x).tobytes())
            self.client.infer(1, 0)
            outs.append(np.array(self.client.raw(), dtype).reshape(shape[1:]))
        return [np.stack(outs)]

    def _infer_on_board(self, inputs: np.ndarray) -> list[np.ndarray]:
        raise EdgekitError("nothing is flashed yet: call flash() first")

    @property
    def verify_samples(self) -> int:
        """How many inputs verify_outputs() sends (each is a load over the board's serial link)."""
        return VERIFY_SAMPLES

    def verify_outputs(self) -> dict:
        """The board's outputs on a few inputs against the host reference: TFLite Micro for a board that
        runs it (when installed), else LiteRT (the Pi's runtime; TFLM refuses e.g. uint8 models)."""
        x = random_inputs(self.model)[:self.verify_samples]
        got = self.infer(x)
        if self.board.runtime == "tflm" and tflm_available()[0]:
            want, ref = run_tflm(self.model, [x]).outputs, "TFLite Micro on this machine"
        else:
            want, ref = litert.run(self.model, x, raw=True)[0], "LiteRT on this machine"
        diffs = [int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max()) for a, b in zip(got, want)]
        if max(diffs) > 1:
            raise EdgekitError(f"the board's output {int(np.argmax(diffs))} differs from {ref} by up to "
                               f"{max(diffs)} steps on the same input; the firmware and the model disagree: "
                               "rebuild and flash again")
        return {"samples": len(x), "max_lsb": max(diffs), "reference": ref}

    def profile(self) -> ProfileReport:
        """The simulator's report with what the board measured: latency from the board's own lap
        timestamps over `runs` inferences (after one warm-up), per-layer times where it has them."""
        if self.client is None:
            self.flash()
        if self.client is None:  # the board runs the model in this process (a Raspberry Pi)
            return self._finish(self._profile_on_board())
        self.client.load(random_inputs(self.model)[0].tobytes())
        timed = self.client.infer(self.runs, 1)
        report = self.simulation.copy()
        report.mode, report.via = self.mode, self.via
        report.board_info = self.client.info()
        self._take_timing(report, timed["latency_us"], {i: us for i, _, us in self.client.layers()})
        report.energy_mj = self.board.num("power.active_w") * report.latency_ms
        if self.choice.simulated:
            report.outputs_by = self.outputs_by()
        return self._finish(report)

    def _take_timing(self, report: ProfileReport, latency_us: float, layer_us: dict[int, int]) -> None:
        """The board's own timing: its lap timestamps over the timed runs, and per layer where it
        times them (a simulated board's are the simulator's)."""
        if not report.thermal and not self.sim_options:
            report.latency_ms = report.latency_ms_p90 = latency_us / 1e3
        for i, layer in enumerate(report.layers):
            if i in layer_us:
                layer["board_us"] = layer_us[i]

    def _profile_on_board(self) -> ProfileReport:
        raise NotImplementedError

    def _finish(self, report: ProfileReport) -> ProfileReport:
        """What the board kind adds to a report."""
        return report

    def outputs_by(self) -> str:
        """What computes a simulated board's outputs."""
        if self.board.runtime != "tflm":
            return f"LiteRT on this machine (the board runs {self.board.runtime}: the same int8 arithmetic)"
        ok, why = tflm_available()
        return "TFLite Micro" if ok else f"LiteRT, since {why}"

    def capture(self, sensor: str, rate_hz: float | None, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """`seconds` of a sensor: (t_us (n,), values (n, channels) in physical units), frames that
        failed their CRC left out. Recording to files, with the loss accounting, is edgekit.capture."""
        if not self.board.sensors:
            raise EdgekitError(f"{self.board.name} has no sensors edgekit streams; capture from nano33ble or esp32s3")
        how = {"force": "sim"} if self.choice.simulated and not self.choice.port else \
            {"port": self.choice.port or self.choice.connection.device}
        frames = list(stream(self.key, sensor, rate=rate_hz, seconds=seconds, **how))
        if not frames:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float64)
        return np.concatenate([f.t_us for f in frames]), np.concatenate([f.values for f in frames])

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
