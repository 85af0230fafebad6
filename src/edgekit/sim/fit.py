"""Fit the simulator's free parameters on the calibration set: published on-device measurements.

Few parameters, each with a physical meaning:
- Cortex-M4 + CMSIS-NN (stm32l4r5, and nano33ble: the same core and kernels at another clock):
  mac_cycles (cycles per multiply-accumulate) and output_cycles (cycles per int8 output:
  requantization, im2col, loop set-up), solved exactly from the two MLPerf Tiny v0.5 reference
  results on the STM32L4R5 (keyword spotting 181.9 ms, ResNet-8 704.2 ms: 1000 / "Median
  throughput" in github.com/mlcommons/tiny_results_v0.5, closed/reference/results/<system>/
  <benchmark>/performance/results.txt). The per-output term is what makes a 3x3 depthwise layer
  (9 MACs per output) ~2x dearer per MAC than a 64-channel 1x1 conv (64 MACs per output), with no
  per-kind constant.
- ESP32-S3 + ESP-NN: the Cortex-M4's cost shape, kinds weighted by ESP-NN's published per-kernel
  speed-ups (relative to its 3x3 conv; github.com/espressif/esp-nn README), and one scale fitted
  on person detection (54 ms, with the arena in PSRAM: the esp-nn README's note under that figure
  says "SPIRAM used for TensorArena" and gives 47 ms for internal RAM; esp-tflite-micro's README
  says "internal memory" for the same 54 ms, but two figures under two conditions cannot both be
  internal RAM).
- Edge TPU: efficiency, the Pi 4's per-call overhead and each link's bandwidth, from the five
  Coral rows (MobileNet v1 224 and Inception v4 on x86, Pi 4 and Pi 3B hosts: github.com/
  google-coral/edgetpu, benchmarks/reference/basic_engine_reference_{x86_64,rp4b,rp3b}.csv); see
  fit_coral().
Run `python -m edgekit.sim.fit` to print the values; targets/*.toml carry them with this source.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..targets import load_board
from .layers import layers as model_layers

# the calibration set beside a source checkout (../shared/models); EDGEKIT_MODELS names it elsewhere
# (an installed edgekit has no checkout to be beside)
MODELS = Path(os.environ.get("EDGEKIT_MODELS") or Path(__file__).resolve().parents[3].parent / "shared" / "models")
M4_POINTS = [("kws_ref_model.tflite", 181.9e-3), ("pretrainedResnet_quant.tflite", 704.2e-3)]
ESP_POINT = ("person_detect.tflite", 54e-3)  # arena in PSRAM (see above)
# ESP-NN README speed-ups over TFLM's reference kernels on the ESP32-S3, relative to its 3x3 conv
# (5.6x): 1x1 conv 8.0-14.2x (mid 11.1), depthwise 4.5-6.3x (mid 5.4), fully connected 7.8x,
# average pool 3.6x, add 3.8x.
ESP_SPEED = {"conv": 1.0, "conv1x1": round(11.1 / 5.6, 3), "depthwise": round(5.4 / 5.6, 3),
             "fully_connected": round(7.8 / 5.6, 3), "pooling": round(3.6 / 5.6, 3),
             "elementwise": round(3.8 / 5.6, 3), "softmax": 1.0, "reshape": 1.0}
OP_OVERHEAD_CYCLES = 1000  # TFLM dispatch + kernel prologue: an estimate; <0.5% of the fitted models


def _terms(layers, speed=None):
    """Sum over layers of (ops / speed, outputs / speed): the two fitted coefficients' multipliers."""
    speed = speed or {}
    ops = sum(l.ops / speed.get(l.kind, 1.0) for l in layers if l.kind != "reshape")
    outs = sum(l.outputs / speed.get(l.kind, 1.0) for l in layers if l.kind != "reshape")
    return ops, outs


def _fixed_seconds(layers, board, ram_bw_key="memory.sram_bw_bytes_per_s") -> float:
    """Memory and overhead terms, which do not depend on the fitted coefficients."""
    flash_bw, ram_bw, clock = board.num("memory.flash_bw_bytes_per_s"), board.num(ram_bw_key), board.clock_hz
    return sum(l.weight_bytes / flash_bw + l.act_bytes / ram_bw + OP_OVERHEAD_CYCLES / clock for l in layers)


def fit_cmsis(models: Path = MODELS) -> dict:
    board = load_board("stm32l4r5")
    rows, rhs = [], []
    for name, seconds in M4_POINTS:
        layers = model_layers((models / name).read_bytes())
        rows.append(_terms(layers))
        rhs.append((seconds - _fixed_seconds(layers, board)) * board.clock_hz)
    mac_cycles, output_cycles = np.linalg.solve(np.array(rows), np.array(rhs))
    return {"mac_cycles": float(mac_cycles), "output_cycles": float(output_cycles),
            "op_overhead_cycles": OP_OVERHEAD_CYCLES}


def fit_esp(cmsis: dict, models: Path = MODELS) -> dict:
    board = load_board("esp32s3")
    name, seconds = ESP_POINT
    layers = model_layers((models / name).read_bytes())
    ops, outs = _terms(layers, ESP_SPEED)
    cycles_m4_shape = ops * cmsis["mac_cycles"] + outs * cmsis["output_cycles"]
    fixed = _fixed_seconds(layers, board, "memory.psram_bw_bytes_per_s")
    scale = cycles_m4_shape / ((seconds - fixed) * board.clock_hz)
    return {"mac_cycles": cmsis["mac_cycles"] / scale, "output_cycles": cmsis["output_cycles"] / scale,
            "op_overhead_cycles": OP_OVERHEAD_CYCLES, "scale_vs_cortex_m4": scale, "speed": ESP_SPEED}


def main() -> int:
    if not MODELS.exists():
        print(f"error: the calibration models are not at {MODELS}; set EDGEKIT_MODELS to the folder that holds "
              "them (../shared/models beside a checkout)", file=sys.stderr)
        return 2
    cmsis = fit_cmsis()
    esp = fit_esp(cmsis)
    print("# Cortex-M4 + CMSIS-NN (stm32l4r5, nano33ble)")
    for k in ("mac_cycles", "output_cycles"):
        print(f"{k} = {cmsis[k]:.4f}")
    print("# ESP32-S3 + ESP-NN")
    for k in ("mac_cycles", "output_cycles", "scale_vs_cortex_m4"):
        print(f"{k} = {esp[k]:.4f}")
    print("speed =", esp["speed"])
    print("# Coral USB Accelerator")
    for k, v in fit_coral().items():
        print(f"{k} = {v:.6g}")
    return 0



# -- Coral USB Accelerator ------------------------------------------------------------------------
# The calibration set's Coral rows (google-coral/edgetpu benchmarks/reference/basic_engine_reference_
# {x86_64,rp4b,rp3b}.csv, Python timeit average of 200 invokes): MobileNet v1 1.0 224 (568,741,376 MACs,
# 4,222,057 parameters, counted from edgekit.zoo.mobilenet_v1(1.0, 224, 3, 1001)) on x86-64 USB 3
# 2.17 ms, Pi 4 USB 3 4.20 ms, Pi 3B USB 2 9.22 ms; Inception v4 299 on x86-64 84.25 ms and Pi 4
# 141.2 ms (12.27 G MACs, 42.68 M parameters: Szegedy et al. 2016, "Inception-v4", Table/Keras
# summary; about 34 MB of them do not fit the ~8 MB cache and are streamed every call).
MOBILENET = {"macs": 568_741_376, "params": 4_222_057, "io": 224 * 224 * 3 + 1001}
INCEPTION = {"macs": 12_270_000_000, "params": 42_680_000, "io": 299 * 299 * 3 + 1001}
# per-invoke floor: a tiny MLP, 50,000 Python invokes in 1,876 ms (google-coral/edgetpu issue 89)
X86_OVERHEAD_S = 38e-6


def fit_coral(peak_macs_per_s: float = 2e12, cache: float = 8_388_608) -> dict:
    """T = host overhead + io / link + max(MACs / (peak x eta), streamed / link).

    Streaming overlaps compute (the TPU computes while the next parameters arrive): Inception v4 is
    stream-bound on both hosts, which gives each host's link bandwidth; MobileNet v1 streams nothing,
    which gives the TPU's efficiency (x86, whose per-call overhead is the known floor) and the Pi 4's
    per-call host overhead. The Pi 3B (USB 2) is taken to have the Pi 4's host overhead.
    """
    streamed = INCEPTION["params"] - cache
    bw_x86 = (INCEPTION["io"] + streamed) / (84.25e-3 - X86_OVERHEAD_S)
    compute_m = 2.17e-3 - X86_OVERHEAD_S - MOBILENET["io"] / bw_x86
    eta = MOBILENET["macs"] / (peak_macs_per_s * compute_m)
    assert INCEPTION["macs"] / (peak_macs_per_s * eta) < streamed / bw_x86  # stream-bound, as assumed
    # Pi 4: h + io_m / bw = 4.20 ms - compute_m;  h + (io_i + streamed) / bw = 141.2 ms
    bw_pi4 = (INCEPTION["io"] + streamed - MOBILENET["io"]) / (141.2e-3 - 4.20e-3 + compute_m)
    h_pi4 = 4.20e-3 - compute_m - MOBILENET["io"] / bw_pi4
    bw_usb2 = MOBILENET["io"] / (9.22e-3 - compute_m - h_pi4)
    return {"efficiency": eta, "pi4_overhead_s": h_pi4, "usb3_bw": bw_pi4, "usb3_x86_bw": bw_x86,
            "usb2_bw": bw_usb2, "mobilenet_compute_s": compute_m}


if __name__ == "__main__":
    sys.exit(main())
