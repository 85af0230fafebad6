"""Benchmark: time to simulate one model on all five targets, after import (goal: under 0.5 s).

Each simulation plans the arena (edgekit's planner), checks the memory budgets and computes the
per-layer Iron Law latency and energy. Measured on MobileNetV1-0.25 96x96x3 (the VWW architecture,
31 layers) and the DS-CNN keyword spotter, both built in code.

    python bench/simulate.py [--repeats 5] [--json]
"""
import argparse
import json
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

import edgekit
from edgekit import zoo
from edgekit.sim.simulate import simulate

TARGETS = ("nano33ble", "esp32s3", "rpi4", "coral", "stm32l4r5")


def int8(graph):
    # Only simulate() is timed, so the conversion skips verification.
    return edgekit.convert(graph, calibration=zoo.calibration_batch(graph, 16), verify=False).tflite


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name, graph in (("mobilenet_v1_0.25_96x96x3", zoo.mobilenet_v1()), ("ds_cnn_kws", zoo.ds_cnn_kws())):
        model = int8(graph)
        cold, per_target = [], {t: [] for t in TARGETS}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for t in TARGETS:
                t1 = time.perf_counter()
                simulate(model, t)  # cold: bytes are parsed afresh, and plans are memoized on that parse
                per_target[t].append(time.perf_counter() - t1)
            cold.append(time.perf_counter() - t0)
        rows.append({"model": name, "all_targets_s_median": round(statistics.median(cold), 4),
                     "per_target_s_median": {t: round(statistics.median(v), 4) for t, v in per_target.items()}})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"simulate() on five targets, median of {args.repeats} cold runs (s)")
    table.add_column("model")
    table.add_column("all five", justify="right")
    for t in TARGETS:
        table.add_column(t, justify="right")
    for r in rows:
        table.add_row(r["model"], f"{r['all_targets_s_median']:.3f}",
                      *[f"{r['per_target_s_median'][t]:.3f}" for t in TARGETS])
    Console(width=140).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
