"""The data set's manifest: <folder>/manifest.json, one entry per recording file.

    {"format": "edgekit-capture", "version": 1, "updated": "...", "recordings": [
        {"file": "wave/wave.1.csv", "label": "wave", "n": 1, "sensor": "imu", "board": "nano33ble",
         "firmware": "...", "mode": "simulated", "channels": [...], "units": [...],
         "rate_requested": 100, "rate_achieved": 100.0, "samples": 200, "gaps": 0,
         "crc_failures": 0, "sha256": "...", "complete": true, ...}, ...]}

It is rewritten after every recording through a temporary file and a rename, so it is always
whole. Recording numbers continue after the highest already used in the manifest or on disk:
capturing again into the same folder adds recordings and never replaces one.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from ..errors import EdgekitError
from .writers import atomic_write_json

NAME = "manifest.json"
FORMAT = "edgekit-capture"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Manifest:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / NAME
        self.data = {"format": FORMAT, "version": 1, "recordings": []}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                ok = isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("recordings"), list)
            except (OSError, ValueError):
                ok = False
            if not ok:
                raise EdgekitError(f"{self.path} is not an edgekit capture manifest (or is damaged); capture into "
                                   "another folder, or move that file away")
            self.data = data

    @property
    def recordings(self) -> list[dict]:
        return self.data["recordings"]

    def next_number(self, label: str) -> int:
        """1 + the highest recording number of `label` in the manifest or among its files."""
        used = [int(r["n"]) for r in self.recordings if r.get("label") == label]
        pattern = re.compile(rf"^{re.escape(label)}\.(\d+)\.[A-Za-z0-9]+$")
        folder = self.folder / label
        if folder.is_dir():
            used += [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
        return max(used, default=0) + 1

    def add(self, entry: dict) -> None:
        self.recordings.append(entry)
        self.data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(self.path, self.data)


def verify(folder: str | Path) -> list[str]:
    """Problems found checking every file of the manifest against its sha256 (empty: all match)."""
    m = Manifest(Path(folder))
    problems = []
    for r in m.recordings:
        for item in (r, r.get("ei_json")):
            if not item:
                continue
            p = m.folder / item["file"]
            if not p.exists():
                problems.append(f"{item['file']}: missing")
            elif sha256_file(p) != item["sha256"]:
                problems.append(f"{item['file']}: sha256 differs from the manifest (changed after capture)")
    return problems
