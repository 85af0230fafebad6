"""`edgekit olympics check SUBMISSION`: before the deadline, is the submission valid, and does it fit
each of the track's boards? One line per finding, a problem marked with a cross.

The model is read and converted in the same limited child process as in a run (worker.py), and
each board's fit is the simulator's memory plan (the same one `edgekit deploy` checks), with its
simulated latency against the track's limits. No test set is needed: the accuracy is the staff's.
"""
from __future__ import annotations

from pathlib import Path

from . import sandbox
from .scoring import violations
from .submissions import read_submission
from .tracks import load_track


def check(folder: str | Path, track_name: str | None = None) -> dict:
    """{"valid": bool, "fits": {target: bool}, "lines": [(ok, text)], ...}; never raises for the team's mistakes."""
    folder = Path(folder)
    sandbox.clean_stale()
    lines: list[tuple[bool | None, str]] = []
    probe = read_submission(folder)  # first without the track's size limit: we need its track name
    name = track_name or probe.track
    if name is None:
        return {"valid": False, "fits": {}, "lines": [(False, p) for p in probe.problems]
                + [(False, "no track: TinyTorch's record names none; give --track, or add \"track\": \"NAME\" to "
                           "submission.json" if probe.tinytorch else
                    "no track: name it in submission.json or give --track")]}
    track = load_track(name, search=[folder.parent.parent / "tracks", folder.parent / "tracks"])
    sub = read_submission(folder, track.limits["model_mb"])
    lines += [(False, p) for p in sub.problems] + [(None, n) for n in sub.notes]
    other_track = sub.track is not None and sub.track != track.name
    if other_track:
        lines.append((False, f"submission.json says track '{sub.track}', but this is track '{track.name}'"))
    if sub.problems or other_track:
        return {"valid": False, "fits": {}, "lines": lines, "track": track.name}
    lines.append((True, f"submission.json: team '{sub.team}', track '{track.name}', "
                        f"{len(sub.techniques)} technique(s)"))
    result = sandbox.run_job({"kind": "check", "model": str(sub.model.resolve()), "track": str(track.path),
                              "targets": list(track.boards)}, track.limits)
    if result["status"] != "ok":
        lines.append((False, result["reason"]))
        return {"valid": False, "fits": {}, "lines": lines, "track": track.name}
    m = result["model"]
    how = "converted by edgekit to int8" if m["converted"] else "already int8"
    sizes: dict[int, list[str]] = {}
    for b in result["boards"]:
        sizes.setdefault(b.get("int8_bytes", m["int8_bytes"]), []).append(b["target"])
    size = (f"{m['int8_bytes']:,} bytes" if len(sizes) == 1 else  # per board: as the run converts it
            "; ".join(f"{n:,} bytes for {', '.join(t)}" for n, t in sizes.items()))
    lines.append((True, f"{sub.model.name}: {m['source']}, {how} ({size}); input and output match the track"))
    lines += [(None, n) for n in result["notes"]]
    fits = {}
    for b in result["boards"]:
        target = b["target"]
        if not b["fits"]:
            fits[target] = False
            lines.append((False, f"{target}: {b['reason']}"))
            continue
        over = violations(b, track.boards.get(target, {}), target)
        fits[target] = over is None
        if over:
            lines.append((False, f"{target}: {over} (simulated)"))
        else:
            lines.append((True, f"{target}: fits (flash {b['flash_bytes']:,} B, RAM {b['ram_bytes']:,} B); "
                                f"simulated latency {b['latency_ms']:.3g} ms"))
    return {"valid": True, "fits": fits, "lines": lines, "track": track.name, "model": m, "boards": result["boards"]}
