"""A real labgrid lab on localhost, for the lab tests and bench/olympics.py: a coordinator, and
exporters each publishing virtual boards (`edgekit board serve` on ptys, served over RFC 2217 by
ser2net, which the exporter starts), with a place per board tagged with its kind.

labgrid lives in its own environment (.ci/run makes .venv-lab): its client comes from
$EDGEKIT_LABGRID_CLIENT or PATH, its coordinator and exporter from the same folder."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from edgekit.targets import lab

CLIENT = os.environ.get(lab.CLIENT_ENV) or shutil.which("labgrid-client")
MISSING = [what for what, ok in (
    ("labgrid (set EDGEKIT_LABGRID_CLIENT or put labgrid-client on PATH)", CLIENT and os.path.exists(CLIENT)),
    ("ser2net", shutil.which("ser2net") or os.path.exists("/usr/sbin/ser2net"))) if not ok]
EDGEKIT = [sys.executable, "-m", "edgekit"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check, seconds=30, what="the lab"):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not come up within {seconds} s")


class VirtualLab:
    """with VirtualLab(folder) as lab_: lab_.exporter("lab-pc-1", {"nano-1": ("nano33ble", model)}) ..."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.coordinator = f"127.0.0.1:{free_port()}"
        self.env = dict(os.environ, LG_COORDINATOR=self.coordinator, **{lab.CLIENT_ENV: CLIENT})
        self.env["PATH"] = "/usr/sbin:" + self.env.get("PATH", "")  # the exporter starts ser2net
        self.bin = Path(CLIENT).parent
        self.procs: list[subprocess.Popen] = []
        self.boards: dict[str, subprocess.Popen] = {}  # place -> its `edgekit board serve`
        self.ptys: dict[str, str] = {}                 # place -> its board's pseudo-terminal

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in ("LG_COORDINATOR", lab.CLIENT_ENV)}
        os.environ["LG_COORDINATOR"] = self.coordinator  # lab.* below, called in this process
        os.environ[lab.CLIENT_ENV] = CLIENT
        self.procs.append(subprocess.Popen([str(self.bin / "labgrid-coordinator"), "-l", self.coordinator],
                                           cwd=self.folder, env=self.env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        until(lambda: _listening(self.coordinator), what="the coordinator")
        return self

    def exporter(self, name: str, boards: dict[str, tuple[str, Path]]) -> None:
        """Start an exporter `name` publishing one virtual board per entry {place: (kind, model)},
        and a place of that name per board, tagged board=kind. A model of None: the stand-in, which
        answers as edgekit's real firmware does."""
        lines = []
        for place, (kind, model) in boards.items():
            runs = ["--model", str(model)] if model else ["--stand-in"]
            board = subprocess.Popen(EDGEKIT + ["board", "serve", "--target", kind, *runs],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env)
            self.procs.append(board)
            self.boards[place] = board
            pty = board.stdout.readline().strip()
            assert pty.startswith("/dev/"), pty
            self.ptys[place] = pty
            lines.append(f'{place}:\n  RawSerialPort:\n    port: "{pty}"\n    speed: 115200\n')
        config = self.folder / f"{name}.yaml"
        config.write_text("".join(lines))
        self.procs.append(subprocess.Popen([str(self.bin / "labgrid-exporter"), "-c", self.coordinator, "-n", name,
                                            "--hostname", "127.0.0.1", config.name], cwd=self.folder, env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for place, (kind, _) in boards.items():
            until(lambda: f"{name}/{place}" in lab._run("resources"), what=f"{name}'s {place}")
            for args in (("create",), ("add-match", f"{name}/{place}/*"), ("set-tags", f"board={kind}")):
                lab._run("-p", place, *args)

    def unplug(self, place: str) -> None:
        """The board of `place` goes away (its virtual board stops, as a board pulled out)."""
        self.boards[place].kill()
        self.boards[place].wait()

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False
