"""The leaderboard as data: build(store, tracks) -> dict, the contract with page.py and serve.py.

Per track and board, the ranking holds each submission's latest verified result on that board
(on the track's current test set), scored against the others (scoring.py); ranked entries first,
best score first, then the unranked ones (violates, failed, invalid) with their reason; an invalid
folder's one row shows on every board. Each team's history has every result, scored within its own
run. A store that fails verification (a row missing, altered, moved or replayed) is refused whole:
build raises EdgekitError naming the rows, and nothing is ranked from it.
"""
from __future__ import annotations

from collections import defaultdict

from ..targets import load_board
from ..version import __version__
from .scoring import scores
from .store import ANY_TARGET, Store, now
from .tracks import Track

ENTRY_KEYS = ("team", "submission", "metric_value", "latency_ms", "flash_bytes", "ram_bytes", "energy_mj",
              "mode", "status", "reason", "techniques", "model_sha256", "time")


def _board_name(target: str) -> str:
    try:
        return load_board(target).name
    except Exception:  # a board removed from edgekit since the run still shows under its key
        return target


def _ranking(rows: list[dict], weights: dict) -> list[dict]:
    entries = [{k: r.get(k) for k in ENTRY_KEYS} for r in rows]
    score = scores(entries, weights)
    for i, e in enumerate(entries):
        e["score"] = score.get(i)
    ranked = sorted((e for e in entries if e["score"] is not None), key=lambda e: (-e["score"], e["team"]))
    unranked = sorted((e for e in entries if e["score"] is None), key=lambda e: (e["status"], e["team"]))
    for n, e in enumerate(ranked, start=1):
        e["rank"] = n
    for e in unranked:
        e["rank"] = None
    return [{"rank": e.pop("rank"), **e} for e in ranked + unranked]


def _current_test_set(track: Track) -> str | None:
    try:
        return track.test_sha256()
    except Exception:  # the board can be built where the test set is not (e.g. a web server)
        return None


def build_track(track: Track, rows: list[dict]) -> dict:
    test_sha = _current_test_set(track)
    targets = list(track.boards) + sorted({r["target"] for r in rows} - set(track.boards))
    boards = []
    for target in targets:
        latest = {}  # submission -> its newest row on this board (rows come oldest first)
        for r in rows:
            if r["target"] in (target, ANY_TARGET) and (test_sha is None or r["test_sha256"] == test_sha):
                latest[r["submission"]] = r
        limits = track.boards.get(target, {})
        boards.append({"target": target, "board": _board_name(target),
                       "constraints": {k: limits.get(k) for k in ("latency_ms", "flash_bytes", "ram_bytes")},
                       "ranking": _ranking(list(latest.values()), track.weights)})
    history = defaultdict(list)
    by_run = defaultdict(list)  # scores are relative: a history point is scored within its own run and board
    for r in rows:
        by_run[(r["run_id"], r["target"])].append(r)
    for group in by_run.values():
        group_scores = scores(group, track.weights)
        for i, r in enumerate(group):
            history[r["team"]].append({"time": r["time"], "target": r["target"], "score": group_scores.get(i),
                                       "metric_value": r["metric_value"], "latency_ms": r["latency_ms"],
                                       "status": r["status"], "run_id": r["run_id"]})
    for points in history.values():
        points.sort(key=lambda p: (p["time"], p["target"]))
    return {"name": track.name, "title": track.title, "metric": track.metric, "weights": dict(track.weights),
            "boards": boards, "history": dict(sorted(history.items()))}


def build(store: Store, tracks: list[Track]) -> dict:
    """The whole leaderboard (JSON-serialisable), see /docs/olympics.md and the page's contract."""
    rows = store.rows()  # verifies the whole store first, or raises naming what is wrong
    out = {"generated": now(), "edgekit_version": __version__, "store": store.summary(), "tracks": []}
    for track in tracks:
        out["tracks"].append(build_track(track, [r for r in rows if r["track"] == track.name]))
    return out


def render(board: dict):
    """The ranking as rich tables, one per track and board (for `edgekit olympics board`)."""
    from rich.console import Group
    from rich.table import Table
    parts = []
    for track in board["tracks"]:
        metric = "accuracy" if track["metric"] == "accuracy" else "AUC"
        for b in track["boards"]:
            lim = ", ".join(f"{k.replace('_', ' ')} <= {v:,}" for k, v in b["constraints"].items() if v)
            t = Table(title=f"{track['title']}: {b['board']} ({b['target']}){'; ' + lim if lim else ''}",
                      title_justify="left")
            for col in ("#", "team", "score", metric, "latency ms", "flash", "RAM", "energy mJ", "mode", "status"):
                t.add_column(col, justify="right" if col not in ("team", "mode", "status") else "left")
            for e in b["ranking"]:
                fmt = lambda v, f: "-" if v is None else format(v, f)
                status = e["status"] if e["status"] == "ok" else f"[red]{e['status']}[/red]: {e['reason']}"
                t.add_row(fmt(e["rank"], "d"), e["team"], fmt(e["score"], ".3f"), fmt(e["metric_value"], ".2%"
                          if track["metric"] == "accuracy" else ".3f"), fmt(e["latency_ms"], ".3g"),
                          fmt(e["flash_bytes"], ","), fmt(e["ram_bytes"], ","), fmt(e["energy_mj"], ".3g"),
                          e["mode"] or "-", status)
            parts.append(t)
    store = board.get("store") or {}
    parts.append(f"{store.get('results')} result(s) stored, every signature and the chain verified; head "
                 f"{store.get('head') or '-'} (compare with the last board you published)")
    return Group(*parts)
