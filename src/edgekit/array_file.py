"""Calibration and validation arrays from .npy/.npz files, read without trusting them.

A .npy header (and each .npz member's header, read through zipfile without inflating the data)
is checked before any data is loaded: its dtype must be plain numbers, its shape sane, its size
after decompression within the calibration budget and present in the file. Values must be finite
in float32, so NaN and infinity never reach calibration or the quantizer. Nothing is unpickled.
"""
from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import budget
from .errors import EdgekitError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"
PREFERRED_KEYS = ("x", "calib", "data", "inputs")  # which .npz member holds the inputs
MAX_HEADER = 10_000  # bytes: numpy's own limit for untrusted headers


def load_array(data, what: str = "calibration set") -> np.ndarray:
    """A float32 array from an array, a .npy or a .npz file, after the checks above."""
    if isinstance(data, (str, Path)):
        arr = _read_file(Path(data), what)
    else:
        if not isinstance(data, np.ndarray):
            data = getattr(data, "data", data)  # a TinyTorch Tensor holds its array in .data
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:  # e.g. ragged nested lists
            raise EdgekitError(f"the {what} is not a rectangular array of numbers ({e}); give a numpy array") from None
        label = f"the {what}"
        _check_dtype(arr.dtype, label)
        _check_shape(arr.shape, label)
        budget.check_calibration(4 * math.prod(arr.shape), label)
        return _finite_float32(arr, label)
    return _finite_float32(arr, f"the {what} '{Path(data).name}'")


def _read_file(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "is not a regular file" if path.exists() else "does not exist"
        raise EdgekitError(f"the {what} '{path}' {problem}; "
                           "give a .npy or .npz file")
    label = f"the {what} '{path.name}'"
    try:
        with open(path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
            if magic == NPY_MAGIC:
                f.seek(0)
                return _read_npy(f, path.stat().st_size, label)
    except OSError as e:
        raise EdgekitError(f"cannot read {label} ({e.strerror or e}); check that it is readable") from None
    if magic.startswith(ZIP_MAGIC):
        return _read_npz(path, label)
    raise EdgekitError(f"{label} is {'empty' if not magic else 'not a .npy or .npz file'}; "
                       "save the inputs with np.save('calib.npy', x) or np.savez('calib.npz', x=x)")


def _read_npz(path: Path, label: str) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as z:
            member = _pick_member(z, label)
            if member.flag_bits & 0x1:
                raise EdgekitError(f"{label}: member '{member.filename}' is encrypted; save it with np.savez")
            with z.open(member) as f:
                return _read_npy(f, member.file_size, f"{label} (member '{member.filename}')")
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError) as e:
        raise EdgekitError(f"{label} is not a readable .npz file ({type(e).__name__}: {e}); "
                           "save it again with np.savez") from None


def _pick_member(z: zipfile.ZipFile, label: str) -> zipfile.ZipInfo:
    members = {info.filename.removesuffix(".npy"): info for info in z.infolist() if not info.is_dir()}
    if not members:
        raise EdgekitError(f"{label} holds no arrays; save the inputs with np.savez('calib.npz', x=x)")
    key = next((k for k in PREFERRED_KEYS if k in members), next(iter(members)) if len(members) == 1 else None)
    if key is None:
        raise EdgekitError(f"{label} has arrays {sorted(members)[:10]}; name the inputs 'x'")
    return members[key]


def _read_npy(f, file_size: int, label: str) -> np.ndarray:
    """One .npy from a stream whose total size is known: header first, then exactly its data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, TypeError, SyntaxError, EOFError, tokenize.TokenError, RecursionError) as e:  # numpy's parse
        raise EdgekitError(f"{label} has a corrupt .npy header ({_first_line(e)}); save it again with np.save") from None
    if any(d < 0 for d in shape):
        raise EdgekitError(f"{label} has a corrupt .npy header (shape {shape}); save it again with np.save")
    _check_dtype(dtype, label)
    _check_shape(shape, label)
    count = math.prod(shape)
    budget.check_calibration(4 * count, label)  # before a byte of data is read or inflated
    header_end = f.tell()
    if file_size - header_end < count * dtype.itemsize:
        raise EdgekitError(f"{label} is truncated: its header promises {shape} {dtype} "
                           f"({count * dtype.itemsize:,} bytes) but it holds {max(file_size - header_end, 0):,}; "
                           "save it again with np.save")
    raw = f.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise EdgekitError(f"{label} is truncated; save it again with np.save")
    arr = np.frombuffer(raw, dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__


def _check_dtype(dtype: np.dtype, label: str) -> None:
    """Plain integers or floats only: everything else would be dropped, guessed or unpickled."""
    if dtype.hasobject:
        raise EdgekitError(f"{label} holds Python objects; edgekit never unpickles: save a plain numeric "
                           "array with np.save")
    if dtype.names is not None or dtype.subdtype is not None:
        raise EdgekitError(f"{label} is a structured array (dtype {dtype}); save one plain numeric array "
                           "of the model's input shape")
    if dtype.kind == "c":
        raise EdgekitError(f"{label} holds complex numbers; edgekit will not drop the imaginary part: "
                           "save the real values the model takes (e.g. np.abs(x) or x.real)")
    if dtype.kind == "b":
        raise EdgekitError(f"{label} holds booleans; if 0/1 inputs are meant, save x.astype(np.float32)")
    if dtype.kind in "mM":
        raise EdgekitError(f"{label} holds dates or durations ({dtype}); save the numeric inputs the model takes")
    if dtype.kind not in "iuf":
        raise EdgekitError(f"{label} must hold numbers; got dtype {dtype}")


def _check_shape(shape: tuple, label: str) -> None:
    if len(shape) == 0:
        raise EdgekitError(f"{label} is a single number (a 0-d array); give a batch of samples, "
                           "shape (N, ...) with N of 100-500")
    if math.prod(shape) == 0:
        raise EdgekitError(f"{label} is empty (shape {tuple(shape)}); give at least one sample (100-500 is typical)")


def _finite_float32(arr: np.ndarray, label: str) -> np.ndarray:
    """float32 values, refusing NaN and infinity (in the data, or from values float32 cannot hold)."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise EdgekitError(f"{label} contains NaN or infinite values; clean it before calibrating")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise EdgekitError(f"{label} has values beyond float32's range (about ±3.4e38); scale the inputs "
                           "the way the model expects")
    return out
