"""`--lab labgrid`: a real labgrid coordinator and exporter on localhost, exporting a virtual board
served on a pty by `edgekit board serve` (ser2net serves it over RFC 2217). edgekit acquires a place
tagged with the board kind, profiles the model on it, and releases the place, also after Ctrl-C.
labgrid lives in its own environment (.ci/run makes .venv-lab); without it or ser2net these tests
are skipped, saying which is missing."""
import ast
import json
import signal
import subprocess
import sys
import time

import pytest

import ir_models
from edgekit.errors import EdgekitError
from edgekit.targets import lab
from virtual_lab import EDGEKIT, MISSING, VirtualLab, until as _until
from platforms import sigint_default

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"no lab here: {', '.join(MISSING)} missing")


@pytest.fixture
def lab_env(tmp_path):
    """A coordinator, an exporter publishing a virtual nano33ble, and a place 'nano-a' tagged
    board=nano33ble. Yields (model path, environment for edgekit)."""
    model = tmp_path / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    with VirtualLab(tmp_path) as virtual:
        virtual.exporter("lab-pc-1", {"nano-a": ("nano33ble", model)})
        yield model, virtual.env


def _ssh_calls(bin_dir):
    return [ast.literal_eval(line) for line in (bin_dir / "ssh.log").read_text().splitlines()]


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
                                    "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=sigint_default)  # the Ctrl-C below must reach it
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
    with lab.lab_port("esp32s3", "nano-a") as port:  # by name, whatever its tag
        assert port.place == "nano-a" and port.url.endswith("?ign_set_control") and _holder() is not None
        assert port.exporter == "lab-pc-1" and port.host == "127.0.0.1" and port.device.startswith("/dev/pts/")
    assert _holder() is None


def _teams(root, n):
    """n teams' int8 digits MLPs, and the demo track with a 20-sample test set (every sample crosses
    the lab's serial link four times)."""
    from edgekit.olympics import demo
    track = demo.write_track(root, test_limit=20)
    calib = demo.digits()[0][:200]
    for i in range(n):
        demo.model_file(demo.trained_mlp(hidden=[16, 32][i % 2], epochs=3, seed=i), "int8", root / "subs" / f"team{i}",
                        calib)
        demo.write_submission(root / "subs" / f"team{i}", f"team{i}", ["int8 PTQ"])
    return track, root / "subs/team0/model.tflite"


def _olympics(root, track, env, db):
    return subprocess.Popen(EDGEKIT + ["olympics", "run", str(root / "subs"), "--track", str(track), "--targets",
                                       "nano33ble,esp32s3", "--lab", "labgrid", "--db", str(db), "--runs", "2",
                                       "--json"], env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=sigint_default)  # a test's Ctrl-C must reach it


def _result_seen(proc, text: str = "", seconds=120) -> None:
    """Read the run's result lines (stderr) until one with `text` has come."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        if line.startswith(("✓", "✗")) and text in line:
            return
    raise AssertionError(f"no result line with {text!r} came")


def test_olympics_runs_on_every_place_and_survives_a_lost_board(tmp_path):
    """2 virtual Nanos and 2 virtual ESP32-S3s on two exporters: 8 teams x 2 kinds, each place
    running one evaluation at a time; nano-b's board goes away mid-run and costs no result."""
    track, model = _teams(tmp_path, 8)
    with VirtualLab(tmp_path) as virtual:
        virtual.exporter("lab-pc-1", {"nano-a": ("nano33ble", model), "esp-a": ("esp32s3", model)})
        virtual.exporter("lab-pc-2", {"nano-b": ("nano33ble", model), "esp-b": ("esp32s3", model)})
        run = _olympics(tmp_path, track, virtual.env, tmp_path / "results.sqlite")
        try:
            _result_seen(run, "place nano-b")
            virtual.unplug("nano-b")
            unplugged = time.time()
            out, err = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, err
        assert all(p.acquired is None for p in lab.places())  # every place released
    summary = json.loads(out)
    rows = summary["rows"]
    assert summary["stored"] == 16 and summary["not_run"] == [] and {r["status"] for r in rows} == {"ok"}
    assert sorted((r["submission"], r["target"]) for r in rows) == sorted(
        (f"team{i}", t) for i in range(8) for t in ("nano33ble", "esp32s3"))
    exporter = {"nano-a": "lab-pc-1", "esp-a": "lab-pc-1", "nano-b": "lab-pc-2", "esp-b": "lab-pc-2"}
    for r in rows:
        where = r["detail"]["where"]
        assert where["ran_on"] == "labgrid" and where["exporter"] == exporter[where["place"]], r
        assert where["place"].startswith("nano" if r["target"] == "nano33ble" else "esp"), r
        assert r["mode"] == "simulated"  # virtual boards: simulated, wherever they are served
    assert {r["detail"]["where"]["place"] for r in rows} == set(exporter)  # every place worked
    for place in exporter:  # one evaluation at a time on each board
        spans = sorted((r["detail"]["began"], r["detail"]["ended"]) for r in rows
                       if r["detail"]["where"]["place"] == place)
        assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), (place, spans)
    retried = [r for r in rows if r["detail"].get("retried_after")]
    assert len(retried) == 1 and "nano-b lost its board" in retried[0]["detail"]["retried_after"], retried
    assert retried[0]["detail"]["where"]["place"] == "nano-a"
    assert not [r for r in rows if r["detail"]["where"]["place"] == "nano-b" and r["detail"]["began"] > unplugged]


def test_ctrl_c_stops_an_olympics_run_and_frees_the_lab(tmp_path):
    track, model = _teams(tmp_path, 4)
    with VirtualLab(tmp_path) as virtual:
        virtual.exporter("lab-pc-1", {"nano-a": ("nano33ble", model), "esp-a": ("esp32s3", model)})
        run = _olympics(tmp_path, track, virtual.env, tmp_path / "results.sqlite")
        try:
            _result_seen(run)
            run.send_signal(signal.SIGINT)
            _, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 2 and "interrupted; the results so far are stored" in err, err
        assert all(p.acquired is None for p in lab.places())


def test_a_real_board_elsewhere_is_flashed_on_its_lab_pc_over_ssh(tmp_path):
    """A board that answers as edgekit's real firmware (the stand-in) with another model: `deploy
    --lab` runs `edgekit deploy --port DEVICE` on the lab PC that serves it, over ssh (a fake ssh
    running it here), and that machine's one-line answer comes back; the place is released."""
    from test_pi_remote import fake_scp, fake_ssh
    model = tmp_path / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    bin_dir, pybin, home = (tmp_path / d for d in ("bin", "pybin", "home"))
    for d in (bin_dir, pybin, home):
        d.mkdir()
    (pybin / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (pybin / "python3").chmod(0o755)
    fake_ssh(bin_dir, home, f"{pybin}:/usr/bin:/bin")
    fake_scp(bin_dir)
    with VirtualLab(tmp_path) as virtual:
        virtual.exporter("lab-pc-1", {"nano-a": ("nano33ble", None)})  # the stand-in firmware
        env = dict(virtual.env, PATH=f"{bin_dir}:{virtual.env['PATH']}")
        r = subprocess.run(EDGEKIT + ["deploy", str(model), "--target", "nano33ble", "--lab", "labgrid"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert _holder() is None
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    # the lab PC tried to build and flash it, and said why it could not (here: no arduino-cli)
    assert len(errors) == 1 and errors[0].startswith("error: on 127.0.0.1: error: arduino-cli"), r.stderr
    (call,) = [c for c in _ssh_calls(bin_dir)]
    assert call[-2] == "127.0.0.1" and " deploy /tmp/edgekit-" in call[-1] and "--target nano33ble" in call[-1]
    assert "--port /dev/pts/" in call[-1]  # the board's device on the lab PC, from the exporter
