"""`edgekit olympics run`: every submission on every target, one limited child process each.

A run has an id and is recorded in the store before its first result. Each folder is read and its
team claimed within one failure boundary: a folder that cannot be read (bad JSON, a taken team
name, a link) becomes one "invalid" row with its reason, and the run goes on. The evaluations then
run on every board at once (pool.py: one worker per labgrid place or connected board, `jobs` for
the simulated ones), and each row records where it ran.
Each result is stored (and signed) the moment it is known, under the unique key (run, submission,
target). Interrupted (Ctrl-C, a kill, a power cut), the same command finds the unfinished run with
the same track, folder and targets and does only the pairs it has not stored yet: nothing twice,
nothing lost. The counts it prints are of rows it stored, not rows it attempted.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from ..version import __version__
from ..errors import EdgekitError
from ..targets import board_keys
from . import pool, sandbox, slots
from .scoring import violations
from .store import ANY_TARGET, Store, now
from .submissions import Submission, list_submissions, read_submission, storable
from .tracks import Track


def parse_targets(text: str) -> list[str]:
    targets = [t.strip() for t in text.split(",") if t.strip()]
    known = board_keys()
    for t in targets:
        if t not in known:
            raise EdgekitError(f"unknown target '{t}' in --targets; use some of {', '.join(known)}, comma-separated")
    if not targets or len(set(targets)) != len(targets):
        raise EdgekitError("--targets needs distinct board names, comma-separated, e.g. nano33ble,esp32s3,coral")
    return targets


def run(folder: str | Path, track: Track, targets: list[str], store: Store, force: str | None = None,
        runs: int = 10, jobs: int | None = None, lab: str | None = None, fork_server: bool = True,
        on_ready=lambda modes: None, on_start=lambda name, target, i, n: None, on_result=lambda row: None) -> dict:
    """Evaluate what this run has not stored yet, on every slot at once (slots.plan: `jobs` for
    the simulated boards, one per connected board or labgrid place); returns {run_id, resumed,
    stored, skipped, not_run, rows}. stored counts the rows this call stored, not the ones it attempted.
    fork_server=False starts a fresh Python per evaluation (slower; the benchmark's comparison)."""
    sandbox.clean_stale()
    folder = Path(folder).resolve()
    folders = list_submissions(folder)
    test_sha = track.test_sha256()
    track.test_set()  # a broken test set stops the run here, with its reason, before any child starts
    store.rows()      # so does a store that fails verification: nothing is added to a tampered record
    workers, mode, queue_of = slots.plan(targets, force, jobs, lab)
    on_ready({t: why for t, (_, why) in mode.items()})
    run_id, resumed = store.start_run(track.name, str(folder), targets)
    already = len(store.done(run_id))
    common = {"run_id": run_id, "track": track.name, "metric": track.metric, "test_sha256": test_sha,
              "edgekit_version": __version__}
    rows, skipped, tasks = [], [], []
    stored = 0

    def keep(sub: Submission, model_sha: str | None, target: str, result: dict, where: dict | None) -> None:
        nonlocal stored
        row = _row(common, sub, model_sha, target, result, where)
        was_stored = store.add(row)  # False if an identical run stored this pair first
        stored += was_stored
        rows.append(row)
        on_result(dict(row, stored=was_stored))

    done = store.done(run_id)
    for path in folders:
        # one failure boundary per folder: whatever is in it, it ends as rows of its own
        sub, model_sha = _read(path, track, store)
        if sub.track not in (None, track.name):  # another track's submission
            skipped.append(f"{sub.name} (track {sub.track})")
        elif not sub.valid:  # one row for the folder, standing for every board: its reason is the same on each
            if (sub.name, ANY_TARGET) not in done:
                keep(sub, model_sha, ANY_TARGET, {"status": "invalid", "reason": "; ".join(sub.problems)}, None)
        else:
            tasks += [pool.Task(sub, model_sha, t) for t in targets if (sub.name, t) not in done]
    n, evaluated = len(tasks), []

    def evaluate(task: pool.Task, where: dict, zygote, cancel) -> dict:
        began = time.time()
        result = _evaluate(task.sub, track, task.target, mode[task.target][0],
                           slots.target_force(task.target, force), runs, where, zygote, cancel)
        # when it ran, so that a board's evaluations can be seen one after another
        return dict(result, detail=dict(result.get("detail") or {}, began=round(began, 3),
                                        ended=round(time.time(), 3)))

    def started(task: pool.Task, where: dict) -> None:
        on_start(task.sub.name, task.target, len(evaluated), n)

    def finished(task: pool.Task, result: dict, where: dict) -> None:
        if task.lost_on:
            result = dict(result, detail=dict(result.get("detail") or {}, retried_after=task.lost_on))
        keep(task.sub, task.model_sha256, task.target, result, where)
        evaluated.append(task)

    not_run = pool.run_all(tasks, workers, queue_of, evaluate, started, finished, fork_server)
    if not not_run:
        store.finish_run(run_id)
    return {"run_id": run_id, "resumed": resumed, "already_stored": already, "stored": stored,
            "skipped": skipped, "rows": rows, "modes": {t: why for t, (_, why) in mode.items()},
            "not_run": [f"{t.sub.name} on {t.target}: {why}" for t, why in not_run]}


def _row(common: dict, sub: Submission, model_sha: str | None, target: str, result: dict,
         where: dict | None) -> dict:
    detail = dict(result.get("detail") or {}, record=sub.record, where=where)
    return {**common, **{f: result.get(f) for f in ("status", "reason", "metric_value", "latency_ms",
                                                   "flash_bytes", "ram_bytes", "arena_bytes", "energy_mj")},
            "submission": sub.name, "team": sub.team, "target": target, "mode": result.get("mode"),
            "techniques": sub.techniques, "model_sha256": model_sha,
            "firmware": detail.get("firmware"), "time": now(), "detail": detail}


def _read(path: Path, track: Track, store: Store) -> tuple[Submission, str | None]:
    """The submission in `path` (its team claimed on this track) and its model's sha256; never raises
    for what the folder holds: an unexpected failure of the reader is that folder's problem, not the run's."""
    sha = None
    try:
        sub = read_submission(path, track.limits["model_mb"])
        sha = _sha256(sub.model)
    except Exception as e:  # noqa: BLE001 - the boundary: a reader bug or an unreadable file stops this folder only
        sub = Submission(name=storable(path.name), folder=path, team=storable(path.name))
        sub.problems.append(f"the submission could not be read ({type(e).__name__}: {' '.join(str(e).split())[:200]})")
    if sub.valid and sub.track in (None, track.name):  # None: a TinyTorch record, for the run's track
        owner = store.claim(track.name, sub.team, sub.name)
        if owner != sub.name:
            sub.problems.append(f"team '{sub.team}' is already taken on track '{track.name}' by the folder "
                                f"'{owner}', which claimed it first; choose another team name")
            sub.team = sub.name
    return sub, sha


def _evaluate(sub: Submission, track: Track, target: str, mode: str, force: str | None, runs: int,
              where: dict | None = None, zygote=None, cancel=None) -> dict:
    port = (where or {}).get("port")  # a lab place's board
    job = {"kind": "evaluate", "model": str(sub.model.resolve()), "track": str(track.path), "target": target,
           "force": "hw" if port else force, "port": port, "lab_pc": (where or {}).get("lab_pc"), "runs": runs}
    result = sandbox.run_job(job, track.limits, zygote, cancel)
    if result["status"] == "ok":
        over = violations(result, track.boards.get(target, {}), target)
        if over:
            result.update(status="violates", reason=over)
    return dict(result, mode=result.get("mode") or mode)


def _sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:  # size-checked by read_submission
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
