"""`edgekit olympics demo [FOLDER]`: the whole capstone end to end, in an empty folder, in under a minute.

It writes
    tracks/demo.toml, demo_test.npz, demo_calib.npz   the demo track and its data (8x8 digits, shipped with
    tracks/demo_train.npz                            edgekit): the held-out test set, and what teams get
    submissions/<team>/                              five sample submissions, made and converted with edgekit
    results.sqlite (+ results.sqlite.key)            the run's signed results
    leaderboard.html                                 the page (when edgekit has page.py)
then runs every submission on the simulated nano33ble, esp32s3 and coral, and prints the ranking.

The builders below also make the submissions of the tests and of bench/olympics.py.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..convert import convert
from ..errors import EdgekitError
from ..export.tflite_writer import write_tflite
from ..graph import Graph
from ..reference import run
from ..zoo import digits_mlp, digits_split
from .tracks import SHIPPED

TARGETS = ["nano33ble", "esp32s3", "coral"]


def digits():
    """(x_train, y_train, x_test, y_test): scikit-learn's 8x8 digits in edgekit's fixed split (zoo.digits_split)."""
    return digits_split()


def heldout() -> tuple[np.ndarray, np.ndarray]:
    """The demo track's test set: 540 digits (54 per class) from the UCI optdigits training part, written
    by 30 people none of whose digits are in scikit-learn's set (its 13 others'); see docs/olympics.md."""
    with np.load(SHIPPED / "demo.npz", allow_pickle=False) as f:
        return (f["x_heldout"] / 16.0).astype(np.float32), f["y_heldout"].astype(np.int64)


def write_track(folder: Path, test_limit: int | None = None) -> Path:
    """The demo track's TOML and data in folder/tracks/; returns the TOML's path."""
    x_train, y_train, x_test, y_test = digits()
    x_held, y_held = heldout()
    tracks = Path(folder) / "tracks"
    tracks.mkdir(parents=True, exist_ok=True)
    text = (SHIPPED / "demo.toml").read_text()
    if test_limit:
        text = text.replace("classes = 10\n", f"classes = 10\ntest_limit = {test_limit}\n")
    np.savez(tracks / "demo_test.npz", x=x_held, y=y_held)  # other writers' digits: no team has them
    # what teams train on: all of scikit-learn's digits, which they have anyway (load_digits, TinyTorch's)
    np.savez(tracks / "demo_train.npz", x=np.concatenate([x_train, x_test]), y=np.concatenate([y_train, y_test]))
    np.savez(tracks / "demo_calib.npz", x=x_train[:200])
    (tracks / "demo.toml").write_text(text)
    return tracks / "demo.toml"


# -- models ----------------------------------------------------------------------------------------

def random_mlp(hidden: list[int], classes: int = 10, seed: int = 0) -> Graph:
    """An untrained MLP 64 -> hidden... -> classes (softmax): for models judged on speed and size only."""
    rng = np.random.default_rng(seed)
    g = Graph(name="mlp")
    x, n = g.add_input("input", (1, 64)), 64
    for i, h in enumerate(list(hidden) + [classes]):
        w = g.add_const(f"fc{i}/weights", rng.normal(0, np.sqrt(2 / n), (h, n)).astype(np.float32))
        b = g.add_const(f"fc{i}/bias", np.zeros(h, np.float32))
        x = g.add_op("fully_connected", [x, w, b], f"fc{i}", activation="relu" if i < len(hidden) else None)
        n = h
    g.outputs = [g.add_op("softmax", [x], "softmax")]
    return g.finalize()


def trained_mlp(hidden: int, epochs: int = 30, seed: int = 0) -> Graph:
    return digits_mlp(hidden=hidden, epochs=epochs, seed=seed)[0]


def trained_cnn(channels: int = 8, seed: int = 0, steps: int = 300) -> Graph:
    """conv 3x3 (random filters) -> max pool -> a dense layer trained here (softmax regression):
    random convolution features are good enough on digits for ~90% accuracy, in a second."""
    rng = np.random.default_rng(seed)
    x_train, y_train, _, _ = digits()

    def body():
        g = Graph(name="digits_cnn")
        x = g.add_input("input", (1, 64))
        x = g.add_op("reshape", [x], "to_image", shape=(1, 8, 8, 1))
        w = g.add_const("conv/weights", np.random.default_rng(seed).normal(0, 0.7, (channels, 3, 3, 1)).astype(np.float32))
        x = g.add_op("conv2d", [x, w, g.add_const("conv/bias", np.zeros(channels, np.float32))], "conv",
                     stride=(1, 1), padding="SAME", activation="relu")
        x = g.add_op("max_pool2d", [x], "pool", kernel=(2, 2), stride=(2, 2), padding="VALID")
        return g, g.add_op("reshape", [x], "flatten", shape=(1, 16 * channels))

    g, feat = body()
    g.outputs = [feat]
    f = run(g.finalize(), {g.inputs[0]: x_train})[feat].astype(np.float64)
    spread = f.std() + 1e-6  # train on features of unit spread, then fold 1/spread into the weights
    f = f / spread
    w, b = rng.normal(0, 0.01, (f.shape[1], 10)), np.zeros(10)
    onehot = np.eye(10)[y_train]
    for _ in range(steps):  # full-batch gradient descent on softmax cross-entropy
        z = f @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= 0.5 * f.T @ (p - onehot) / len(f)
        b -= 0.5 * (p - onehot).mean(0)
    g, feat = body()
    fc = g.add_op("fully_connected", [feat, g.add_const("fc/weights", (w.T / spread).astype(np.float32)),
                                      g.add_const("fc/bias", b.astype(np.float32))], "fc", activation=None)
    g.outputs = [g.add_op("softmax", [fc], "softmax")]
    return g.finalize()


# -- submissions -----------------------------------------------------------------------------------

def model_file(graph: Graph, fmt: str, folder: Path, calibration: np.ndarray | None = None) -> Path:
    """Write `graph` as fmt = "int8" (.tflite converted by edgekit), "float" (.tflite) or "onnx"."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        from ..export.onnx_export import export_onnx_graph  # lazy: onnx takes ~0.5 s to import
        return export_onnx_graph(graph, folder / "model.onnx")
    float_bytes = write_tflite(graph)
    if fmt == "float":
        (folder / "model.tflite").write_bytes(float_bytes)
        return folder / "model.tflite"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "float.tflite").write_bytes(float_bytes)
        # one int8 file for every board of the track: dense weights as the Nano's library reads them
        q = convert(Path(tmp) / "float.tflite", calibration=calibration, verify=False, per_tensor_dense=True)
    return q.save(folder / "model.tflite")


def write_submission(folder: Path, team: str, techniques: list[str], track: str = "demo", **record) -> Path:
    meta = {"team": team, "track": track, "techniques": techniques, **record}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.json").write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def sample_submissions(folder: Path) -> list[str]:
    """The demo's five teams: small and larger trained MLPs, a CNN, one too slow, one too big for the Nano."""
    calib = digits()[0][:200]
    teams = [("owls", trained_mlp(32), "int8", ["int8 post-training quantization", "small hidden layer (32)"]),
             ("foxes", trained_mlp(64), "onnx", ["TinyTorch export to ONNX", "int8 by edgekit"]),
             ("herons", trained_cnn(8), "float", ["random conv features + trained head", "int8 by edgekit"]),
             ("bears", trained_mlp(2048, epochs=5), "onnx", ["wide hidden layer (2048)"]),
             ("whales", random_mlp([2048, 512], seed=1), "float", ["none: a 1.2 MB model, too big for the Nano"])]
    for team, graph, fmt, techniques in teams:
        model_file(graph, fmt, folder / team, calib)
        write_submission(folder / team, team, techniques)
    return [t[0] for t in teams]


def demo(folder: str | Path, progress=lambda msg: None) -> dict:
    """Make the track, the submissions and the results in `folder`; returns the paths and the leaderboard."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    taken = [n for n in ("tracks", "submissions", "results.sqlite", "leaderboard.html") if (folder / n).exists()]
    if taken:
        raise EdgekitError(f"{folder} already holds {', '.join(taken)}; run the demo in an empty folder, or "
                           f"`edgekit olympics run {folder / 'submissions'} --track demo` there")
    try:
        progress("writing the demo track (8x8 digits)")
        track_path = write_track(folder)
        progress("making five sample submissions")
        teams = sample_submissions(folder / "submissions")
    except BaseException:  # nothing half-made: the next demo must find the folder empty
        for n in ("tracks", "submissions"):
            shutil.rmtree(folder / n, ignore_errors=True)
        raise
    return {"track": track_path, "submissions": folder / "submissions", "db": folder / "results.sqlite",
            "teams": teams}
