"""The data set's manifest: <folder>/manifest.json, one entry per recording file.

    {"format": "edgekit-capture", "version": 1, "updated": "...", "recordings": [
        {"file": "wave/wave.1.csv", "label": "wave", "n": 1, "sensor": "imu", "board": "nano33ble",
         "firmware": "...", "mode": "simulated", "channels": [...], "units": [...],
         "rate_requested": 100, "rate_achieved": 100.0, "samples": 200, "gaps": 0,
         "crc_failures": 0, "sha256": "...", "complete": true, ...}, ...]}

It is rewritten after every recording through a temporary file and a rename, so it is always
whole; if even that write fails (a full disk), the previous manifest stays as it was. A recording
cut by a write failure is listed with "complete": false, "status": "write_failed", and the sha256
of the bytes that reached the disk. Recording numbers continue after the highest already used in the manifest or on disk:
capturing again into the same folder adds recordings and never replaces one.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from ..errors import EdgekitError
from .disk import Reserve
from .writers import atomic_write_json

NAME = "manifest.json"
FORMAT = "edgekit-capture"
# <label>/<label>.<n>.<ext>: the names capture gives recordings (and their Edge Impulse JSON)
RECORDING_RE = re.compile(r"^(?P<label>[A-Za-z0-9][A-Za-z0-9_-]*)\.\d+\.[A-Za-z0-9]+$")


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
        self.room = Reserve(self.path)      # held while recording, given back to rewrite the manifest
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
        """List `entry`; raises WriteFailed (and keeps the previous manifest, on disk and here) when
        the manifest cannot be written."""
        data = dict(self.data, recordings=self.recordings + [entry],
                    updated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.room.release()
        atomic_write_json(self.path, data)
        self.data = data


class Verified(list):
    """verify()'s answer: the list of problems (empty: every file matches the manifest and every
    recording file is listed), and .incomplete: the listed recordings that were cut short
    (interrupted, disconnected, failed, write_failed), each as "file: status (reason)". An
    incomplete recording whose bytes match its checksum is not a problem: it is what arrived."""

    def __init__(self, problems: list[str], incomplete: list[str]):
        super().__init__(problems)
        self.incomplete = incomplete


def verify(folder: str | Path) -> Verified:
    """Every file of the manifest checked against its sha256, and every recording file on disk
    against the manifest (a file it does not list is a problem)."""
    m = Manifest(Path(folder))
    problems, listed = [], set()
    for r in m.recordings:
        for item in (r, r.get("ei_json")):
            if not item:
                continue
            listed.add(item["file"])
            p = m.folder / item["file"]
            if not p.exists():
                problems.append(f"{item['file']}: missing")
            elif sha256_file(p) != item["sha256"]:
                problems.append(f"{item['file']}: sha256 differs from the manifest (changed after capture)")
    for p in sorted(m.folder.glob("*/*")):
        name = p.relative_to(m.folder).as_posix()
        match = RECORDING_RE.match(p.name)
        if match and match["label"] == p.parent.name and name not in listed:
            problems.append(f"{name}: not listed in {NAME} (a recording whose entry was never written?)")
    incomplete = [f"{r['file']}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else "")
                  for r in m.recordings if not r.get("complete", True)]
    return Verified(problems, incomplete)
