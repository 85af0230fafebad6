import os
import pathlib
import sys
sys.path.insert(0, str(pathlib.Path(__file__).parent))

import pytest


@pytest.fixture(autouse=True)
def own_instruction_counts(tmp_path_factory, monkeypatch):
    """Instruction counts left by an emulated run make the simulator use them (edgekit.sim.counts):
    each test gets its own folder, so that no test's simulated figures depend on another's."""
    monkeypatch.setenv("EDGEKIT_COUNTS_DIR", str(tmp_path_factory.mktemp("counts")))


# .ci/run installs everything a test here can use and sets EDGEKIT_CI=1: there, a skip is a failure
# unless no install reachable from CI (Debian's packages, PyPI) could have removed its reason.
CI_SKIPS_ALLOWED = {
    "edgetpu_compiler is not on PATH": "Coral's apt repository is not reachable from CI",
    "root can write anywhere": "CI runs as root; the permission case needs another user",
    "runs this test suite": "the README's test command, inside the test suite",
    "libedgetpu is installed here": "the case of a machine without the Edge TPU runtime",
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("EDGEKIT_CI") != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if not any(allowed in reason for allowed in CI_SKIPS_ALLOWED):
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI, where it must run: {reason} (install what it needs in .ci/run, "
                           "or add its reason to CI_SKIPS_ALLOWED in tests/conftest.py with why no install helps)")
