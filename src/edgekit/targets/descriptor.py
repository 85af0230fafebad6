"""Board descriptors (targets/<key>.toml) and finding the boards plugged in right now.

A descriptor holds what edgekit knows about one board: chip, memory, compute, power, sensors,
USB IDs. Every number carries its source beside it, as an inline table

    clock_hz = { value = 64_000_000, source = "nRF52840 Product Specification v1.7, Key features" }

and loading refuses a bare number, or one with an empty source, naming the file and the key.
Strings (names, FQBN) need no source.

    from edgekit.targets import load_board, all_boards, connected
    b = load_board("nano33ble")
    b.num("memory.sram_bytes")        # 262144
    b.source("memory.sram_bytes")     # "Nordic nRF52840 Product Specification v1.7, ..."
    connected()                       # {"nano33ble": Connection(port="/dev/ttyACM0", role="sketch", ...)}

The descriptors live in targets/ at the repository root and ship in the wheel as the data
package `edgekit.boards`; `targets_dir()` finds them in either place.
"""
from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..errors import EdgekitError

KINDS = ("mcu", "linux", "accelerator")
RUNTIMES = ("tflm", "litert", "edgetpu")
KERNELS = ("cmsis-nn", "esp-nn", "xnnpack", "edgetpu", "reference")
ARCHES = ("arm", "xtensa", "host")
DENSE_WEIGHTS = ("per-channel", "per-tensor")  # what the board's runtime honours in a dense layer
USB_ROLES = ("sketch", "bootloader", "runtime")
REQUIRED = ("key", "name", "kind", "runtime", "kernels", "arch")
_LEAF_KEYS = {"value", "source", "note"}
_MISSING = object()

Number = int | float


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _has_number(x: Any) -> bool:
    return _is_number(x) or (isinstance(x, list) and any(_has_number(v) for v in x))


# ---------------------------------------------------------------------------------------------
# Where the descriptors are
# ---------------------------------------------------------------------------------------------

def targets_dir() -> Path:
    """The folder holding the <key>.toml descriptors.

    $EDGEKIT_TARGETS_DIR if set; else the installed data package `edgekit.boards` (a wheel, or an
    editable install made after targets/ became a package); else targets/ in the source checkout
    this module comes from (an older editable install, or running from src/).
    """
    env = os.environ.get("EDGEKIT_TARGETS_DIR")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise EdgekitError(f"EDGEKIT_TARGETS_DIR={env} is not a folder; point it at a folder of "
                               "<key>.toml board descriptors or unset it")
        return path
    try:
        pkg = importlib.import_module("edgekit.boards")
        for entry in getattr(pkg, "__path__", []):
            if any(Path(entry).glob("*.toml")):
                return Path(entry)
    except ImportError:
        pass
    checkout = Path(__file__).resolve().parents[3] / "targets"
    if any(checkout.glob("*.toml")):
        return checkout
    raise EdgekitError("edgekit's board descriptors (targets/*.toml) are missing from this installation; "
                       "reinstall edgekit (pip install --force-reinstall edgekit)")


def board_keys(directory: Path | None = None) -> list[str]:
    """Keys of the known boards, sorted."""
    return sorted(p.stem for p in (directory or targets_dir()).glob("*.toml"))


# ---------------------------------------------------------------------------------------------
# The descriptor
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UsbId:
    vid: str          # 4 hex digits, lower case
    pid: str
    role: str         # "sketch" | "bootloader" | "runtime"
    source: str

    def matches(self, vid: int | str | None, pid: int | str | None) -> bool:
        if vid is None or pid is None:
            return False
        v = vid if isinstance(vid, int) else int(str(vid), 16)
        p = pid if isinstance(pid, int) else int(str(pid), 16)
        return (v, p) == (int(self.vid, 16), int(self.pid, 16))


@dataclass(frozen=True)
class Sensor:
    """A sensor of a board: its channels in stream order, their units, and the int16 scale per
    channel (physical value = raw * scale); max_rate_hz is the highest `stream` rate edgekit's
    firmware accepts (None: the firmware does not stream it)."""
    name: str
    part: str
    channels: tuple[str, ...]
    units: tuple[str, ...]
    rates_hz: tuple[Number, ...]
    source: str
    revision: str | None = None
    scales: tuple[float, ...] = ()
    max_rate_hz: Number | None = None
    max_rate_source: str = ""
    frame_size: tuple[int, ...] = ()      # (width, height) of a camera still


@dataclass(frozen=True)
class Board:
    """One board descriptor. Numbers by dotted path: `num("memory.sram_bytes")`, `source(...)`."""
    key: str
    name: str
    kind: str
    runtime: str
    kernels: str
    arch: str
    path: Path
    data: Mapping[str, Any] = field(repr=False)
    usb: tuple[UsbId, ...] = ()
    sensors: tuple[Sensor, ...] = ()

    # -- strings -------------------------------------------------------------------------------
    def text(self, dotted: str, default: Any = None) -> Any:
        """A non-numeric value (e.g. "chip.name", "fqbn"), or default when the board has none."""
        return self._lookup(dotted, default)

    @property
    def fqbn(self) -> str | None:
        return self.data.get("fqbn")

    @property
    def board_options(self) -> str | None:
        return self.data.get("board_options")

    @property
    def host(self) -> str | None:
        return self.data.get("host")

    @property
    def dense_weights(self) -> str:
        """"per-tensor" when the runtime applies only the first scale of per-channel dense weights."""
        return self.data.get("dense_weights", "per-channel")

    @property
    def per_tensor_dense(self) -> bool:
        """Whether models for this board need one scale per dense weight tensor."""
        return self.dense_weights == "per-tensor"

    @property
    def chip(self) -> str:
        return self.data.get("chip", {}).get("name", "")

    # -- numbers -------------------------------------------------------------------------------
    def num(self, dotted: str, default: Any = _MISSING) -> Any:
        """The plain value of a numeric entry (a number, or a list of numbers for e.g. rates)."""
        leaf = self._leaf(dotted, default)
        return leaf["value"] if isinstance(leaf, dict) else leaf

    def source(self, dotted: str) -> str:
        """Where the number at `dotted` comes from."""
        return self._leaf(dotted, _MISSING)["source"]

    def has(self, dotted: str) -> bool:
        """Whether the board has a numeric entry at `dotted`."""
        node = self._lookup(dotted, None)
        return isinstance(node, Mapping) and "value" in node

    def numbers(self) -> dict[str, Any]:
        """Every numeric entry (outside usb and sensors) as {dotted path: value}."""
        return {k: v["value"] for k, v in _leaves(self.data)}

    def sources(self) -> dict[str, str]:
        return {k: v["source"] for k, v in _leaves(self.data)}

    @property
    def clock_hz(self) -> float:
        return self.num("chip.clock_hz")

    def _lookup(self, dotted: str, default: Any) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is _MISSING:
                    raise EdgekitError(f"board '{self.key}' has no '{dotted}' ({self.path.name}); "
                                       f"add it to {self.path} with its source")
                return default
            node = node[part]
        return node

    def _leaf(self, dotted: str, default: Any) -> Any:
        node = self._lookup(dotted, default)
        if node is default and default is not _MISSING:
            return default
        if not (isinstance(node, Mapping) and "value" in node):
            raise EdgekitError(f"'{dotted}' in {self.path.name} is not a number with a source; "
                               "ask for a numeric entry (e.g. memory.sram_bytes)")
        return node

    def summary(self) -> dict:
        """What `edgekit targets` shows: identity, chip, memory, runtime."""
        mem = self.data.get("memory", {})
        out = {"key": self.key, "name": self.name, "kind": self.kind, "runtime": self.runtime,
               "kernels": self.kernels, "arch": self.arch, "chip": self.chip,
               "clock_hz": self.num("chip.clock_hz", None)}
        for k in ("sram_bytes", "flash_bytes", "psram_bytes", "dram_bytes", "param_cache_bytes"):
            if k in mem:
                out[k] = mem[k]["value"]
        if self.fqbn:
            out["fqbn"] = self.fqbn
        if self.host:
            out["host"] = self.host
        return out


def _leaves(node: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, dict]]:
    for k, v in node.items():
        if k in ("usb", "sensors") and not prefix:
            continue
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if "value" in v:
                yield path, v
            else:
                yield from _leaves(v, path + ".")


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------

def _check_leaves(node: Any, where: str, file: str) -> None:
    """Every number must sit in a {value, source} table with a non-empty source."""
    if isinstance(node, Mapping):
        if "value" in node:
            extra = set(node) - _LEAF_KEYS
            if extra:
                raise EdgekitError(f"{file}: '{where}' has unexpected keys {sorted(extra)}; a number is "
                                   "written { value = ..., source = \"...\" } (optionally note = \"...\")")
            src = node.get("source")
            if not isinstance(src, str) or not src.strip():
                raise EdgekitError(f"{file}: '{where}' has no source; write it as "
                                   f"{{ value = {node['value']!r}, source = \"datasheet section, publication "
                                   "or edgekit measurement: <command>\" }")
            value = node["value"]
            if not (_is_number(value) or (isinstance(value, list) and value
                                          and all(_is_number(v) for v in value))):
                raise EdgekitError(f"{file}: '{where}' value must be a number or a list of numbers, "
                                   f"not {value!r}; put text in the source or a string key")
            return
        for k, v in node.items():
            _check_leaves(v, f"{where}.{k}" if where else k, file)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_leaves(v, f"{where}[{i}]", file)
    elif _has_number(node):
        raise EdgekitError(f"{file}: '{where}' = {node!r} is a number without a source; write it as "
                           f"{{ value = {node!r}, source = \"datasheet section, publication or edgekit "
                           "measurement: <command>\" }")


def _hex4(x: Any) -> bool:
    return isinstance(x, str) and len(x) == 4 and all(c in "0123456789abcdefABCDEF" for c in x)


def parse_board(data: Mapping[str, Any], path: Path) -> Board:
    """Validate a parsed descriptor and build the Board; EdgekitError names the file and key."""
    file = path.name
    for k in REQUIRED:
        if not isinstance(data.get(k), str) or not data[k]:
            raise EdgekitError(f"{file}: missing the string '{k}'; every descriptor has "
                               f"{', '.join(REQUIRED)}")
    for k, allowed in (("kind", KINDS), ("runtime", RUNTIMES), ("kernels", KERNELS), ("arch", ARCHES),
                       ("dense_weights", DENSE_WEIGHTS)):
        if k in data and data[k] not in allowed:
            raise EdgekitError(f"{file}: {k} = '{data[k]}' is not one of {', '.join(allowed)}")
    if data["key"] != path.stem:
        raise EdgekitError(f"{file}: key = '{data['key']}' differs from the file name; rename the file "
                           f"to {data['key']}.toml or fix the key")
    _check_leaves(data, "", file)

    usb = []
    for i, u in enumerate(data.get("usb", [])):
        where = f"usb[{i}]"
        if not isinstance(u, Mapping):
            raise EdgekitError(f"{file}: {where} must be a table {{ vid, pid, role, source }}")
        if not (_hex4(u.get("vid")) and _hex4(u.get("pid"))):
            raise EdgekitError(f"{file}: {where} vid/pid must be 4-digit hex strings like \"2341\", "
                               f"got {u.get('vid')!r}/{u.get('pid')!r}")
        if u.get("role") not in USB_ROLES:
            raise EdgekitError(f"{file}: {where} role = {u.get('role')!r} is not one of {', '.join(USB_ROLES)}")
        if not isinstance(u.get("source"), str) or not u["source"].strip():
            raise EdgekitError(f"{file}: {where} ({u['vid']}:{u['pid']}) has no source; add "
                               "source = \"where this USB ID is documented\"")
        usb.append(UsbId(u["vid"].lower(), u["pid"].lower(), u["role"], u["source"]))

    sensors = []
    for i, s in enumerate(data.get("sensors", [])):
        where = f"sensors[{i}]"
        if not isinstance(s, Mapping) or not isinstance(s.get("name"), str) or not isinstance(s.get("part"), str):
            raise EdgekitError(f"{file}: {where} needs name and part strings")
        channels, units = s.get("channels", []), s.get("units", [])
        if not (isinstance(channels, list) and all(isinstance(c, str) for c in channels)
                and isinstance(units, list) and len(units) == len(channels)):
            raise EdgekitError(f"{file}: {where} ({s['name']}) needs channels and units: lists of strings "
                               "of the same length")
        rates = s.get("rates_hz", {"value": [], "source": ""})
        scales = s.get("scales", {"value": []})["value"]
        if scales and len(scales) != len(channels):
            raise EdgekitError(f"{file}: {where}.scales ({s['name']}) needs one scale per channel "
                               f"({len(channels)}), got {len(scales)}")
        max_rate = s.get("max_rate_hz", {"value": None, "source": ""})
        frame = s.get("frame_size", {"value": []})["value"]
        sensors.append(Sensor(s["name"], s["part"], tuple(channels), tuple(units),
                              tuple(rates["value"]), rates["source"], s.get("revision"),
                              tuple(float(x) for x in scales), max_rate["value"], max_rate["source"],
                              tuple(int(x) for x in frame)))

    return Board(key=data["key"], name=data["name"], kind=data["kind"], runtime=data["runtime"],
                 kernels=data["kernels"], arch=data["arch"], path=path, data=data,
                 usb=tuple(usb), sensors=tuple(sensors))


def load_board_file(path: str | Path) -> Board:
    """Load and validate one descriptor file; read once per run while the file is unchanged."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise EdgekitError(f"board descriptor {path} not found; check the path") from None
    return _load(path.resolve(), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int) -> Board:
    """Board objects are frozen, so every layer can share the one made from an unchanged file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise EdgekitError(f"board descriptor {path} not found; check the path") from None
    except tomllib.TOMLDecodeError as e:
        raise EdgekitError(f"{path.name} is not valid TOML ({e}); fix the syntax") from None
    return parse_board(data, path)


def load_board(key: str) -> Board:
    """The board with this key (e.g. "nano33ble"); EdgekitError listing the known keys otherwise."""
    directory = targets_dir()
    path = directory / f"{key}.toml"
    if not path.is_file():
        raise EdgekitError(f"unknown target '{key}'; use one of the known targets: "
                           f"{', '.join(board_keys(directory))}")
    return load_board_file(path)


def all_boards() -> list[Board]:
    """Every known board, sorted by key."""
    directory = targets_dir()
    return [load_board_file(directory / f"{k}.toml") for k in board_keys(directory)]
