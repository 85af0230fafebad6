"""A native crash under `edgekit` is one line and exit 2, not a bare exit 139 (crash.py).

The crashes are real: a NULL read through ctypes (SIGSEGV) inside the code that loads a model into
LiteRT, in a real `edgekit profile` run through the command's own entry point."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ir_models
from platforms import sigint_default

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the supervisor forks (POSIX only)")

CRASHING = r'''
import ctypes, sys
from edgekit import cli, crash
from edgekit.runtime import litert
where = sys.argv[1]
real = litert.interpreter_module
def crashing_module():
    module = real()
    class Interpreter(module.Interpreter):
        def allocate_tensors(self):
            ctypes.string_at(0)  # SIGSEGV in native code, as a LiteRT bug on a malformed model would
    return type("lite", (), {"Interpreter": Interpreter})
if where == "litert":
    litert.interpreter_module = crashing_module
else:  # outside any code edgekit marks
    litert.interpreter_module = lambda: ctypes.string_at(0)
sys.argv = ["edgekit", "profile", sys.argv[2], "--target", "rpi4", "--sim", "--runs", "2"]
sys.exit(cli.run())
'''


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("crash") / "cnn_int8.tflite"
    path.write_bytes(ir_models.int8(ir_models.cnn()))
    return path


@pytest.mark.parametrize("where, said", [
    ("litert", "error: LiteRT crashed (SIGSEGV) while loading the model;"),
    ("elsewhere", "error: native code crashed (SIGSEGV);")])
def test_a_segfault_is_one_line_and_exit_2(model, where, said):
    r = subprocess.run([sys.executable, "-c", CRASHING, where, str(model)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(said), r.stderr
    assert "Traceback" not in r.stderr and r.stderr.splitlines()[-1] == errors[0]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the child")
def test_signals_reach_the_command_and_it_dies_with_its_parent(model):
    serve = [sys.executable, "-m", "edgekit", "board", "serve", "--target", "nano33ble", "--model", str(model)]
    for how, code in (("SIGTERM", 0), ("SIGKILL", None)):  # board serve stops cleanly on SIGTERM
        p = subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert p.stdout.readline().startswith("/dev/")
            (child,) = _children(p.pid)
            p.send_signal(getattr(signal, how))  # to the parent alone
            p.wait(timeout=30)
            if code is not None:
                assert p.returncode == code
            end = time.monotonic() + 10
            while Path(f"/proc/{child}").exists() and time.monotonic() < end:
                time.sleep(0.1)
            assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        finally:
            if p.poll() is None:
                p.kill()


def test_a_ctrl_c_right_after_the_fork_still_stops_the_command():
    """SIGINT landing on the supervisor between its fork and its handlers (a Ctrl-C or a harness's
    kill, by chance): held until the handlers are in place, then passed on; the command stops."""
    code = ("import os, signal, sys, time\n"
            "from edgekit import crash\n"
            "def main(argv):\n"
            "    print('serving', flush=True)\n"
            "    time.sleep(60)\n"
            "    return 0\n"
            "os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGINT))  # the timing\n"
            "sys.exit(crash.supervise(main, []))\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=sigint_default)
    try:
        p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()  # the command dies with it (PDEATHSIG)
    assert p.returncode == 130, p.returncode
