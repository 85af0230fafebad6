"""The `edgekit` command line. Every user error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from .errors import EdgekitError

out = Console()
err = Console(stderr=True)


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
    c.add_argument("--json", action="store_true", help="print the report as JSON")

    i = sub.add_parser("inspect", help="per-layer ops, shapes, parameters, MACs and quantization of a .tflite")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")

    t = sub.add_parser("targets", help="the boards edgekit deploys to, and which are connected now")
    t.add_argument("--json", action="store_true")
    return p


def _convert(args) -> int:
    from .convert import convert
    src = Path(args.model)
    with err.status("converting ...") as status:
        q = convert(src, calibration=args.calib, method=args.calib_method, val=args.val,
                    percentile=args.percentile, verify=not args.no_verify,
                    progress=lambda msg: status.update(msg + " ..."))
    target = args.output or (None if q.source.kind == "tflite-int8" else src.with_name(f"{src.stem}_int8.tflite"))
    info = dict(q.to_dict(), output=str(target) if target else None)
    if target:
        q.save(target)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        from .report import renderables
        out.print(renderables(info))
        out.print(f"wrote {target}" if target else "already int8: nothing written (use -o to copy)")
    return 0


def _inspect(args) -> int:
    from .inspect import inspect_model, render_inspect
    from .importers import _read
    info = inspect_model(_read(Path(args.model)), name=Path(args.model).name)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        out.print(render_inspect(info))
    return 0


def _targets(args) -> int:
    from .targets import render_targets, targets_report
    rows = targets_report()
    if args.json:
        print(json.dumps({"targets": rows}, indent=2))
    else:
        out.print(render_targets(rows))
    return 0


COMMANDS = {"convert": _convert, "inspect": _inspect, "targets": _targets}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except EdgekitError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as e:  # a bug in edgekit: one line, traceback only on request
        if os.environ.get("EDGEKIT_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(e).__name__}: {e} (set EDGEKIT_DEBUG=1 for the "
                  "traceback and report it)", highlight=False, soft_wrap=True)
        return 3


if __name__ == "__main__":
    sys.exit(main())
