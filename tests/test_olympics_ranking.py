"""The Olympics' rules on hand-made results (no run, no model): which result a board shows, the score
with a track's own weights, the order of equal scores, the limits, and team names. Each expected
number is worked out from the rule in docs/olympics.md, not copied from a run."""
import numpy as np
import pytest

from edgekit.olympics.leaderboard import build_track
from edgekit.olympics.scoring import violations
from edgekit.olympics.store import Store
from edgekit.olympics.tracks import Track, sha256_file

LIMITS = {"latency_ms": 10, "flash_bytes": 1_048_576, "ram_bytes": 262_144}


@pytest.fixture
def track(tmp_path):
    test = tmp_path / "test.npz"
    np.savez(test, x=np.zeros((4, 2), np.float32), y=np.array([0, 1, 0, 1]))
    return Track(name="t", title="T", task="", metric="accuracy", input_shape=(2,), classes=2, layout="NHWC",
                 test_path=test, calibration_path=test, boards={"nano33ble": dict(LIMITS)},
                 weights={"accuracy": 0.1, "speed": 0.5, "size": 0.3, "energy": 0.1})


def row(track, team, run="r1", time="2030-01-01T00:00:00Z", test=None, status="ok", **figures):
    r = {"run_id": run, "track": track.name, "submission": team, "team": team, "target": "nano33ble",
         "mode": "simulated", "status": status, "reason": None if status == "ok" else "over a limit",
         "metric_value": 0.9, "latency_ms": 2.0, "flash_bytes": 1000, "ram_bytes": 100, "energy_mj": 1.0,
         "techniques": [], "model_sha256": "m", "test_sha256": test or sha256_file(track.test_path, 1, "test set"),
         "time": time}
    r.update(figures)
    return r


def ranking(board):
    return board["boards"][0]["ranking"]


def test_the_score_uses_the_tracks_own_weights(track):
    """accuracy 0.1, speed 0.5, size 0.3, energy 0.1: fast beats small when speed weighs more."""
    fast = row(track, "fast", metric_value=0.8, latency_ms=1.0, flash_bytes=4000, energy_mj=2.0)
    small = row(track, "small", metric_value=0.9, latency_ms=4.0, flash_bytes=1000, energy_mj=1.0)
    r = ranking(build_track(track, [small, fast]))
    assert [(e["team"], e["rank"]) for e in r] == [("fast", 1), ("small", 2)]
    want_fast = 0.1 * 0.8 + 0.5 * 1 + 0.3 * (1000 / 4000) + 0.1 * (1.0 / 2.0)
    want_small = 0.1 * 0.9 + 0.5 * (1.0 / 4.0) + 0.3 * 1 + 0.1 * 1
    assert [e["score"] for e in r] == [pytest.approx(want_fast, abs=1e-4), pytest.approx(want_small, abs=1e-4)]


def test_equal_scores_are_ranked_by_team_name_whatever_the_order_stored(track):
    """Rows are stored as evaluations finish (in parallel): the order of a tie must not depend on it."""
    rows = [row(track, t) for t in ("zebra", "aardvark", "mole")]
    rows.append(row(track, "bigfoot", status="violates", flash_bytes=2_000_000))
    rows.append(row(track, "alpha", status="failed", metric_value=None))
    r = ranking(build_track(track, rows))
    assert [(e["team"], e["rank"]) for e in r] == [("aardvark", 1), ("mole", 2), ("zebra", 3),
                                                  ("alpha", None), ("bigfoot", None)]
    assert len({e["score"] for e in r[:3]}) == 1


def test_the_board_shows_each_teams_newest_result_and_the_history_all(track):
    older = row(track, "owls", run="r1", time="2030-01-01T00:00:00Z", latency_ms=8.0)
    newer = row(track, "owls", run="r2", time="2030-01-02T00:00:00Z", latency_ms=4.0)
    other = row(track, "hawks", run="r1", latency_ms=4.0)
    board = build_track(track, [older, other, newer])
    owls = next(e for e in ranking(board) if e["team"] == "owls")
    assert owls["latency_ms"] == 4.0 and owls["time"] == "2030-01-02T00:00:00Z"
    assert len(ranking(board)) == 2
    assert [p["latency_ms"] for p in board["history"]["owls"]] == [8.0, 4.0]


def test_results_on_an_earlier_test_set_stay_in_the_history_only(track):
    old = row(track, "owls", run="r1", test="0" * 64, metric_value=1.0)
    board = build_track(track, [old, row(track, "hawks", run="r2")])
    assert [e["team"] for e in ranking(board)] == ["hawks"]
    assert [p["metric_value"] for p in board["history"]["owls"]] == [1.0]


@pytest.mark.parametrize("key", list(LIMITS))
def test_a_figure_at_its_limit_is_within_it(key):
    """'Over' a limit violates; exactly at it does not."""
    at = dict(LIMITS)
    assert violations(at, LIMITS, "nano33ble") is None
    over = dict(at, **{key: LIMITS[key] * 1.001})
    said = violations(over, LIMITS, "nano33ble")
    assert said is not None and said.count(" is over the track's ") == 1
    assert {"latency_ms": "latency", "flash_bytes": "flash", "ram_bytes": "RAM"}[key] in said


def test_a_team_name_is_one_team_whatever_its_case(tmp_path):
    store = Store(tmp_path / "r.sqlite", key=b"a test key of sixteen+ characters", create=True)
    assert store.claim("t", "Owls", "owls") == "owls"
    assert store.claim("t", "OWLS", "aaa") == "owls"        # taken: the first claimant keeps it
    assert store.claim("t2", "OWLS", "aaa") == "aaa"        # per track
    assert store.claim("t", "hawks", "hawks") == "hawks"
    assert store.problems() == []
