import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).parent))

import pytest


@pytest.fixture(autouse=True)
def own_instruction_counts(tmp_path_factory, monkeypatch):
    """Instruction counts left by an emulated run make the simulator use them (edgekit.sim.counts):
    each test gets its own folder, so that no test's simulated figures depend on another's."""
    monkeypatch.setenv("EDGEKIT_COUNTS_DIR", str(tmp_path_factory.mktemp("counts")))
