"""Boards on other machines, through a labgrid coordinator (`--lab labgrid`).

A lab runs labgrid: a coordinator, an exporter on each lab PC publishing its boards' serial ports
(served over RFC 2217 by ser2net), and "places" that name a board and carry tags (board=nano33ble).
edgekit acquires a free place (by name, or by the board kind in its `board` tag), talks to the
board at rfc2217://host:port (ign_set_control: ser2net's pty-backed ports have no modem lines),
and releases the place on every way out, Ctrl-C included.

edgekit drives labgrid's own command, `labgrid-client` (found on PATH, or at
$EDGEKIT_LABGRID_CLIENT), rather than importing labgrid: labgrid installs a fork of pyserial
under the same module name, so it lives in its own virtual environment. The coordinator comes
from $LG_COORDINATOR, as for labgrid's own tools.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import EdgekitError

CLIENT_ENV = "EDGEKIT_LABGRID_CLIENT"
TIMEOUT_S = 30


@dataclass(frozen=True)
class LabPort:
    """An acquired place's board: where to talk to it, and where it is plugged in."""
    place: str
    url: str                # rfc2217://host:port?ign_set_control, served by the exporter's ser2net
    exporter: str | None    # the exporter's name (labgrid-exporter -n)
    host: str               # the lab PC serving it (the exporter's --hostname): ssh there to flash it
    device: str | None      # the board's serial device on that PC, e.g. /dev/ttyACM0


@dataclass(frozen=True)
class Place:
    name: str
    tags: dict
    acquired: str | None  # who holds it, or None when free


def client() -> str:
    path = os.environ.get(CLIENT_ENV) or shutil.which("labgrid-client")
    if not path or not os.access(path, os.X_OK):
        raise EdgekitError("--lab labgrid needs labgrid's client: install labgrid in its own environment "
                           "(python3 -m venv ~/labgrid && ~/labgrid/bin/pip install labgrid) and set "
                           f"{CLIENT_ENV}=~/labgrid/bin/labgrid-client, with LG_COORDINATOR=host:port")
    return path


def _run(*args: str) -> str:
    try:
        done = subprocess.run([client(), *args], capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"labgrid-client {' '.join(args)} did not answer within {TIMEOUT_S} s: is the "
                           f"coordinator at {os.environ.get('LG_COORDINATOR', '127.0.0.1:20408')} running?") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise EdgekitError(f"labgrid-client {' '.join(args)} failed: {said[-1] if said else 'no message'}")
    return done.stdout


def places() -> list[Place]:
    """Every place the coordinator knows, with its tags and holder (`labgrid-client -v places`)."""
    found, name, tags, holder = [], None, {}, None
    for line in _run("-v", "places").splitlines() + ["Place '':"]:
        head = re.match(r"Place '(.*)':", line)
        if head:
            if name:
                found.append(Place(name, tags, holder))
            name, tags, holder = head.group(1), {}, None
        elif line.strip().startswith("tags:"):
            tags = dict(t.split("=", 1) for t in line.split(":", 1)[1].split() if "=" in t.strip(","))
        elif line.strip().startswith("acquired:"):
            value = line.split(":", 1)[1].strip()
            holder = None if value in ("", "None") else value
    return found


def _port(place: str) -> LabPort:
    """The serial port the acquired place holds (`labgrid-client show`: a NetworkSerialPort)."""
    shown = _run("-p", place, "show")
    host = re.search(r"'host': '([^']+)'", shown)
    port = re.search(r"'port': (\d+)", shown)
    if not (host and port):
        raise EdgekitError(f"labgrid place '{place}' holds no network serial port (NetworkSerialPort): "
                           "export the board's port with a RawSerialPort or USBSerialPort resource")
    exporter = re.search(r"Acquired resource '[^']*' \(([^/)]+)/", shown)
    device = re.search(r"'path': '([^']+)'", shown)
    return LabPort(place, f"rfc2217://{host.group(1)}:{port.group(1)}?ign_set_control",
                   exporter and exporter.group(1), host.group(1), device and device.group(1))


@contextlib.contextmanager
def lab_port(target: str, place: str | None = None):
    """Acquire `place`, or a free place whose board tag is `target`; yield its LabPort; release it
    however the block ends."""
    known = places()
    if place is not None:
        if place not in {p.name for p in known}:
            raise EdgekitError(f"labgrid has no place '{place}'; `labgrid-client places` lists them")
        candidates = [place]
    else:
        candidates = [p.name for p in known if p.tags.get("board") == target and p.acquired is None]
        if not candidates:
            taken = sum(p.tags.get("board") == target for p in known)
            raise EdgekitError(f"no free labgrid place for {target}: {taken} place(s) tagged board={target}, all "
                               f"taken; wait, or tag a place with `labgrid-client -p NAME set-tags board={target}`")
    for name in candidates:
        try:
            _run("-p", name, "acquire")
        except EdgekitError:
            if name == candidates[-1]:
                raise
            continue  # taken between the listing and now: the next one
        try:
            yield _port(name)
        finally:
            _run("-p", name, "release")
        return
