"""A microcontroller (Nano 33 BLE Sense, XIAO ESP32S3, STM32L4R5): TFLite Micro firmware built
around the model, flashed with arduino-cli (and esptool), and driven over its serial port."""
from __future__ import annotations

from pathlib import Path

from ..errors import EdgekitError
from ..runtime.tflm import run_tflm, tflm_available
from ..sketch.build import build_and_flash
from ..sketch.generate import generate_project
from ..verify import random_inputs
from .base import Backend

BUILD_DIR = Path("edgekit-build")


class Microcontroller(Backend):

    def _prepare(self, conversion: dict | None, progress, measure_arena: bool = True, **options) -> None:
        """measure_arena: run TFLite Micro here once for its exact arena (else the planner's, unless
        conversion already measured it)."""
        self.host_arena = host_arena(self.model, conversion if measure_arena else None, measure_arena)

    def _flash_board(self) -> None:
        port = self.choice.port or self.choice.connection.device
        if self._runs_this_model(port):
            return  # flashed with this model already: no build
        if "://" in port:
            raise EdgekitError(f"the board at {port.split('?')[0]} does not run this model and cannot be flashed "
                               "over the network: deploy it on the machine the board is plugged into, then "
                               "run this again")
        out = BUILD_DIR / f"{self.key}_{self.model.sha256[:8]}"
        project = generate_project(self.model, self.board, out, self.host_arena)
        result = build_and_flash(project, self.key, port=port)
        self._connect(result.port)


def host_arena(model, conversion: dict | None, measure: bool = True) -> int | None:
    """TFLite Micro's measured arena on this machine, if TFLM runs here (None: the planner's)."""
    if conversion and conversion.get("tflm", {}).get("ran"):
        return conversion["tflm"]["arena_bytes"]
    if not measure or not tflm_available()[0] or model.quantization != "int8":
        return None
    try:
        return run_tflm(model, [random_inputs(model)[:1]]).arena_bytes
    except EdgekitError:
        return None  # the planner still gives the arena; TFLM's refusal shows up at deploy
