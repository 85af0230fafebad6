"""Instruction counts measured on the emulated board, kept per board and model so that the
simulator can use them: a model once run with `--emu` is simulated from its counted instructions
(x the board's fitted cycles per instruction) instead of the analytical cost model.

Stored as JSON in $EDGEKIT_COUNTS_DIR, else ~/.cache/edgekit/instructions/<board>/<model sha256>.json,
written whole (a temporary file renamed), keyed also by the compiler flags they were counted with.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def counts_dir() -> Path:
    env = os.environ.get("EDGEKIT_COUNTS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgekit" / "instructions"


def save(board: str, sha256: str, flags: str, total: int, per_layer: list[int | None]) -> None:
    """Keep one inference's instructions; a failure to write is not the caller's problem."""
    folder = counts_dir() / board
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump({"flags": flags, "instructions": int(total), "layers": per_layer}, f)
        os.replace(tmp, folder / f"{sha256}.json")
    except OSError:
        pass  # the counts are a cache: the next --emu run counts again


def load(board: str, sha256: str, flags: str) -> dict | None:
    """{"instructions": total, "layers": [per layer or None]} counted with these flags, or None."""
    try:
        data = json.loads((counts_dir() / board / f"{sha256}.json").read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("flags") == flags and isinstance(data.get("instructions"), int) \
        and isinstance(data.get("layers"), list)
    return data if ok else None
