"""The Coral USB Accelerator, simulated: one Edge TPU segment behind a USB link.

T = host overhead per call + (input + output bytes) / USB bandwidth
    + max(MACs / (peak MACs/s x clock share x efficiency),   (compute on the TPU)
          uncached parameter bytes / USB bandwidth)          (streamed from the host every call)
The parameter cache holds ~8 MB; what does not fit is streamed on every inference, while the TPU
computes (the calibration set's Inception v4 is stream-bound on both hosts: see sim/fit.py).
Which ops map to the TPU (and the CPU segments after the first that cannot) is refined by the
Coral issue; here every op of a fully 8-bit model is taken to map.
"""
from __future__ import annotations

import numpy as np

from ..errors import EdgekitError
from ..tflite_file import quantization_kind, read_model

CLOCK_SHARE = {"max": 1.0, "std": 0.5}  # libedgetpu-std runs the USB TPU at 250 of 500 MHz


def _io_bytes(model) -> int:
    sub = model.subgraphs[0]
    idx = list(sub.inputs) + list(sub.outputs)
    return int(sum(np.prod(sub.tensors[i].shape) for i in idx))  # 8-bit tensors: one byte each


def simulate_edgetpu(model_bytes: bytes, board, layers, usb: int = 3, clock: str = "max") -> dict:
    model = read_model(model_bytes)
    kind = quantization_kind(model)
    if kind not in ("int8", "uint8"):
        raise EdgekitError(f"the Edge TPU runs only fully 8-bit models and this one is {kind}; "
                           "run `edgekit convert` on it first")
    bw = board.num("latency.usb3_bw_bytes_per_s" if usb == 3 else "latency.usb2_bw_bytes_per_s")
    peak = board.num("compute.peak_macs_per_s") * CLOCK_SHARE[clock] * board.num("latency.efficiency")
    cache = board.num("memory.param_cache_bytes")
    params = sum(l.weight_bytes for l in layers)
    streamed = max(params - cache, 0)
    transfer_s = _io_bytes(model) / bw
    stream_s = streamed / bw
    overhead_s = board.num("latency.host_overhead_s")  # measured on a Pi 4, the course's host
    rows = []
    for l in layers:
        compute = l.macs / peak
        share = l.weight_bytes / params if params else 0.0
        memory = stream_s * share
        rows.append({"name": l.name, "op": l.op, "kind": l.kind, "macs": l.macs,
                     "latency_ms": (compute + memory) * 1e3, "bound": "memory" if memory > compute else "compute",
                     "memory_ms": memory * 1e3, "compute_ms": compute * 1e3, "overhead_ms": 0.0, "eta": None})
    compute_s = sum(l.macs for l in layers) / peak
    total = overhead_s + transfer_s + max(compute_s, stream_s)
    hidden = min(compute_s, stream_s)  # the overlapped part is not paid twice
    terms = {"memory": (transfer_s + stream_s - (hidden if stream_s <= compute_s else 0)) * 1e3,
             "compute": (compute_s - (hidden if compute_s < stream_s else 0)) * 1e3,
             "overhead": overhead_s * 1e3}
    return {"latency_ms": total * 1e3, "latency_ms_p90": total * 1e3,
            "energy_mj": board.num("power.active_w") * total * 1e3,
            "flash_bytes": len(model_bytes), "ram_bytes": int(min(params, cache)), "arena_bytes": 0,
            "fits": True, "layers": rows,
            "iron_law": {"memory_ms": terms["memory"], "compute_ms": terms["compute"],
                         "overhead_ms": terms["overhead"], "dominant": max(terms, key=terms.get)},
            "edgetpu": {"source": "predicted", "usb": usb, "clock": clock, "on_chip_bytes": int(min(params, cache)),
                        "off_chip_bytes": int(streamed), "mapped_ops": len(layers), "cpu_ops": [], "subgraphs": 1},
            "sources": {k: board.source(k) for k in ("compute.peak_macs_per_s", "latency.efficiency",
                                                      "memory.param_cache_bytes", "latency.host_overhead_s")}}
