"""Benchmark: the serial protocol against the virtual board.

- time to load a 96x96x3 int8 input (27,648 bytes: db load + 288 CRC-checked dbx chunks) and run
  `infer 10 1`, over the sim:// URL and over a real pseudo-terminal;
- the host client's overhead per command (name%, info%, timestamp%): wall time per round trip
  against sim://, where the board itself costs next to nothing.
Model: MobileNetV1-0.25 96x96x3 (edgekit.zoo) on a simulated nano33ble. The TFLite Micro worker is
started once before timing (its ~0.2 s start-up is reported separately).

    python bench/protocol.py [--repeats 5] [--json]
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgekit
from edgekit import zoo
from edgekit.protocol import BoardClient, VirtualBoard, serve_pty


def _cycle(client, x):
    t0 = time.perf_counter()
    client.load(x)
    r = client.infer(10, 1)
    return time.perf_counter() - t0, r["latency_us"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    g = zoo.mobilenet_v1()
    # Only the protocol is timed, so the conversion skips verification.
    model = edgekit.convert(g, calibration=zoo.calibration_batch(g, 16), verify=False).tflite
    x = np.random.default_rng(0).integers(-128, 128, 96 * 96 * 3).astype(np.int8).tobytes()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(model)
        with BoardClient(f"sim://nano33ble?model={path}") as c:
            t0 = time.perf_counter()
            c.load(x)
            c.infer(1, 0)
            out["first_infer_with_worker_start_s"] = round(time.perf_counter() - t0, 4)
            runs = [_cycle(c, x) for _ in range(args.repeats)]
            out["sim_load_and_infer_10_1_s"] = round(statistics.median(r[0] for r in runs), 4)
            out["simulated_latency_ms"] = round(runs[0][1] / 1e3, 3)
            per = {}
            for cmd in ("name", "info", "timestamp"):
                n = 200
                t0 = time.perf_counter()
                for _ in range(n):
                    getattr(c, cmd)()
                per[cmd] = round((time.perf_counter() - t0) / n * 1e6, 1)
            out["client_overhead_us_per_command_sim"] = per
        board = VirtualBoard("nano33ble", model)
        pty_path, stop = serve_pty(board)
        try:
            with BoardClient(pty_path, pace_s=0) as c:
                c.load(x)
                c.infer(1, 0)
                runs = [_cycle(c, x) for _ in range(args.repeats)]
                out["pty_load_and_infer_10_1_s"] = round(statistics.median(r[0] for r in runs), 4)
                t0 = time.perf_counter()
                for _ in range(100):
                    c.name()
                out["client_round_trip_us_pty_name"] = round((time.perf_counter() - t0) / 100 * 1e6, 1)
        finally:
            stop()
            board.close()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    t = Table(title=f"serial protocol against the virtual board (median of {args.repeats})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in out.items():
        t.add_row(k, json.dumps(v))
    Console(width=120).print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
