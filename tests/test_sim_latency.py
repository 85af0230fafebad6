"""The simulator's absolute numbers: latency, energy and memory placement worked out by hand.

The latency model (src/edgekit/sim/latency.py) is the Iron Law per layer:
    T = weight bytes / flash bandwidth + activation bytes / RAM bandwidth            (memory)
      + (ops x mac_cycles + outputs x output_cycles) / speed[kind] / (clock x threads) (compute)
      + op_overhead_cycles / clock                                                   (overhead)
with each board's numbers from its descriptor (targets/*.toml, every one with its source). The
STM32L4R5 and the ESP32-S3 are checked against their published measurements in tests/test_sim.py
(test_calibration_points_are_reproduced). The Raspberry Pi 4 and the Nano 33 BLE have no published
point: for them the checks below pin edgekit's *prediction* (the formula on the descriptor's
physics, computed here by hand), not a measurement. A change to a descriptor shows up here first:
update PHYSICS, with the descriptor's source, and the pinned milliseconds with it.
"""
import dataclasses

import pytest

import ir_models
from edgekit.sim.latency import layer_time
from edgekit.sim.layers import layers
from edgekit.sim.simulate import cost_model, simulate
from edgekit.targets import load_board
from reference_models import REFERENCE_MODELS, needs_reference_models

# Each board's physics as its descriptor states it (descriptor key in the comments). ram_bw is the
# bandwidth of the memory the arena is in: SRAM on the MCUs (PSRAM separately), DRAM on the Pi.
PHYSICS = {
    "nano33ble": dict(clock=64e6,      # chip.clock_hz
                      flash_bw=85_333_333, ram_bw=256e6,  # memory.flash_bw / sram_bw_bytes_per_s
                      mac=5.9751, out=80.988, overhead=1000, threads=1,  # latency.*, compute.threads
                      active_w=0.0099),  # power.active_w
    "stm32l4r5": dict(clock=120e6, flash_bw=160e6, ram_bw=480e6,
                      mac=5.9751, out=80.988, overhead=1000, threads=1, active_w=0.041),
    "esp32s3": dict(clock=240e6, flash_bw=40e6, ram_bw=3.84e9,
                    mac=1.6801, out=22.7724, overhead=1000, threads=1, active_w=0.290),
    "rpi4": dict(clock=1.5e9, flash_bw=5.56e9, ram_bw=5.56e9,  # both from memory.dram_bw_bytes_per_s
                 mac=0.25, out=2.0, overhead=15000, threads=4, active_w=6.4),
}
ESP32S3_PSRAM_BW = 160e6  # memory.psram_bw_bytes_per_s


def test_the_descriptors_hold_the_physics_these_checks_use():
    for key, p in PHYSICS.items():
        b = load_board(key)
        ram = "memory.dram_bw_bytes_per_s" if key == "rpi4" else "memory.sram_bw_bytes_per_s"
        flash = "memory.dram_bw_bytes_per_s" if key == "rpi4" else "memory.flash_bw_bytes_per_s"
        got = dict(clock=b.num("chip.clock_hz"), flash_bw=b.num(flash), ram_bw=b.num(ram),
                   mac=b.num("latency.mac_cycles"), out=b.num("latency.output_cycles"),
                   overhead=b.num("latency.op_overhead_cycles"), threads=b.num("compute.threads"),
                   active_w=b.num("power.active_w"))
        assert got == pytest.approx(p), f"targets/{key}.toml changed: update PHYSICS and the pinned predictions"
    assert load_board("esp32s3").num("memory.psram_bw_bytes_per_s") == ESP32S3_PSRAM_BW


# -- one 3x3 conv layer, counted by hand -----------------------------------------------------------
# input 32x32x16, 32 filters 3x3, SAME, stride 1: 32x32x32 outputs
CONV_MACS = 32 * 32 * 32 * (3 * 3 * 16)      # 4,718,592 multiply-accumulates
CONV_OUTPUTS = 32 * 32 * 32                  # 32,768 int8 outputs
CONV_WEIGHT_BYTES = 32 * 3 * 3 * 16 + 4 * 32  # int8 filters + int32 biases: 4,736 B
CONV_ACT_BYTES = 32 * 32 * 16 + 32 * 32 * 32  # int8 input read + output written: 49,152 B


@pytest.fixture(scope="module")
def conv_model():
    b = ir_models.Builder((1, 32, 32, 16), 5, "conv")
    b.conv("conv", 32)
    return ir_models.int8(b.done())


def _by_hand(p, ram_bw=None):
    """(memory, compute, overhead) in ms for the conv layer on a board with physics p."""
    memory = CONV_WEIGHT_BYTES / p["flash_bw"] + CONV_ACT_BYTES / (ram_bw or p["ram_bw"])
    compute = (CONV_MACS * p["mac"] + CONV_OUTPUTS * p["out"]) / (p["clock"] * p["threads"])
    overhead = p["overhead"] / p["clock"]
    return memory * 1e3, compute * 1e3, overhead * 1e3


def test_the_conv_layer_is_counted_as_by_hand(conv_model):
    (layer,) = layers(conv_model)
    assert (layer.op, layer.kind, layer.macs, layer.ops, layer.outputs) == \
        ("CONV_2D", "conv", CONV_MACS, CONV_MACS, CONV_OUTPUTS)
    assert (layer.weight_bytes, layer.act_bytes) == (CONV_WEIGHT_BYTES, CONV_ACT_BYTES)


@pytest.mark.parametrize("target", sorted(PHYSICS))
def test_one_conv_layer_latency_and_energy_by_hand(target, conv_model):
    """Each Iron Law term of one 3x3 conv layer, and energy = active power x latency."""
    p = PHYSICS[target]
    memory, compute, overhead = _by_hand(p)
    r = simulate(conv_model, target)
    (row,) = r.layers
    assert row["memory_ms"] == pytest.approx(memory, rel=1e-6)
    assert row["compute_ms"] == pytest.approx(compute, rel=1e-6)
    assert row["overhead_ms"] == pytest.approx(overhead, rel=1e-6)
    assert r.latency_ms == pytest.approx(memory + compute + overhead, rel=1e-6)
    assert r.energy_mj == pytest.approx(p["active_w"] * (memory + compute + overhead), rel=1e-6)  # W x ms = mJ


def test_esp32s3_arena_in_psram_reads_activations_at_psram_bandwidth(conv_model):
    p = PHYSICS["esp32s3"]
    memory, compute, overhead = _by_hand(p, ram_bw=ESP32S3_PSRAM_BW)
    (row,) = simulate(conv_model, "esp32s3", arena_in="psram").layers
    assert row["memory_ms"] == pytest.approx(memory, rel=1e-6)
    assert row["compute_ms"] == pytest.approx(compute, rel=1e-6)


def test_pi_compute_term_scales_with_one_over_threads(conv_model):
    """XNNPACK shares a compute-bound layer between the Pi's threads: 4 threads, a quarter of one's time."""
    (layer,) = layers(conv_model)
    m = cost_model(load_board("rpi4"))
    assert m.threads == 4
    times = {n: layer_time(layer, dataclasses.replace(m, threads=n)) for n in (1, 2, 4)}
    assert times[4].bound == "compute"
    assert times[1].compute_s == pytest.approx(2 * times[2].compute_s, rel=1e-9)
    assert times[1].compute_s == pytest.approx(4 * times[4].compute_s, rel=1e-9)
    assert {t.memory_s for t in times.values()} == {times[1].memory_s}  # threads do not widen the memory bus
    p = PHYSICS["rpi4"]
    assert times[1].compute_s == pytest.approx((CONV_MACS * p["mac"] + CONV_OUTPUTS * p["out"]) / p["clock"])


# -- the reference models ------------------------------------------------------------------------
# What edgekit counts in each model (summed over its layers; reshapes cost no compute):
# layers, ops (MACs, or elements for other ops), outputs, weight bytes, activation bytes.
COUNTS = {
    "kws_ref_model": (13, 2_664_780, 72_088, 24_376, 144_782),
    "pretrainedResnet_quant": (16, 12_563_082, 114_772, 78_752, 273_694),
    "person_detect": (31, 7_160_194, 231_812, 218_928, 472_842),
}
# edgekit's predictions (not measurements: no published Nano 33 BLE or Pi 4 CPU latency exists for
# these models), as the formula gives them from COUNTS and PHYSICS.
PREDICTED_MS = {
    ("nano33ble", "kws_ref_model"): 341.064,
    ("nano33ble", "pretrainedResnet_quant"): 1320.380,
    ("nano33ble", "person_detect"): 966.723,
    ("rpi4", "kws_ref_model"): 0.29549,
    ("rpi4", "pretrainedResnet_quant"): 0.78511,
    ("rpi4", "person_detect"): 0.81003,
}


@needs_reference_models
@pytest.mark.parametrize("target,name", sorted(PREDICTED_MS))
def test_reference_model_predictions_are_pinned(target, name):
    data = (REFERENCE_MODELS / f"{name}.tflite").read_bytes()
    ls = layers(data)
    n, ops, outs, wbytes, abytes = COUNTS[name]
    assert (len(ls), sum(l.ops for l in ls if l.kind != "reshape"), sum(l.outputs for l in ls if l.kind != "reshape"),
            sum(l.weight_bytes for l in ls), sum(l.act_bytes for l in ls)) == COUNTS[name]
    p = PHYSICS[target]
    by_hand = 1e3 * (wbytes / p["flash_bw"] + abytes / p["ram_bw"]
                     + (ops * p["mac"] + outs * p["out"]) / (p["clock"] * p["threads"]) + n * p["overhead"] / p["clock"])
    assert by_hand == pytest.approx(PREDICTED_MS[target, name], rel=1e-4)
    assert simulate(data, target).latency_ms == pytest.approx(by_hand, rel=1e-6)


@needs_reference_models
@pytest.mark.parametrize("name,energy_uj", [("kws_ref_model", 7374), ("pretrainedResnet_quant", 29207)])
def test_stm32l4r5_energy_matches_mlperf_tiny(name, energy_uj):
    """MLPerf Tiny v0.5 reference energy (median energy cost, ../shared/facts/published-latency.md)."""
    r = simulate((REFERENCE_MODELS / f"{name}.tflite").read_bytes(), "stm32l4r5")
    assert r.energy_mj * 1e3 == pytest.approx(energy_uj, rel=0.02)


# -- where the ESP32-S3's arena goes -------------------------------------------------------------
def test_esp32s3_arena_that_fits_only_without_the_runtime_goes_to_psram():
    """The sketch's data RAM (320 KB) holds the runtime (stacks, heap, TFLM) and the arena: an arena
    that fits it alone but not beside the runtime must go to PSRAM, where it fits."""
    board = load_board("esp32s3")
    data_ram, runtime = board.num("memory.data_ram_max_bytes"), board.num("memory.runtime_ram_bytes")
    r = simulate(ir_models.int8(ir_models.big_activations(size=64)), "esp32s3")
    assert r.arena_bytes <= data_ram < r.arena_bytes + runtime  # the case this test is about
    assert r.arena_in == "psram" and r.fits is True
    assert r.memory["sram"] == {"needed": runtime, "available": data_ram, "short_by": 0}
    assert r.memory["psram"]["needed"] == r.arena_bytes
    small = simulate(ir_models.int8(ir_models.big_activations(size=56)), "esp32s3")
    assert small.arena_bytes + runtime <= data_ram
    assert small.arena_in == "sram" and small.memory["sram"]["needed"] == small.arena_bytes + runtime
