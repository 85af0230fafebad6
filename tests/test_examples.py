"""The week scripts in examples/ run on simulated boards when none is connected."""
import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args) -> dict | list:
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_week10_deploy(tmp_path):
    rows = {r["model"]: r for r in _run("week10_deploy.py", "--out", str(tmp_path), "--json")}
    assert set(rows) == {"digits_mlp", "mobilenet_v1_0.25_96", "mobilenet_v1_0.5_160"}
    assert all(r["mode"] == "simulated" and r["fits"] and r["outputs_max_lsb"] <= 1 for r in rows.values())
    mlp = rows["digits_mlp"]
    assert abs(mlp["float_accuracy"] - mlp["int8_accuracy"]) <= 0.01 and mlp["int8_bytes"] < mlp["float_bytes"] / 2
    # the small MobileNet's arena stays in internal SRAM, the larger one's goes to PSRAM, and is slower
    assert rows["mobilenet_v1_0.25_96"]["arena_in"] == "sram" and rows["mobilenet_v1_0.5_160"]["arena_in"] == "psram"
    assert rows["mobilenet_v1_0.5_160"]["latency_ms"] > rows["mobilenet_v1_0.25_96"]["latency_ms"]


def test_week10_compress():
    rows = {r["variant"]: r for r in _run("week10_compress.py", "--json")}
    assert list(rows) == ["baseline", "quantize_model", "magnitude_prune", "structured_prune", "low_rank"]
    assert all(b["mode"] == "simulated" and b["fits"] for r in rows.values() for b in r["boards"].values())
    assert set(rows["baseline"]["boards"]) == {"nano33ble", "esp32s3", "rpi4"}
    base, structured = rows["baseline"], rows["structured_prune"]
    assert abs(base["float_accuracy"] - base["int8_accuracy"]) <= 0.02
    # scattered zeros save nothing on TFLite, and the notes say so; whole channels do
    assert rows["magnitude_prune"]["sparsity_percent"] >= 45
    assert rows["magnitude_prune"]["int8_bytes"] == base["int8_bytes"]
    assert any("scattered" in n for n in rows["magnitude_prune"]["notes"])
    assert structured["vs_baseline"]["int8_bytes"] <= 0.4 and structured["vs_baseline"]["nano33ble_latency"] <= 0.4
    assert structured["boards"]["nano33ble"]["flash_bytes"] <= 0.6 * base["boards"]["nano33ble"]["flash_bytes"]
    assert any("removed" in n for n in structured["notes"])
    assert rows["low_rank"]["vs_baseline"]["int8_bytes"] <= 0.4
    # TinyTorch's QuantizedLinear: imported from its own int8 weights, with the scheme difference noted
    assert sum("per output channel" in n for n in rows["quantize_model"]["notes"]) == 2
    assert not any("scattered" in n for n in rows["quantize_model"]["notes"])
