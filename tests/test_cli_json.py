"""Every `edgekit` command that reports takes `--json`, as README says; the servers and the
Olympics' key and database steps are the exceptions README names."""
import argparse
import json
import re
from pathlib import Path

import pytest

from edgekit.cli import _parser, main
from edgekit.doctor import doctor, doctor_ok

README = Path(__file__).parents[1] / "README.md"


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _leaves(parser, prefix=()):
    """Every runnable command: ("convert",), ("olympics", "run"), ..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, prefix + (name,))


def _takes_json(parser) -> bool:
    return any("--json" in a.option_strings for a in parser._actions)


def test_readme_names_exactly_the_commands_without_json():
    without = {" ".join(name) for name, p in _leaves(_parser()) if not _takes_json(p)}
    text = " ".join(README.read_text().split())
    sentence = re.search(r"Every command takes `--json` except ([^.]*)\.", text)
    assert sentence, "README must say which commands take --json"
    named = set(re.findall(r"`edgekit ([a-z ]+?)`", sentence.group(1)))
    assert named == without


def test_doctor_json_lists_the_checks(capsys):
    rc, out, _ = _run(capsys, "doctor", "--json")
    doc = json.loads(out)
    checks = doctor()
    assert doc["ok"] == doctor_ok(checks) and rc == (0 if doc["ok"] else 1)
    assert [c["name"] for c in doc["checks"]] == [c.name for c in checks]
    for got, check in zip(doc["checks"], checks):
        assert got == {"name": check.name, "ok": check.ok, "required": check.required, "status": check.status,
                       "detail": check.detail, "fix": check.fix}
    rc, out, _ = _run(capsys, "doctor", "--json", "--board", "esp32s3")
    names = [c["name"] for c in json.loads(out)["checks"]]
    assert "core esp32:esp32" in names and "core arduino:mbed_nano" not in names


def test_plot_json_names_the_png_and_summarises_the_recording(tmp_path, capsys):
    rc, out, _ = _run(capsys, "capture", "--target", "nano33ble", "--sensor", "imu", "--label", "wave",
                      "--seconds", "1", "-o", str(tmp_path), "--sim", "--json")
    assert rc == 0
    csv = tmp_path / "wave" / "wave.1.csv"
    rc, out, _ = _run(capsys, "plot", str(csv), "--json", "-o", str(tmp_path / "p" / "wave.png"))
    doc = json.loads(out)
    assert rc == 0 and doc["plot"] == str(tmp_path / "p" / "wave.png") and Path(doc["plot"]).stat().st_size > 1000
    assert doc["recording"] == str(csv) and doc["samples"] == 100 and doc["rate_hz"] == pytest.approx(100)
    lines = csv.read_text().splitlines()
    header, stamps = lines[0].split(","), [int(line.split(",")[0]) for line in lines[1:]]
    assert [c["name"] for c in doc["channels"]] == header[1:]
    column = [float(line.split(",")[1]) for line in lines[1:]]
    assert doc["channels"][0]["min"] == min(column) and doc["channels"][0]["max"] == max(column)
    assert doc["seconds"] == pytest.approx((stamps[-1] - stamps[0]) / 1e6)
    rc, out, _ = _run(capsys, "capture", "--target", "nano33ble", "--sensor", "microphone", "--label", "hi",
                      "--seconds", "0.25", "-o", str(tmp_path), "--sim", "--json")
    rc, out, _ = _run(capsys, "plot", str(tmp_path / "hi" / "hi.1.wav"), "--json")
    doc = json.loads(out)
    assert doc["samples"] == 4000 and doc["rate_hz"] == 16000 and doc["seconds"] == 0.25
    assert doc["plot"] == str(tmp_path / "hi" / "hi.1.png") and [c["name"] for c in doc["channels"]] == ["amplitude"]
