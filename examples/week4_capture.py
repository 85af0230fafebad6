"""Week 4 in one script: capture a small gesture data set from the Nano 33 BLE Sense's IMU (its
simulation when no board is connected), then train and evaluate a tiny classifier on it in numpy.

    python examples/week4_capture.py [--out week4_data] [--count 10] [--sim | --hw] [--json]

With a board, perform each gesture when the countdown ends. The data set lands in --out
(data/<label>/<label>.<n>.csv and manifest.json); running again adds recordings.
"""
import argparse
import json
import sys

import numpy as np

import edgekit
from edgekit.capture import capture

GESTURES = ["idle", "wave", "punch", "circle"]


def features(x):
    """Per accelerometer and gyroscope channel: mean, spread, range and how fast it changes."""
    x = x[:, :, :6]
    return np.concatenate([x.mean(1), x.std(1), np.ptp(x, axis=1), np.abs(np.diff(x, axis=1)).mean(1)], axis=1)


def softmax_regression(f, y, classes, steps=500, lr=0.5):
    w, b = np.zeros((f.shape[1], classes)), np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = f @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= lr * f.T @ (p - onehot) / len(y)
        b -= lr * (p - onehot).mean(0)
    return w, b


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="week4_data")
    ap.add_argument("--count", type=int, default=10, help="recordings per gesture")
    ap.add_argument("--seed", type=int, default=0)
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--sim", action="store_true")
    how.add_argument("--hw", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    force = "sim" if args.sim else "hw" if args.hw else None
    modes = set()
    for g in GESTURES:
        if not args.json:
            print(f"recording {args.count} x '{g}' ...", flush=True)
        for e in capture("nano33ble", "imu", args.out, label=g, rate=100, seconds=2, count=args.count,
                         seed=args.seed, force=force):
            modes.add(e["mode"])
    data = edgekit.load_dataset(args.out)
    # hold out every third recording of each gesture (by recording number)
    n = np.array([int(f.rsplit(".", 2)[1]) for f in data.files])
    test = n % 3 == 0
    f = features(data.x)
    mu, sd = f[~test].mean(0), f[~test].std(0) + 1e-9
    f = (f - mu) / sd
    w, b = softmax_regression(f[~test], data.y[~test], len(data.labels))
    pred = np.argmax(f[test] @ w + b, 1)
    acc = float(np.mean(pred == data.y[test]))
    confusion = np.zeros((len(data.labels),) * 2, dtype=int)
    for t, p in zip(data.y[test], pred):
        confusion[t, p] += 1
    result = {"mode": "/".join(sorted(modes)), "data": args.out, "labels": data.labels,
              "recordings": len(data), "train": int((~test).sum()), "test": int(test.sum()),
              "accuracy": round(acc, 3), "chance": round(1 / len(data.labels), 3), "confusion": confusion.tolist()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['recordings']} recordings ({result['mode']}); held-out accuracy {acc:.1%} "
              f"(chance {result['chance']:.0%}) on {result['test']} recordings")
        print("confusion (rows: true, columns: predicted):", data.labels)
        print(confusion)
    return 0


if __name__ == "__main__":
    sys.exit(main())
