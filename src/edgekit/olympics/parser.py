"""The arguments of `edgekit olympics run | check | board | serve | demo | init | verify`, apart from
their code (olympics/cli.py), so that every other edgekit command starts without loading the
Olympics."""
from __future__ import annotations

DEFAULT_TARGETS = "nano33ble,esp32s3,coral"


def add_cli(sub) -> None:
    o = sub.add_parser("olympics", help="the AI Olympics: run submissions on every board, rank them")
    steps = o.add_subparsers(dest="olympics_command", required=True, metavar="STEP")
    r = steps.add_parser("run", help="run every submission on every target and store signed results")
    r.add_argument("submissions", help="folder with one folder per team")
    r.add_argument("--track", required=True, help="track name (./tracks/NAME.toml or edgekit's) or .toml path")
    r.add_argument("--targets", default=DEFAULT_TARGETS, help=f"comma-separated (default {DEFAULT_TARGETS})")
    r.add_argument("--db", default="results.sqlite", help="results database (default results.sqlite)")
    how = r.add_mutually_exclusive_group()
    how.add_argument("--hw", action="store_true", help="only connected boards: fail if one is missing")
    how.add_argument("--sim", action="store_true", help="simulate every board even if one is connected")
    how.add_argument("--emu", action="store_true", help="emulate the Cortex-M4 boards (the real firmware and "
                     "TFLite Micro kernels on QEMU), simulate the others (also: emulate = true in the track)")
    r.add_argument("--runs", type=int, default=10, help="inferences timed per submission and board (default 10)")
    r.add_argument("--jobs", type=int, help="evaluations at once on the simulated boards (default: the cores); "
                   "each connected board or lab place always runs one at a time")
    r.add_argument("--lab", choices=("labgrid",), help="run on the lab's boards: every free labgrid place tagged "
                   "board=KIND runs evaluations of that kind at once (coordinator from LG_COORDINATOR); kinds "
                   "without a place are simulated")
    r.add_argument("--json", action="store_true", help="print the results as JSON")
    c = steps.add_parser("check", help="is a submission valid, and does it fit each board of its track?")
    c.add_argument("submission", nargs="+", help="the team's folder (submission.json and one model); several "
                   "are checked one by one")
    c.add_argument("--track", help="track name or .toml (default: the track in submission.json)")
    c.add_argument("--json", action="store_true")
    for name, text in (("board", "print the ranking and write the leaderboard page"),
                       ("serve", "serve the leaderboard page on localhost, refreshed as results arrive")):
        b = steps.add_parser(name, help=text)
        b.add_argument("--db", default="results.sqlite", help="results database (default results.sqlite)")
        b.add_argument("--track", action="append", help="track(s) to show (default: every track in the db)")
        if name == "board":
            b.add_argument("--out", help="the HTML page (default: leaderboard.html beside the db)")
            b.add_argument("--json", action="store_true", help="print the leaderboard data as JSON")
        else:
            b.add_argument("--host", default="127.0.0.1")
            b.add_argument("--port", type=int, default=8765)
    i = steps.add_parser("init", help="create the course key and an empty signed results database")
    i.add_argument("--db", default="results.sqlite", help="results database (default results.sqlite)")
    v = steps.add_parser("verify", help="check every signature of a results database; list each row missing, "
                         "altered, moved or replayed")
    v.add_argument("--db", default="results.sqlite", help="results database (default results.sqlite)")
    d = steps.add_parser("demo", help="the whole capstone in an empty folder: track, sample submissions, "
                         "a run on the simulated boards, the leaderboard")
    d.add_argument("folder", nargs="?", default=".", help="where to write it (default: here)")
    d.add_argument("--json", action="store_true", help="print the leaderboard data as JSON")
