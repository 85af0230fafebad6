"""Week 10: deploy int8-quantized models on the Seeed XIAO ESP32S3, with or without the board.

1. train the digits MLP (numpy, a second) and build a MobileNet v1 0.25 at 96x96 (person-detection
   sized) and a MobileNet v1 0.5 at 160x160 (too big for internal SRAM), convert them to int8 with edgekit and compare float and int8 size (and, for the MLP,
   accuracy on its test set);
2. `edgekit deploy` each to the esp32s3: with a XIAO plugged in, edgekit builds the firmware around
   the model, flashes it and measures it over USB serial; without one, the simulated board runs it
   (outputs by TensorFlow Lite Micro, latency from the simulator) and every figure says "simulated";
3. prints where each model's tensor arena went (internal SRAM or PSRAM) and what that costs.

    python examples/week10_deploy.py [--out DIR] [--target esp32s3] [--json]
"""
import argparse
import json
import sys
from pathlib import Path

import edgekit
from edgekit import zoo
from edgekit.errors import EdgekitError
from edgekit.export.tflite_writer import write_tflite
from edgekit.runtime import litert


def models(out: Path):
    """(name, float .tflite path, calibration inputs, test set or None) for each model."""
    graph, data = zoo.digits_mlp()
    path = out / "digits_float.tflite"
    path.write_bytes(write_tflite(graph))
    yield "digits_mlp", path, data["x_train"][:200], (data["x_test"], data["y_test"], data["float_accuracy"])
    graph = zoo.mobilenet_v1(alpha=0.25, size=96, channels=3)
    path = out / "mobilenet_v1_0.25_96_float.tflite"
    path.write_bytes(write_tflite(graph))
    yield "mobilenet_v1_0.25_96", path, zoo.calibration_batch(graph, 100), None
    # a wider, larger-input MobileNet whose activations outgrow the internal SRAM: its arena goes to PSRAM
    graph = zoo.mobilenet_v1(alpha=0.5, size=160, channels=3)
    path = out / "mobilenet_v1_0.5_160_float.tflite"
    path.write_bytes(write_tflite(graph))
    yield "mobilenet_v1_0.5_160", path, zoo.calibration_batch(graph, 50), None


def run(out: Path, target: str) -> list[dict]:
    rows = []
    for name, float_path, calib, test in models(out):
        q = edgekit.convert(float_path, calibration=calib)
        int8_path = out / f"{name}_int8.tflite"
        q.save(int8_path)
        row = {"model": name, "float_bytes": float_path.stat().st_size, "int8_bytes": len(q.tflite)}
        if test is not None:
            x, y, float_acc = test
            row["float_accuracy"] = float_acc
            row["int8_accuracy"] = float((litert.run(q.tflite, x)[0][0].argmax(1) == y).mean())
        r = edgekit.deploy(int8_path, target)
        row.update(mode=r.mode, fits=r.fits, latency_ms=r.latency_ms, arena_bytes=r.arena_bytes,
                   arena_in=r.arena_in, flash_bytes=r.flash_bytes, energy_mj=r.energy_mj,
                   dominant=r.iron_law["dominant"], outputs_max_lsb=r.outputs_check["max_lsb"],
                   outputs_reference=r.outputs_check["reference"])
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/week10", help="folder for the models (default: out/week10)")
    ap.add_argument("--target", default="esp32s3", help="board to deploy to (default: esp32s3)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = run(out, args.target)
    except EdgekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        acc = (f", accuracy {r['float_accuracy']:.1%} float -> {r['int8_accuracy']:.1%} int8"
               if "int8_accuracy" in r else "")
        print(f"{r['model']}: {r['float_bytes']:,} B float -> {r['int8_bytes']:,} B int8 "
              f"({r['float_bytes'] / r['int8_bytes']:.1f}x smaller){acc}")
        print(f"  on {args.target} ({r['mode']}): {r['latency_ms']:.2f} ms, {r['energy_mj']:.3f} mJ, "
              f"arena {r['arena_bytes']:,} B in {r['arena_in']}, flash {r['flash_bytes']:,} B, "
              f"{r['dominant']}-bound; outputs within {r['outputs_max_lsb']} LSB of {r['outputs_reference']}")
    print("\nTry: edgekit profile out/week10/mobilenet_v1_0.25_96_int8.tflite --target esp32s3 --plot layers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
