"""The JSON keys `edgekit profile --json` and `edgekit deploy --json` print, pinned per board.

Scripts and course notebooks read these reports by key, so a key that appears, disappears or moves
is a change users see. The golden file tests/golden/report_keys.json holds, for each
(command, target) case, every key as a sorted dotted path: "memory.parts.model_bytes" for nested
dicts, "layers[].latency_ms" for the first element of a list of dicts; a dict's own path is listed
too, so an empty dict (rpi4's "memory") still counts. Keys that are data (the descriptor paths
under "sources") are recorded the same way and must stay the same.

The model is a small int8 CNN (tests/ir_models.py) that every simulated board runs, the Coral
simulator included. edgetpu_compiler is hidden from PATH so the Coral report is always the
"predicted" one, whatever machine runs the test.

When a change of keys is intended, regenerate the golden file and commit it with the change:

    EDGEKIT_REGEN_GOLDEN=1 .venv/bin/pytest -q tests/test_report_keys.py -p no:cacheprovider
"""
import contextlib
import io
import json
import os
from pathlib import Path

import pytest

import ir_models
from edgekit.cli import main
from edgekit.edgetpu import compiler as ec

GOLDEN = Path(__file__).parent / "golden" / "report_keys.json"
TARGETS = ("nano33ble", "esp32s3", "rpi4", "coral", "stm32l4r5")
CASES = {f"{command} {target}": [command, "--target", target]
         for command in ("profile", "deploy") for target in TARGETS}
CASES["profile rpi4 --duration 30"] = ["profile", "--target", "rpi4", "--duration", "30"]


def key_paths(value, prefix=""):
    """Every key path in a JSON value; lists of dicts are described by their first element."""
    paths = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(child, path)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        paths |= key_paths(value[0], prefix + "[]")
    return paths


def _keys_of(argv):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 0, argv
    return sorted(key_paths(json.loads(stdout.getvalue())))


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """Every case's key paths, from the CLI run in-process on simulated boards."""
    tmp = tmp_path_factory.mktemp("report_keys")
    model = tmp / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # nothing a command leaves behind lands in the repository
        mp.setattr(ec.shutil, "which", lambda name: None)  # no edgetpu_compiler: the predicted Coral report
        keys = {case: _keys_of([argv[0], str(model), *argv[1:], "--sim", "--json"]) for case, argv in CASES.items()}
    if os.environ.get("EDGEKIT_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(keys, indent=1) + "\n")
    return keys


@pytest.fixture(scope="module")
def golden(produced):  # after `produced`, so a regeneration is what gets read
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing: record it with EDGEKIT_REGEN_GOLDEN=1 (see this module's docstring)")
    return json.loads(GOLDEN.read_text())


def test_the_golden_file_has_exactly_these_cases(golden):
    assert sorted(golden) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_report_keys_are_unchanged(case, produced, golden):
    now, then = set(produced[case]), set(golden.get(case, []))
    appeared, disappeared = sorted(now - then), sorted(then - now)
    assert not (appeared or disappeared), (
        f"`edgekit {case} --sim --json` keys changed\n  appeared: {appeared}\n  disappeared: {disappeared}\n"
        "if intended, regenerate tests/golden/report_keys.json with EDGEKIT_REGEN_GOLDEN=1")
