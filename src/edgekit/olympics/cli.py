"""`edgekit olympics run | check | board | serve | demo` (registered by edgekit's cli.py)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rich.markup import escape

from ..console import err, out
from ..errors import EdgekitError
from . import demo, page, runner
from .check import check
from .leaderboard import build, render
from .runner import parse_targets
from .sandbox import KEY_ENV
from .serve import serve
from .store import Store, key_path
from .submissions import list_submissions
from .tracks import load_track

def run_cli(args) -> int:
    return {"run": _run, "check": _check, "board": _board, "serve": _serve, "demo": _demo, "init": _init,
            "verify": _verify}[args.olympics_command](args)


def _consoles():
    return out, err


def _run(args) -> int:
    track = load_track(args.track, search=[Path(args.db).parent / "tracks"])
    targets = parse_targets(args.targets)
    if args.runs < 1:
        raise EdgekitError("--runs must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise EdgekitError("--jobs must be at least 1 (evaluations at once on the simulated boards)")
    if args.lab and (args.sim or args.emu):
        raise EdgekitError("--lab labgrid runs on the lab's boards: leave out --sim and --emu")
    list_submissions(Path(args.submissions))  # bad input stops here, before the database or its key exist
    track.test_set()
    store = Store(args.db, create=True)  # the first run on an empty store makes the key, never a later one
    summary = _run_with_progress(args.submissions, track, targets, store,
                                 force="hw" if args.hw else "sim" if args.sim else
                                 "emu" if (args.emu or track.emulate) and not args.lab else None, runs=args.runs,
                                 jobs=args.jobs, lab=args.lab)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items()}, indent=2, default=str))
    return 1 if summary["not_run"] else 0


def _run_with_progress(folder, track, targets, store, force=None, runs=10, quiet=False, jobs=None,
                       lab=None) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    _, err = _consoles()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("reading the submissions", total=None)

        def on_ready(modes):
            for why in modes.values():  # measured or simulated: always said first
                bar.console.print(why, highlight=False)

        def on_start(name, target, i, n):
            bar.update(task, total=n, completed=i, description=f"{name} on {target}")

        def on_result(row):
            bar.advance(task)
            if not quiet:
                err.print(result_line(row, track.metric), highlight=False, soft_wrap=True)
        try:
            summary = runner.run(folder, track, targets, store, force=force, runs=runs, jobs=jobs, lab=lab,
                                 on_ready=on_ready, on_start=on_start, on_result=on_result)
        except KeyboardInterrupt:
            raise EdgekitError("interrupted; the results so far are stored: run the same command again to "
                               "resume where it stopped") from None
    done = f"run {summary['run_id']}: {summary['stored']} result(s) stored"
    if summary["resumed"]:
        done += f", resumed after {summary['already_stored']} stored before"
    err.print(escape(done + f" in {store.path}; `edgekit olympics board --db {store.path}` ranks them"),
              highlight=False, soft_wrap=True)
    for s in summary["skipped"]:
        err.print(escape(f"skipped {s}: another track"), highlight=False, soft_wrap=True)
    for s in summary["not_run"]:
        err.print(escape(f"not run: {s}"), highlight=False, soft_wrap=True)
    if summary["not_run"]:
        err.print(f"{len(summary['not_run'])} evaluation(s) not run and not stored; run the same command again "
                  "when the boards are back, and it does only those", highlight=False, soft_wrap=True)
    return summary


def result_line(row: dict, metric: str) -> str:
    """One rich-markup line; the team's strings (folder names, reasons) are escaped, never markup."""
    row = {k: escape(v) if isinstance(v, str) else v for k, v in row.items()}
    if row["status"] == "invalid":
        return f"[red]✗[/red] {row['submission']}: invalid: {row['reason']}"
    detail = row.get("detail") or {}
    place = (detail.get("where") or {}).get("place")
    where = f"{row['submission']} on {row['target']} ({row['mode']}{', place ' + escape(place) if place else ''})"
    if detail.get("retried_after"):
        where += f", retried after {escape(detail['retried_after'])}"
    if row["status"] == "failed":
        return f"[red]✗[/red] {where}: failed: {row['reason']}"
    if row["metric_value"] is None:
        return f"[yellow]✗[/yellow] {where}: {row['reason']}"
    value = f"{row['metric_value']:.1%}" if metric == "accuracy" else f"AUC {row['metric_value']:.3f}"
    figures = (f"{metric} {value}, {row['latency_ms']:.3g} ms, flash {row['flash_bytes']:,} B, "
               f"RAM {row['ram_bytes']:,} B, {row['energy_mj']:.3g} mJ")
    if row["status"] == "violates":
        return f"[yellow]✗[/yellow] {where}: {figures}; violates: {row['reason']}"
    return f"[green]✓[/green] {where}: {figures}"


def _check(args) -> int:
    out, err = _consoles()
    reports = []
    for folder in args.submission:
        with err.status(f"checking {folder} ..."):
            try:
                report = check(folder, args.track)
            except EdgekitError as e:  # e.g. its track is unknown: said for this folder, and on to the next
                report = {"valid": False, "fits": {}, "lines": [(False, str(e))]}
        reports.append(dict(report, folder=str(folder)))
    if args.json:
        shown = [{**r, "lines": [{"ok": ok, "text": t} for ok, t in r["lines"]]} for r in reports]
        print(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2))
    else:
        for r in reports:
            _print_check(out, r, heading=len(reports) > 1)
    return 0 if all(r["valid"] and all(r["fits"].values()) for r in reports) else 1


def _print_check(out, report: dict, heading: bool) -> None:
    if heading:
        out.print(f"[bold]{escape(report['folder'])}[/bold]", highlight=False, soft_wrap=True)
    for ok, text in report["lines"]:
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]" if ok is False else "•"
        out.print(f"{mark} {escape(text)}", highlight=False, soft_wrap=True)
    fits = [t for t, f in report["fits"].items() if f]
    misses = [t for t, f in report["fits"].items() if not f]
    verdict = f"{report['folder']}: " + ("valid" if report["valid"] else "NOT valid")
    if report["valid"]:
        verdict += (f"; within the track's limits on {', '.join(fits) or 'no board'}"
                    + (f"; not on {', '.join(misses)}" if misses else ""))
    out.print(escape(verdict), highlight=False, soft_wrap=True)


def _tracks(db: Path, names: list[str] | None, store) -> list:
    names = names or store.tracks()
    if not names:
        raise EdgekitError(f"{db} holds no results yet; run `edgekit olympics run SUBMISSIONS --track T --db {db}` first")
    return [load_track(n, search=[db.parent / "tracks"]) for n in names]


def _open_store(db: str):
    if not Path(db).is_file():
        raise EdgekitError(f"results database {db} does not exist; run `edgekit olympics run` first, or give --db")
    return Store(db)


def _board(args) -> int:
    out, err = _consoles()
    store = _open_store(args.db)
    board = build(store, _tracks(Path(args.db), args.track, store))
    page = write_page(board, Path(args.out) if args.out else Path(args.db).parent / "leaderboard.html")
    if args.json:
        print(json.dumps(board, indent=2))
    else:
        out.print(render(board))
    err.print(f"wrote {page}", highlight=False)
    return 0


def write_page(board: dict, path: Path) -> Path:
    """Render the page and write it whole, or not at all: readable as any file the user writes (the
    umask's mode, not mkstemp's private 0600), in a folder made if need be."""
    html = page.render(board)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o077)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def _init(args) -> int:
    _, err = _consoles()
    store = Store(args.db, create=True)  # makes the key only for an empty store; else it must be there
    where = KEY_ENV if os.environ.get(KEY_ENV) else key_path(store.path)
    err.print(escape(f"{store.path} is ready, signed with the key in {where}; back the key up, and keep it out "
                     "of anything you publish"), highlight=False, soft_wrap=True)
    return 0


def _verify(args) -> int:
    out, err = _consoles()
    store = _open_store(args.db)
    problems = store.problems()
    for p in problems:
        out.print(f"[red]✗[/red] {escape(p)}", highlight=False, soft_wrap=True)
    s = store.summary()
    if problems:
        err.print(escape(f"{store.path}: {len(problems)} problem(s); restore it from a backup"), highlight=False)
        return 1
    err.print(escape(f"{store.path}: {s['results']} result(s), every signature and the chain verified; "
                     f"head {s['head']}"), highlight=False, soft_wrap=True)
    return 0


def _serve(args) -> int:
    db = Path(args.db)
    store = _open_store(args.db)
    tracks = _tracks(db, args.track, store)
    store.close()
    # a fresh connection per build: the server may call it from its own thread, as results arrive
    serve(lambda: _build_once(db, tracks, build), host=args.host, port=args.port)
    return 0


def _build_once(db: Path, tracks, build) -> dict:
    store = Store(db)
    try:
        return build(store, tracks)
    finally:
        store.close()


def _demo(args) -> int:
    out, err = _consoles()
    folder = Path(args.folder)
    with err.status("making the demo ...") as status:
        made = demo.demo(folder, progress=lambda m: status.update(m + " ..."))
    track = load_track(made["track"])
    store = Store(made["db"], create=True)
    _run_with_progress(made["submissions"], track, demo.TARGETS, store, force="sim", runs=3)
    board = build(store, [track])
    page = write_page(board, folder / "leaderboard.html")
    if args.json:
        print(json.dumps(board, indent=2))
    else:
        out.print(render(board))
        err.print(f"the demo is in {folder}: tracks/, submissions/, {made['db'].name}"
                  + (f", {page.name}" if page else "") + f"; try `edgekit olympics check "
                  f"{folder / 'submissions' / 'owls'}`", highlight=False)
    return 0
