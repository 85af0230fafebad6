"""The Coral USB Accelerator on a Raspberry Pi 4, simulated: an Edge TPU segment and CPU segments.

Which ops map comes from the compiler's rules (edgekit.edgetpu.rules.predict: one partition at the
first op that cannot map, everything downstream of it on the CPU). Then, per call:

  TPU segment = host overhead per call + bytes crossing USB (segment inputs and outputs) / USB
                + max(MACs / (peak MACs/s x clock share x efficiency),   compute on the TPU
                      uncached parameter bytes / USB)                     streamed every call
  CPU segment = the Pi 4's Cortex-A72 cost model (targets/rpi4.toml), layer by layer

The parameter cache holds ~8 MB; what does not fit is streamed while the TPU computes (the
calibration set's Inception v4 is stream-bound on both hosts: see sim/fit.py). libedgetpu "std"
runs the USB TPU at half the "max" clock.
"""
from __future__ import annotations

import numpy as np

from ..edgetpu.plan import summary
from ..edgetpu.rules import predict
from ..profile_report import ProfileReport
from ..tflite_file import TFLiteModel
from . import latency as lat

CLOCK_SHARE = {"max": 1.0, "std": 0.5}  # libedgetpu1-std: 250 MHz of the TPU's 500 MHz


def _crossing_bytes(model: TFLiteModel, mapped: list[bool]) -> int:
    """Bytes that cross USB: tensors entering the TPU segment from the host, and leaving it."""
    sub = model.parsed.subgraphs[0]
    made_on = {}  # tensor index -> produced on the TPU?
    for i in sub.inputs:
        made_on[int(i)] = False
    for k, op in enumerate(sub.operators):
        for t in op.outputs:
            made_on[int(t)] = mapped[k]
    crossing = set()
    for k, op in enumerate(sub.operators):
        for t in (op.inputs if op.inputs is not None else []):
            t = int(t)
            if t in made_on and made_on[t] != mapped[k]:
                crossing.add(t)
    crossing |= {int(t) for t in sub.outputs if made_on.get(int(t))}
    return int(sum(np.prod(sub.tensors[t].shape) for t in crossing))  # 8-bit tensors: a byte each


def simulate_edgetpu(report: ProfileReport, model: TFLiteModel, board, pi, cpu_model: lat.CostModel, layers,
                     usb: int = 3, clock: str = "max", partition=None) -> None:
    """Fill `report` for the Coral `board` on its host `pi`, whose CPU runs what does not map
    (cpu_model: the host's cost model)."""
    part = partition or predict(model)
    mapped = part.mapping
    bw = board.num("latency.usb3_bw_bytes_per_s" if usb == 3 else "latency.usb2_bw_bytes_per_s")
    peak = board.num("compute.peak_macs_per_s") * CLOCK_SHARE[clock] * board.num("latency.efficiency")

    tpu_macs = sum(l.macs for l, m in zip(layers, mapped) if m)
    compute_s = tpu_macs / peak
    stream_s = part.off_chip_bytes / bw
    transfer_s = _crossing_bytes(model, mapped) / bw if any(mapped) else 0.0
    host_s = board.num("latency.host_overhead_s") if any(mapped) else 0.0
    streamed = {p.index: p.param_bytes for p in part.ops if p.mapped and p.on_chip is False}

    rows = []
    cpu_times = {}
    for layer, on_tpu in zip(layers, mapped):
        if on_tpu:
            c, s = layer.macs / peak, streamed.get(layer.index, 0) / bw
            rows.append({"name": layer.name, "op": layer.op, "kind": layer.kind, "macs": layer.macs,
                         "device": "edgetpu", "latency_ms": max(c, s) * 1e3, "memory_ms": s * 1e3,
                         "compute_ms": c * 1e3, "overhead_ms": 0.0, "eta": None,
                         "bound": "memory" if s > c else "compute"})
        else:
            t = lat.layer_time(layer, cpu_model)
            cpu_times[layer.index] = t
            eta = lat.efficiency(t, cpu_model)
            rows.append({"name": layer.name, "op": layer.op, "kind": layer.kind, "macs": layer.macs,
                         "device": "cpu", "latency_ms": t.total_s * 1e3, "memory_ms": t.memory_s * 1e3,
                         "compute_ms": t.compute_s * 1e3, "overhead_ms": t.overhead_s * 1e3,
                         "eta": None if eta is None else round(eta, 4), "bound": t.bound})
    cpu_s = sum(t.total_s for t in cpu_times.values())
    tpu_s = host_s + transfer_s + max(compute_s, stream_s)
    total = tpu_s + cpu_s
    memory = transfer_s + max(stream_s - compute_s, 0) + sum(t.memory_s for t in cpu_times.values())
    comp = min(compute_s, max(compute_s, stream_s)) if compute_s >= stream_s else 0.0
    comp += sum(t.compute_s for t in cpu_times.values())
    over = host_s + sum(t.overhead_s for t in cpu_times.values())
    if stream_s > compute_s:  # stream-bound: the overlapped compute is hidden behind the stream
        memory = transfer_s + stream_s + sum(t.memory_s for t in cpu_times.values())
    terms = {"memory": memory * 1e3, "compute": comp * 1e3, "overhead": over * 1e3}
    report.edgetpu = {**summary(part), "usb": usb, "clock": clock, "tpu_ms": tpu_s * 1e3, "cpu_ms": cpu_s * 1e3,
                      "stream_ms": stream_s * 1e3, "transfer_ms": transfer_s * 1e3, "host_overhead_ms": host_s * 1e3,
                      "tpu_mac_share": (tpu_macs / max(sum(l.macs for l in layers), 1))}
    report.latency_ms = report.latency_ms_p90 = total * 1e3
    report.energy_mj = (board.num("power.active_w") * tpu_s + pi.num("power.active_w") * total) * 1e3
    report.flash_bytes, report.ram_bytes, report.arena_bytes, report.fits = len(model), int(part.on_chip_bytes), 0, True
    report.layers = rows
    report.iron_law = {"memory_ms": terms["memory"], "compute_ms": terms["compute"],
                       "overhead_ms": terms["overhead"], "dominant": max(terms, key=terms.get)}
    report.sources = {k: board.source(k) for k in ("compute.peak_macs_per_s", "latency.efficiency",
                                                    "memory.param_cache_bytes", "latency.host_overhead_s")}
    report.lesson = lesson(report)


def lesson(report: ProfileReport) -> list[str]:
    """What a student should take from the profile, in plain words."""
    e, law = report.edgetpu, report.iron_law
    total_ops = e["mapped_ops"] + len(e["cpu_ops"])
    out = [f"{e['mapped_ops']} of {total_ops} ops ({e['tpu_mac_share']:.0%} of the MACs) ran on the Edge TPU "
           f"in {e['subgraphs']} segment(s): {e['tpu_ms']:.2f} ms, of which {e['host_overhead_ms']:.2f} ms is the "
           f"host's per-call overhead and {e['transfer_ms']:.2f} ms moving inputs and outputs over USB {e['usb']}."]
    if e["cpu_ops"]:
        first = f"{e['cpu_ops'][0]}: {e['cpu_reasons'][0]}" if e["cpu_reasons"] else e["cpu_ops"][0]
        out.append(f"{len(e['cpu_ops'])} op(s) stayed on the Pi's CPU ({e['cpu_ms']:.2f} ms); the first was {first}. "
                   "The compiler cuts the model once, so everything after that op runs on the CPU too.")
    if e["off_chip_bytes"]:
        out.append(f"{e['off_chip_bytes'] / 2**20:.1f} MB of parameters do not fit the ~8 MB on-chip cache and "
                   f"are streamed over USB on every call: {e['stream_ms']:.2f} ms.")
    else:
        out.append(f"All {e['on_chip_bytes'] / 2**20:.2f} MB of parameters stay cached on the chip.")
    out.append(f"Iron Law: the {law['dominant']} term dominates (memory {law['memory_ms']:.2f} ms, compute "
               f"{law['compute_ms']:.2f} ms, overhead {law['overhead_ms']:.2f} ms).")
    return out
