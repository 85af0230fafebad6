"""`--lab labgrid`: a real labgrid coordinator and exporter on localhost, exporting a virtual board
served on a pty by `edgekit board serve` (ser2net serves it over RFC 2217). edgekit acquires a place
tagged with the board kind, profiles the model on it, and releases the place, also after Ctrl-C.
labgrid lives in its own environment (.ci/run makes .venv-lab); without it or ser2net these tests
are skipped, saying which is missing."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ir_models
from edgekit.errors import EdgekitError
from edgekit.targets import lab

CLIENT = os.environ.get(lab.CLIENT_ENV) or shutil.which("labgrid-client")
BIN = Path(CLIENT).parent if CLIENT else None
MISSING = [what for what, ok in (
    ("labgrid (set EDGEKIT_LABGRID_CLIENT or put labgrid-client on PATH)", CLIENT and os.path.exists(CLIENT)),
    ("ser2net", shutil.which("ser2net") or os.path.exists("/usr/sbin/ser2net"))) if not ok]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"no lab here: {', '.join(MISSING)} missing")
EDGEKIT = [sys.executable, "-m", "edgekit"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(check, seconds=30, what="the lab"):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not come up within {seconds} s")


@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    """A coordinator, a virtual nano33ble on a pty, an exporter publishing it, and a place
    'nano-a' tagged board=nano33ble. Yields (model path, environment for edgekit)."""
    model = tmp_path / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    coordinator = f"127.0.0.1:{_free_port()}"
    env = dict(os.environ, LG_COORDINATOR=coordinator, **{lab.CLIENT_ENV: CLIENT})
    monkeypatch.setenv("LG_COORDINATOR", coordinator)
    monkeypatch.setenv(lab.CLIENT_ENV, CLIENT)
    env["PATH"] = "/usr/sbin:" + env.get("PATH", "")  # the exporter starts ser2net
    procs = []
    try:
        procs.append(subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", coordinator], cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        board = subprocess.Popen(EDGEKIT + ["board", "serve", "--target", "nano33ble", "--model", str(model)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        procs.append(board)
        pty = board.stdout.readline().strip()
        assert pty.startswith("/dev/"), pty
        (tmp_path / "exporter.yaml").write_text(f'nano-1:\n  RawSerialPort:\n    port: "{pty}"\n    speed: 115200\n')
        time.sleep(1)  # the coordinator listening
        procs.append(subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", coordinator, "-n", "lab-pc-1",
                                       "--hostname", "127.0.0.1", "exporter.yaml"], cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _until(lambda: "lab-pc-1/nano-1" in lab._run("resources"), what="the exporter's resource")
        for args in (("create",), ("add-match", "lab-pc-1/nano-1/*"), ("set-tags", "board=nano33ble")):
            lab._run("-p", "nano-a", *args)
        yield model, env
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _holder(name="nano-a"):
    return next(p for p in lab.places() if p.name == name).acquired


def test_profile_runs_on_a_lab_place_and_releases_it(lab_env):
    model, env = lab_env
    assert [(p.name, p.tags, p.acquired) for p in lab.places()] == [("nano-a", {"board": "nano33ble"}, None)]
    r = subprocess.run(EDGEKIT + ["profile", str(model), "--target", "nano33ble", "--lab", "labgrid", "--runs", "3",
                                  "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "labgrid place 'nano-a' at rfc2217://127.0.0.1:" in r.stderr
    report = json.loads(r.stdout)
    assert report["target"] == "nano33ble" and report["latency_ms"] > 0
    assert _holder() is None  # released


def test_targets_lists_the_lab(lab_env):
    _, env = lab_env
    listed = lambda: json.loads(subprocess.run(EDGEKIT + ["targets", "--lab", "labgrid", "--json"],  # noqa: E731
                                               capture_output=True, text=True, env=env, timeout=60).stdout)
    assert listed() == {"places": [{"place": "nano-a", "board": "nano33ble", "tags": {"board": "nano33ble"},
                                    "acquired_by": None}]}
    lab._run("-p", "nano-a", "acquire")
    assert listed()["places"][0]["acquired_by"]
    lab._run("-p", "nano-a", "release")


def test_ctrl_c_releases_the_place(lab_env):
    model, env = lab_env
    p = subprocess.Popen(EDGEKIT + ["profile", str(model), "--target", "nano33ble", "--lab", "labgrid", "--runs",
                                    "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _until(lambda: _holder() is not None, what="edgekit's acquisition")
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert _holder() is None


def test_no_free_place_is_one_line_and_a_named_place_must_exist(lab_env):
    lab._run("-p", "nano-a", "acquire")  # someone else has the lab's only Nano
    with pytest.raises(EdgekitError, match="no free labgrid place for nano33ble: 1 place"):
        with lab.lab_port("nano33ble"):
            pass
    lab._run("-p", "nano-a", "release")
    with pytest.raises(EdgekitError, match="labgrid has no place 'nano-z'"):
        with lab.lab_port("nano33ble", "nano-z"):
            pass
    with lab.lab_port("esp32s3", "nano-a") as (place, url):  # by name, whatever its tag
        assert place == "nano-a" and url.endswith("?ign_set_control") and _holder() is not None
    assert _holder() is None
