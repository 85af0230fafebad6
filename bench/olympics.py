"""How long an Olympics run takes: 20 submissions x 3 simulated boards, demo track; and across a lab.

    python bench/olympics.py [--submissions 20] [--repeats 3] [--lab] [--json]

Makes the submissions (trained digits MLPs of several widths, CNNs, a few too slow or too big, as
int8 .tflite, float .tflite and ONNX), then runs them with `edgekit olympics run`'s code on the
simulated nano33ble, esp32s3 and coral, in three ways, one after another in each round:
  fork server, --jobs 1     each evaluation a child forked from a process that imported once
  fork server, --jobs 2     two such workers at once
  fresh process, --jobs 1   a new Python per evaluation, as edgekit did before: the comparison
Reports, over the rounds, the median and the spread (min-max) of each, and the ratios within a round.

--lab (needs labgrid and ser2net, as tests/test_lab.py): 8 int8 submissions x nano33ble and
esp32s3 with a 20-sample test set, on a labgrid lab on this machine (a coordinator, two exporters,
four virtual boards served by `edgekit board serve`), once with all 4 places free and once with 2
of them taken by another user, in each round.
"""
import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from edgekit.olympics import demo, runner
from edgekit.olympics.store import Store
from edgekit.olympics.tracks import load_track

KINDS = ("int8", "onnx", "float")
KEY = b"benchmark key, not a course key"
WAYS = {"fork server, --jobs 1": dict(jobs=1), "fork server, --jobs 2": dict(jobs=2),
        "fresh process, --jobs 1": dict(jobs=1, fork_server=False)}


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
        demo.model_file(graph, KINDS[i % 3], folder / team, calib)
        demo.write_submission(folder / team, team, ["int8 PTQ"])


def cpu_s() -> float:
    """CPU seconds of this process and of its children waited for (the fork servers and theirs)."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                          resource.RUSAGE_CHILDREN)))


def timed_run(root: Path, track, targets, name: str, **how) -> tuple[float, dict, float]:
    """(wall seconds, the run's summary, cores kept busy on average)."""
    store = Store(root / f"{name}.sqlite", key=KEY)
    t, cpu = time.perf_counter(), cpu_s()
    summary = runner.run(root / "submissions", track, targets, store, **how)
    seconds = time.perf_counter() - t
    store.close()
    (root / f"{name}.sqlite").unlink()
    return seconds, summary, (cpu_s() - cpu) / seconds


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def simulated(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        track = load_track(demo.write_track(root))
        make(root / "submissions", args.submissions)
        times = {way: [] for way in WAYS}
        cores = {way: [] for way in WAYS}
        ratios = {"fresh / fork server (jobs 1)": [], "speed-up jobs 2 over jobs 1": []}
        statuses = None
        for r in range(args.repeats):
            for way, how in WAYS.items():
                seconds, summary, busy = timed_run(root, track, demo.TARGETS, f"r{r}", force="sim", runs=10, **how)
                times[way].append(seconds)
                cores[way].append(busy)
                statuses = statuses or dict(Counter(row["status"] for row in summary["rows"]))
            one, two, fresh = (times[w][-1] for w in WAYS)
            ratios["fresh / fork server (jobs 1)"].append(fresh / one)
            ratios["speed-up jobs 2 over jobs 1"].append(one / two)
    evaluations = args.submissions * len(demo.TARGETS)
    return {"submissions": args.submissions, "targets": demo.TARGETS, "evaluations": evaluations,
            "statuses": statuses, "run_s": {w: spread(t) for w, t in times.items()},
            "per_evaluation_s": {w: spread([s / evaluations for s in t]) for w, t in times.items()},
            "cores_busy": {w: spread(c) for w, c in cores.items()},
            "ratios": {k: spread(v) for k, v in ratios.items()}}


def lab(args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from virtual_lab import MISSING, VirtualLab  # the tests' lab on localhost

    from edgekit.targets.lab import client
    if MISSING:
        return {"skipped": f"no lab here: {', '.join(MISSING)} missing"}
    targets = ["nano33ble", "esp32s3"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        track = load_track(demo.write_track(root, test_limit=20))
        calib = demo.digits()[0][:200]
        for i in range(8):
            demo.model_file(demo.trained_mlp(hidden=[16, 32][i % 2], epochs=3, seed=i), "int8",
                            root / "submissions" / f"team{i}", calib)
            demo.write_submission(root / "submissions" / f"team{i}", f"team{i}", ["int8 PTQ"])
        model = root / "submissions/team0/model.tflite"
        times = {"4 places": [], "2 places": []}
        link = []
        with VirtualLab(root) as virtual:
            virtual.exporter("lab-pc-1", {"nano-a": ("nano33ble", model), "esp-a": ("esp32s3", model)})
            virtual.exporter("lab-pc-2", {"nano-b": ("nano33ble", model), "esp-b": ("esp32s3", model)})
            for r in range(args.repeats):
                times["4 places"].append(timed_run(root, track, targets, f"lab4-{r}", lab="labgrid")[0])
                link.append(round_trips(virtual))
                for place in ("nano-b", "esp-b"):  # taken by another user for the 2-place run
                    subprocess.run([client(), "-p", place, "acquire"], check=True, capture_output=True)
                try:
                    times["2 places"].append(timed_run(root, track, targets, f"lab2-{r}", lab="labgrid")[0])
                finally:
                    for place in ("nano-b", "esp-b"):
                        subprocess.run([client(), "-p", place, "release"], check=True, capture_output=True)
    return {"evaluations": 16, "test_samples": 20, "run_s": {k: spread(v) for k, v in times.items()},
            "link": {k: spread([m[k] for m in link]) for k in link[0]},
            "per_evaluation_s": {k: spread([s / 16 for s in v]) for k, v in times.items()},
            "speed-up 4 places over 2": spread([b / a for a, b in zip(times["4 places"], times["2 places"])])}


def round_trips(virtual, n: int = 30) -> dict:
    """The serial link of place nano-a: a protocol round trip (name%) through labgrid's ser2net
    (RFC 2217) and on the board's pty directly, and opening and closing the RFC 2217 port."""
    from edgekit.protocol.client import BoardClient
    from edgekit.targets.lab import lab_port
    out = {}
    with lab_port("nano33ble", "nano-a") as port:
        t = time.perf_counter()
        client = BoardClient(port.url)
        client.name()
        client.close()
        out["rfc2217 open + name + close s"] = time.perf_counter() - t
        for what, where in (("rfc2217", port.url), ("pty", virtual.ptys["nano-a"])):
            with BoardClient(where) as client:
                client.name()
                t = time.perf_counter()
                for _ in range(n):
                    client.name()
                out[f"round trip via {what} ms"] = (time.perf_counter() - t) / n * 1000
                sample = bytes(client.info()["input_bytes"])
                t = time.perf_counter()
                for _ in range(n):  # what an evaluation does per test sample
                    client.load(sample)
                    client.infer(1, 0)
                    client.raw()
                out[f"test sample (load, infer, raw) via {what} ms"] = (time.perf_counter() - t) / n * 1000
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--submissions", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lab", action="store_true", help="also the labgrid lab: 4 places against 2")
    ap.add_argument("--lab-only", action="store_true", help="only the labgrid lab")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = {} if args.lab_only else {"simulated": simulated(args)}
    if args.lab or args.lab_only:
        result["lab"] = lab(args)
    result["machine"] = f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    print(json.dumps(result, indent=2) if args.json else _text(result))
    return 0


def _text(result: dict, indent: str = "") -> str:
    lines = []
    for k, v in result.items():
        if isinstance(v, dict) and set(v) != {"median", "min", "max"}:
            lines += [f"{indent}{k}:", _text(v, indent + "  ")]
        elif isinstance(v, dict):
            lines.append(f"{indent}{k:34s} {v['median']} (min {v['min']}, max {v['max']})")
        else:
            lines.append(f"{indent}{k:34s} {v}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
