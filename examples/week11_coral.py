"""Week 11: the same int8 models on the Raspberry Pi 4's CPU and on the Coral USB Accelerator.

For three models (a keyword-spotting DS-CNN, MobileNet v1 0.25 at 96x96 and MobileNet v1 1.0 at
224x224: tiny, small, ImageNet-sized), this script
1. converts each to int8 (edgekit.convert, calibration from edgekit.zoo);
2. plans it for the Edge TPU: compiled by edgetpu_compiler where it is installed, else predicted
   from the documented rules (labelled), showing what maps and what stays on the CPU;
3. profiles it on rpi4 (CPU, LiteRT + XNNPACK) and on coral with USB 3 / max clock and with USB 2 /
   std clock: measured on the Pi when this runs on one with the accelerator plugged in, simulated
   otherwise (every row says which);
4. prints a table (and --plot a bar chart) of where the time goes: the Iron Law term that dominates.

    python examples/week11_coral.py [--out DIR] [--json] [--plot coral.png] [--small]
"""
import argparse
import json
import sys
from pathlib import Path

import edgekit
from edgekit import zoo
from edgekit.deployment import profile
from edgekit.edgetpu.plan import plan, summary
from edgekit.errors import EdgekitError
from edgekit.export.tflite_writer import write_tflite

SETUPS = [("rpi4", {}), ("coral", {"usb": 3, "clock": "max"}), ("coral", {"usb": 2, "clock": "std"})]


def models(small: bool = False):
    yield "ds_cnn_kws", zoo.ds_cnn_kws()
    yield "mobilenet_v1_0.25_96", zoo.mobilenet_v1(alpha=0.25, size=96, channels=3)
    if not small:
        yield "mobilenet_v1_1.0_224", zoo.mobilenet_v1(alpha=1.0, size=224, channels=3, classes=1000)


def run(out: Path, runs: int, small: bool = False) -> list[dict]:
    rows = []
    for name, graph in models(small):
        float_path = out / f"{name}_float.tflite"
        float_path.write_bytes(write_tflite(graph))
        q = edgekit.convert(float_path, calibration=zoo.calibration_batch(graph, 100))
        path = out / f"{name}_int8.tflite"
        q.save(path)
        p = plan(q.tflite, path.stem, out)
        for target, opts in SETUPS:
            r = profile(path, target, runs=runs, **opts)
            setup = target if not opts else f"coral usb{opts['usb']} {opts['clock']}"
            rows.append({"model": name, "setup": setup, "mode": r.mode, "latency_ms": r.latency_ms,
                         "dominant": (r.iron_law or {}).get("dominant"),
                         "edgetpu": summary(p.partition) if target == "coral" else None,
                         "plan": p.note if target == "coral" else None})
    return rows


def plot(rows: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models_ = list(dict.fromkeys(r["model"] for r in rows))
    setups = list(dict.fromkeys(r["setup"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(setups)
    for k, s in enumerate(setups):
        ys = [next(r["latency_ms"] for r in rows if r["model"] == m and r["setup"] == s) for m in models_]
        mode = next(r["mode"] for r in rows if r["setup"] == s)
        ax.bar([i + k * width for i in range(len(models_))], ys, width, label=f"{s} ({mode})")
    ax.set_xticks([i + width * (len(setups) - 1) / 2 for i in range(len(models_))])
    ax.set_xticklabels(models_)
    ax.set_ylabel("ms per inference")
    ax.set_title("Pi 4 CPU vs Coral USB Accelerator")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/week11", help="folder for the models (default: out/week11)")
    ap.add_argument("--runs", type=int, default=20, help="timed inferences per setup on hardware")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--plot", help="write a bar chart (PNG)")
    ap.add_argument("--small", action="store_true", help="only the two small models (seconds, not half a minute)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = run(out, args.runs, args.small)
    except EdgekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<22}{'setup':<20}{'mode':<11}{'ms':>9}  dominant  Edge TPU")
    for r in rows:
        e = r["edgetpu"]
        tpu = (f"{e['source']}: {e['mapped_ops']} ops mapped, CPU {e['cpu_ops'] or 'none'}, "
               f"{e['off_chip_bytes']:,} B streamed") if e else "-"
        print(f"{r['model']:<22}{r['setup']:<20}{r['mode']:<11}{r['latency_ms']:>9.3f}  {r['dominant'] or '-':<9} {tpu}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
