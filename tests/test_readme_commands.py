"""Every command in README.md's code blocks runs as shown, on simulated boards, in a fresh folder
holding the files README assumes (model.onnx, calib.npy, ...): README and the commands cannot drift
apart. A line README adds that is neither an `edgekit` command nor listed below fails here."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch_api as tt
import edgekit
from edgekit import zoo
from edgekit.export.tflite_writer import write_tflite

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
# what `python3 dev.py X` runs once .venv exists (setting .venv up is dev.py's own business)
DEV = {"python3 dev.py demo": [sys.executable, str(ROOT / "examples" / "demo.py"), "--out", "demo"],
       "python3 dev.py test": None}  # the test suite this test is part of
CHOOSES_A_BOARD = ("deploy", "profile", "capture")  # take --sim: never a board plugged into this machine


def _blocks(language: str) -> list[str]:
    text = README.read_text()
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M) if m.group(1) == language]


def _shell_lines() -> list[str]:
    lines = []
    for block in _blocks(""):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()  # README's commands carry no '#' of their own
            if command:
                lines.append(command)
    return lines


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder with what README's commands take: a digits MLP as model.onnx and as a float .tflite,
    200 calibration inputs, the int8 model README converts (for the commands that only read it)."""
    here = tmp_path_factory.mktemp("readme")
    graph, data = zoo.digits_mlp()
    edgekit.export_onnx(graph, None, here / "model.onnx")
    (here / "keras_float.tflite").write_bytes(write_tflite(graph))
    np.save(here / "calib.npy", data["x_train"][:200])
    edgekit.convert(here / "model.onnx", calibration=data["x_train"][:200], verify=False).save(here / "model_int8.tflite")
    (here / "olympics").mkdir()  # `edgekit olympics demo` wants an empty folder
    return here, graph, data


def test_readme_shows_commands():
    lines = _shell_lines()
    assert len(lines) >= 12 and all(line.startswith("edgekit ") or line in DEV for line in lines), lines


@pytest.mark.parametrize("line", _shell_lines())
def test_readme_command_runs(line, folder):
    here, _, _ = folder
    if line in DEV:
        if DEV[line] is None:
            pytest.skip(f"`{line}` runs this test suite")
        argv = DEV[line]
    else:
        args = shlex.split(line)[1:]
        if args[0] in CHOOSES_A_BOARD and not {"--sim", "--hw", "--emu"} & set(args):
            args.append("--sim")
        argv = [sys.executable, "-m", "edgekit", *args]
    cwd = here / "olympics" if line == "edgekit olympics demo" else here
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"`{line}` failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    for name in re.findall(r"(?:-o|--plot) (\S+)", line):  # what the command says it writes, it wrote
        assert (here / name).exists(), f"`{line}` did not write {name}"


def test_readme_python_block_runs(folder, monkeypatch, capsys):
    """README's notebook lines, on a TinyTorch model trained on digits (x: its inputs in [0, 1])."""
    here, graph, data = folder
    const = {name: t.data for name, t in graph.tensors.items() if t.is_const}
    model = tt.Sequential(tt.Linear(64, 64), tt.ReLU(), tt.Linear(64, 10), tt.Softmax())
    for layer, name in ((model.layers[0], "fc1"), (model.layers[2], "fc2")):
        layer.weight, layer.bias = tt.Tensor(const[f"{name}/weights"].T), tt.Tensor(const[f"{name}/bias"])
    monkeypatch.chdir(here)
    (block,) = _blocks("python")
    scope = {"model": model, "x": data["x_test"], "x_train": data["x_train"]}
    exec(compile(block, "README.md", "exec"), scope)
    assert (here / "digits_int8.tflite").read_bytes() == scope["q"].tflite
    report = " ".join(capsys.readouterr().out.split())
    assert "float vs int8" in report and "held-out calibration samples" in report and "warning" not in report
