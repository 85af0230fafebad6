#!/usr/bin/env python3
"""Set-up and run in one step, on a fresh machine that has only Python (>= 3.10).

    python3 dev.py demo     # make .venv, install edgekit, run the main job
    python3 dev.py test     # make .venv, install edgekit with test extras, run the test suite
    python3 dev.py arm64    # the Pi side on an emulated arm64 Debian root (root and qemu-user; else skipped)

The virtual environment is (re)installed only when pyproject.toml changes.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"edgekit needs Python >= 3.10; this is {sys.version.split()[0]}. Install a newer Python and run again.")
    stamp = VENV / f".installed-{extras or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        print("creating .venv ...", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    target = f".[{extras}]" if extras else "."
    print(f"installing edgekit{'[' + extras + ']' if extras else ''} into .venv ...", flush=True)
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "-e", target], cwd=ROOT)
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "help"
    if cmd == "test":
        ensure_venv("test")
        return subprocess.call([str(PY), "-m", "pytest", *argv[1:]], cwd=ROOT)
    if cmd == "arm64":  # the Pi side on an emulated arm64 Debian (tests/arm64/run.sh: root, qemu-user)
        ensure_venv("test")  # compares with this machine's LiteRT
        return subprocess.call(["bash", str(ROOT / "tests" / "arm64" / "run.sh"), *argv[1:]], cwd=ROOT)
    if cmd == "demo":
        ensure_venv("test")  # the demo trains its example model on scikit-learn's bundled digits
        return subprocess.call([str(PY), str(ROOT / "examples" / "demo.py"), *argv[1:]], cwd=ROOT)
    print(__doc__)
    return 0 if cmd in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
