"""Week 10 (Model Compression): a TinyTorch CNN through module 15 (quantize_model) and module 16
(magnitude_prune, structured_prune, low_rank_approximate), and what each does on the boards.

For the 8x8 digits this script
1. fits a TinyTorch CNN (two convs, a pool, a hidden Linear, a classifier; the classifier is fitted by
   ridge regression, a stand-in for training and for the fine-tuning that follows pruning);
2. makes the compressed variants the course teaches: TinyTorch's own int8 simulation (quantize_model:
   QuantizedLinear, per-tensor asymmetric weights), magnitude pruning (scattered zeros), structured
   pruning (whole channels zeroed) and a low-rank hidden layer (two Linear layers from the SVD);
3. converts each to int8 TFLite with edgekit (structured pruning's zero channels are removed on the
   way) and deploys it to each board: the board when one is connected, its simulator otherwise
   (every row says which);
4. prints sparsity, int8 size, float and int8 accuracy, and latency and flash on each board, before
   (the baseline) and after each technique, and what edgekit noted while converting.

The model is built with the course's TinyTorch API; by default the copy in tests/tinytorch_api.py,
or your own with --tinytorch path/to/module.py (it needs Tensor, Conv2d, MaxPool2d, ReLU, Linear,
Sequential, quantize_model, measure_sparsity, magnitude_prune, structured_prune, low_rank_approximate).

    python examples/week10_compress.py [--boards nano33ble,esp32s3,rpi4] [--json] [--tinytorch FILE]
"""
import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

import edgekit
from edgekit.errors import EdgekitError
from edgekit.zoo import digits_split

API = Path(__file__).resolve().parents[1] / "tests" / "tinytorch_api.py"


def load_tinytorch(path: Path):
    spec = importlib.util.spec_from_file_location("tinytorch_course_api", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(tt, seed: int = 20):
    """The baseline CNN as a Sequential (quantize_model and structured_prune walk model.layers)."""

    class Flatten:  # TinyTorch has no Flatten layer: a student's own, NCHW order
        def forward(self, x):
            return x.reshape(x.shape[0], -1)

        def __call__(self, x):
            return self.forward(x)

    np.random.seed(seed)
    return tt.Sequential(tt.Conv2d(1, 32, kernel_size=3, padding=1), tt.ReLU(),
                         tt.Conv2d(32, 64, kernel_size=3, padding=1), tt.ReLU(), tt.MaxPool2d(2), Flatten(),
                         tt.Linear(64 * 4 * 4, 256), tt.ReLU(), tt.Linear(256, 10))


def fit_head(tt, model, x, y):
    """Fit the classifier on the features before it (ridge regression)."""
    features = tt.Sequential(*model.layers[:-1])(tt.Tensor(x)).data.astype(np.float64)
    h = np.hstack([features, np.ones((len(x), 1))])
    sol = np.linalg.solve(h.T @ h + 0.1 * np.eye(h.shape[1]), h.T @ (np.eye(10)[y] * 4 - 2))
    head = model.layers[-1]
    head.weight, head.bias = tt.Tensor(sol[:-1]), tt.Tensor(sol[-1])
    return model


def low_rank(tt, model, rank_ratio):
    """The hidden Linear replaced by two Linear layers from its truncated SVD: W ~ (U S) V."""
    i = next(i for i, layer in enumerate(model.layers) if isinstance(layer, tt.Linear))
    big = model.layers[i]
    U, S, V = tt.low_rank_approximate(big.weight.data, rank_ratio)
    first, second = tt.Linear(U.shape[0], len(S), bias=False), tt.Linear(len(S), V.shape[1])
    first.weight, second.weight, second.bias = tt.Tensor(U * S), tt.Tensor(V), big.bias
    model.layers[i:i + 1] = [first, second]
    return model


def variants(tt, x_train, y_train):
    """(name, technique, model) for the baseline and each compression technique."""
    calib = tt.Tensor(x_train[:64])
    yield "baseline", "none", fit_head(tt, build(tt), x_train, y_train)
    yield "quantize_model", "TinyTorch int8 simulation (QuantizedLinear)", \
        tt.quantize_model(fit_head(tt, build(tt), x_train, y_train), calib)
    yield "magnitude_prune", "magnitude_prune(0.5): scattered zeros", \
        tt.magnitude_prune(fit_head(tt, build(tt), x_train, y_train), 0.5)
    yield "structured_prune", "structured_prune(0.5) + classifier refit", \
        fit_head(tt, tt.structured_prune(fit_head(tt, build(tt), x_train, y_train), 0.5), x_train, y_train)
    yield "low_rank", "low_rank_approximate(0.125) of the hidden Linear + classifier refit", \
        fit_head(tt, low_rank(tt, fit_head(tt, build(tt), x_train, y_train), 0.125), x_train, y_train)


def run(tt, boards: list[str]) -> list[dict]:
    x_train, y_train, x_test, y_test = digits_split()
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    calib, example = x_train[:200], x_train[:1]
    rows = []
    for name, technique, model in variants(tt, x_train, y_train):
        q = edgekit.convert(model, example_input=example, calibration=calib)
        row = {"variant": name, "technique": technique, "sparsity_percent": round(float(tt.measure_sparsity(model)), 1),
               "int8_bytes": len(q.tflite),
               "float_accuracy": float((model(tt.Tensor(x_test)).data.argmax(1) == y_test).mean()),
               "int8_accuracy": float((q.predict(x_test).argmax(1) == y_test).mean()),
               "notes": list(q.graph.notes), "boards": {}}
        for board in boards:  # deploy converts for each board itself (the Nano needs per-tensor dense weights)
            r = edgekit.deploy(model, board, calibration=calib, example_input=example)
            row["boards"][board] = {"mode": r.mode, "fits": r.fits, "latency_ms": r.latency_ms,
                                    "flash_bytes": r.flash_bytes}
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["vs_baseline"] = {"int8_bytes": round(row["int8_bytes"] / base["int8_bytes"], 3)}
        for board, b in row["boards"].items():
            row["vs_baseline"][f"{board}_latency"] = round(b["latency_ms"] / base["boards"][board]["latency_ms"], 3)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="nano33ble,esp32s3,rpi4", help="comma-separated boards (default: %(default)s)")
    ap.add_argument("--tinytorch", default=str(API), help="the TinyTorch module to build with (default: the "
                                                          "course API copy in tests/tinytorch_api.py)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    try:
        rows = run(load_tinytorch(Path(args.tinytorch)), [b for b in args.boards.split(",") if b])
    except EdgekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['variant']} ({r['technique']}): sparsity {r['sparsity_percent']:.0f}%, int8 {r['int8_bytes']:,} B "
              f"({r['vs_baseline']['int8_bytes']:.0%} of baseline), accuracy {r['float_accuracy']:.1%} float -> "
              f"{r['int8_accuracy']:.1%} int8")
        for board, b in r["boards"].items():
            print(f"  {board} ({b['mode']}): {b['latency_ms']:.2f} ms "
                  f"({r['vs_baseline'][board + '_latency']:.0%} of baseline), flash {b['flash_bytes']:,} B"
                  + ("" if b["fits"] else ", DOES NOT FIT"))
        for note in r["notes"]:
            print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
