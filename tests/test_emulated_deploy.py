"""`edgekit deploy --emu`: the real firmware and TFLite Micro kernels on QEMU's Cortex-M4, through the
same command, backend and protocol as a board.

Skipped, saying why, without QEMU, the Arm toolchain with newlib, or the TFLite Micro Arduino library
(tests and CI find it at ../shared/vendor/Arduino_TensorFlowLite). The library is compiled once per
version, flags and compiler and cached (edgekit.emulator.library), so only the first test pays that.
"""
import contextlib
import io
import json
from pathlib import Path

import pytest

import ir_models
from edgekit import emulator
from edgekit.cli import main
from edgekit.emulator import library
from edgekit.targets import load_board
from platforms import needs_tflm

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
OK, WHY = emulator.available("nano33ble")
pytestmark = [pytest.mark.skipif(not OK, reason=f"no emulated board here: {WHY}"),
              pytest.mark.filterwarnings(r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning")]


def run(argv, capsys):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue(), capsys.readouterr().err


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    if not (SHARED / "kws_ref_model.tflite").exists():
        pytest.skip("../shared/models/kws_ref_model.tflite is not here")
    return SHARED / "kws_ref_model.tflite"


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
def test_deploy_kws_on_the_emulated_nano(kws, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["deploy", str(kws), "--target", "nano33ble", "--emu", "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["mode"] == "emulated" and "emulated" in r["selected"] and r["via"].startswith("socket://127.0.0.1:")
    # the board's own kernels give host TFLite Micro's outputs, byte for byte, on 8 inputs
    assert r["outputs_check"] == {"samples": 8, "max_lsb": 0, "reference": "TFLite Micro on this machine"}
    assert r["board_info"]["firmware"].startswith("edgekit-emulated ")
    # flash and RAM of the linked ELF; the arena the firmware allocates and what the 32-bit core uses
    image = r["image"]
    assert r["flash_bytes"] == image["text_bytes"] + image["data_bytes"] > kws.stat().st_size
    assert r["ram_bytes"] == image["data_bytes"] + image["bss_bytes"] > r["arena_bytes"]
    used = r["board_info"]["arena_used"]
    assert 0 < used <= r["arena_bytes"] and f"{used:,} B" in r["arena_source"]
    assert image["flags"].startswith(load_board("nano33ble").text("emulation.cflags"))
    # instructions: per layer and in total, and milliseconds through the fitted cycles per instruction
    per_layer = [row["instructions"] for row in r["layers"]]
    assert len(per_layer) == 13 and all(n > 0 for n in per_layer)
    assert 0.9 * r["instructions"] <= sum(per_layer) <= r["instructions"]  # the interpreter's own work is the rest
    board = load_board("nano33ble")
    cpi = board.num("latency.emulated_cycles_per_instruction")
    assert r["latency_ms"] == pytest.approx(r["instructions"] * cpi / board.clock_hz * 1e3)
    assert "cycles per instruction" in r["latency_source"]


def test_a_second_model_reuses_the_compiled_library(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "residual_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.residual()))
    archives = sorted(library.cache_root().rglob("*.a"))
    assert archives, "the library is built by the test before this one"
    before = {p: p.stat().st_mtime_ns for p in archives}
    code, out, err = run(["profile", str(model), "--target", "nano33ble", "--emu", "--json"], capsys)
    assert code == 0, err
    assert "compiling" not in err  # no library source was compiled again
    assert {p: p.stat().st_mtime_ns for p in sorted(library.cache_root().rglob("*.a"))} == before
    assert json.loads(out)["mode"] == "emulated"


def test_a_model_too_big_for_the_ram_is_refused_as_the_simulator_refuses_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "big_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.big_activations(size=160)))
    said = {}
    for mode in ("--sim", "--emu"):
        code, out, err = run(["deploy", str(model), "--target", "nano33ble", mode], capsys)
        assert code == 2 and out == ""
        said[mode] = [line for line in err.splitlines() if line.startswith("error:")]
    assert said["--sim"] == said["--emu"] and len(said["--emu"]) == 1
    assert "does not fit" in said["--emu"][0] and "short by" in said["--emu"][0]
    assert not (tmp_path / "edgekit-build").exists()  # refused before anything was built


def test_emu_names_what_it_cannot_emulate(capsys, tmp_path):
    model = tmp_path / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    code, _, err = run(["profile", str(model), "--target", "esp32s3", "--emu"], capsys)
    assert code == 2 and "cannot be emulated" in err and "--sim" in err


def test_the_simulator_uses_the_instructions_an_emulated_run_counted(kws, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["profile", str(kws), "--target", "nano33ble", "--json"]
    before = json.loads(run(argv + ["--sim"], capsys)[1])
    assert "instructions" not in before  # nothing counted yet: the analytical model
    emulated = json.loads(run(argv + ["--emu"], capsys)[1])
    after = json.loads(run(argv + ["--sim"], capsys)[1])
    assert after["mode"] == "simulated" and after["instructions"] == emulated["instructions"]
    assert after["latency_ms"] == pytest.approx(emulated["latency_ms"]) != before["latency_ms"]
    assert [row["instructions"] for row in after["layers"]] == [row["instructions"] for row in emulated["layers"]]
    assert "counted on the emulated board" in after["latency_source"]


def test_the_olympics_score_on_the_emulated_board(tmp_path):
    """A track with `emulate = true`: the Nano's row comes from the real kernels under QEMU (its outputs
    for the whole test set), the ESP32-S3's from its simulation; the page labels each."""
    from edgekit.olympics import demo, runner
    from edgekit.olympics.store import Store
    from edgekit.olympics.tracks import load_track
    path = demo.write_track(tmp_path)
    text = path.read_text()
    path.write_text("emulate = true\n" + text)  # top-level keys come before the first table
    track = load_track(path)
    assert track.emulate
    good = demo.model_file(demo.trained_mlp(32), "int8", tmp_path / "subs" / "good", demo.digits()[0][:200])
    demo.write_submission(good.parent, "good", ["int8 PTQ"])
    store = Store(tmp_path / "results.sqlite", key=b"test key")
    summary = runner.run(tmp_path / "subs", track, ["nano33ble", "esp32s3"], store, force="emu", runs=2)
    rows = {r["target"]: r for r in summary["rows"]}
    assert rows["nano33ble"]["status"] == "ok" and rows["nano33ble"]["mode"] == "emulated", rows["nano33ble"]["reason"]
    assert rows["nano33ble"]["detail"]["outputs_by"] == "the board (Arduino Nano 33 BLE Sense (Rev1, Rev2), emulated)"
    assert rows["esp32s3"]["mode"] == "simulated"
    # the same int8 model: the emulated kernels' accuracy equals host TFLite Micro's on the simulated board
    assert rows["nano33ble"]["metric_value"] == rows["esp32s3"]["metric_value"] > 0.8


def test_board_serve_emu_prints_a_port_any_client_can_use(kws, tmp_path):
    import signal
    import subprocess
    import sys
    from edgekit.protocol import BoardClient
    server = subprocess.Popen([sys.executable, "-m", "edgekit", "board", "serve", "--target", "nano33ble",
                               "--model", str(kws), "--emu"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:"), server.stderr.read() if server.poll() is not None else url
        with BoardClient(url) as board:
            info = board.info()
        assert info["firmware"].startswith("edgekit-emulated ") and info["board"] == "nano33ble"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
        assert "stopped" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
