"""Latency per layer on the course's Iron Law: T = D_vol/BW + O/(R_peak * eta) + L_lat.

For each layer (see sim/layers.py):
- memory:   weight bytes / flash bandwidth + activation bytes / bandwidth of the RAM the arena is in
            (internal SRAM, or PSRAM on an ESP32-S3 whose arena does not fit SRAM);
- compute:  (ops * mac_cycles + outputs * output_cycles) / speed[kind] / clock.
            mac_cycles is the cost of one multiply-accumulate in the board's kernel library,
            output_cycles the cost of producing one int8 output (requantization: multiply,
            shift, clamp; plus im2col and loop set-up per output pixel), speed[kind] the kernel
            library's relative throughput for that op kind. eta = MACs / (cycles * peak MACs/cycle)
            is reported per layer: the fraction of the core's peak the layer reaches;
- overhead: op_overhead_cycles / clock (interpreter dispatch, kernel prologue).
The three add up (an in-order microcontroller core does one thing at a time). The largest
term names the layer's bound.
"""
from __future__ import annotations

from dataclasses import dataclass

from .layers import Layer


@dataclass
class CostModel:
    clock_hz: float
    peak_macs_per_cycle: float
    mac_cycles: float
    output_cycles: float
    op_overhead_cycles: float
    speed: dict[str, float]
    flash_bw: float           # bytes/s for constants (weights, biases)
    ram_bw: float             # bytes/s for activations (SRAM, PSRAM or DRAM)
    threads: int = 1          # cores sharing a layer's compute (XNNPACK on the Pi)

    def with_clock(self, clock_hz: float) -> "CostModel":
        return CostModel(**{**self.__dict__, "clock_hz": clock_hz})


@dataclass
class LayerTime:
    layer: Layer
    memory_s: float
    compute_s: float
    overhead_s: float

    @property
    def total_s(self) -> float:
        return self.memory_s + self.compute_s + self.overhead_s

    @property
    def bound(self) -> str:
        terms = {"memory": self.memory_s, "compute": self.compute_s, "overhead": self.overhead_s}
        return max(terms, key=terms.get)


def layer_time(layer: Layer, m: CostModel) -> LayerTime:
    memory = layer.weight_bytes / m.flash_bw + layer.act_bytes / m.ram_bw
    speed = m.speed.get(layer.kind, 1.0)
    cycles = 0.0 if layer.kind == "reshape" else (layer.ops * m.mac_cycles + layer.outputs * m.output_cycles) / speed
    compute = cycles / (m.clock_hz * m.threads)
    return LayerTime(layer, memory, compute, m.op_overhead_cycles / m.clock_hz)


def efficiency(t: LayerTime, m: CostModel) -> float | None:
    """eta: achieved MACs per cycle over the peak, for layers with MACs."""
    if not t.layer.macs or t.compute_s <= 0:
        return None
    return t.layer.macs / (t.compute_s * m.clock_hz * m.threads * m.peak_macs_per_cycle)


def model_time(layers: list[Layer], m: CostModel) -> list[LayerTime]:
    return [layer_time(layer, m) for layer in layers]
