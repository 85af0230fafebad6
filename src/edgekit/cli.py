"""The `edgekit` command line. Every user error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path

from rich.markup import escape

from .budget import DEFAULT_CALIB_MB, DEFAULT_MEMORY_MB, limits
from .capture.arguments import add_cli as add_capture_cli
from .console import err, out
from .errors import EdgekitError
from .olympics.parser import add_cli as add_olympics_cli
from .protocol.arguments import add_cli as add_board_cli

# Each command imports what it runs when it runs (the `# lazy:` imports below): `edgekit convert`
# then starts without the board stack (~0.1 s of a ~0.4 s conversion).


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgekit", description="Deploy int8 models to microcontrollers, "
                                "the Raspberry Pi and the Coral Edge TPU, on real or simulated boards.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("convert", help="convert an ONNX or float TFLite model to a verified int8 TFLite model")
    c.add_argument("model", help=".onnx or .tflite file")
    c.add_argument("--calib", help="calibration inputs (.npy or .npz), in the model's layout")
    c.add_argument("--calib-method", default="minmax", choices=("minmax", "percentile", "entropy"))
    c.add_argument("--percentile", type=float, default=99.99, help="for --calib-method percentile")
    c.add_argument("--val", help="validation inputs (.npy/.npz) for the float-vs-int8 comparison")
    c.add_argument("-o", "--output", help="output .tflite (default: MODEL_int8.tflite beside the input)")
    c.add_argument("--no-verify", action="store_true", help="skip LiteRT/TFLM verification")
    c.add_argument("--per-tensor-dense", action="store_true", help="one scale per dense weight tensor, for "
                   "TFLite Micro before 2024 (the Nano's Arduino library); edgekit deploy does it for those boards")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_budget_flags(c)

    i = sub.add_parser("inspect", help="per-layer ops, shapes, parameters, MACs and quantization of a .tflite")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")

    t = sub.add_parser("targets", help="the boards edgekit deploys to, and which are connected now")
    t.add_argument("--json", action="store_true")
    t.add_argument("--lab", choices=("labgrid",), help="list the lab's labgrid places instead: the board each "
                   "is tagged with, free or taken (coordinator: $LG_COORDINATOR)")
    for name, helptext in (("profile", "latency, energy and memory of a model on a board (or its simulator)"),
                           ("deploy", "convert if needed, check the fit, flash, verify the outputs, profile")):
        d = sub.add_parser(name, help=helptext)
        d.add_argument("model", help="int8 .tflite (or .onnx / float .tflite with --calib)")
        d.add_argument("--target", required=True, help="nano33ble, esp32s3, rpi4, coral or stm32l4r5")
        how = d.add_mutually_exclusive_group()
        how.add_argument("--hw", action="store_true", help="use the connected board, fail if there is none")
        how.add_argument("--sim", action="store_true", help="simulate the board even if one is connected")
        how.add_argument("--emu", action="store_true", help="run the real firmware and TFLite Micro kernels on an "
                         "emulated Cortex-M4 (QEMU; nano33ble, stm32l4r5)")
        d.add_argument("--runs", type=int, default=10, help="inferences to time (default 10)")
        d.add_argument("--calib", help="calibration inputs, to convert a model that is not int8 yet")
        d.add_argument("--json", action="store_true", help="print the report as JSON")
        _add_budget_flags(d)
        d.add_argument("--plot", help="write a per-layer chart (PNG) of the Iron Law terms")
        d.add_argument("--port", help="the board's serial port or URL instead of finding it: /dev/ttyACM0, "
                       "rfc2217://host:4000, sim://nano33ble (default: $EDGEKIT_PORT)")
        d.add_argument("--host", help="run on a Raspberry Pi over ssh, e.g. pi@raspberrypi.local")
        d.add_argument("--lab", choices=("labgrid",), help="use a board of the lab: acquire a free labgrid place "
                       "tagged board=TARGET (coordinator: $LG_COORDINATOR), release it afterwards")
        d.add_argument("--place", help="with --lab: this labgrid place instead of any free one")
        d.add_argument("--remote-python", default="python3", help="python on the Pi that has edgekit")
        d.add_argument("--usb", type=int, choices=(2, 3), default=3, help="Coral: the USB link (default 3)")
        d.add_argument("--edgetpu-clock", choices=("std", "max"), default="max",
                       help="Coral: libedgetpu1-std (250 MHz) or -max (500 MHz)")
        if name == "profile":
            d.add_argument("--duration", help="sustained run, e.g. 10m: heating and throttling (rpi4)")
    cc = sub.add_parser("compile", help="compile an int8 model for the Coral Edge TPU (edgetpu_compiler), "
                        "or predict what it would map where the compiler is absent")
    cc.add_argument("model", help="int8 or uint8 .tflite")
    cc.add_argument("-o", "--output-dir", default=".", help="where MODEL_edgetpu.tflite goes (default: here)")
    cc.add_argument("--json", action="store_true")
    doc = sub.add_parser("doctor", help="what is missing to build, flash and talk to boards, and the exact fix")
    doc.add_argument("--board", choices=("nano33ble", "esp32s3"), action="append",
                     help="check only this board's tools (repeatable; default both)")
    doc.add_argument("--json", action="store_true", help="print the checks as JSON")
    add_board_cli(sub)  # edgekit board serve: a virtual board behind a pseudo-terminal
    add_olympics_cli(sub)  # edgekit olympics run | check | board | serve | demo
    add_capture_cli(sub)  # edgekit capture, sensors, plot (week 4)
    return p


def _add_budget_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", type=int, metavar="MB", help="memory budget for the model's working "
                   f"tensors (default {DEFAULT_MEMORY_MB}, or EDGEKIT_MAX_MEMORY_MB)")
    p.add_argument("--max-calib-mb", type=int, metavar="MB", help="largest calibration/validation set, as "
                   f"float32 after decompression (default {DEFAULT_CALIB_MB}, or EDGEKIT_MAX_CALIB_MB)")


def _budgets(args):
    """The memory budgets given on the command line, for the code inside."""
    return limits(memory=args.max_memory, calib=args.max_calib_mb)


def _convert(args) -> int:
    from .convert import convert  # lazy: each command loads only what it runs
    from .convert_report import renderables  # lazy: each command loads only what it runs
    src = Path(args.model)
    with _budgets(args), err.status("converting ...") as status:
        q = convert(src, calibration=args.calib, method=args.calib_method, val=args.val,
                    percentile=args.percentile, verify=not args.no_verify, per_tensor_dense=args.per_tensor_dense,
                    progress=lambda msg: status.update(msg + " ..."))
    target = args.output or (None if q.source.kind == "tflite-int8" else src.with_name(f"{src.stem}_int8.tflite"))
    info = dict(q.to_dict(), output=str(target) if target else None)
    if target:
        q.save(target)
    for warning in info.get("warnings") or ():  # on stderr whatever the format: a script sees them too
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        out.print(renderables({k: v for k, v in info.items() if k != "warnings"}))  # printed above
        out.print(f"wrote {target}" if target else "already int8: nothing written (use -o to copy)")
    return 0


def _inspect(args) -> int:
    from .importers import read_file  # lazy: each command loads only what it runs
    from .inspect import inspect_model, render_inspect  # lazy: each command loads only what it runs
    info = inspect_model(read_file(Path(args.model)), name=Path(args.model).name)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        out.print(render_inspect(info))
    return 0


def _targets(args) -> int:
    if args.lab:
        return _lab_places(args)
    from .targets import render_targets, targets_report  # lazy: each command loads only what it runs
    rows = targets_report()
    if args.json:
        print(json.dumps({"targets": rows}, indent=2))
    else:
        out.print(render_targets(rows))
    return 0


def _lab_places(args) -> int:
    from rich.table import Table  # lazy: each command loads only what it runs
    from .targets.lab import places  # lazy: only lab runs talk to labgrid
    rows = [{"place": p.name, "board": p.tags.get("board"), "tags": p.tags, "acquired_by": p.acquired}
            for p in places()]
    if args.json:
        print(json.dumps({"places": rows}, indent=2))
        return 0
    table = Table(title=f"labgrid places at {os.environ.get('LG_COORDINATOR', '127.0.0.1:20408')}",
                  title_justify="left")
    for column in ("place", "board", "state"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["place"], r["board"] or "(no board tag: `labgrid-client -p PLACE set-tags board=KIND`)",
                      f"taken by {r['acquired_by']}" if r["acquired_by"] else "free")
    out.print(table)
    return 0


def _deploy_or_profile(args) -> int:
    with _budgets(args), _lab(args):
        return _run_deploy_or_profile(args)


@contextlib.contextmanager
def _lab(args):
    """--lab labgrid: the board's port comes from an acquired labgrid place, released on the way out."""
    if not args.lab:
        if args.place:
            raise EdgekitError("--place names a labgrid place: add --lab labgrid")
        yield
        return
    if args.port or args.host or args.sim or args.emu:
        raise EdgekitError("--lab labgrid finds the board's port itself: leave out --port, --host, --sim and --emu")
    from .targets.lab import lab_port  # lazy: only lab runs talk to labgrid
    with lab_port(args.target, args.place) as port:
        err.print(f"{args.target}: labgrid place '{port.place}' at {port.url.split('?')[0]}", highlight=False)
        args.port, args.lab_pc = port.url, {"host": port.host, "device": port.device, "python": args.remote_python}
        yield


def _run_deploy_or_profile(args) -> int:
    from . import deployment as dep  # lazy: each command loads only what it runs
    from .backends import BACKENDS  # lazy: each command loads only what it runs
    from .pi import profile_remote  # lazy: each command loads only what it runs
    from .sim.thermal import parse_duration  # lazy: each command loads only what it runs
    from .targets import load_board  # lazy: each command loads only what it runs
    force = "hw" if args.hw else "sim" if args.sim else "emu" if args.emu else None
    duration = None
    if getattr(args, "duration", None):
        duration = parse_duration(args.duration)
    if args.host:
        if args.emu:
            raise EdgekitError("--emu runs on this machine (QEMU); leave out --host or --emu")
        board = load_board(args.target)
        backend = BACKENDS[board.kind]
        model, _ = dep.int8_model(args.model, board, args.calib)
        if not args.sim:  # the Pi may lack what the board needs (the Coral's compiler): prepared here
            model = backend.for_remote(model)
        extra = ["--duration", args.duration] if getattr(args, "duration", None) else []
        with err.status(f"{args.command} on {args.host} ..."):
            report = profile_remote(model.data, args.target, host=args.host, runs=args.runs, command=args.command,
                                    force="sim" if args.sim else "hw", python=args.remote_python, extra=extra)
        return _show_report(args, report)
    with err.status(f"{args.command} ...") as status:
        def progress(msg):
            if msg.startswith(args.target + ":"):  # which backend was chosen: always say it
                err.print(msg, highlight=False)
            elif msg.startswith("warning: "):  # from converting with --calib
                err.print(f"[yellow]warning:[/yellow] {escape(msg[9:])}", highlight=False, soft_wrap=True)
                return
            status.update(msg + " ...")
        coral = {"usb": args.usb, "clock": args.edgetpu_clock}
        if getattr(args, "lab_pc", None):  # a board elsewhere: flashed on the lab PC it is plugged into
            coral["lab_pc"] = args.lab_pc
        if args.command == "deploy":
            report = dep.deploy(args.model, args.target, runs=args.runs, force=force, port=args.port,
                                calibration=args.calib, progress=progress, **coral)
        else:
            report = dep.profile(args.model, args.target, runs=args.runs, force=force, duration_s=duration,
                                 port=args.port, calibration=args.calib, progress=progress, **coral)
    return _show_report(args, report)


def _show_report(args, report) -> int:
    from .profile_report import plot_layers, render_profile  # lazy: each command loads only what it runs
    if args.plot:
        plot_layers(report, args.plot)
    if args.json:
        slim = report.to_json()
        if report.thermal:
            slim["thermal"] = {k: v for k, v in report.thermal.items() if not isinstance(v, list)}
        print(json.dumps(slim, indent=2))
    else:
        out.print(render_profile(report))
        if args.command == "deploy":
            chk = report.outputs_check
            out.print(f"deployed to {report.target} ({report.mode}); outputs within {chk['max_lsb']} "
                      f"LSB of {chk['reference']} on {chk['samples']} inputs")
        if args.plot:
            out.print(f"wrote {args.plot}")
    return 0 if report.fits else 1


def _compile(args) -> int:
    from .edgetpu.plan import plan, summary  # lazy: each command loads only what it runs
    from .edgetpu.report import render_partition  # lazy: each command loads only what it runs
    from .importers import read_file  # lazy: each command loads only what it runs
    path = Path(args.model)
    with err.status("edgetpu_compiler ..."):
        p = plan(read_file(path), path.stem, args.output_dir)
    if args.json:
        print(json.dumps({**summary(p.partition), "plan": p.note,
                          "compiled_model": str(p.compiled_path) if p.compiled_path else None}, indent=2))
    else:
        out.print(render_partition(p))
    return 0


def _doctor(args) -> int:
    from .doctor import doctor, doctor_ok, print_doctor  # lazy: each command loads only what it runs
    checks = doctor(boards=tuple(args.board or ("nano33ble", "esp32s3")))
    if args.json:
        ok = doctor_ok(checks)
        print(json.dumps({"ok": ok, "checks": [dict(c.to_dict(), ok=c.ok) for c in checks]}, indent=2))
    else:
        ok = print_doctor(checks, out)
    return 0 if ok else 1


def _board(args) -> int:
    from .protocol import run_board  # lazy: each command loads only what it runs
    if args.board_command == "serve" and args.emu:
        return _serve_emulated(args)
    return run_board(args)


def _serve_emulated(args) -> int:
    """`edgekit board serve --emu`: the emulated board on a socket until Ctrl-C or SIGTERM."""
    from . import deployment as dep  # lazy: each command loads only what it runs
    from .backends import open_backend  # lazy: each command loads only what it runs
    if not args.model or args.stand_in or args.faults or args.rfc2217 is not None:
        raise EdgekitError("--emu serves the firmware built around --model (no stand-in, faults or --rfc2217): "
                           "give --model m_int8.tflite")
    backend = open_backend(args.target, force="emu")
    model, _ = dep.int8_model(args.model, backend.board)
    with err.status("building the emulated firmware ...") as status:
        backend.load(model, progress=lambda m: status.update(m + " ..."))
        backend.check_fit()
        backend.flash()
    backend.client.close()  # the port is for the user's program now: one client at a time
    backend.client = None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the port is printed: a caller may stop us on reading it
        signal.signal(sig, lambda *_: stop.set())
    print(backend.emulation.port, flush=True)
    err.print(f"{backend.why}; serving at {backend.emulation.port} until Ctrl-C", highlight=False)
    try:
        stop.wait()
    finally:
        backend.close()
    err.print("stopped")
    return 0


def _olympics(args) -> int:
    from .olympics.cli import run_cli  # lazy: the Olympics load only for their own commands (start-up of all others)
    return run_cli(args)


def _capture(args) -> int:
    from .capture.cli import run_cli as run_capture_cli  # lazy: each command loads only what it runs
    return run_capture_cli(args)


COMMANDS = {"capture": _capture, "sensors": _capture, "plot": _capture, "board": _board, "olympics": _olympics, "compile": _compile, "doctor": _doctor, "convert": _convert, "inspect": _inspect, "targets": _targets,
            "profile": _deploy_or_profile, "deploy": _deploy_or_profile}


def run() -> int:
    """The `edgekit` command: main() in a supervised child, so that a native crash is one line (crash.py)."""
    from .crash import supervise  # lazy: only the command line is supervised, not main() called from Python
    return supervise(main, sys.argv[1:])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a pipe's buffer is written here, where a reader gone early is handled, not at exit
        return code
    except EdgekitError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)  # names from files are not markup
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except BrokenPipeError:  # the reader stopped early (`edgekit ... --json | head`): not an error of ours
        _stop_writing_stdout()
        return 141  # what a Unix tool killed by SIGPIPE reports, so `set -o pipefail` still sees the cut
    except Exception as e:  # a bug in edgekit: one line, traceback only on request
        if os.environ.get("EDGEKIT_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(e).__name__}: {escape(str(e))} (set EDGEKIT_DEBUG=1 for the "
                  "traceback and report it)", highlight=False, soft_wrap=True)
        return 3


def _stop_writing_stdout() -> None:
    """Point stdout at /dev/null so Python's flush at exit does not raise the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout already closed or not a real file: nothing left to flush
        pass


if __name__ == "__main__":
    sys.exit(run())
