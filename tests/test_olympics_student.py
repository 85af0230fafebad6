"""The Olympics as a team and a course see them: a plain pip install (no scikit-learn) runs the demo,
whose test set no team was given; a model of the wrong shape is the team's to fix, and says how;
TinyTorch's own submission.json shapes are read; check and run agree on what each board needs; and
what is written for others (the leaderboard page, a new folder) is theirs to read.
"""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.export.tflite_writer import write_tflite
from edgekit.graph import Graph
from edgekit.olympics import demo, runner
from edgekit.olympics.check import check
from edgekit.olympics.cli import write_page
from edgekit.olympics.store import Store
from edgekit.olympics.submissions import read_submission
from edgekit.olympics.tracks import SHIPPED, load_track

KEY = b"test key for the olympics student tests"
NO_SKLEARN = "import sys\nsys.modules['sklearn'] = None  # `import sklearn` fails, as on a plain pip install\n"


def run_edgekit(*args, cwd, env=None, umask=0o022, timeout=300):
    """`edgekit ARGS` in a child with this umask (its own children, the Olympics workers, inherit env)."""
    code = f"import os, sys; os.umask({umask}); from edgekit.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def no_sklearn_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("no_sklearn")
    (site / "sitecustomize.py").write_text(NO_SKLEARN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    probe = subprocess.run([sys.executable, "-c", "import sklearn"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "import of sklearn halted" in probe.stderr  # the block works
    return env


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory, no_sklearn_env):
    """`edgekit olympics demo` in an empty folder, without scikit-learn, under umask 022."""
    root = tmp_path_factory.mktemp("demo")
    res = run_edgekit("olympics", "demo", root / "olympics", cwd=root, env=no_sklearn_env)
    assert res.returncode == 0, res.stderr[-2000:]
    return root / "olympics"


# -- the demo's data: shipped, and its test split never given to a team --------------------------------

def rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.round(np.asarray(x, np.float64) * 16).astype(np.uint8)}


def test_demo_runs_without_scikit_learn(demo_folder):
    board = (demo_folder / "leaderboard.html").read_text()
    assert all(team in board for team in ("owls", "foxes", "herons", "bears", "whales"))
    track = load_track(demo_folder / "tracks" / "demo.toml")
    assert len(track.test_set()[0]) == 540


def test_the_demo_test_set_shares_no_row_with_what_teams_train_on(demo_folder):
    with np.load(SHIPPED / "demo.npz") as f:
        digits = rows(np.concatenate([f["x_train"], f["x_test"]]) / 16)  # scikit-learn's 1,797
        held, y_held = f["x_heldout"] / 16, f["y_heldout"]
    assert len(digits) == 1797 and len(rows(held)) == len(held) == 540
    assert list(np.bincount(y_held)) == [54] * 10  # every class equally
    assert not digits & rows(held)
    tracks = demo_folder / "tracks"
    test = rows(np.load(tracks / "demo_test.npz")["x"])
    given = rows(np.load(tracks / "demo_train.npz")["x"]) | rows(np.load(tracks / "demo_calib.npz")["x"])
    assert test == rows(held) and given == digits
    assert not test & given
    x_train, _, x_test, _ = demo.digits()  # what the demo's own teams and edgekit's zoo train and test on
    assert not (rows(x_train) | rows(x_test)) & test


def test_the_shipped_digits_are_scikit_learns_and_the_test_set_is_not():
    import sklearn.datasets as sklearn  # the test extra has it: its absence is a failure, not a skip
    x, y = sklearn.load_digits(return_X_y=True)
    split = np.random.default_rng(20240101)
    test = np.zeros(len(y), bool)
    for c in range(10):
        idx = split.permutation(np.flatnonzero(y == c))
        test[idx[:round(len(idx) * 0.3)]] = True
    with np.load(SHIPPED / "demo.npz") as f:
        np.testing.assert_array_equal(f["x_train"], x[~test])
        np.testing.assert_array_equal(f["x_test"], x[test])
        np.testing.assert_array_equal(f["y_train"], y[~test])
        np.testing.assert_array_equal(f["y_test"], y[test])
        assert not rows(x / 16) & rows(f["x_heldout"] / 16)  # nothing load_digits() gives a team


# -- files for others to read, in folders made for them ----------------------------------------------

def test_the_page_respects_the_umask_and_makes_its_folder(demo_folder, tmp_path):
    assert stat.S_IMODE((demo_folder / "leaderboard.html").stat().st_mode) == 0o644  # the demo, umask 022
    res = run_edgekit("olympics", "board", "--db", demo_folder / "results.sqlite", "--out",
                      tmp_path / "site" / "deep" / "index.html", cwd=tmp_path, umask=0o027)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE((tmp_path / "site" / "deep" / "index.html").stat().st_mode) == 0o640
    old = os.umask(0o022)
    try:
        page = write_page({"tracks": []}, tmp_path / "other" / "leaderboard.html")
    finally:
        os.umask(old)
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    assert not [p for p in page.parent.iterdir() if p != page]  # no temporary file left beside it


def test_a_new_database_gets_its_folder(tmp_path):
    res = run_edgekit("olympics", "init", "--db", tmp_path / "results" / "2026" / "results.sqlite", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "results" / "2026" / "results.sqlite").is_file()


# -- a model of the wrong shape: the team's to fix ---------------------------------------------------

def onnx_model(path: Path, in_shape: list, classes: int = 10) -> Path:
    """A float ONNX classifier: input in_shape -> flatten -> dense -> softmax (1, classes)."""
    n = int(np.prod(in_shape[1:]))
    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.normal(0, 0.1, (n, classes)).astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(classes, np.float32), "b"),
            numpy_helper.from_array(np.array([1, n], np.int64), "shape")]
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["z"]), helper.make_node("Softmax", ["z"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "team_model", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, classes])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def image_tflite(path: Path) -> Path:
    """A float .tflite taking an 8x8 image (1, 8, 8, 1), not the track's 64 values."""
    g = Graph(name="image")
    x = g.add_op("reshape", [g.add_input("input", (1, 8, 8, 1))], "flatten", shape=(1, 64))
    w = g.add_const("fc/weights", np.random.default_rng(0).normal(0, 0.1, (10, 64)).astype(np.float32))
    x = g.add_op("fully_connected", [x, w, g.add_const("fc/bias", np.zeros(10, np.float32))], "fc", activation=None)
    g.outputs = [g.add_op("softmax", [x], "softmax")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(write_tflite(g.finalize()))
    return path


def failure(folder: Path, track: Path) -> str:
    report = check(folder, str(track))
    assert not report["valid"], report["lines"]
    return report["lines"][-1][1]


@pytest.fixture(scope="module")
def track_file(tmp_path_factory) -> Path:
    return demo.write_track(tmp_path_factory.mktemp("track"))


def test_a_wrong_input_shape_says_what_the_model_must_take(track_file, tmp_path):
    for name, make in (("nchw", lambda d: onnx_model(d / "model.onnx", [1, 1, 8, 8])),
                       ("image", lambda d: image_tflite(d / "model.tflite")),
                       ("batch8", lambda d: onnx_model(d / "model.onnx", [8, 64]))):
        folder = tmp_path / name
        make(folder)
        demo.write_submission(folder, name, ["int8 by edgekit"])
        reason = failure(folder, track_file)
        assert "calibration" not in reason and "\n" not in reason, reason
        assert "your model takes" in reason and "export your model to take [64] (a batch of one: (1, 64))" \
            in reason, reason
    assert "your model takes (1, 1, 8, 8); the track's input is [64] per sample" in failure(tmp_path / "nchw", track_file)
    assert "your model takes (1, 8, 8, 1)" in failure(tmp_path / "image", track_file)
    assert "a batch of 8, (8, 64)" in failure(tmp_path / "batch8", track_file)


def test_a_wrong_output_shape_says_one_score_per_class(track_file, tmp_path):
    onnx_model(tmp_path / "five" / "model.onnx", [1, 64], classes=5)
    demo.write_submission(tmp_path / "five", "five", ["int8 by edgekit"])
    reason = failure(tmp_path / "five", track_file)
    assert reason == ("your model gives (1, 5), 5 score(s) per sample; track 'demo' has 10 classes: export your "
                      "model to give one score per class, (1, 10)"), reason


# -- TinyTorch's submission.json shapes ----------------------------------------------------------------

CAPSTONE = {  # TinyTorch's capstone: generate_submission(baseline_report, optimized_report, student_name, ...)
    "tinytorch_version": "0.1.0", "submission_type": "capstone_benchmark", "timestamp": "2025-01-15 14:23:41",
    "system_info": {"platform": "Linux-6.1-x86_64", "python_version": "3.11.6", "numpy_version": "1.26.4"},
    "student_name": "Ada L",
    "baseline": {"model_name": "baseline_mlp", "metrics": {
        "parameter_count": 4810, "model_size_mb": 0.0183, "accuracy": 0.95, "latency_ms_mean": 0.042,
        "latency_ms_std": 0.008, "latency_ms_p95": 0.06, "throughput_samples_per_sec": 23809.52}},
    "optimized": {"model_name": "optimized_mlp", "metrics": {
        "parameter_count": 2410, "model_size_mb": 0.0046, "accuracy": 0.94, "latency_ms_mean": 0.031,
        "latency_ms_std": 0.006, "throughput_samples_per_sec": 32258.06},
        "techniques_applied": ["int8_quantization", "pruning"]},
    "improvements": {"speedup": 1.35, "compression_ratio": 3.98, "accuracy_delta": -0.01},
}
COMPETITION = {  # tinytorch/competition/submit.py's generate_submission(...)
    "division": "closed", "event": "all_around", "athlete_name": "Grace H", "github_repo": "",
    "baseline": {"model": "cifar10_cnn", "accuracy": 85.0, "latency_ms": 45.2, "memory_mb": 2.1,
                 "parameters": 550000, "mode": "quick_estimate"},
    "optimized": {"model": "Optimized_Model", "accuracy": 84.0, "latency_ms": 28.0, "memory_mb": 0.6,
                  "parameters": 220000},
    "normalized_scores": {"speedup": 1.61, "compression_ratio": 3.5, "accuracy_delta": -1.0, "efficiency_score": 2.1},
    "techniques_applied": ["quantization_int8", "magnitude_prune_0.6"], "timestamp": "2025-01-01 10:00:00",
    "tinytorch_version": "0.1.0", "honor_code": False,
}


@pytest.fixture(scope="module")
def tinytorch_folders(tmp_path_factory, track_file):
    root = tmp_path_factory.mktemp("tinytorch")
    calib = demo.digits()[0][:200]
    model = demo.model_file(demo.trained_mlp(32), "int8", root / "made", calib)
    cap, comp = root / "submissions" / "ada", root / "submissions" / "grace"
    cap.mkdir(parents=True)
    comp.mkdir(parents=True)
    (cap / "optimized_mlp.tflite").write_bytes(model.read_bytes())           # the one its record names
    onnx_model(cap / "baseline_mlp.onnx", [1, 64])                             # and its baseline beside it
    (comp / "model.tflite").write_bytes(model.read_bytes())
    (cap / "submission.json").write_text(json.dumps(CAPSTONE, indent=2))
    (comp / "submission.json").write_text(json.dumps(COMPETITION, indent=2))
    return root, cap, comp


def test_tinytorchs_records_are_read_as_edgekits(tinytorch_folders):
    _, cap, comp = tinytorch_folders
    a = read_submission(cap)
    assert a.valid, a.problems
    assert (a.team, a.track, a.techniques) == ("Ada L", None, ["int8_quantization", "pruning"])
    assert a.model.name == "optimized_mlp.tflite"
    assert a.record == {"baseline": {"parameter_count": 4810, "model_size_mb": 0.0183, "accuracy": 0.95,
                                     "latency_ms_mean": 0.042, "latency_ms_std": 0.008},
                        "optimized": {"parameter_count": 2410, "model_size_mb": 0.0046, "accuracy": 0.94,
                                      "latency_ms_mean": 0.031, "latency_ms_std": 0.006}}
    g = read_submission(comp)
    assert g.valid, g.problems
    assert (g.team, g.techniques, g.model.name) == ("Grace H", ["quantization_int8", "magnitude_prune_0.6"],
                                                    "model.tflite")
    assert g.record["optimized"] == {"accuracy": 0.84, "latency_ms_mean": 28.0, "model_size_mb": 0.6,
                                     "parameter_count": 220000}
    assert any("capstone" in n for n in a.notes) and any("submit.py" in n for n in g.notes)
    (cap / "submission.json").write_text(json.dumps(dict(CAPSTONE, team="owls 2", track="demo")))
    try:  # a team name and a track added to TinyTorch's record are used, the rest still read as TinyTorch's
        named = read_submission(cap)
    finally:
        (cap / "submission.json").write_text(json.dumps(CAPSTONE, indent=2))
    assert named.valid and (named.team, named.track, named.techniques) == ("owls 2", "demo",
                                                                         ["int8_quantization", "pruning"])
    assert named.record == a.record


def test_tinytorchs_records_check_and_run(tinytorch_folders, track_file):
    root, cap, comp = tinytorch_folders
    lines = check(cap)["lines"]  # no track in TinyTorch's record: say how to give one
    assert lines[-1] == (False, "no track: TinyTorch's record names none; give --track, or add \"track\": "
                                "\"NAME\" to submission.json")
    for folder, team in ((cap, "Ada L"), (comp, "Grace H")):
        report = check(folder, str(track_file))
        assert report["valid"] and report["fits"] == {"nano33ble": True, "esp32s3": True, "coral": True}, report
        assert (True, f"submission.json: team '{team}', track 'demo', 2 technique(s)") in report["lines"]
    track = load_track(track_file)
    store = Store(root / "results.sqlite", key=KEY)
    summary = runner.run(root / "submissions", track, ["coral"], store, force="sim", runs=1)
    got = {r["team"]: r for r in summary["rows"]}
    assert set(got) == {"Ada L", "Grace H"} and all(r["status"] == "ok" for r in got.values()), got
    assert got["Ada L"]["detail"]["record"]["optimized"]["accuracy"] == 0.94
    assert store.claim("demo", "ada l", "another") == "ada"  # the team name was claimed on the run's track


# -- check and run: the same figures for the same model ------------------------------------------------

def test_check_and_run_report_the_same_memory(demo_folder):
    """foxes is ONNX: converted per board (the Nano's per-tensor dense weights, the ESP32-S3's per
    channel), and its per-channel arena is one TFLite Micro lays out 16 B smaller than edgekit's planner."""
    store = Store(demo_folder / "results.sqlite")
    ran = {r["target"]: r for r in store.rows() if r["team"] == "foxes"}
    report = check(demo_folder / "submissions" / "foxes")
    assert report["valid"]
    for b in report["boards"]:
        r = ran[b["target"]]
        assert (b["flash_bytes"], b["ram_bytes"]) == (r["flash_bytes"], r["ram_bytes"]), (b, r)
