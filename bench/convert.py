"""Benchmark: wall time of `edgekit.convert` (import, 100-sample calibration, quantization, writing,
and verification in LiteRT and TFLite Micro) on the course's reference architectures.

Models: MobileNetV1-0.25 at 96x96x3 (the visual-wake-words architecture) and the MLPerf Tiny
DS-CNN keyword spotter, both built in code (edgekit.zoo) and written as float TFLite files, plus
any float .tflite files in ../shared/models. Goal: under 1 s per model after Python start-up.

    python bench/convert.py [--repeats 3] [--json]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgekit
from edgekit import zoo
from edgekit.export.tflite_writer import write_tflite
from edgekit.tflite_file import quantization_kind, read_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def models(tmp: Path):
    for name, graph in (("mobilenet_v1_0.25_96x96x3", zoo.mobilenet_v1(alpha=0.25, size=96, channels=3)),
                        ("ds_cnn_kws", zoo.ds_cnn_kws())):
        path = tmp / f"{name}.tflite"
        path.write_bytes(write_tflite(graph))
        yield name, path, zoo.calibration_batch(graph, 100)
    for path in sorted(SHARED.glob("*.tflite")) if SHARED.exists() else []:
        data = path.read_bytes()
        if quantization_kind(read_model(data, path.name)) == "float":
            graph = edgekit.importers.load(path).graph
            yield path.stem, path, zoo.calibration_batch(graph, 100)


def bench(repeats: int):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        edgekit.convert(next(models(Path(tmp)))[1], calibration=np.zeros((1, 96, 96, 3), np.float32))  # warm caches
        for name, path, calib in models(Path(tmp)):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                q = edgekit.convert(path, calibration=calib)
                times.append(time.perf_counter() - t0)
            info = q.to_dict()
            rows.append({"model": name, "wall_s_median": round(float(np.median(times)), 3),
                         "wall_s_min": round(min(times), 3), "timings_s": info["timings"],
                         "top1_agreement": info["agreement"].get("top1_agreement"),
                         "max_abs_error": round(info["agreement"]["max_abs_error"], 5),
                         "int8_bytes": info["int8_bytes"],
                         "arena_bytes": info["tflm"].get("arena_bytes"),
                         "min_layer_sqnr_db": min((l["sqnr_db"] for l in info["layers"] if l["sqnr_db"] is not None),
                                                  default=None)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="edgekit conversion benchmark")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = bench(args.repeats)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table(title=f"edgekit convert, 100 calibration samples, median of {args.repeats}")
    for col in ("model", "wall s", "import+quantize s", "verify s", "top-1 agree", "max |err|",
                "int8 bytes", "TFLM arena B", "min SQNR dB"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        tm = r["timings_s"]
        t.add_row(r["model"], f"{r['wall_s_median']:.3f}", f"{tm['import_s'] + tm['quantize_s']:.3f}",
                  f"{tm['verify_s']:.3f}", f"{r['top1_agreement']:.1%}", f"{r['max_abs_error']:.4f}",
                  f"{r['int8_bytes']:,}", f"{r['arena_bytes']:,}" if r["arena_bytes"] else "-",
                  f"{r['min_layer_sqnr_db']:.1f}")
    Console().print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
