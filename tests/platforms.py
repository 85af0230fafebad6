"""What a test needs of the machine that runs it, as skip markers that say why (the suite runs on
x86-64 and, for the Pi, on aarch64: tests/arm64/run.sh)."""
import pytest

from edgekit.runtime.tflm import tflm_available

_TFLM, _WHY = tflm_available()
needs_tflm = pytest.mark.skipif(not _TFLM, reason=f"needs TFLite Micro, which cannot run here: {_WHY}")
