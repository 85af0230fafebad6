"""A simulated Coral (and Raspberry Pi) report reads as what it is: a Linux board that runs the model
itself (no serial link, no flash), and an Edge TPU that times its segment as a whole."""
import re
from pathlib import Path

import pytest

import edgekit
import edgetpu_builders as eb
import ir_models
from edgekit.cli import main
from edgekit.edgetpu import compiler as ec
from edgekit.errors import EdgekitError
from edgekit.edgetpu.plan import plan
from edgekit.export.tflite_writer import write_tflite
from edgekit.profile_report import plot_layers, plot_rows

UINT8_MODEL = Path(__file__).parents[2] / "shared" / "models" / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ec.shutil, "which", lambda name: None)  # the predicted plan, on any machine
    return tmp_path


def _text(capsys, *argv, rc=0):
    assert main(list(argv)) == rc
    out, err = capsys.readouterr()
    return " ".join(out.split()), err


def test_coral_report_has_no_serial_link_flash_or_untimed_layers(here, capsys):
    (here / "cnn.tflite").write_bytes(ir_models.int8(ir_models.cnn()))
    for command in ("profile", "deploy"):
        text, _ = _text(capsys, command, "cnn.tflite", "--target", "coral", "--sim")
        assert "driven over" not in text and "sim://" not in text and "flash" not in text
        assert re.search(r"memory fits: model [\d,]+ B; parameters [\d,]+ B cached on the Edge TPU, 0 B streamed", text)
        assert "per layer: the 7 ops on the Edge TPU run as one call per segment, timed only as a whole" in text
        assert "CONV_2D" not in text and "┃" not in text  # no per-layer table: no row has a time of its own
    assert "outputs within 0 LSB of LiteRT" in text


def test_coral_report_times_the_cpu_ops_per_layer(here, capsys):
    (here / "elu.tflite").write_bytes(eb.unsupported_in_middle())
    text, _ = _text(capsys, "profile", "elu.tflite", "--target", "coral", "--sim")
    assert "per layer: the 2 ops on the Edge TPU run as one call" in text and "the Pi's CPU runs the rest" in text
    table = text.split("per layer on the Pi's CPU")[1]
    assert "ELU" in table and "conv2" in table and "conv1" not in table  # cut at the ELU: conv1 maps


def test_pi_and_microcontroller_reports(here, capsys):
    (here / "cnn.tflite").write_bytes(ir_models.int8(ir_models.cnn()))
    text, _ = _text(capsys, "profile", "cnn.tflite", "--target", "rpi4", "--sim")
    assert re.search(r"memory fits: model [\d,]+ B, RAM", text) and "flash" not in text and "driven over" not in text
    text, _ = _text(capsys, "profile", "cnn.tflite", "--target", "nano33ble", "--sim")
    assert re.search(r"memory fits: flash [\d,]+ B, RAM", text)
    assert "driven over sim://nano33ble (edgekit's serial protocol)" in text


@pytest.mark.skipif(not UINT8_MODEL.exists(), reason="the Coral reference models (../shared/models) are not here")
def test_a_uint8_model_deploys_to_the_simulated_coral(here, capsys):
    """The Pi runs LiteRT: its outputs are checked against LiteRT (TFLite Micro refuses uint8)."""
    text, _ = _text(capsys, "deploy", str(UINT8_MODEL), "--target", "coral", "--sim")
    assert "deployed to coral (simulated); outputs within 0 LSB of LiteRT on this machine" in text


def test_a_float_model_is_refused_naming_its_first_op():
    with pytest.raises(EdgekitError, match=r"'cnn' is not quantized: it computes in float \(op 0 CONV_2D, the "
                                           r"first, computes on float32 '[^']+'\).*run `edgekit convert` first"):
        plan(write_tflite(ir_models.cnn()), "cnn")


@pytest.mark.parametrize("make", [lambda: ir_models.int8(ir_models.cnn()), eb.unsupported_in_middle, eb.two_big_fc])
def test_the_coral_chart_adds_up_to_the_latency(make, here):
    """--plot draws the Edge TPU's calls as one bar (overhead, USB and streaming, compute) beside the
    CPU's ops: the bars add up to the simulated latency, whichever term bounds the segment."""
    report = edgekit.profile(make(), "coral", force="sim").to_json()
    rows = plot_rows(report)
    total = sum(row["memory_ms"] + row["compute_ms"] + row["overhead_ms"] for row in rows)
    assert total == pytest.approx(report["latency_ms"], rel=1e-9)
    assert rows[0]["op"].startswith("Edge TPU (") and all(row.get("device") == "cpu" for row in rows[1:])
    plot_layers(edgekit.profile(make(), "coral", force="sim"), here / "chart.png")
    assert (here / "chart.png").stat().st_size > 1000
