"""Fit the simulator's free parameters on the calibration set (shared/facts/published-latency.md).

Few parameters, each with a physical meaning:
- Cortex-M4 + CMSIS-NN (stm32l4r5, and nano33ble: the same core and kernels at another clock):
  mac_cycles (cycles per multiply-accumulate) and output_cycles (cycles per int8 output:
  requantization, im2col, loop set-up), solved exactly from the two MLPerf Tiny v0.5 reference
  results on the STM32L4R5 (keyword spotting 181.9 ms, ResNet-8 704.2 ms). The per-output term
  is what makes a 3x3 depthwise layer (9 MACs per output) ~2x dearer per MAC than a 64-channel
  1x1 conv (64 MACs per output), with no per-kind constant.
- ESP32-S3 + ESP-NN: the Cortex-M4's cost shape, kinds weighted by ESP-NN's published per-kernel
  speed-ups (relative to its 3x3 conv), and one scale fitted on person detection (54 ms).
- Edge TPU: one efficiency, fitted on MobileNet v1 224 on a Pi 4 over USB 3 (4.20 ms).
Run `python -m edgekit.sim.fit` to print the values; targets/*.toml carry them with this source.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..targets import load_board
from .layers import layers as model_layers

MODELS = Path(__file__).resolve().parents[3].parent / "shared" / "models"
M4_POINTS = [("kws_ref_model.tflite", 181.9e-3), ("pretrainedResnet_quant.tflite", 704.2e-3)]
ESP_POINT = ("person_detect.tflite", 54e-3)
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
    scale = cycles_m4_shape / ((seconds - _fixed_seconds(layers, board)) * board.clock_hz)
    return {"mac_cycles": cmsis["mac_cycles"] / scale, "output_cycles": cmsis["output_cycles"] / scale,
            "op_overhead_cycles": OP_OVERHEAD_CYCLES, "scale_vs_cortex_m4": scale, "speed": ESP_SPEED}


def main() -> int:
    if not MODELS.exists():
        print(f"the calibration models are not at {MODELS}", file=sys.stderr)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
