"""`edgekit profile/deploy/compile --target coral`: compiled where edgetpu_compiler is, predicted
where not, and every refusal said before anything runs."""
import json
import re
import sys

import pytest

import edgetpu_builders as eb
import fake_edgetpu_compiler
import ir_models
from edgekit.backends.base import Backend
from edgekit.cli import main
from edgekit.edgetpu import compiler as ec
from edgekit.edgetpu.plan import need_compiled, plan
from edgekit.errors import EdgekitError
from edgekit.export.tflite_writer import write_tflite


@pytest.fixture
def int8_cnn(tmp_path):
    path = tmp_path / "cnn_int8.tflite"
    path.write_bytes(ir_models.int8(ir_models.cnn()))
    return path


@pytest.fixture
def compiler_on_path(monkeypatch, tmp_path):
    return fake_edgetpu_compiler.install(monkeypatch, tmp_path)


@pytest.fixture
def no_compiler(monkeypatch):
    """An x86-64 Linux machine without edgetpu_compiler, whatever machine runs the tests."""
    monkeypatch.setattr(ec.shutil, "which", lambda name: None)
    monkeypatch.setattr(ec.platform, "system", lambda: "Linux")
    monkeypatch.setattr(ec.platform, "machine", lambda: "x86_64")


def test_on_a_pi_the_compiler_does_not_exist(int8_cnn, monkeypatch):
    """On the Pi itself (aarch64) the compiler is not missing but unavailable: the plan says so."""
    monkeypatch.setattr(ec.platform, "system", lambda: "Linux")
    monkeypatch.setattr(ec.platform, "machine", lambda: "aarch64")
    p = plan(int8_cnn.read_bytes(), "cnn_int8")
    assert p.compiled is None and p.partition.source == "predicted"
    with pytest.raises(EdgekitError, match=r"x86-64 Linux only and this is Linux aarch64"):
        need_compiled(p)


def _profile_json(capsys, *argv):
    assert main(["profile", *argv, "--target", "coral", "--sim", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_predicted_without_the_compiler(int8_cnn, no_compiler, capsys):
    r = _profile_json(capsys, str(int8_cnn))
    e = r["edgetpu"]
    assert r["mode"] == "simulated" and e["source"] == "predicted"
    assert (e["mapped_ops"], e["cpu_ops"], e["subgraphs"], e["off_chip_bytes"]) == (7, [], 1, 0)
    assert "not on PATH" in e["plan"] and "compiled_model" not in e


def test_compiled_where_the_compiler_is(int8_cnn, compiler_on_path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    r = _profile_json(capsys, str(int8_cnn))
    e = r["edgetpu"]
    assert e["source"] == "compiled" and e["mapped_ops"] == 7 and e["subgraphs"] == 1
    assert e["on_chip_bytes"] == round(4.75 * 1024)  # the log's figure, not the prediction's
    kept = tmp_path / "cnn_int8_edgetpu.tflite"  # kept where edgetpu_compiler puts it: here
    assert kept.is_file() and e["compiled_model"] == str(kept)
    assert json.loads((tmp_path / "args.json").read_text())[:2] == ["-s", "-o"]
    # the simulated latency uses the compiled partition's split, per layer as predicted
    assert len(r["layers"]) == 7 and all(row["device"] == "edgetpu" for row in r["layers"])


def test_compile_command(int8_cnn, compiler_on_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(int8_cnn), "-o", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["source"] == "compiled" and r["compiled_model"] == str(out / "cnn_int8_edgetpu.tflite")
    assert (out / "cnn_int8_edgetpu.tflite").is_file()
    assert main(["compile", str(int8_cnn), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "COMPILED" in text and "Mapped to Edge TPU" in text


def test_compile_command_predicts_without_the_compiler(no_compiler, tmp_path, capsys, monkeypatch):
    """conv1 -> ELU -> conv2, and conv3 on the input: without the compiler, `edgekit compile` predicts
    the split and says which ops stay on the CPU and why, the downstream conv2 included."""
    path = tmp_path / "m.tflite"
    path.write_bytes(eb.unsupported_in_middle())
    assert main(["compile", str(path), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["source"] == "predicted" and r["compiled_model"] is None
    assert (r["mapped_ops"], r["cpu_ops"], r["subgraphs"]) == (2, ["ELU", "CONV_2D"], 1)
    assert r["cpu_reasons"][0].startswith("Operation not supported: ELU")
    assert r["cpu_reasons"][1].startswith("More than one subgraph is not supported: downstream of op 1 ELU")
    # conv1 and conv3 (3x3x4 -> 8: 288 weight bytes + 32 bias bytes each) are cached; conv2's stay on the CPU
    assert (r["on_chip_bytes"], r["off_chip_bytes"]) == (2 * (8 * 3 * 3 * 4 + 4 * 8), 0)
    monkeypatch.setenv("COLUMNS", "200")  # the tables' rows on one line each
    assert main(["compile", str(path)]) == 0
    text = capsys.readouterr().out
    assert "PREDICTED" in text and "2 of 4 mapped to the Edge TPU, 2 on the CPU, 1 Edge TPU subgraph(s)" in text
    left = text[text.index("left on the CPU"):]
    bar = "[│|]"  # rich draws ASCII bars where the output is not UTF-8
    assert re.search(rf"{bar} 1 +{bar} ELU +{bar} Operation not supported: ELU is not in the Edge TPU's op list", left)
    assert re.search(rf"{bar} 2 +{bar} CONV_2D +{bar} More than one subgraph is not supported: downstream of op 1 ELU",
                     left)
    assert not re.search(rf"{bar} [03] +{bar}", left)  # conv1 and conv3 map: not listed
    assert not list(tmp_path.glob("*_edgetpu.tflite"))


def _refused(capsys, argv, *phrases):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err.replace("\n", " ").strip() or len(err.splitlines()) <= 3  # one (wrapped) line
    assert "Traceback" not in err
    flat = " ".join(err.split())
    for p in phrases:
        assert p in flat, (p, flat)
    return flat


def test_float_model_says_convert(tmp_path, capsys, no_compiler):
    path = tmp_path / "float.tflite"
    path.write_bytes(write_tflite(ir_models.cnn()))
    _refused(capsys, ["profile", str(path), "--target", "coral"], "edgekit convert")


def test_partly_quantized_model_says_convert(tmp_path, capsys, no_compiler):
    path = tmp_path / "partly.tflite"
    path.write_bytes(eb.partly_quantized())
    _refused(capsys, ["deploy", str(path), "--target", "coral"], "partly quantized", "TANH", "edgekit convert")


def test_float_interface_model_says_convert(tmp_path, capsys, no_compiler):
    """int8 inside, float at the edges (the TFLite converter's default): the Edge TPU would take it, but
    edgekit's targets exchange int8, so the student is sent to convert it with int8 edges."""
    path = tmp_path / "float_io.tflite"
    path.write_bytes(eb.float_interface())
    _refused(capsys, ["profile", str(path), "--target", "coral"], "float32 at its edges", "edgekit convert")


def test_nothing_maps_is_said_before_anything_runs(tmp_path, capsys, no_compiler, monkeypatch):
    started = []
    monkeypatch.setattr(Backend, "_connect_simulator", lambda self: started.append(self.model))
    path = tmp_path / "elu.tflite"
    path.write_bytes(eb.elu_first())
    _refused(capsys, ["deploy", str(path), "--target", "coral"], "nothing in this model maps to the Edge TPU",
             "ELU")
    assert started == []  # no virtual board was started


def test_compiled_model_cannot_be_simulated(tmp_path, capsys):
    path = tmp_path / "m_edgetpu.tflite"
    path.write_bytes(eb.compiled_like())
    _refused(capsys, ["profile", str(path), "--target", "coral", "--sim"], "before edgetpu_compiler", "--hw")


def test_the_accelerator_needs_a_compiled_model(int8_cnn, no_compiler):
    p = plan(int8_cnn.read_bytes(), "cnn_int8")
    assert p.compiled is None and p.partition.source == "predicted"
    with pytest.raises(EdgekitError, match=r"not on PATH.*`edgekit compile MODEL_int8.tflite`.*--sim"):
        need_compiled(p)


def test_a_compiled_model_runs_as_it_is():
    model = eb.compiled_like()
    p = plan(model)
    assert need_compiled(p) is model and p.partition.source == "compiled" and p.partition.mapped_ops is None


def test_week11_example_runs(tmp_path):
    """examples/week11_coral.py: the Pi's CPU against the Coral (USB 3 max, USB 2 std), simulated here."""
    import subprocess
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "examples" / "week11_coral.py"
    res = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--small", "--json",
                          "--plot", str(tmp_path / "c.png")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"simulated"}
    by = {(r["model"], r["setup"]): r for r in rows}
    for m in ("ds_cnn_kws", "mobilenet_v1_0.25_96"):
        fast, slow = by[(m, "coral usb3 max")], by[(m, "coral usb2 std")]
        assert slow["latency_ms"] > fast["latency_ms"] and fast["edgetpu"]["cpu_ops"] == []
    assert (tmp_path / "c.png").stat().st_size > 0
