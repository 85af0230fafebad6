"""What tests/arm64/run.sh runs inside the arm64 root as the Pi, and then outside to compare.

    check.py --model kws.tflite --out arm64.npz      # inside: the Pi's commands, tests and int8 outputs
    check.py --model kws.tflite --compare arm64.npz  # outside: the same inputs through this machine's LiteRT

Each step prints one line and stops the check (exit 1) when it fails.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2]
SAMPLES = 8
PI_TESTS = ["tests/test_targets.py", "tests/test_doctor.py", "tests/test_coral_deploy.py", "tests/test_crash.py",
            "tests/test_pi_runner.py"]


def step(what: str, ok: bool, detail: str = "") -> None:
    print(f"  {'ok ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        sys.exit(1)


def edgekit(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "edgekit", *argv], capture_output=True, text=True, env=env,
                       timeout=1200)
    r.seconds = time.monotonic() - t
    return r


def inputs_for(model: bytes) -> np.ndarray:
    from edgekit.tflite_file import TFLiteModel
    shape, dtype = TFLiteModel(model).inputs[0]
    info = np.iinfo(dtype)
    return np.random.default_rng(0).integers(info.min, info.max + 1, (SAMPLES, *shape[1:])).astype(dtype)


def outputs_for(model: bytes, x: np.ndarray) -> dict:
    """The raw outputs as the Pi measures (LiteRT with XNNPACK, as `profile --hw` runs it), and with
    LiteRT's built-in kernels alone (preserve_all_tensors turns XNNPACK off)."""
    from edgekit.pi.on_board import infer
    from edgekit.runtime import litert
    it = litert.load(model, preserve_all=True)
    return {"xnnpack": infer(model, x, accelerator=False)[0],
            "builtin": litert.run_on(it, x, raw=True)[0][0]}


def inside(args) -> None:
    print(f"arm64 check on {os.uname().machine}, EDGEKIT_BOARD={os.environ.get('EDGEKIT_BOARD')}", flush=True)
    r = edgekit("targets", "--json")
    rows = {t["key"]: t for t in json.loads(r.stdout)["targets"]} if r.returncode == 0 else {}
    step("edgekit targets: this machine is the rpi4", r.returncode == 0 and rows.get("rpi4", {}).get("connected") is True,
         f"rpi4: {rows.get('rpi4', {}).get('status')}" if rows else r.stderr.strip()[-200:])
    r = edgekit("doctor", "--json")
    checks = json.loads(r.stdout)["checks"] if r.stdout.strip().startswith("{") else []
    required = [c["name"] for c in checks if c["required"]]
    step("edgekit doctor exits 0 with the Pi's checks", r.returncode == 0 and "arduino-cli" not in required,
         f"required: {', '.join(required)}" if r.returncode == 0 else r.stdout[-300:] + r.stderr[-300:])
    r = edgekit("profile", args.model, "--target", "rpi4", "--hw", "--json", "--runs", "3")
    report = json.loads(r.stdout) if r.returncode == 0 else {}
    step("edgekit profile --target rpi4 --hw: measured, and said to be this machine's figures",
         report.get("mode") == "measured" and "this machine's" in report.get("selected", ""),
         f"{report.get('selected')} ({r.seconds:.0f} s)" if report else r.stderr.strip()[-300:])
    r = edgekit("profile", args.model, "--target", "coral", "--json", "--runs", "3")
    report = json.loads(r.stdout) if r.returncode == 0 else {}
    step("edgekit profile --target coral (no Coral plugged in)", r.returncode == 0,
         f"mode {report.get('mode')}: {report.get('selected')}" if report else r.stderr.strip()[-300:])
    t = time.monotonic()
    r = subprocess.run([sys.executable, str(SRC / "examples/week11_coral.py"), "--json", "--small", "--runs", "3",
                        "--out", "/tmp/week11"], capture_output=True, text=True, timeout=1200)
    step("examples/week11_coral.py --small", r.returncode == 0,
         f"{time.monotonic() - t:.0f} s" if r.returncode == 0 else r.stderr.strip()[-300:])
    model = Path(args.model).read_bytes()
    x = inputs_for(model)
    y = outputs_for(model, x)
    np.savez(args.out, x=x, **y)
    step(f"int8 outputs of {SAMPLES} inputs through LiteRT on aarch64", True, f"{y['xnnpack'].shape}")
    env = {k: v for k, v in os.environ.items() if k != "EDGEKIT_BOARD"}  # the tests set up machines themselves
    # EDGEKIT_ARM64_TESTS=all: the whole suite (long under qemu: not for CI); or the tests it names
    chosen = os.environ.get("EDGEKIT_ARM64_TESTS", "").split()
    tests = ["tests"] if chosen == ["all"] else chosen or [t for t in PI_TESTS if (SRC / t).exists()]
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *tests],
                       cwd=SRC, env=env, capture_output=True, text=True, timeout=4 * 3600)
    tail = [ln for ln in r.stdout.splitlines() if ln.strip()][-3:]
    if chosen:
        Path("/tmp/arm64-tests.txt").write_text(r.stdout + r.stderr)  # every failure and skip, for the record
    step(f"the tests ({', '.join(Path(t).stem for t in tests)})", r.returncode == 0,
         f"{' / '.join(tail)} in {time.monotonic() - t:.0f} s")


def compare(args) -> None:
    with np.load(args.compare) as f:
        x, pi = f["x"], {k: f[k] for k in ("xnnpack", "builtin")}
    here = outputs_for(Path(args.model).read_bytes(), x)
    for kernels in ("builtin", "xnnpack"):
        differ = int(np.count_nonzero(here[kernels] != pi[kernels]))
        most = int(np.abs(here[kernels].astype(int) - pi[kernels].astype(int)).max())
        print(f"  {'same' if not differ else 'DIFF'} {kernels}: {differ} of {pi[kernels].size} values differ"
              + (f", by up to {most}" if differ else ""), flush=True)
    for where, y in (("aarch64", pi), ("this machine", here)):  # which side's XNNPACK rounds differently
        differ = int(np.count_nonzero(y["xnnpack"] != y["builtin"]))
        print(f"  {'same' if not differ else 'DIFF'} XNNPACK against the built-in kernels on {where}: {differ} of "
              f"{y['xnnpack'].size} values differ", flush=True)
    step(f"the aarch64 int8 outputs equal this machine's LiteRT on {len(x)} inputs (built-in kernels)",
         np.array_equal(here["builtin"], pi["builtin"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out")
    ap.add_argument("--compare")
    args = ap.parse_args()
    compare(args) if args.compare else inside(args)


if __name__ == "__main__":
    main()
