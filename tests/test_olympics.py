"""The AI Olympics core: a real run (child processes, TFLite Micro, LiteRT, SQLite) on simulated boards.

Five submissions across nano33ble, esp32s3 and coral: a good one, a slow one, one too big for the
Nano, a malformed file and one whose output shape is wrong. Expected outcomes follow from the
track's limits and the score formula, not from numbers copied from an earlier run.
"""
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit import EdgekitError, __version__
from edgekit.olympics import demo, runner, sandbox, scoring
from edgekit.olympics.leaderboard import build
from edgekit.olympics.store import Store
from edgekit.olympics.submissions import read_submission
from edgekit.olympics.tracks import load_track
from platforms import enforces_rlimit_as

TARGETS = ["nano33ble", "esp32s3", "coral"]
KEY = b"test key for the olympics tests"


def edgekit(*args, cwd, timeout=180):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(res, *words):
    assert res.returncode != 0
    assert "Traceback" not in res.stderr + res.stdout
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    for w in words:
        assert w.lower() in err.lower(), err


def make_five(folder: Path) -> None:
    """good, slow, big, malformed, wrong_shape: each a folder with submission.json and a model."""
    calib = demo.digits()[0][:200]
    good = demo.model_file(demo.trained_mlp(32), "int8", folder / "good", calib)
    demo.model_file(demo.random_mlp([256, 256, 256]), "onnx", folder / "slow")      # many MACs, few bytes
    demo.model_file(demo.random_mlp([2048, 512]), "float", folder / "big")          # > 1 MB of int8 weights
    (folder / "malformed").mkdir()
    data = good.read_bytes()
    (folder / "malformed" / "model.tflite").write_bytes(data[:len(data) // 2])      # a truncated copy
    demo.model_file(demo.random_mlp([16], classes=5), "int8", folder / "wrong_shape", calib)
    for team in ("good", "slow", "big", "malformed", "wrong_shape"):
        demo.write_submission(folder / team, team, ["int8 PTQ"])


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """The track, the five submissions and one complete run of them (in this process, workers in children)."""
    root = tmp_path_factory.mktemp("olympics")
    track = load_track(demo.write_track(root))
    make_five(root / "submissions")
    store = Store(root / "results.sqlite", key=KEY)
    summary = runner.run(root / "submissions", track, TARGETS, store, force="sim", runs=2)
    return root, track, store, summary


def entry(board: dict, target: str, team: str) -> dict:
    b = next(b for b in board["tracks"][0]["boards"] if b["target"] == target)
    return next(e for e in b["ranking"] if e["team"] == team)


def test_five_submissions_give_the_expected_leaderboard(arena):
    root, track, store, summary = arena
    assert summary["stored"] == 15 and not summary["resumed"]
    board = build(store, [track])
    assert board["store"]["results"] == 15 and len(board["store"]["head"]) == 16
    json.dumps(board)  # the page's input must be JSON
    t = board["tracks"][0]
    assert [b["target"] for b in t["boards"]] == TARGETS and t["metric"] == "accuracy"

    for target in TARGETS:
        limit = track.boards[target].get("latency_ms")
        good = entry(board, target, "good")
        assert good["status"] == "ok" and good["mode"] == "simulated" and good["metric_value"] > 0.9
        for team, words in (("malformed", ["truncated"]), ("wrong_shape", ["your model gives (1, 5)", "one score per class, (1, 10)"])):
            e = entry(board, target, team)
            assert e["status"] == "failed" and e["rank"] is None and e["score"] is None
            assert all(w in e["reason"] for w in words), e["reason"]
            assert "\n" not in e["reason"]
        slow = entry(board, target, "slow")
        # the slow model is judged by the track's own latency limit on each board
        if slow["latency_ms"] > limit:
            assert slow["status"] == "violates" and "latency" in slow["reason"] and slow["rank"] is None
        else:
            assert slow["status"] == "ok" and slow["rank"] is not None
    # the test's models sit clearly on either side of the limits, so each case above is exercised
    assert entry(board, "nano33ble", "slow")["status"] == "violates"
    assert entry(board, "esp32s3", "slow")["status"] == "ok"

    big_nano = entry(board, "nano33ble", "big")
    assert big_nano["status"] == "violates" and "does not fit" in big_nano["reason"] and "flash" in big_nano["reason"]
    assert big_nano["metric_value"] is None and big_nano["flash_bytes"] > 1_000_000
    assert entry(board, "coral", "big")["status"] == "ok"

    for b in t["boards"]:
        ranking = b["ranking"]
        ranked = [e for e in ranking if e["rank"] is not None]
        assert [e["rank"] for e in ranked] == list(range(1, len(ranked) + 1))
        assert ranking[:len(ranked)] == ranked  # ranked first, then the unranked
        assert [e["score"] for e in ranked] == sorted((e["score"] for e in ranked), reverse=True)
        assert ranked[0]["team"] == "good"  # better than the random models on every term
        # every score is the documented formula over this board's ok entries
        best = {k: min(e[k] for e in ranked) for k in ("latency_ms", "flash_bytes", "energy_mj")}
        w = track.weights
        for e in ranked:
            want = (w["accuracy"] * e["metric_value"] + w["speed"] * best["latency_ms"] / e["latency_ms"]
                    + w["size"] * best["flash_bytes"] / e["flash_bytes"] + w["energy"] * best["energy_mj"] / e["energy_mj"])
            assert e["score"] == pytest.approx(want, abs=1e-4)
            assert 0 < e["score"] <= 1

    rows = store.rows()
    assert len(rows) == 15
    good_row = next(r for r in rows if r["submission"] == "good")
    assert good_row["model_sha256"] == hashlib.sha256((root / "submissions/good/model.tflite").read_bytes()).hexdigest()
    assert good_row["test_sha256"] == track.test_sha256() and good_row["edgekit_version"] == __version__
    assert good_row["firmware"] and good_row["detail"]["outputs_by"]
    assert set(t["history"]) == {"good", "slow", "big", "malformed", "wrong_shape"}


def test_accuracy_is_over_the_whole_test_set(arena):
    """The good model's accuracy equals LiteRT's on every test sample (1-LSB TFLM/LiteRT rounding aside)."""
    root, track, store, _ = arena
    from edgekit.runtime import litert
    x, y = track.test_set()
    model = (root / "submissions/good/model.tflite").read_bytes()
    litert_acc = float((litert.run(model, x)[0][0].argmax(1) == y).mean())
    board = build(store, [track])
    assert entry(board, "coral", "good")["metric_value"] == pytest.approx(litert_acc, abs=1e-9)  # LiteRT on coral
    assert entry(board, "nano33ble", "good")["metric_value"] == pytest.approx(litert_acc, abs=2 / len(y))


def test_a_hand_edited_result_is_refused(arena, tmp_path):
    root, track, store, _ = arena
    db = tmp_path / "copy.sqlite"
    src = sqlite3.connect(root / "results.sqlite")
    src.backup(dst := sqlite3.connect(db))  # a consistent copy, WAL included
    src.close()
    seq = dst.execute("SELECT seq FROM results WHERE submission = 'slow' AND target = 'coral'").fetchone()[0]
    dst.execute("UPDATE results SET metric_value = 0.999 WHERE submission = 'slow' AND target = 'coral'")
    dst.commit()
    dst.close()
    copy = Store(db, key=KEY)
    # the whole board is refused, naming the row: never a ranking silently without it
    with pytest.raises(EdgekitError, match=rf"seq {seq} \(run [^,]+, slow on coral\): altered"):
        build(copy, [track])
    # someone without the course key cannot add a row (nor sign a new head over the edit)
    forged = Store(db, key=b"not the course key at all")
    with pytest.raises(EdgekitError, match="does not verify under this key"):
        forged.add(dict(store.rows()[0], run_id="forged"))
    assert sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0] == 15


def test_the_key_file_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv(sandbox.KEY_ENV, raising=False)
    db = tmp_path / "r.sqlite"
    Store(db, create=True).close()
    key = Path(str(db) + ".key")
    assert key.stat().st_mode & 0o777 == 0o600
    assert Store(db).key == key.read_text().strip().encode()  # the same key next time
    key.chmod(0o644)
    with pytest.raises(EdgekitError, match="chmod 600"):
        Store(db)
    monkeypatch.setenv(sandbox.KEY_ENV, "short")
    with pytest.raises(EdgekitError, match="at least 16"):
        Store(tmp_path / "other.sqlite")


def _write_rows(db: str, run_id: str, n: int, start) -> None:
    start.wait()
    store = Store(db, key=KEY)
    for i in range(n):
        assert store.add({"run_id": run_id, "track": "demo", "submission": f"s{i}", "team": f"t{i}",
                          "target": "nano33ble", "mode": "simulated", "status": "ok", "metric": "accuracy",
                          "metric_value": i / n, "latency_ms": 1.0 + i, "flash_bytes": 1000 + i, "ram_bytes": 10,
                          "energy_mj": 0.5, "techniques": [], "time": f"2026-01-01T00:00:{i % 60:02d}Z", "detail": {}})


def test_two_runs_writing_at_once_lose_no_row(tmp_path):
    db = str(tmp_path / "r.sqlite")
    Store(db, key=KEY).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_write_rows, args=(db, f"run{k}", 300, start)) for k in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = Store(db, key=KEY).rows()  # verifies: the two writers kept one unbroken chain
    assert len(rows) == 600 and [r["seq"] for r in rows] == list(range(1, 601))
    assert {(r["run_id"], r["submission"]) for r in rows} == {(f"run{k}", f"s{i}") for k in range(2) for i in range(300)}


def test_two_olympics_runs_at_once(arena, tmp_path):
    """Two `edgekit olympics run` processes on one database, at the same time: both keep every result."""
    root, _, _, _ = arena
    subs = tmp_path / "subs"
    subs.mkdir()
    for team in ("good", "wrong_shape"):
        shutil.copytree(root / "submissions" / team, subs / team)  # a link would be refused
    env = dict(os.environ, EDGEKIT_OLYMPICS_KEY=KEY.decode())
    cmd = [sys.executable, "-m", "edgekit", "olympics", "run", str(subs), "--track", str(root / "tracks/demo.toml"),
           "--db", str(tmp_path / "r.sqlite"), "--sim", "--runs", "1", "--targets"]
    procs = [subprocess.Popen(cmd + [t], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for t in ("coral", "esp32s3")]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    rows = Store(tmp_path / "r.sqlite", key=KEY).rows()
    assert sorted((r["submission"], r["target"]) for r in rows) == [
        ("good", "coral"), ("good", "esp32s3"), ("wrong_shape", "coral"), ("wrong_shape", "esp32s3")]


def test_an_interrupted_run_resumes_without_duplicates(arena, tmp_path):
    root, _, _, _ = arena
    subs = tmp_path / "subs"
    subs.mkdir()
    for team in ("good", "slow"):
        shutil.copytree(root / "submissions" / team, subs / team)  # a link would be refused
    db = tmp_path / "r.sqlite"
    env = dict(os.environ, EDGEKIT_OLYMPICS_KEY=KEY.decode())
    cmd = [sys.executable, "-m", "edgekit", "olympics", "run", str(subs), "--track", str(root / "tracks/demo.toml"),
           "--targets", "nano33ble,coral", "--db", str(db), "--sim", "--runs", "1"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    count = 0
    deadline = time.monotonic() + 120
    while count == 0 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
        if db.exists():
            try:
                count = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:  # the schema is not there yet
                pass
    first.send_signal(signal.SIGKILL)  # no chance to clean up: like a power cut
    first.wait()
    assert 1 <= count < 4, "the run must be killed midway for this test to mean anything"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert "resumed after" in again.stderr
    rows = sqlite3.connect(db).execute("SELECT run_id, submission, target FROM results").fetchall()
    assert len(rows) == 4 and len(set(rows)) == 4
    assert len({r[0] for r in rows}) == 1  # one run, finished by the second command
    runs = sqlite3.connect(db).execute("SELECT finished FROM runs").fetchall()
    assert len(runs) == 1 and runs[0][0] is not None


def test_check_says_valid_and_what_fits(arena):
    root, _, _, _ = arena
    subs = root / "submissions"
    good = edgekit("olympics", "check", subs / "good", cwd=root)
    assert good.returncode == 0, good.stdout + good.stderr
    for target in TARGETS:
        assert f"✓ {target}: fits" in good.stdout
    big = edgekit("olympics", "check", subs / "big", cwd=root)
    assert big.returncode == 1 and "Traceback" not in big.stdout + big.stderr
    assert "✗ nano33ble: the model does not fit" in big.stdout and "✓ coral: fits" in big.stdout
    assert "converted by edgekit" in big.stdout
    bad = edgekit("olympics", "check", subs / "malformed", "--track", "demo", cwd=root)
    assert bad.returncode == 1 and "truncated" in bad.stdout and "NOT valid" in bad.stdout


def test_cli_errors_are_one_line(arena, tmp_path):
    root, _, _, _ = arena
    one_line_error(edgekit("olympics", "run", tmp_path / "nowhere", "--track", "demo", cwd=root),
                   "does not exist")
    one_line_error(edgekit("olympics", "run", root / "submissions", "--track", "nosuch", cwd=root), "unknown track")
    one_line_error(edgekit("olympics", "run", root / "submissions", "--track", "demo", "--targets", "nano33ble,uno",
                           cwd=root), "unknown target 'uno'")
    bad = tmp_path / "bad.toml"
    bad.write_text((root / "tracks/demo.toml").read_text().replace("energy = 0.2", "energy = 0.5"))
    one_line_error(edgekit("olympics", "run", root / "submissions", "--track", bad, cwd=tmp_path), "add up to 1.3")
    one_line_error(edgekit("olympics", "board", "--db", tmp_path / "none.sqlite", cwd=tmp_path), "does not exist")
    assert not (tmp_path / "none.sqlite").exists() and not (root / "results.sqlite.key").exists()


@enforces_rlimit_as
@pytest.mark.parametrize("forked", [False, True], ids=["fresh process", "fork server"])
def test_a_hostile_model_fails_alone_within_the_limits(arena, forked):
    """Memory and CPU limits end the child, not the run: the failure comes back as a reason. The
    same for a child the fork server forks (after its imports) as for a fresh Python."""
    root, track, _, _ = arena
    job = {"kind": "evaluate", "model": str(root / "submissions/big/model.tflite"), "track": str(track.path),
           "target": "esp32s3", "force": "sim", "runs": 1}
    zygote = sandbox.Zygote() if forked else None
    run_job = lambda job, limits: sandbox.run_job(job, limits, zygote)  # noqa: E731
    try:
        _limits_hold(root, job, track, run_job)
    finally:
        if zygote:
            zygote.close()


def _limits_hold(root, job, track, run_job):
    starved = run_job(job, dict(track.limits, memory_mb=120))
    assert starved["status"] == "failed" and "memory" in starved["reason"], starved
    # a deep conv net on 8x8 inputs: ~0.6 G MACs per sample, evaluated on the simulated Pi, where it
    # fits, so calibrating it (200 samples) and running the test set (540) in LiteRT take 2.6 s of CPU
    # unlimited on this machine (XNNPACK is fast: 9 layers on a board it did not fit took 1.1 s, too
    # close to the limit); the track allows one here
    from edgekit.export.tflite_writer import write_tflite
    from edgekit.graph import Graph
    rng = np.random.default_rng(0)
    g = Graph(name="heavy")
    x = g.add_op("reshape", [g.add_input("input", (1, 64))], "image", shape=(1, 8, 8, 1))
    for i, c_in in enumerate([1] + [256] * 15):
        w = g.add_const(f"c{i}/w", rng.normal(0, 0.05, (256, 3, 3, c_in)).astype(np.float32))
        x = g.add_op("conv2d", [x, w, g.add_const(f"c{i}/b", np.zeros(256, np.float32))], f"c{i}",
                     stride=(1, 1), padding="SAME", activation="relu")
    x = g.add_op("mean", [x], "pool", axes=(1, 2), keepdims=False)
    w = g.add_const("fc/w", rng.normal(0, 0.05, (10, 256)).astype(np.float32))
    g.outputs = [g.add_op("fully_connected", [x, w, g.add_const("fc/b", np.zeros(10, np.float32))], "fc")]
    heavy = root / "heavy.tflite"
    heavy.write_bytes(write_tflite(g.finalize()))
    hurried = run_job(dict(job, model=str(heavy), target="rpi4"), dict(track.limits, seconds=1))
    assert hurried["status"] == "failed" and "1 s of CPU time" in hurried["reason"], hurried


def test_submission_folders_are_read_carefully(tmp_path):
    s = tmp_path / "team"
    s.mkdir()
    (s / "model.pkl").write_bytes(b"\x80\x04not really")
    (s / "submission.json").write_text('{"team": "<b>x</b>", "track": "demo", "techniques": "int8"}')
    sub = read_submission(s)
    assert not sub.valid
    assert any("team" in p for p in sub.problems) and any("techniques" in p for p in sub.problems)
    assert any("pickles" in p for p in sub.problems)
    (s / "model.pkl").unlink()
    (s / "model.tflite").symlink_to("/etc/passwd")
    (s / "submission.json").write_text('{"team": "x", "track": "demo", "techniques": ["int8"]}')
    assert any("plain file" in p for p in read_submission(s).problems)
    (s / "model.tflite").unlink()
    (s / "model.tflite").write_bytes(b"0" * 2048)
    assert any("over the track" in p for p in read_submission(s, model_mb=0.001).problems)
    assert read_submission(s).valid  # its bytes are the worker's business, not this reader's
    (s / "submission.json").write_text("{not json")
    assert any("not valid JSON" in p for p in read_submission(s).problems)


def test_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
    assert scoring.auc(scores, y) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_the_fork_server_comes_back_after_it_dies(arena):
    """A fork server killed between jobs (out of memory, a stray kill) is started again: the next
    evaluation runs, and its result is the same as a fresh process's."""
    root, track, _, _ = arena
    job = {"kind": "evaluate", "model": str(root / "submissions/good/model.tflite"), "track": str(track.path),
           "target": "nano33ble", "force": "sim", "runs": 1}
    fresh = sandbox.run_job(job, track.limits)
    with sandbox.Zygote() as zygote:
        first = sandbox.run_job(job, track.limits, zygote)
        zygote.proc.kill()
        zygote.proc.wait()
        again = sandbox.run_job(job, track.limits, zygote)
    assert fresh["status"] == first["status"] == again["status"] == "ok", (fresh, first, again)
    for key in ("metric_value", "latency_ms", "ram_bytes", "arena_bytes"):
        assert fresh[key] == first[key] == again[key], key
