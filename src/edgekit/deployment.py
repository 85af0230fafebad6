"""deploy and profile: a model onto a board (or its simulator), with the same code path.

deploy  = convert if needed -> does it fit? -> flash -> check the board's outputs against TFLite
          Micro on this machine -> profile.
profile = the same without the output check.
The board and the model are resolved here, once, and handed down: the backend (edgekit.backends)
simulates the model once and every later step reuses that.
"""
from __future__ import annotations

from pathlib import Path

from .backends import BACKENDS, Backend, open_backend
from .convert import Converted, convert
from .errors import EdgekitError
from .importers import read_file
from .profile_report import ProfileReport
from .targets import Board, load_board
from .tflite_check import check_memory
from .tflite_file import TFLiteModel, model_of


def int8_model(model, board: Board, calibration=None, example_input=None,
               progress=lambda m: None) -> tuple[TFLiteModel, dict | None]:
    """The int8 model for `model` on `board`: as is when already of a kind the board's backend takes
    (the Coral also takes "mixed", to judge op by op), else converted for the board (needs calibration)."""
    if isinstance(model, TFLiteModel):
        return model, None
    if isinstance(model, Converted):
        return TFLiteModel(model.tflite, model.source.name or "model"), model.info
    if isinstance(model, (bytes, bytearray)):
        return model_of(model), None
    if isinstance(model, (str, Path)) and Path(model).suffix == ".tflite":
        path = Path(model)
        parsed = TFLiteModel(read_file(path), path.stem)
        if parsed.quantization in BACKENDS[board.kind].accepts:
            check_memory(parsed.parsed, path.name)  # before a board, its simulator or LiteRT allocates
            return parsed, None
    if calibration is None:
        raise EdgekitError("this model is not int8 yet: give calibration inputs (--calib calib.npy) so "
                           "edgekit can convert it, or run `edgekit convert` first")
    progress("converting to int8")
    q = convert(model, example_input=example_input, calibration=calibration, progress=progress,
                per_tensor_dense=board.per_tensor_dense)
    name = Path(model).stem if isinstance(model, (str, Path)) else "model"
    return TFLiteModel(q.tflite, name), q.info


def _start(model, target, force, port, calibration, example_input, progress, runs, duration_s,
           options) -> tuple[Backend, bool]:
    """The backend for `target`, loaded with the int8 model; and whether edgekit converted it."""
    board = load_board(target)  # a model refused for its size is refused before any board is looked for
    tflite, conversion = int8_model(model, board, calibration, example_input, progress=progress)
    backend = open_backend(board, force, port)
    progress(backend.why)
    backend.load(tflite, conversion=conversion, runs=runs, duration_s=duration_s, progress=progress, **options)
    return backend, conversion is not None


def profile(model, target: str, runs: int = 10, force: str | None = None, duration_s: float | None = None,
            calibration=None, example_input=None, progress=lambda m: None, port: str | None = None,
            **options) -> ProfileReport:
    """Profile `model` (an int8 .tflite, or anything convert() takes plus calibration) on `target`.
    options: what the board kind takes (the Coral: usb=2|3, clock="std"|"max")."""
    backend, _ = _start(model, target, force, port, calibration, example_input, progress, runs, duration_s,
                        options)
    with backend:
        report = backend.profile()
    report.selected = backend.why
    return report


def deploy(model, target: str, runs: int = 10, force: str | None = None, calibration=None,
           example_input=None, progress=lambda m: None, port: str | None = None, **options) -> ProfileReport:
    """Deploy `model` to `target` (the board, or its simulator) and profile it there."""
    backend, converted = _start(model, target, force, port, calibration, example_input, progress, runs, None,
                                options)
    with backend:
        progress("checking memory")
        backend.check_fit()
        progress("flashing")
        backend.flash()
        progress("checking the board's outputs against TFLite Micro on this machine")
        check = backend.verify_outputs()
        progress("profiling")
        report = backend.profile()
    report.selected, report.outputs_check, report.converted = backend.why, check, converted
    return report
