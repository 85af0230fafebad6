"""The simulated boards: profiles, memory fit decisions, outputs, target selection, thermal."""
import json
import subprocess
import sys

import numpy as np
import pytest

import ir_models
from edgekit.backends import Coral, LinuxBoard, Microcontroller, open_backend
from edgekit.errors import EdgekitError
from edgekit.runtime import litert
from edgekit.runtime.tflm import run_tflm
from edgekit.sim.arena import plan_arena, round_up
from edgekit.sim.simulate import cost_model, simulate
from edgekit.targets import Connection, choose, load_board
from edgekit.tflite_file import model_of
from reference_models import REFERENCE_MODELS, needs_reference_models
from platforms import needs_tflm

TARGETS = ("nano33ble", "esp32s3", "rpi4", "coral", "stm32l4r5")
KEYS = ("target", "mode", "latency_ms", "latency_ms_p90", "energy_mj", "flash_bytes", "ram_bytes",
        "arena_bytes", "fits", "layers")


@pytest.fixture(scope="module")
def models():
    return {b.__name__: ir_models.int8(b()) for b in (ir_models.cnn, ir_models.ds_block, ir_models.residual)}


@pytest.mark.parametrize("target", TARGETS)
def test_every_board_profiles_generated_models(target, models):
    for name, model in models.items():
        report = simulate(model, target)
        r = report.to_json()
        assert all(k in r for k in KEYS), (target, name)
        assert r["target"] == target and r["mode"] == "simulated" and r["fits"] is True
        assert r["latency_ms"] > 0 and r["latency_ms_p90"] >= r["latency_ms"] and r["energy_mj"] > 0
        assert r["flash_bytes"] >= len(model)
        for layer in r["layers"]:
            assert set(layer) >= {"name", "op", "macs", "latency_ms", "bound"}
            assert layer["bound"] in ("memory", "compute", "overhead")
        assert sum(l["latency_ms"] for l in r["layers"]) <= r["latency_ms"] + 1e-9
        assert json.loads(json.dumps(r)) == r  # the report is plain JSON
        assert (report.target, report.latency_ms, report.fits) == (r["target"], r["latency_ms"], r["fits"])


def test_slower_clock_is_slower_same_core(models):
    # the Nano and the STM32L4R5 share core and kernels: compute scales with the clock
    nano, stm = simulate(models["cnn"], "nano33ble"), simulate(models["cnn"], "stm32l4r5")
    assert nano.iron_law["compute_ms"] == pytest.approx(stm.iron_law["compute_ms"] * 120 / 64, rel=1e-9)


@needs_reference_models
@pytest.mark.parametrize("target,name,ms,arena_in", [("stm32l4r5", "kws_ref_model", 181.9, None),
                                                     ("stm32l4r5", "pretrainedResnet_quant", 704.2, None),
                                                     ("esp32s3", "person_detect", 54.0, "psram")])
def test_calibration_points_are_reproduced(target, name, ms, arena_in):
    """Under the published conditions: the ESP32-S3's 54 ms had its arena in PSRAM (esp-nn README)."""
    r = simulate((REFERENCE_MODELS / f"{name}.tflite").read_bytes(), target, arena_in=arena_in)
    assert r.latency_ms == pytest.approx(ms, rel=0.005)


def test_arena_placed_in_psram_on_request(models):
    """A sketch may put an arena that fits SRAM in PSRAM (ps_malloc): slower, and budgeted there."""
    auto, forced = simulate(models["cnn"], "esp32s3"), simulate(models["cnn"], "esp32s3", arena_in="psram")
    assert auto.arena_in == "sram" and forced.arena_in == "psram"
    assert forced.memory["psram"]["needed"] == forced.arena_bytes == auto.arena_bytes
    assert forced.memory["sram"]["needed"] == auto.memory["sram"]["needed"] - auto.arena_bytes
    assert forced.iron_law["memory_ms"] > auto.iron_law["memory_ms"]
    assert forced.iron_law["compute_ms"] == pytest.approx(auto.iron_law["compute_ms"])
    with pytest.raises(EdgekitError, match="no PSRAM"):
        simulate(models["cnn"], "nano33ble", arena_in="psram")


def test_flash_no_fit_has_exact_bytes():
    model = ir_models.int8(ir_models.wide_dense())
    board = load_board("nano33ble")
    r = simulate(model, "nano33ble")
    need = len(model) + board.num("memory.runtime_flash_bytes")
    assert r.fits is False
    assert r.memory["flash"] == {"needed": need, "available": 983_040, "short_by": need - 983_040}
    assert any("flash" in tip for tip in r.memory["advice"])
    backend = open_backend(board, force="sim")
    backend.load(model_of(model))
    with pytest.raises(EdgekitError, match=f"does not fit .*short by {need - 983_040:,} B"):
        backend.check_fit()


def test_ram_no_fit_has_exact_bytes_and_suggests_psram():
    model = ir_models.int8(ir_models.big_activations())
    board = load_board("nano33ble")
    r = simulate(model, "nano33ble")
    arena = plan_arena(model, "host", "reference").minimum
    scratch = max(plan_arena(model, "arm", "cmsis-nn-dsp").minimum - plan_arena(model, "arm", "reference").minimum, 0)
    # the firmware allocates the planner's arena + kernel scratch + the descriptor's margin, 16-aligned
    allocated = round_up(arena + scratch + board.num("memory.arena_margin_bytes", 0))
    need = allocated + board.num("memory.runtime_ram_bytes")
    assert r.arena_bytes == allocated
    assert r.memory["sram"] == {"needed": need, "available": 262_144, "short_by": need - 262_144}
    assert r.fits is False and any("esp32s3" in tip for tip in r.memory["advice"])


def test_esp32s3_arena_goes_to_psram_and_costs_bandwidth():
    model = ir_models.int8(ir_models.big_activations(size=160))
    r = simulate(model, "esp32s3")
    board = load_board("esp32s3")
    assert r.fits is True and r.arena_in == "psram"
    assert r.memory["psram"]["needed"] == r.arena_bytes
    assert r.arena_bytes + board.num("memory.runtime_ram_bytes") > board.num("memory.data_ram_max_bytes")
    sram_bw, psram_bw = cost_model(board).ram_bw, cost_model(board, arena_in="psram").ram_bw
    assert psram_bw < sram_bw
    act = sum(l["memory_ms"] for l in r.layers)
    assert act > 0 and r.iron_law["memory_ms"] == pytest.approx(act)
    small = simulate(ir_models.int8(ir_models.big_activations(size=48)), "esp32s3")
    assert small.arena_in == "sram"


@needs_tflm
def test_simulated_mcu_outputs_are_tflms(models):
    with open_backend("nano33ble", force="sim") as t:
        t.load(model_of(models["ds_block"]))
        t.flash()
        x = np.random.default_rng(0).integers(-128, 128, (5, 24, 24, 1)).astype(np.int8)
        for a, b in zip(t.infer(x), run_tflm(models["ds_block"], [x]).outputs):
            np.testing.assert_array_equal(a, b)
        assert t.outputs_by() == "TFLite Micro"


def test_simulated_pi_outputs_are_litert(models):
    with open_backend("rpi4", force="sim") as t:
        t.load(model_of(models["cnn"]))
        t.flash()
        x = np.random.default_rng(1).integers(-128, 128, (3, 16, 16, 3)).astype(np.int8)
        np.testing.assert_array_equal(t.infer(x)[0], litert.run(models["cnn"], x, raw=True)[0][0])


def test_target_selection(models, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEKIT_PORT", raising=False)  # a lab's port would name the board instead
    nano = Connection("nano33ble", "serial", "/dev/ttyACM0", "sketch", "2341", "805a")
    t = open_backend("nano33ble", connection=nano)
    assert isinstance(t, Microcontroller) and t.mode == "measured" and "/dev/ttyACM0" in t.why
    assert t.choice.connection == nano and t.board.key == "nano33ble"
    t = open_backend("nano33ble", force="sim", connection=nano)
    assert isinstance(t, Microcontroller) and t.mode == "simulated" and "--sim" in t.why
    t = open_backend("esp32s3")  # nothing is plugged into this machine
    assert isinstance(t, Microcontroller) and t.mode == "simulated" and "no board connected" in t.why
    assert choose(load_board("esp32s3")).why == t.why
    assert isinstance(open_backend("rpi4", force="sim"), LinuxBoard)
    assert isinstance(open_backend("coral", force="sim"), Coral)
    with pytest.raises(EdgekitError, match="--hw: no Seeed XIAO ESP32S3"):
        open_backend("esp32s3", force="hw")
    # a connected Nano without arduino-cli: the firmware project is written, and the message says how
    # to build it (tests must not find arduino-cli on PATH)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    t = open_backend("nano33ble", connection=nano)
    t.load(model_of(models["cnn"]))
    with pytest.raises(EdgekitError, match="arduino-cli"):
        t.flash()
    assert list((tmp_path / "edgekit-build").glob("nano33ble_*/nano33ble_*.ino"))
    # a Coral on this machine: an int8 model that is not compiled for the Edge TPU is refused clearly,
    # as soon as it is loaded (before anything runs)
    coral = Connection("coral", "usb", "usb:2-1", "runtime", "18d1", "9302")
    t = open_backend("coral", connection=coral)
    assert isinstance(t, Coral) and t.mode == "measured"
    with pytest.raises(EdgekitError, match="edgetpu_compiler"):
        t.load(model_of(models["cnn"]))


def test_pi_throttles_under_sustained_load(models):
    hot = simulate(models["cnn"], "rpi4", duration_s=600).thermal
    assert hot["throttle_start_s"] is not None and 0 < hot["throttle_start_s"] < 600
    assert hot["slowdown"] > 1.05 and max(hot["temperature_c"]) <= 81
    cool = simulate(models["cnn"], "rpi4", duration_s=30).thermal
    assert cool["throttle_start_s"] is None and cool["slowdown"] == 1.0


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_cli_profile_json_and_plot(tmp_path, models):
    path = tmp_path / "m.tflite"
    path.write_bytes(models["residual"])
    res = _cli("profile", path, "--target", "esp32s3", "--json", "--plot", tmp_path / "layers.png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert all(k in r for k in KEYS) and r["mode"] == "simulated"
    assert "esp32s3: simulated (no board connected)" in res.stderr
    assert (tmp_path / "layers.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_deploy_converts_then_fails_cleanly_when_too_big(tmp_path):
    from edgekit.export.tflite_writer import write_tflite
    g = ir_models.wide_dense()
    (tmp_path / "big.tflite").write_bytes(write_tflite(g))  # float: deploy converts it first
    np.save(tmp_path / "calib.npy", ir_models.calibration(g, 8))
    res = _cli("deploy", tmp_path / "big.tflite", "--target", "nano33ble", "--calib", tmp_path / "calib.npy",
               cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the model does not fit") and "short by" in last and "To fit:" in last


def test_cli_deploy_on_simulated_board(tmp_path, models):
    path = tmp_path / "m.tflite"
    path.write_bytes(models["cnn"])
    res = _cli("deploy", path, "--target", "nano33ble", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["mode"] == "simulated" and r["outputs_check"]["max_lsb"] <= 1 and r["fits"]


@needs_reference_models
def test_descriptors_hold_what_the_fit_gives():
    from edgekit.sim import fit
    cmsis, coral = fit.fit_cmsis(REFERENCE_MODELS), fit.fit_coral()  # the tests' models, however edgekit is installed
    esp = fit.fit_esp(cmsis, REFERENCE_MODELS)
    for key in ("nano33ble", "stm32l4r5"):
        b = load_board(key)
        assert b.num("latency.mac_cycles") == pytest.approx(cmsis["mac_cycles"], rel=1e-3)
        assert b.num("latency.output_cycles") == pytest.approx(cmsis["output_cycles"], rel=1e-3)
    b = load_board("esp32s3")
    assert b.num("latency.mac_cycles") == pytest.approx(esp["mac_cycles"], rel=1e-3)
    assert b.num("latency.output_cycles") == pytest.approx(esp["output_cycles"], rel=1e-3)
    for kind, speed in esp["speed"].items():
        assert b.num(f"latency.speed.{kind}", 1.0) == pytest.approx(speed, rel=1e-3)
    c = load_board("coral")
    assert c.num("latency.efficiency") == pytest.approx(coral["efficiency"], rel=1e-3)
    assert c.num("latency.host_overhead_s") == pytest.approx(coral["pi4_overhead_s"], rel=1e-3)
    assert c.num("latency.usb3_bw_bytes_per_s") == pytest.approx(coral["usb3_bw"], rel=1e-2)
    assert c.num("latency.usb2_bw_bytes_per_s") == pytest.approx(coral["usb2_bw"], rel=1e-2)


def test_deploy_cycle_over_a_pty(models):
    """The deploy path's own code (flash, output check, profile) against a virtual board on a real pty."""
    from edgekit.protocol import BoardClient, VirtualBoard, serve_pty

    board = VirtualBoard("nano33ble", models["ds_block"])
    path, stop = serve_pty(board)

    class PtyBackend(Microcontroller):
        def _connect_simulator(self):
            self.via, self.client = path, BoardClient(path, pace_s=0)

    try:
        nano = load_board("nano33ble")
        t = PtyBackend(nano, choose(nano, "sim"))
        t.load(model_of(models["ds_block"]), runs=5)
        t.flash()
        assert t.verify_outputs()["max_lsb"] == 0
        r = t.profile()
        assert r.via == path and r.mode == "simulated" and r.runs == 5
        assert r.latency_ms == pytest.approx(simulate(models["ds_block"], "nano33ble").latency_ms, abs=1e-3)
        assert r.board_info["board"] == "nano33ble"
        t.close()
    finally:
        stop()
        board.close()
