"""`edgekit capture`, `edgekit sensors` and `edgekit plot` (their options: arguments.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import EdgekitError
from ..targets import load_board
from .firmware import flash_sensor_firmware
from .plot import plot_recording, recording_summary
from .sensors import describe
from .session import CaptureStopped, Progress, Session

COMMANDS = ("capture", "sensors", "plot")


def run_cli(args) -> int:
    return {"capture": _capture, "sensors": _sensors, "plot": _plot}[args.command](args)


class _RichProgress(Progress):
    """Countdown lines and one progress bar per recording: samples, rate, lost frames."""

    def __init__(self, console: Console, label: str):
        self.console, self.label = console, label
        self.bar = None

    def countdown(self, index, count, seconds_left):
        self.console.print(f"recording {index + 1}/{count} of '{self.label}' in {seconds_left} ...", highlight=False)

    def begin(self, index, count, path, samples):
        self.bar = Bar(TextColumn(f"{index + 1}/{count} {path.name}"), BarColumn(),
                       TextColumn("{task.completed:,}/{task.total:,} samples  {task.fields[rate]}  "
                                  "lost frames {task.fields[lost]}"), TimeRemainingColumn(),
                       console=self.console, transient=False)
        self.bar.start()
        self.task = self.bar.add_task("rec", total=samples, rate="", lost=0)

    def update(self, samples, rate_hz, lost_frames):
        self.bar.update(self.task, completed=samples, lost=lost_frames,
                        rate=f"{rate_hz:,.0f}/s" if rate_hz else "")

    def end(self, entry):
        self.bar.stop()
        problems = []
        if entry["lost_samples"]:
            problems.append(f"{entry['lost_samples']} samples lost ({entry['gaps']} frames: {entry['crc_failures']} "
                            f"CRC failures, {entry['header_errors']} garbled headers)")
        if entry["shortfall"]:
            problems.append(f"rate {entry['rate_achieved']:g} of {entry['rate_requested']:g} {entry['rate_unit']} requested")
        if not entry["complete"]:
            problems.append(f"INCOMPLETE ({entry['status']}): kept {entry['samples']} samples")
        style = "yellow" if problems else "green"
        self.console.print(f"[{style}]{entry['file']}[/{style}] ({entry['mode']}): {entry['samples']} samples"
                           + ("; " + "; ".join(problems) if problems else ", nothing lost"), highlight=False)


def _capture(args) -> int:
    err = Console(stderr=True)
    force = "hw" if args.hw else "sim" if args.sim else None
    channels = [c.strip() for c in args.channels.split(",") if c.strip()] if args.channels else None
    if args.flash:
        if args.sim or args.port:
            raise EdgekitError("--flash puts firmware on a connected board: leave out --sim and --port")
        with err.status("flashing ...") as status:
            args.port = flash_sensor_firmware(args.target, args.revision, lambda m: status.update(m + " ..."))
        err.print(f"{args.target}: flashed edgekit's firmware with its sensors; it runs at {args.port}", highlight=False)
    session = Session(args.target, args.sensor, args.output, args.label, rate=args.rate, seconds=args.seconds,
                      count=args.count, channels=channels, ei_json=args.format == "ei-json",
                      image="jpeg" if args.jpeg else "png", seed=args.seed, force=force, port=args.port,
                      revision=args.revision, countdown=args.countdown,
                      progress=None if args.json else _RichProgress(err, args.label))
    entries, stopped = [], None
    try:
        entries = session.run()
    except KeyboardInterrupt:
        stopped = "interrupted: the recording in progress is kept and marked incomplete in the manifest"
    except CaptureStopped as e:          # its message says what is kept and listed
        stopped = f"stopped: {e}"
    except EdgekitError as e:
        if not session.listed:           # nothing recorded yet: a plain error
            raise
        stopped = f"stopped: {e} (what arrived is kept and marked incomplete in the manifest)"
    entries = entries or session.listed
    if args.plot and not stopped:
        for e in entries:
            if not e["file"].endswith((".png", ".jpg")):
                plot_recording(session.out / e["file"], session.out / "plots" / (Path(e["file"]).stem + ".png"))
    if args.json:
        print(json.dumps({"how": getattr(session, "how", None), "recordings": entries,
                          "manifest": str(session.manifest.path), "stopped": stopped}, indent=2))
    else:
        err.print(f"{session.how}; manifest: {session.manifest.path}", highlight=False)
    if stopped:
        Console(stderr=True).print(f"[red]{stopped}[/red]", highlight=False, soft_wrap=True)  # one line
        return 130 if stopped.startswith("interrupted") else 2
    return 0  # losses and rate shortfalls are reported above and in the manifest, not failures


def _sensors(args) -> int:
    board = load_board(args.target)
    rows = describe(board)
    if args.json:
        print(json.dumps({"target": board.key, "sensors": rows}, indent=2))
        return 0
    t = Table(title=f"{board.name}: sensors")
    for col in ("sensor", "part", "channels (unit, per LSB)", "stream rate"):
        t.add_column(col)
    for r in rows:
        chans = ", ".join(f"{c} ({u}, {s:g})" for c, u, s in zip(r["channels"], r["units"], r["scales"] or [1] * 99))
        rate = f"up to {r['max_rate']:g} {r['rate_unit']}" if r["streams"] else "not streamed"
        if r["sensor"] == "camera":
            rate += f" ({r['max_stream_rate_hz']:,} pixels/s), {r['still'][0]}x{r['still'][1]} RGB565"
        name = r["sensor"] + (f" ({r['revision']})" if r["revision"] else "")
        t.add_row(name, r["part"], chans, rate)
    Console(width=None if sys.stdout.isatty() else 160).print(t)
    return 0


def _plot(args) -> int:
    out = args.output or str(Path(args.recording).with_suffix(".png"))
    plot_recording(args.recording, out)
    if args.json:
        print(json.dumps({"plot": out, **recording_summary(args.recording)}, indent=2))
    else:
        print(f"wrote {out}")
    return 0
