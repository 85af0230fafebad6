"""A team's submission: one folder holding submission.json and one model file.

    submissions/owls/
        submission.json   {"team": "owls", "track": "demo", "techniques": ["int8 PTQ"], "model": "model.onnx",
                           "baseline": {...}, "optimized": {...}}      (model, baseline, optimized optional)
        model.onnx        an int8 or float .tflite, or an .onnx (a TinyTorch model via edgekit.export_onnx)

Everything here is untrusted. This module only reads submission.json (JSON, size-, depth- and
number-limited) and finds the model file; it never opens the model. The model is parsed in a child
process (worker.py). Files that would run code when loaded (pickles, PyTorch checkpoints, Python) are
never models. read_submission never raises for what is in the folder: every problem is one line in
Submission.problems, so one bad folder is one invalid submission and the others go on.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgekitError

MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 20      # submission.json is a few flat fields: deeper is an attack on the parser's recursion
MAX_NUMBER_CHARS = 40    # a metric needs a handful of digits; 5,000 of them is an attack on int()
MODEL_SUFFIXES = (".tflite", ".onnx")
# Metrics a team may report about its own model, after the course's submission record.
RECORD_KEYS = ("accuracy", "latency_ms_mean", "latency_ms_std", "model_size_mb", "parameter_count")
# shown on the leaderboard: short, printable, no markup, no trailing space; always used with fullmatch
# (re.match with "$" would let "owls\n" through)
_NAME = re.compile(r"\w(?:[\w .+-]{0,62}[\w.+-])?")


@dataclass
class Submission:
    name: str                      # the folder's name: one entry on the leaderboard
    folder: Path
    team: str
    track: str | None = None
    techniques: list[str] = field(default_factory=list)
    model: Path | None = None
    record: dict = field(default_factory=dict)   # baseline/optimized metrics the team reported
    problems: list[str] = field(default_factory=list)  # one line each; a submission with any is invalid
    notes: list[str] = field(default_factory=list)     # worth saying, not disqualifying
    tinytorch: str | None = None   # "capstone" or "competition": submission.json is TinyTorch's, translated

    @property
    def valid(self) -> bool:
        return not self.problems


def list_submissions(folder: Path) -> list[Path]:
    """The sub-folders of a submissions folder, sorted (hidden ones skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgekitError(f"submissions folder {folder} does not exist; give the folder that holds one "
                           "folder per team")
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise EdgekitError(f"{folder} holds no submission folders; each team's submission is a folder with "
                           "submission.json and its model")
    return subs


def read_submission(folder: Path, model_mb: float = 64) -> Submission:
    """Read a submission folder, collecting every problem rather than stopping at the first."""
    folder = Path(folder)
    sub = Submission(name=storable(folder.name), folder=folder, team=storable(folder.name))
    if folder.is_symlink():  # a link could be another team's folder, or anything on the staff's machine
        sub.problems.append(f"{sub.name} is a symbolic link; a submission is a real folder, not a link to one")
        return sub
    if not folder.is_dir():
        sub.problems.append(f"{folder} is not a folder; a submission is a folder with submission.json and a model")
        return sub
    try:
        meta = _read_json(folder / "submission.json", sub)
        prefer = None
        if meta is not None:
            meta, prefer = from_tinytorch(meta, sub)
            _check_meta(meta, sub)
        _find_model(folder, meta or {}, sub, model_mb, prefer)
    except OSError as e:  # e.g. a file or folder its owner made unreadable
        sub.problems.append(f"{sub.name} could not be read ({e.strerror or e}); make its files readable")
    return sub


def storable(name: str) -> str:
    """A file name as text SQLite can store and a page can show: undecodable bytes and control
    characters are spelled out (\\xff, \\n) instead of ending the run."""
    if name.isprintable():
        try:
            name.encode("utf-8")
            return name
        except UnicodeEncodeError:  # bytes that were not UTF-8 (os.fsdecode's surrogates)
            pass
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def parse_json(data: bytes):
    """submission.json's value, or ValueError with a one-line reason. Limits first: the standard
    parser recurses once per nesting level and converts any number of digits."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save it as UTF-8")
    if _depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"nests more than {MAX_JSON_DEPTH} levels of [ ] or {{ }}; it holds a few flat fields")
    try:
        return json.loads(text, parse_int=_number(int), parse_float=_number(float),
                          parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e}); check it with `python -m json.tool`") from None


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings (a string's brackets are text)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _number(kind):
    def parse(digits: str):
        if len(digits) > MAX_NUMBER_CHARS:
            raise ValueError(f"holds a number of {len(digits):,} characters; numbers here have at most "
                             f"{MAX_NUMBER_CHARS}")
        value = kind(digits)
        if kind is float and not math.isfinite(value):
            raise ValueError(f"holds the number {digits}, which is out of range")
        return value
    return parse


def _no_constant(name: str):
    raise ValueError(f"holds {name}, which is not a JSON number; write a finite number")


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"gives {', '.join(map(repr, twice))} more than once; say each field once")
    return dict(pairs)


def _read_json(path: Path, sub: Submission) -> dict | None:
    if path.is_symlink() or not path.is_file():  # a link could point at /dev/zero or a staff file
        sub.problems.append("submission.json is missing (or not a plain file); write {\"team\": ..., "
                            "\"track\": ..., \"techniques\": [...]}")
        return None
    with open(path, "rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)  # read no more than the limit, whatever stat said
    if len(data) > MAX_JSON_BYTES:
        sub.problems.append(f"submission.json is over {MAX_JSON_BYTES // 1024} KB; it holds a few fields, not data")
        return None
    try:
        meta = parse_json(data)
    except ValueError as e:
        sub.problems.append(f"submission.json {e}")
        return None
    if not isinstance(meta, dict):
        sub.problems.append("submission.json must be one JSON object {...}")
        return None
    return meta


# TinyTorch's own records, and where edgekit finds its fields in them (docs/olympics.md):
#   "capstone": the capstone's generate_submission(baseline_report, optimized_report, student_name,
#       techniques_applied): {tinytorch_version, submission_type: "capstone_benchmark", student_name?,
#       baseline{model_name, metrics{...}}, optimized{model_name, metrics{...}, techniques_applied}, ...}
#   "competition": tinytorch/competition/submit.py's generate_submission(...): {division, event,
#       athlete_name, github_repo, baseline{model, accuracy (percent), latency_ms, memory_mb, parameters},
#       optimized{...}, normalized_scores, techniques_applied, honor_code, ...}
_COMPETITION_KEYS = {"accuracy": "accuracy", "latency_ms": "latency_ms_mean", "memory_mb": "model_size_mb",
                     "parameters": "parameter_count"}
_TINYTORCH_TEAM = {"capstone": "student_name", "competition": "athlete_name"}


def tinytorch_kind(meta: dict) -> str | None:
    """"capstone", "competition" (TinyTorch's two submission.json shapes) or None (edgekit's own)."""
    base = meta.get("baseline")
    if meta.get("submission_type") == "capstone_benchmark" or (isinstance(base, dict) and "metrics" in base):
        return "capstone"
    if {"athlete_name", "normalized_scores", "division", "event"} & set(meta):
        return "competition"
    return None


def _metrics(part, kind: str) -> dict | None:
    """A baseline/optimized part of TinyTorch's record as edgekit's record: the figures it knows, numbers only."""
    if not isinstance(part, dict):
        return None
    if kind == "capstone":
        found = {k: v for k, v in (part.get("metrics") or {}).items() if k in RECORD_KEYS} \
            if isinstance(part.get("metrics"), dict) else {}
    else:
        found = {_COMPETITION_KEYS[k]: v for k, v in part.items() if k in _COMPETITION_KEYS}
    found = {k: v for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "accuracy" in found and found["accuracy"] > 1:  # submit.py says 85.0 for 85%: edgekit's record is 0..1
        found["accuracy"] = found["accuracy"] / 100
    return found or None


def from_tinytorch(meta: dict, sub: Submission) -> tuple[dict, str | None]:
    """TinyTorch's submission.json translated to edgekit's fields (edgekit's own is returned as it is),
    and the name of the model it describes (a file of that name, .onnx or .tflite, is preferred).
    "team", "track" and "model" may be added to TinyTorch's record; without "team" the team is the
    student's name, and without "track" the track is the one given with --track (or the run's)."""
    kind = tinytorch_kind(meta)
    if kind is None:
        return meta, None
    sub.tinytorch = kind
    opt = meta.get("optimized") if isinstance(meta.get("optimized"), dict) else {}
    techniques = next((t for t in (opt.get("techniques_applied"), opt.get("techniques"),
                                   meta.get("techniques_applied"), meta.get("techniques")) if t is not None), [])
    out = {"team": meta.get("team", meta.get(_TINYTORCH_TEAM[kind])), "techniques": techniques}
    for key in ("track", "model"):
        if key in meta:
            out[key] = meta[key]
    for part in ("baseline", "optimized"):
        rec = _metrics(meta.get(part), kind)
        if rec:
            out[part] = rec
    if out["team"] is None:
        out["team"] = sub.name
        sub.notes.append(f"submission.json has no {_TINYTORCH_TEAM[kind]}: the team is the folder's name "
                         f"'{sub.name}' (add \"team\": \"...\" to choose it)")
    what = ("TinyTorch's capstone record (generate_submission)" if kind == "capstone"
            else "TinyTorch's competition record (tinytorch/competition/submit.py)")
    sub.notes.append(f"submission.json is {what}: read its {_TINYTORCH_TEAM[kind]}, techniques and baseline and "
                     "optimized figures; its other fields are not used here")
    prefer = opt.get("model_name" if kind == "capstone" else "model")
    return out, prefer if isinstance(prefer, str) else None


def _check_meta(meta: dict, sub: Submission) -> None:
    team = meta.get("team")
    if not isinstance(team, str) or not _NAME.fullmatch(team):
        which = f"'team' (else TinyTorch's {_TINYTORCH_TEAM[sub.tinytorch]})" if sub.tinytorch else "'team'"
        sub.problems.append(f"submission.json: {which} must be a name of 1-64 letters, digits, spaces or . + - _, "
                            "not ending in a space or a new line")
    else:
        sub.team = team
    track = meta.get("track")
    if track is None and sub.tinytorch:
        pass  # TinyTorch's records name no track: the one given with --track, or the run's
    elif not isinstance(track, str) or not _NAME.fullmatch(track):
        sub.problems.append("submission.json: 'track' must name the track, e.g. \"demo\"")
    else:
        sub.track = track
    techniques = meta.get("techniques", [])
    if not (isinstance(techniques, list) and len(techniques) <= 20
            and all(isinstance(t, str) and 0 < len(t) <= 100 and t.isprintable() and storable(t) == t
                    for t in techniques)):
        sub.problems.append("submission.json: 'techniques' must be a list of up to 20 short strings, "
                            "e.g. [\"int8 post-training quantization\", \"pruning 50%\"]")
    else:
        sub.techniques = techniques
        if not techniques:
            sub.notes.append("submission.json lists no techniques; say what you applied (e.g. \"int8 PTQ\")")
    for part in ("baseline", "optimized"):
        rec = meta.get(part)
        if rec is None:
            continue
        if not isinstance(rec, dict) or not all(k in RECORD_KEYS and isinstance(v, (int, float))
                                                and not isinstance(v, bool) for k, v in rec.items()):
            sub.problems.append(f"submission.json: '{part}' must map some of {', '.join(RECORD_KEYS)} to numbers")
        else:
            sub.record[part] = rec
    unknown = set(meta) - {"team", "track", "techniques", "model", "baseline", "optimized"}
    if unknown:
        sub.notes.append(f"submission.json: ignoring unknown fields {sorted(unknown)}")


def _find_model(folder: Path, meta: dict, sub: Submission, model_mb: float, prefer: str | None = None) -> None:
    """The model file: the one "model" names, else the only .tflite or .onnx in the folder, else (among
    several) the one named after the model TinyTorch's record describes (prefer: optimized_mlp.onnx)."""
    named = meta.get("model")
    if named is not None:
        if (not isinstance(named, str) or "/" in named or "\\" in named or named.startswith(".")
                or storable(named) != named or len(named) > 255):
            sub.problems.append("submission.json: 'model' must be a file name inside the submission folder")
            return
        candidates = [folder / named]
        if not candidates[0].exists():
            sub.problems.append(f"submission.json names the model '{named}', which is not in the folder")
            return
    else:
        candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
        if not candidates:
            others = sorted(p.name for p in folder.iterdir() if p.name != "submission.json")
            sub.problems.append("no model file: put one .tflite or .onnx in the folder"
                                + (f" (found {', '.join(others[:5])}; pickles and checkpoints are never loaded: "
                                   "export to ONNX with edgekit.export_onnx)" if others else ""))
            return
        preferred = [p for p in candidates if p.stem == prefer]
        if len(candidates) > 1 and len(preferred) == 1:
            candidates = preferred
            sub.notes.append(f"{preferred[0].name}: the model TinyTorch's record names ('{prefer}')")
        if len(candidates) > 1:
            sub.problems.append(f"{len(candidates)} model files ({', '.join(p.name for p in candidates)}); keep one, "
                                "or name it in submission.json as \"model\"")
            return
    model = candidates[0]
    if model.suffix.lower() not in MODEL_SUFFIXES:
        sub.problems.append(f"'{model.name}' is not a .tflite or .onnx file; edgekit never loads pickles, "
                            "checkpoints or code: export the model to ONNX or TFLite")
        return
    # a symlink could point anywhere on the staff's machine: only plain files inside the folder
    if model.is_symlink() or not model.is_file() or folder.resolve() not in model.resolve().parents:
        sub.problems.append(f"'{model.name}' must be a plain file inside the submission folder (no links)")
        return
    size = model.stat().st_size
    if size > model_mb * 2**20:
        sub.problems.append(f"'{model.name}' is {size / 2**20:.1f} MB, over the track's {model_mb:g} MB limit")
        return
    sub.model = model
