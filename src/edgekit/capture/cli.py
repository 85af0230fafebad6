"""`edgekit capture`, `edgekit sensors` and `edgekit plot` (registered by edgekit.cli via add_cli)."""
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
from .plot import plot_recording
from .sensors import describe
from .session import CaptureStopped, Progress, Session

COMMANDS = ("capture", "sensors", "plot")


def add_cli(sub) -> None:
    c = sub.add_parser("capture", help="record labelled sensor data from a board (or its simulation) into a data set")
    c.add_argument("--target", required=True, help="nano33ble or esp32s3")
    c.add_argument("--sensor", required=True, help="imu, microphone, temperature, pressure, light, camera, adc "
                   "(edgekit sensors --target T lists them)")
    c.add_argument("--rate", type=float, help="samples per second (camera: stills per second); default: the "
                   "microphone's 16000, 100 for the IMU, the fastest for slow sensors")
    c.add_argument("--seconds", type=float, default=2.0, help="length of each recording (default 2)")
    c.add_argument("--label", required=True, help="what is recorded, e.g. wave; names the folder and files")
    c.add_argument("--count", type=int, default=1, help="number of recordings (default 1)")
    c.add_argument("-o", "--output", default="data", help="data set folder (default data/)")
    c.add_argument("--channels", help="comma-separated channels to record, e.g. ax,ay,az,gx,gy,gz (default all)")
    c.add_argument("--format", choices=("ei-json",), help="also write Edge Impulse data-acquisition JSON")
    c.add_argument("--jpeg", action="store_true", help="camera stills as JPEG (default PNG)")
    c.add_argument("--plot", action="store_true", help="also draw each recording into <folder>/plots/")
    c.add_argument("--seed", type=int, default=0, help="seed of the simulated signals (default 0)")
    c.add_argument("--revision", help="nano33ble board revision, Rev1 or Rev2: simulated (default Rev1), or the "
                   "board to --flash (required there)")
    c.add_argument("--countdown", type=float, help="seconds of countdown before each recording (default 3 on a "
                   "board, 0 simulated)")
    how = c.add_mutually_exclusive_group()
    how.add_argument("--hw", action="store_true", help="use the connected board, fail if there is none")
    how.add_argument("--sim", action="store_true", help="simulate the board even if one is connected")
    c.add_argument("--port", help="a serial port or sim:// URL to capture from (instead of finding the board)")
    c.add_argument("--flash", action="store_true", help="first build and flash edgekit's firmware with the board's "
                   "sensors (arduino-cli; the Nano needs --revision)")
    c.add_argument("--json", action="store_true", help="print the recordings' manifest entries as JSON")

    s = sub.add_parser("sensors", help="a board's sensors: channels, units, scales and stream rates")
    s.add_argument("--target", required=True, help="nano33ble or esp32s3")
    s.add_argument("--json", action="store_true")

    p = sub.add_parser("plot", help="draw a recording (CSV or WAV) as a PNG")
    p.add_argument("recording", help="e.g. data/wave/wave.1.csv")
    p.add_argument("-o", "--output", help="PNG to write (default: the recording's name with .png)")


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
    print(f"wrote {out}")
    return 0
