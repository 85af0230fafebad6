"""Benchmark: sensor capture from a virtual board on a real pseudo-terminal, paced in real time.

`edgekit board serve` runs in a separate process (realtime=1: frames leave at the sensor's rate in
wall time) and this process records from its pty with edgekit's capture code, as from a board:
- 16 kHz 16-bit audio (microphone, one channel, 48 samples a frame) into a WAV;
- 1 kHz 6-axis IMU (the Nano's 9-axis IMU with a channel mask for ax..gz, 8 samples a frame) into a CSV.
For each: samples lost (must be 0), and the CPU time of the capturing process (user + system, from
resource.getrusage) over the recording's wall time: must stay under 10% of one core.

    python bench/capture.py [--seconds 60] [--json]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgekit.capture import Session

CPU_LIMIT = 0.10


def serve(label: str):
    """Start `edgekit board serve` in its own process; returns (process, pty path)."""
    cmd = [sys.executable, "-m", "edgekit", "board", "serve", "--target", "nano33ble", "--stand-in",
           "--faults", "realtime=1", "--label", label]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    path = proc.stdout.readline().strip()
    if not path.startswith("/dev/"):
        proc.terminate()
        raise SystemExit(f"edgekit board serve did not print a pty path (got {path!r})")
    return proc, path


def run(sensor: str, seconds: float, channels, label: str, folder: Path) -> dict:
    proc, path = serve(label)
    try:
        s = Session("nano33ble", sensor, folder, label, seconds=seconds, count=1, channels=channels,
                    rate=1000 if sensor == "imu" else None, port=path, mode="simulated", countdown=0)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        entry = s.run()[0]
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = t1 - t0
    return {"sensor": sensor, "channels": entry["channels"], "rate_requested_hz": entry["rate_requested"],
            "rate_achieved_hz": entry["rate_achieved"], "seconds": round(wall, 2), "samples": entry["samples"],
            "samples_expected": entry["samples_expected"], "lost_samples": entry["lost_samples"],
            "gaps": entry["gaps"], "crc_failures": entry["crc_failures"], "header_errors": entry["header_errors"],
            "bytes": entry["bytes"], "host_cpu_s": round(cpu, 3), "host_cpu_fraction_of_one_core": round(cpu / wall, 4),
            "ok": entry["lost_samples"] == 0 and cpu / wall < CPU_LIMIT}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run("microphone", args.seconds, None, "yes", Path(tmp)),
                   run("imu", args.seconds, ["ax", "ay", "az", "gx", "gy", "gz"], "wave", Path(tmp))]
    out = {"seconds": args.seconds, "cpu_limit_fraction": CPU_LIMIT, "cpus": os.cpu_count(), "results": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in results:
            print(f"{r['sensor']:>10} {len(r['channels'])} ch @ {r['rate_requested_hz']:g} Hz: {r['samples']:,} samples "
                  f"in {r['seconds']} s, lost {r['lost_samples']}, achieved {r['rate_achieved_hz']} Hz, host CPU "
                  f"{100 * r['host_cpu_fraction_of_one_core']:.1f}% of one core -> {'ok' if r['ok'] else 'FAIL'}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
