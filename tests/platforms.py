"""What a test needs of the machine that runs it, as skip markers that say why (the suite runs on
x86-64 and, for the Pi, on aarch64: tests/arm64/run.sh)."""
import signal
import subprocess
import sys

import pytest

from edgekit.runtime.tflm import tflm_available

_TFLM, _WHY = tflm_available()
needs_tflm = pytest.mark.skipif(not _TFLM, reason=f"needs TFLite Micro, which cannot run here: {_WHY}")


def _rlimit_as_enforced() -> bool:
    """Whether a process here that lowers RLIMIT_AS is refused memory beyond it. qemu-user (the arm64
    check) accepts setrlimit(RLIMIT_AS) and ignores it, since the limit would bind the emulator itself."""
    probe = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
             "try: bytearray(2 << 30)\nexcept MemoryError: raise SystemExit(0)\nraise SystemExit(1)")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120).returncode == 0


enforces_rlimit_as = pytest.mark.skipif(not _rlimit_as_enforced(), reason="this machine does not enforce "
                                        "RLIMIT_AS (qemu-user ignores it): the sandbox's memory limit cannot bite")


def sigint_default() -> None:
    """A Popen preexec_fn: SIGINT at its default in the child, as a terminal's foreground job has it. A
    script's background job (`pytest ... &`) starts with SIGINT ignored, Python keeps an inherited
    SIG_IGN, and a test's Ctrl-C would never reach the command."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
