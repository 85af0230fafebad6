"""VirtualBoard takes what its caller already has (a Board, a TFLiteModel, the simulator's report),
SimSerial.attached puts a port in front of such a board, and the hardware layers import only
downward (sim below protocol below capture)."""
import ast
from pathlib import Path

import numpy as np
import pytest

from board_fixtures import expected, model_path, sample  # noqa: F401  (pytest fixtures, used by name)
from edgekit.protocol import BoardClient, Faults, SimSerial, VirtualBoard
from edgekit.errors import EdgekitError
from edgekit.protocol import virtual
from edgekit.targets import load_board
from edgekit.tflite_file import TFLiteModel
from platforms import needs_tflm

SRC = Path(__file__).resolve().parents[1] / "src" / "edgekit"
REPORT = {"latency_ms": 2.5, "layers": [{"op": "CONV_2D", "latency_ms": 1.5}, {"op": "SOFTMAX", "latency_ms": 1.0}],
          "arena_bytes": 12345, "flash_bytes": 67890}


@needs_tflm
def test_board_object_model_object_and_simulation_are_used_as_given(model_path, sample, expected, monkeypatch):
    def no_simulation(*args, **kwargs):
        raise AssertionError("the board simulated the model although it was given the report")
    monkeypatch.setattr(virtual, "simulate", no_simulation)
    model = TFLiteModel(model_path.read_bytes())
    vb = VirtualBoard(load_board("nano33ble"), model, simulation=REPORT)
    try:
        with BoardClient(SimSerial.attached(vb), timeout=1.0) as c:
            info = c.info()
            assert (info["model_sha256"], info["arena_bytes"], info["flash_used"]) == (model.sha256, 12345, 67890)
            c.load(sample.tobytes())
            timing = c.infer(4, 1)
            assert c.raw() == expected
            assert [(op, us) for _, op, us in c.layers()] == [("CONV_2D", 1500), ("SOFTMAX", 1000)]
        assert timing["latency_us"] == 2500
    finally:
        vb.close()


@needs_tflm
def test_without_a_report_the_board_simulates(model_path):
    from edgekit.sim.simulate import simulate
    data = model_path.read_bytes()
    vb = VirtualBoard("nano33ble", data)
    try:
        report = simulate(data, "nano33ble")
        assert vb.model.latency_us == pytest.approx(report.latency_ms * 1000)
        assert vb.model.layers == [(row["op"], pytest.approx(row["latency_ms"] * 1000)) for row in report.layers]
        # simulate()'s own report is taken as given too
        again = VirtualBoard("nano33ble", data, simulation=report)
        assert (again.model.latency_us, again.model.layers) == (vb.model.latency_us, vb.model.layers)
        again.close()
    finally:
        vb.close()


@needs_tflm
def test_a_simulation_of_another_model_or_board_is_refused(model_path):
    model = TFLiteModel(model_path.read_bytes())
    with pytest.raises(EdgekitError, match="for model_sha256 0+, but this is"):
        VirtualBoard("nano33ble", model, simulation={**REPORT, "model_sha256": "0" * 64})
    with pytest.raises(EdgekitError, match="for target esp32s3, but this is nano33ble"):
        VirtualBoard("nano33ble", model, simulation={**REPORT, "target": "esp32s3"})


def test_attached_port_talks_to_the_callers_board_and_leaves_it_open():
    vb = VirtualBoard("nano33ble", stand_in=True)
    closed = []
    vb.close = lambda: closed.append(True)  # the board's owner closes it, not the port
    port = SimSerial.attached(vb)
    assert port.is_open and port.port == "sim://nano33ble"
    with BoardClient(port, timeout=1.0) as c:
        assert c.name() == "edgekit nano33ble"
        c.load(bytes(range(256)) * 4)
        c.infer(1, 0)
    assert vb.commands >= 3 and vb.inferences == 1  # the caller's own board answered
    port.close()
    assert not port.is_open and not closed
    assert vb.feed(b"name%") == b"m-name-dut-[edgekit nano33ble]\r\nm-ready\r\n"  # still usable


def test_attached_port_applies_faults():
    vb = VirtualBoard("nano33ble", stand_in=True)
    with BoardClient(SimSerial.attached(vb, Faults(reset_after=2)), timeout=1.0) as c:
        c.name()
        c.name()
        c.name()  # the board resets after two commands; the client recovers
        assert vb.boots == 2
    vb.close()


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """(absolute module, node) of every import in a module of src/edgekit."""
    pkg = ["edgekit"] + list(path.relative_to(SRC).parent.parts)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = pkg[:len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [(f"{mod}.{a.name}" if not node.module else mod, node) for a in node.names]
    return out


def _under(mod: str, packages) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in packages)


ABOVE_PROTOCOL = [f"edgekit.{m}" for m in ("capture", "backends", "deployment", "cli", "olympics")]


@pytest.mark.parametrize("path", sorted((SRC / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_protocol_imports_nothing_above_it(path):
    assert [m for m, _ in _imports(path) if _under(m, ABOVE_PROTOCOL)] == []


def test_sim_sensors_imports_only_below_it():
    allowed = ["edgekit.sim", "edgekit.targets", "edgekit.tflite_file", "edgekit.errors"]
    mods = [m for m, _ in _imports(SRC / "sim" / "sensors.py") if m.startswith("edgekit")]
    assert mods and all(_under(m, allowed) for m in mods), mods


@pytest.mark.parametrize("path", sorted((SRC / "sim").glob("*.py")), ids=lambda p: p.name)
def test_sim_imports_nothing_above_it(path):
    assert [m for m, _ in _imports(path) if _under(m, ["edgekit.protocol"] + ABOVE_PROTOCOL)] == []


@pytest.mark.parametrize("path", sorted((SRC / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_protocol_imports_inside_functions_say_why(path):
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    nested = [n for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [lines[n.lineno - 1].strip() for n in nested if "# lazy:" not in lines[n.lineno - 1]] == []
