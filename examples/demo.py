"""edgekit's main job, end to end on this machine (no board, no download):

1. train a small MLP on scikit-learn's bundled digits (numpy, a second or two);
2. write it as ONNX, with a calibration set and a validation set as .npy files;
3. `edgekit convert` it to a verified int8 TFLite model, then `edgekit inspect` the result;
4. compare float and int8 accuracy on the held-out test set;
5. `edgekit deploy` it to an Arduino Nano 33 BLE Sense: the board when one is plugged in, else
   its simulator (memory fit, outputs by TFLite Micro, latency per layer, energy).

    python examples/demo.py [--out DIR] [--target nano33ble] [--json]
"""
import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from edgekit import cli, zoo
from edgekit.export.onnx_export import export_onnx_graph
from edgekit.runtime import litert
from edgekit.targets import load_board


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/demo", help="folder for the files (default: out/demo)")
    ap.add_argument("--target", default="nano33ble", help="board to deploy to (default: nano33ble)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary instead of the reports")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    graph, data = zoo.digits_mlp()
    onnx_path = out / "digits.onnx"
    export_onnx_graph(graph, onnx_path)
    np.save(out / "calib.npy", data["x_train"][:200])
    np.save(out / "val.npy", data["x_test"])
    int8_path = out / "digits_int8.tflite"

    convert_args = ["convert", str(onnx_path), "--calib", str(out / "calib.npy"),
                    "--val", str(out / "val.npy"), "-o", str(int8_path)]
    if load_board(args.target).per_tensor_dense:  # the Nano's TFLite Micro reads one scale per dense layer
        convert_args.append("--per-tensor-dense")
    if args.json:  # keep stdout a single JSON document
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = cli.main(convert_args + ["--json"])
        report = json.loads(buf.getvalue()) if code == 0 else None
    else:
        code = cli.main(convert_args) or cli.main(["inspect", str(int8_path)])
    if code:
        return code

    int8_pred = litert.run(int8_path.read_bytes(), data["x_test"])[0][0].argmax(1)
    int8_acc = float((int8_pred == data["y_test"]).mean())
    summary = {"float_accuracy": data["float_accuracy"], "int8_accuracy": int8_acc,
               "int8_file": str(int8_path), "int8_bytes": int8_path.stat().st_size}
    deploy_args = ["deploy", str(int8_path), "--target", args.target, "--plot", str(out / "layers.png")]
    if args.json:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = cli.main(deploy_args + ["--json"])
        if code:
            return code
        print(json.dumps({**summary, "convert": report, "deploy": json.loads(buf.getvalue())}, indent=2))
        return 0
    print(f"\ndigits test set: float accuracy {summary['float_accuracy']:.2%}, "
          f"int8 accuracy {int8_acc:.2%}  ({int8_path}, {summary['int8_bytes']:,} bytes)\n")
    return cli.main(deploy_args)


if __name__ == "__main__":
    sys.exit(main())
