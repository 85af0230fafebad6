"""Memory budgets, checked before allocating, so a hostile or mistaken file is refused in
milliseconds instead of taking the machine's memory.

Two budgets, each raised by a flag or an environment variable:
- the model's working memory (declared tensor bytes x samples held at once): --max-memory MB;
- a calibration or validation set, counted after decompression as float32: --max-calib-mb MB.
The defaults fit a student's laptop and every model the course uses.
"""
from __future__ import annotations

import contextlib
import os

from .errors import EdgekitError

DEFAULT_MEMORY_MB = 4096
DEFAULT_CALIB_MB = 256

_override: dict[str, int] = {}


def _mb(name: str, env: str, default: int) -> int:
    if name in _override:
        return _override[name]
    text = os.environ.get(env)
    if text:
        try:
            value = int(text)
        except ValueError:
            raise EdgekitError(f"{env}={text!r} is not a whole number of megabytes; set e.g. {env}={default}") from None
        if value <= 0:
            raise EdgekitError(f"{env} must be a positive number of megabytes; set e.g. {env}={default}")
        return value
    return default


def memory_mb() -> int:
    return _mb("memory", "EDGEKIT_MAX_MEMORY_MB", DEFAULT_MEMORY_MB)


def calib_mb() -> int:
    return _mb("calib", "EDGEKIT_MAX_CALIB_MB", DEFAULT_CALIB_MB)


@contextlib.contextmanager
def limits(memory: int | None = None, calib: int | None = None):
    """Raise (or lower) the budgets for the code inside, e.g. from --max-memory / --max-calib-mb."""
    saved = dict(_override)
    for name, value in (("memory", memory), ("calib", calib)):
        if value is not None:
            if value <= 0:
                raise EdgekitError(f"a memory budget must be a positive number of megabytes; got {value}")
            _override[name] = int(value)
    try:
        yield
    finally:
        _override.clear()
        _override.update(saved)


def _fmt(nbytes: float) -> str:
    mb = nbytes / 2**20
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def check_memory(nbytes: float, what: str) -> None:
    """Refuse work that would need more than the memory budget, before allocating anything."""
    limit = memory_mb()
    if nbytes > limit * 2**20:
        raise EdgekitError(f"{what} needs {_fmt(nbytes)}, over edgekit's memory budget of {limit:,} MB; "
                           f"if that is intended, raise it with --max-memory MB (or EDGEKIT_MAX_MEMORY_MB)")


def check_calibration(nbytes: float, what: str) -> None:
    """Refuse a calibration/validation set larger than its budget (bytes as float32, decompressed)."""
    limit = calib_mb()
    if nbytes > limit * 2**20:
        raise EdgekitError(f"{what} is {_fmt(nbytes)} as float32 after decompression, over edgekit's "
                           f"calibration budget of {limit:,} MB (100-500 samples are enough to calibrate); "
                           f"if that is intended, raise it with --max-calib-mb MB (or EDGEKIT_MAX_CALIB_MB)")
