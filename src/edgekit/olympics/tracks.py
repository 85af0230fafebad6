"""A track is one TOML file: the task, its data, the metric, the limits per board and the score weights.

    track = load_track("demo")            # ./tracks/demo.toml, else the tracks shipped with edgekit
    track = load_track("tracks/kws.toml") # or a path
    x, y = track.test_set()               # read with np.load(allow_pickle=False) and a size limit

See tracks/demo.toml for every key, and docs/olympics.md for how staff set up a new track.
Paths inside a track are relative to the TOML file, so a track folder can be copied as a whole.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..errors import EdgekitError
from ..targets import board_keys

SHIPPED = Path(__file__).parent / "tracks"
METRICS = ("accuracy", "auc")
WEIGHT_KEYS = ("accuracy", "speed", "size", "energy")
DEFAULT_WEIGHTS = {"accuracy": 0.4, "speed": 0.2, "size": 0.2, "energy": 0.2}
CONSTRAINT_KEYS = ("latency_ms", "flash_bytes", "ram_bytes")
MAX_TOML_BYTES = 64 * 1024
# Child-process limits per submission x board; a track can change them under [limits].
DEFAULT_LIMITS = {"seconds": 120, "memory_mb": 1024, "model_mb": 64, "data_mb": 512}


@dataclass
class Track:
    name: str
    title: str
    task: str
    metric: str                      # "accuracy" (top-1) or "auc" (anomaly detection: y is 0 or 1)
    input_shape: tuple[int, ...]     # one sample, without the batch axis, in the data's layout
    classes: int                     # outputs per sample: the class count, 1 for "auc"
    layout: str                      # "NHWC" or "NCHW" for 4-D data (TinyTorch and ONNX models use NCHW)
    test_path: Path
    calibration_path: Path
    weights: dict[str, float]
    boards: dict[str, dict]          # target -> {latency_ms, flash_bytes, ram_bytes} (each optional)
    limits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    test_limit: int | None = None    # evaluate only the first N test samples (quick runs, tests)
    path: Path | None = None
    emulate: bool = False            # score the boards edgekit can emulate on their emulated Cortex-M4

    @property
    def model_input_shape(self) -> tuple[int, ...]:
        """The int8 model's input per sample: edgekit's int8 models are NHWC."""
        s = self.input_shape
        return (s[1], s[2], s[0]) if self.layout == "NCHW" and len(s) == 3 else s

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = _load_xy(self.test_path, "test set", self.limits["data_mb"], need_y=True)
        self._check_x(x, self.test_path)
        if len(y) != len(x):
            raise EdgekitError(f"test set {self.test_path.name}: x has {len(x)} samples but y has {len(y)}; "
                               "give one label per sample")
        if self.metric == "auc" and not np.isin(y, (0, 1)).all():
            raise EdgekitError(f"test set {self.test_path.name}: an AUC track needs labels 0 (normal) and 1 "
                               "(anomaly) in y")
        if self.metric == "accuracy" and (y.min() < 0 or y.max() >= self.classes):
            raise EdgekitError(f"test set {self.test_path.name}: labels must be 0..{self.classes - 1} for "
                               f"{self.classes} classes, found {int(y.min())}..{int(y.max())}")
        if self.test_limit:
            x, y = x[:self.test_limit], y[:self.test_limit]
        return x, y

    def calibration_set(self) -> np.ndarray:
        x, _ = _load_xy(self.calibration_path, "calibration set", self.limits["data_mb"], need_y=False)
        self._check_x(x, self.calibration_path)
        return x

    def test_sha256(self) -> str:
        """The test set's file hash: every result records it, so results on different test sets never mix."""
        return sha256_file(self.test_path, self.limits["data_mb"], "test set")

    def _check_x(self, x: np.ndarray, path: Path) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise EdgekitError(f"{path.name}: x has samples of shape {tuple(x.shape[1:])}, but track "
                               f"'{self.name}' says input_shape = {list(self.input_shape)}; fix one of them")

    def summary(self) -> dict:
        return {"name": self.name, "title": self.title, "task": self.task, "metric": self.metric,
                "weights": dict(self.weights), "boards": {k: dict(v) for k, v in self.boards.items()}}


def sha256_file(path: Path, limit_mb: float, what: str) -> str:
    _check_size(path, limit_mb, what)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_size(path: Path, limit_mb: float, what: str) -> None:
    if not path.is_file():
        raise EdgekitError(f"the {what} {path} is missing; `edgekit olympics demo` writes the demo track's "
                           "data, other tracks' data comes from the course staff")
    size = path.stat().st_size
    if size > limit_mb * 2**20:
        raise EdgekitError(f"the {what} {path.name} is {size / 2**20:.0f} MB, over the track's {limit_mb:g} MB "
                           "limit (data_mb under [limits]); make it smaller or raise the limit")


def _load_xy(path: Path, what: str, limit_mb: float, need_y: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """x (and y) from an .npz, never unpickling (an object array is refused, not loaded)."""
    _check_size(path, limit_mb, what)
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise EdgekitError(f"the {what} {path.name} is one array; save x and y together with "
                                   "np.savez(path, x=x, y=y)")
            if "x" not in f.files or (need_y and "y" not in f.files):
                raise EdgekitError(f"the {what} {path.name} holds {f.files}; it needs 'x'"
                                   f"{' and y' if need_y else ''} (np.savez(path, x=x, y=y))")
            x = f["x"]
            y = f["y"] if need_y else None
    except ValueError as e:  # numpy says "Object arrays cannot be loaded when allow_pickle=False"
        raise EdgekitError(f"the {what} {path.name} cannot be read without unpickling ({e}); save plain "
                           "numeric arrays") from None
    except (OSError, EOFError) as e:
        raise EdgekitError(f"the {what} {path.name} is not a readable .npz file ({e})") from None
    if x.dtype.kind not in "fiu" or x.ndim < 2 or len(x) == 0:
        raise EdgekitError(f"the {what} {path.name}: x must be a non-empty numeric array, samples first "
                           f"(got {x.dtype} {x.shape})")
    if y is not None and (y.dtype.kind not in "iu" or y.ndim != 1):
        raise EdgekitError(f"the {what} {path.name}: y must be a 1-D array of integer labels (got {y.dtype} "
                           f"{y.shape})")
    return x.astype(np.float32), (None if y is None else y.astype(np.int64))


# -- finding and parsing a track -------------------------------------------------------------------

def find_track(name_or_path: str | Path, search: list[Path] | None = None) -> Path:
    """A track's TOML: a path to a file, else NAME.toml in `search` folders (default ./tracks), else shipped."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise EdgekitError(f"track file {p} does not exist; check the path")
        return p
    folders = list(search or []) + [Path.cwd() / "tracks", SHIPPED]
    for folder in folders:
        if (folder / f"{p.name}.toml").is_file():
            return folder / f"{p.name}.toml"
    known = sorted({q.stem for f in folders if f.is_dir() for q in f.glob("*.toml")})
    raise EdgekitError(f"unknown track '{name_or_path}'; give a track .toml file, or one of: "
                       f"{', '.join(known) or 'none found'} (looked in ./tracks and edgekit's own tracks)")


def load_track(name_or_path: str | Path, search: list[Path] | None = None) -> Track:
    path = find_track(name_or_path, search)
    if path.stat().st_size > MAX_TOML_BYTES:
        raise EdgekitError(f"track file {path.name} is over {MAX_TOML_BYTES // 1024} KB; a track is a short TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"track file {path.name} is not valid TOML ({e}); fix the syntax") from None
    return parse_track(data, path)


def _need(data: dict, key: str, kind, file: str, what: str):
    v = data.get(key)
    if not isinstance(v, kind) or isinstance(v, bool) or v in ("", []):
        raise EdgekitError(f"{file}: '{key}' must be {what}; see edgekit's tracks/demo.toml for an example")
    return v


def parse_track(data: dict, path: Path) -> Track:
    file = path.name
    name = _need(data, "name", str, file, "the track's short name")
    metric = _need(data, "metric", str, file, f"one of {', '.join(METRICS)}")
    if metric not in METRICS:
        raise EdgekitError(f"{file}: metric = '{metric}' is not one of {', '.join(METRICS)}")
    shape = _need(data, "input_shape", list, file, "a list of positive integers, e.g. [64]")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise EdgekitError(f"{file}: input_shape = {shape} must hold positive integers")
    classes = data.get("classes", 1 if metric == "auc" else None)
    if not isinstance(classes, int) or classes < 1 or (metric == "auc" and classes != 1):
        raise EdgekitError(f"{file}: classes must be the number of outputs per sample "
                           f"({'1: one anomaly score' if metric == 'auc' else 'at least 2'})")
    layout = data.get("layout", "NHWC")
    if layout not in ("NHWC", "NCHW"):
        raise EdgekitError(f"{file}: layout = '{layout}' must be NHWC or NCHW")
    files = data.get("data")
    if not isinstance(files, dict) or not all(isinstance(files.get(k), str) for k in ("test", "calibration")):
        raise EdgekitError(f"{file}: needs a [data] table with test = \"test.npz\" and calibration = \"calib.npz\"")
    weights = dict(DEFAULT_WEIGHTS)
    given = data.get("weights", {})
    unknown = set(given) - set(WEIGHT_KEYS)
    if unknown:
        raise EdgekitError(f"{file}: unknown weights {sorted(unknown)}; the weights are {', '.join(WEIGHT_KEYS)}")
    weights.update(given)
    if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in weights.values()):
        raise EdgekitError(f"{file}: weights must be numbers >= 0")
    if abs(sum(weights.values()) - 1) > 1e-6:
        raise EdgekitError(f"{file}: the weights add up to {sum(weights.values()):g}; make them add up to 1")
    boards = {}
    known = board_keys()
    for target, limits in (data.get("boards") or {}).items():
        if target not in known:
            raise EdgekitError(f"{file}: [boards.{target}] is not a known target; use {', '.join(known)}")
        bad = set(limits) - set(CONSTRAINT_KEYS)
        if bad or not all(isinstance(v, (int, float)) and v > 0 for v in limits.values()):
            raise EdgekitError(f"{file}: [boards.{target}] takes {', '.join(CONSTRAINT_KEYS)}, each a positive number")
        boards[target] = dict(limits)
    if not boards:
        raise EdgekitError(f"{file}: list the boards of the track, e.g. [boards.nano33ble] latency_ms = 10")
    limits = dict(DEFAULT_LIMITS)
    given = data.get("limits", {})
    if set(given) - set(DEFAULT_LIMITS) or not all(isinstance(v, (int, float)) and v > 0 for v in given.values()):
        raise EdgekitError(f"{file}: [limits] takes {', '.join(DEFAULT_LIMITS)}, each a positive number")
    limits.update(given)
    emulate = data.get("emulate", False)
    if not isinstance(emulate, bool):
        raise EdgekitError(f"{file}: emulate must be true or false (true: the Cortex-M4 boards run the real "
                           "firmware and TFLite Micro kernels under QEMU)")
    test_limit = data.get("test_limit")
    if test_limit is not None and (not isinstance(test_limit, int) or test_limit < 1):
        raise EdgekitError(f"{file}: test_limit must be a positive number of samples")
    return Track(name=name, title=data.get("title", name), task=data.get("task", ""), metric=metric,
                 input_shape=tuple(shape), classes=classes, layout=layout,
                 test_path=(path.parent / files["test"]).resolve(),
                 calibration_path=(path.parent / files["calibration"]).resolve(),
                 weights={k: float(v) for k, v in weights.items()}, boards=boards, limits=limits,
                 test_limit=test_limit, path=path.resolve(), emulate=emulate)
