"""`deploy --sim` says "fits" exactly when the firmware build would accept the model.

For each board and each memory a model needs (RAM for the arena and the runtime, PSRAM on the
ESP32-S3, sketch flash), the board's limit is put right at what the model needs (fits by 0 bytes)
and one byte below it (short by 1), in a copy of the descriptors ($EDGEKIT_TARGETS_DIR). The
simulated backend's verdict (what `deploy --sim` reports and refuses) and the firmware generator's
(generate_project with its fit check) must agree on every one, with the same TFLite Micro arena.
"""
import re
import shutil
from pathlib import Path

import pytest

import ir_models
from edgekit.backends import open_backend
from edgekit.errors import EdgekitError
from edgekit.sketch import generate_project
from edgekit.targets import targets_dir
from edgekit.tflite_file import TFLiteModel

MODELS = {"cnn": ir_models.int8(ir_models.cnn()), "activations": ir_models.int8(ir_models.big_activations(size=48))}


def _descriptor_with(folder: Path, key: str, values: dict[str, int]) -> None:
    """targets/<key>.toml in `folder` with memory.<name> set to the given values."""
    text = (folder / f"{key}.toml").read_text()
    for name, value in values.items():
        text, n = re.subn(rf"^{name} = {{ value = [\d_]+", f"{name} = {{ value = {value}", text, flags=re.M)
        assert n == 1, f"{key}.toml has no memory.{name}"
    (folder / f"{key}.toml").write_text(text)


def _verdicts(key: str, model: TFLiteModel, out: Path) -> tuple[bool, bool, str]:
    """(simulator says it fits, firmware build accepts it, why the firmware refused)."""
    backend = open_backend(key, force="sim")
    backend.load(model)
    try:
        generate_project(model, backend.board, out, backend.host_arena)
        accepted, why = True, ""
    except EdgekitError as e:
        accepted, why = False, str(e)
    return backend.simulation.fits, accepted, why


def _needs(key: str, model: TFLiteModel, tmp: Path) -> dict:
    """What the firmware allocates for the model on the unmodified board: arena, runtime RAM, flash."""
    backend = open_backend(key, force="sim")
    backend.load(model)
    project = generate_project(model, backend.board, tmp / "needs", backend.host_arena, check_fit=False)
    board = backend.board
    return {"arena": project.arena.total_bytes, "runtime_ram": int(board.num("memory.runtime_ram_bytes")),
            "flash": len(model) + int(board.num("memory.runtime_flash_bytes"))}


def _edges(key: str, needs: dict) -> list[tuple[str, dict]]:
    """(case, the descriptor values) right at each edge and one byte short of it."""
    ram_limit = "sram_bytes" if key == "nano33ble" else "data_ram_max_bytes"
    ram = needs["arena"] + needs["runtime_ram"]
    cases = []
    for short in (0, 1):
        # (the ESP32-S3 without its PSRAM, which would otherwise take an arena the data RAM cannot)
        cases.append((f"RAM short by {short}", {ram_limit: ram - short, **({"psram_bytes": 0} if key == "esp32s3" else {})}))
        cases.append((f"flash short by {short}", {"sketch_flash_max_bytes": needs["flash"] - short}))
        if key == "esp32s3":  # the arena moves to PSRAM when the data RAM cannot hold it
            cases.append((f"PSRAM short by {short}", {"data_ram_max_bytes": needs["runtime_ram"] + 16,
                                                       "psram_bytes": needs["arena"] - short}))
    return cases


@pytest.mark.parametrize("key", ["nano33ble", "esp32s3"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_simulator_and_firmware_agree_at_the_memory_edge(key, name, tmp_path, monkeypatch):
    model = TFLiteModel(MODELS[name], name)
    needs = _needs(key, model, tmp_path)
    seen = []
    for case, values in _edges(key, needs):
        folder = tmp_path / re.sub(r"\W+", "_", case)
        shutil.copytree(targets_dir(), folder)
        _descriptor_with(folder, key, values)
        monkeypatch.setenv("EDGEKIT_TARGETS_DIR", str(folder))
        sim_fits, accepted, why = _verdicts(key, model, tmp_path / "out" / folder.name)
        assert sim_fits == accepted, f"{key}, {name}, {case}: simulator fits={sim_fits}, firmware accepted={accepted} {why}"
        seen.append((case, sim_fits))
    # the edges are real: every "short by 0" fits, every "short by 1" does not
    assert all(fits == case.endswith("by 0") for case, fits in seen), seen
