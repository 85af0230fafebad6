"""How long an Olympics run takes, and how much memory: 20 submissions x 3 simulated boards, demo track.

    python bench/olympics.py [--submissions 20] [--json]

Makes the submissions (trained digits MLPs of several widths, CNNs, a few too slow or too big, as
int8 .tflite, float .tflite and ONNX), then runs them with `edgekit olympics run`'s code on the
simulated nano33ble, esp32s3 and coral: one limited child process per submission and board.
Reports the wall time (making the submissions apart) and the peak resident memory of this process
and of the largest child (resource.getrusage: ru_maxrss of self and of the children waited for).
"""
import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from edgekit.olympics import demo, runner
from edgekit.olympics.store import Store
from edgekit.olympics.tracks import load_track

KINDS = ("int8", "onnx", "float")


def make(folder: Path, n: int) -> None:
    calib = demo.digits()[0][:200]
    for i in range(n):
        team = f"team{i:02d}"
        if i % 5 == 3:
            graph = demo.trained_cnn(channels=4 + 4 * (i % 3), seed=i)
        elif i % 10 == 9:
            graph = demo.random_mlp([2048, 512], seed=i)  # too big for the Nano
        else:
            graph = demo.trained_mlp(hidden=[16, 32, 64, 128, 512][i % 5], epochs=10, seed=i)
        kind = KINDS[i % 3]
        demo.model_file(graph, kind, folder / team, calib)
        demo.write_submission(folder / team, team, ["int8 PTQ"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--submissions", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        track = load_track(demo.write_track(root))
        make(root / "submissions", args.submissions)
        made = time.perf_counter() - t0
        store = Store(root / "results.sqlite", key=b"benchmark key, not a course key")
        t1 = time.perf_counter()
        summary = runner.run(root / "submissions", track, demo.TARGETS, store, force="sim", runs=10)
        ran = time.perf_counter() - t1
    evaluations = len(summary["rows"])
    result = {
        "submissions": args.submissions, "targets": demo.TARGETS, "evaluations": evaluations,
        "make_submissions_s": round(made, 1), "run_s": round(ran, 1),
        "per_evaluation_s": round(ran / evaluations, 2),
        "statuses": dict(Counter(r["status"] for r in summary["rows"])),
        # ru_maxrss is in KiB on Linux: the largest resident set of this process, and of any one child
        "peak_rss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_child_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:22s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
