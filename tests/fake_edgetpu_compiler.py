"""A stand-in edgetpu_compiler for tests: a Python script on PATH printing the real compiler's log
format (compiler 16) and copying a prepared compiled model where the real one would write it."""
import os
import sys

import edgetpu_builders as eb
from edgekit.edgetpu import compiler as ec

FAKE = r'''#!{python}
import json, os, shutil, sys, time
args = sys.argv[1:]
json.dump(args, open(os.environ["FAKE_ARGS"], "w"))
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "sleep":
    time.sleep(30)
print("Edge TPU Compiler version 16.0.384591198")
print("Started a compilation timeout timer of 180 seconds.")
if mode == "fail":
    print("Internal compiler error. Aborting!")
    sys.exit(1)
out_dir, model = args[args.index("-o") + 1], args[-1]
stem = os.path.splitext(os.path.basename(model))[0]
if mode != "no-output":
    shutil.copy(os.environ["FAKE_OUTPUT"], os.path.join(out_dir, stem + "_edgetpu.tflite"))
print(f"""
Model compiled successfully in 130 ms.

Input model: {{model}}
Input size: 9.64KiB
Output model: {{out_dir}}/{{stem}}_edgetpu.tflite
Output size: 62.34KiB
On-chip memory used for caching model parameters: 4.75KiB
On-chip memory remaining for caching model parameters: 7.92MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 7
Operation log: {{out_dir}}/{{stem}}_edgetpu.log

Operator                       Count      Status

CONV_2D                        2          Mapped to Edge TPU
MAX_POOL_2D                    1          Mapped to Edge TPU
AVERAGE_POOL_2D                1          Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
FULLY_CONNECTED                1          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
Compilation child process completed within timeout period.
Compilation succeeded!""")
'''


def install(monkeypatch, tmp_path):
    """Put the stand-in first on PATH, as if on x86-64 Linux; returns its path. FAKE_MODE picks a failure."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    compiled = tmp_path / "compiled.tflite"
    compiled.write_bytes(eb.compiled_like(cpu_after=()))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ARGS", str(tmp_path / "args.json"))
    monkeypatch.setenv("FAKE_OUTPUT", str(compiled))
    monkeypatch.setattr(ec.platform, "system", lambda: "Linux")
    monkeypatch.setattr(ec.platform, "machine", lambda: "x86_64")
    return exe
