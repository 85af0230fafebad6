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
