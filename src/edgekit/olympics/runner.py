"""`edgekit olympics run`: every submission on every target, one limited child process each.

A run has an id and is recorded in the store before its first result. Each result is stored (and
signed) the moment it is known, under the unique key (run, submission, target). Interrupted (Ctrl-C,
a kill, a power cut), the same command finds the unfinished run with the same track, folder and
targets and does only the pairs it has not stored yet: nothing twice, nothing lost.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .. import __version__
from ..errors import EdgekitError
from . import sandbox
from .scoring import violations
from .store import Store, now
from .submissions import list_submissions, read_submission
from .tracks import Track


def parse_targets(text: str) -> list[str]:
    from ..targets import board_keys
    targets = [t.strip() for t in text.split(",") if t.strip()]
    known = board_keys()
    for t in targets:
        if t not in known:
            raise EdgekitError(f"unknown target '{t}' in --targets; use some of {', '.join(known)}, comma-separated")
    if not targets or len(set(targets)) != len(targets):
        raise EdgekitError("--targets needs distinct board names, comma-separated, e.g. nano33ble,esp32s3,coral")
    return targets


def modes(targets: list[str], force: str | None) -> dict[str, tuple[str, str]]:
    """Per target: measured or simulated, and the line saying why (as `edgekit deploy` prints it)."""
    from ..targets.target import select
    out = {}
    for t in targets:
        target, why = select(t, force)
        out[t] = (target.mode, why)
    return out


def run(folder: str | Path, track: Track, targets: list[str], store: Store, force: str | None = None,
        runs: int = 10, on_ready=lambda modes: None, on_start=lambda sub, target, i, n: None,
        on_result=lambda row: None) -> dict:
    """Evaluate what this run has not stored yet; returns {run_id, resumed, stored, skipped, rows}."""
    folder = Path(folder).resolve()
    subs = [read_submission(p, track.limits["model_mb"]) for p in list_submissions(folder)]
    skipped = [s for s in subs if s.valid and s.track != track.name]  # another track's submission
    subs = [s for s in subs if s not in skipped]
    test_sha = track.test_sha256()
    track.test_set()  # a broken test set stops the run here, with its reason, before any child starts
    mode = modes(targets, force)
    on_ready({t: why for t, (_, why) in mode.items()})
    run_id, resumed = store.start_run(track.name, str(folder), targets)
    done = store.done(run_id)
    todo = [(s, t) for s in subs for t in targets if (s.name, t) not in done]
    rows = []
    for i, (sub, target) in enumerate(todo):
        on_start(sub, target, i, len(todo))
        if not sub.valid:
            result = {"status": "failed", "reason": "; ".join(sub.problems), "mode": mode[target][0]}
        else:
            job = {"kind": "evaluate", "model": str(sub.model.resolve()), "track": str(track.path), "target": target,
                   "force": force, "runs": runs}
            result = sandbox.run_job(job, track.limits)
        if result["status"] == "ok":
            over = violations(result, track.boards.get(target, {}), target)
            if over:
                result.update(status="violates", reason=over)
        detail = dict(result.get("detail") or {}, record=sub.record)
        row = {**{k: result.get(k) for k in ("status", "reason", "metric_value", "latency_ms", "flash_bytes",
                                              "ram_bytes", "arena_bytes", "energy_mj")},
               "run_id": run_id, "track": track.name, "submission": sub.name, "team": sub.team, "target": target,
               "mode": result.get("mode") or mode[target][0], "metric": track.metric,
               "techniques": sub.techniques, "model_sha256": _sha256(sub.model), "test_sha256": test_sha,
               "firmware": detail.get("firmware"), "edgekit_version": __version__, "time": now(), "detail": detail}
        stored = store.add(row)  # False only if another process finished this pair of the same run first
        rows.append(row)
        on_result(dict(row, stored=stored))
    store.finish_run(run_id)
    return {"run_id": run_id, "resumed": resumed, "already_stored": len(done), "stored": len(rows),
            "skipped": [f"{s.name} (track {s.track})" for s in skipped], "rows": rows,
            "modes": {t: why for t, (_, why) in mode.items()}}


def _sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:  # size-checked by read_submission
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
